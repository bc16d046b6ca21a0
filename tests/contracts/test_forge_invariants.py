"""Forge invariant runs over the three contracts (issue 9), compiled by the solc-js shim.

`make test` runs profile "ci" (32 runs x depth 32); `make fuzz` runs "deep" (256 x 64) through
AIGC_FORGE_PROFILE=deep. The handler and the six invariants are in contracts/foundry/test/.
"""

from __future__ import annotations

import os
import re
import subprocess

import pytest
from verification_helpers import write_report

from market.chain.paths import NODE_MODULES, REPO_ROOT

FORGE = NODE_MODULES / ".bin" / "forge"
INVARIANTS = {
    "invariant_exchangeBalanceEqualsOpenLocks", "invariant_lockSettlesAtMostOnce",
    "invariant_paidOutNeverExceedsDeposited", "invariant_liveTokensHaveOneOwnerRevokedNone",
    "invariant_revokedTokenNeverMoves", "invariant_ratingOnlyForSettledGenerationLock",
}
RESULT = re.compile(r"\[(PASS|FAIL)[^\]]*\] (invariant_\w+)\(\) \(runs: (\d+), calls: (\d+), reverts: (\d+)\)")


def test_forge_invariants_hold():
    if not FORGE.exists():
        pytest.fail(f"{FORGE} is missing: run `npm ci` (@foundry-rs/forge is a devDependency)")
    profile = os.environ.get("AIGC_FORGE_PROFILE", "ci")
    env = dict(os.environ, FOUNDRY_CONFIG="contracts/foundry/foundry.toml", FOUNDRY_PROFILE=profile, NO_COLOR="1")
    proc = subprocess.run([str(FORGE), "test", "--offline"], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=900)
    output = proc.stdout + proc.stderr
    results = {m.group(2): m.groups() for m in RESULT.finditer(output)}
    assert set(results) == INVARIANTS, output[-4000:]
    assert proc.returncode == 0 and all(r[0] == "PASS" for r in results.values()), output[-4000:]
    calls = sum(int(r[3]) for r in results.values())
    reverts = sum(int(r[4]) for r in results.values())
    runs = {int(r[2]) for r in results.values()}
    write_report(f"forge-{profile}", {"profile": profile, "runs": sorted(runs), "calls": calls, "reverts": reverts,
                                      "violations": 0, "per_invariant": {k: v[2:] for k, v in results.items()}})
    print(f"\nforge ({profile}): {calls} fuzzed calls, {reverts} reverts, 0 invariant violations "
          f"({len(results)} invariants x {runs} runs)")
    assert runs == ({256} if profile == "deep" else {32})
