"""Forge invariant runs over the three protocol v2 contracts, compiled by the solc-js shim.

`make test` runs profile "ci" (32 runs x depth 32); `make fuzz` runs "deep" (256 x 64) through
AIGC_FORGE_PROFILE=deep. The handler (staking, signed offers, locks, registrations, challenges, time,
bonds, purchases, credits, ratings, equivocation proofs) and the eight invariants are in
contracts/foundry/test/. A second run against the mutant exchange of verification_helpers (a
refundGeneration without the settled check) must fail.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from verification_helpers import MUTATION, write_report

from market.chain.paths import CONTRACTS_DIR, NODE_MODULES, REPO_ROOT

FORGE = NODE_MODULES / ".bin" / "forge"
INVARIANTS = {
    "invariant_etherConserved",
    "invariant_exchangeHoldsOpenLocksCreditsAndStakes",
    "invariant_registryHoldsBondsAndCredits",
    "invariant_liveProductsHaveOneOwner",
    "invariant_nothingBoughtBeforeFinal",
    "invariant_lockSettlesAtMostOnce",
    "invariant_ratingOnlyForSettledAcceptedLock",
    "invariant_espStakesBacked",
}
#: runs x depth of each profile (contracts/foundry/foundry.toml).
PROFILES = {"ci": (32, 32), "deep": (256, 64)}
#: Handler actions that cannot be refused (time moves).
NEVER_REFUSED = {"warp"}
RESULT = re.compile(r"\[(PASS|FAIL)[^\]]*\] (invariant_\w+)\(\) \(runs: (\d+), calls: (\d+), reverts: (\d+)\)")
#: forge's one-line JSON record of a broken invariant.
FAILED = re.compile(r'"event":"failure","invariant":"(invariant_\w+)".*?"reason":"([^"]*)"')
METRIC = re.compile(r"^\|\s*MarketHandler\s*\|\s*(\w+)\s*\|\s*(\d+)\s*\|\s*(\d+)\s*\|\s*(\d+)\s*\|", re.MULTILINE)


def _forge(root: Path, profile: str) -> subprocess.CompletedProcess[str]:
    """`forge test` in `root` with a profile of contracts/foundry/foundry.toml."""
    if not FORGE.exists():
        pytest.fail(f"{FORGE} is missing: run `npm ci` (@foundry-rs/forge is a devDependency)")
    env = dict(os.environ, FOUNDRY_CONFIG="contracts/foundry/foundry.toml", FOUNDRY_PROFILE=profile, NO_COLOR="1")
    return subprocess.run([str(FORGE), "test", "--offline"], cwd=root, env=env, capture_output=True, text=True, timeout=900)


def test_forge_invariants_hold():
    profile = os.environ.get("AIGC_FORGE_PROFILE", "ci")
    runs, depth = PROFILES[profile]
    proc = _forge(REPO_ROOT, profile)
    output = proc.stdout + proc.stderr
    results = {m.group(2): m.groups() for m in RESULT.finditer(output)}
    assert set(results) == INVARIANTS, output[-4000:]
    # The exit status says nothing: the npm wrapper (node_modules/.bin/forge) does not pass on forge's.
    assert all(r[0] == "PASS" for r in results.values()) and "Suite result: ok." in output, output[-4000:]
    calls = sum(int(r[3]) for r in results.values())
    reverts = sum(int(r[4]) for r in results.values())
    assert {(int(r[2]), int(r[3])) for r in results.values()} == {(runs, runs * depth)}, results
    # Per handler action, over all campaigns: both outcomes must occur, or the run proves little.
    actions: Counter[str] = Counter()
    refused: Counter[str] = Counter()
    for name, action_calls, action_reverts, _ in METRIC.findall(output):
        actions[name] += int(action_calls)
        refused[name] += int(action_reverts)
    report = write_report(
        f"forge-{profile}",
        {
            "profile": profile,
            "runs": runs,
            "depth": depth,
            "calls": calls,
            "reverts": reverts,
            "violations": 0,
            "per_invariant": {k: {"runs": int(v[2]), "calls": int(v[3]), "reverts": int(v[4])} for k, v in results.items()},
            "per_action": {k: {"calls": actions[k], "reverts": refused[k]} for k in sorted(actions)},
        },
    )
    print(
        f"\nforge ({profile}): {calls} fuzzed calls, {reverts} reverts, 0 invariant violations "
        f"({len(results)} invariants x {runs} runs x depth {depth}); report {report}"
    )
    assert len(actions) == 19, sorted(actions)
    for name, n in actions.items():
        assert n > refused[name] > 0 or (name in NEVER_REFUSED and n > 0), (name, n, refused[name])


def test_forge_invariants_catch_the_mutant_exchange(tmp_path):
    """The same suite, run on a copy of the contracts with verification_helpers.MUTATION applied, must fail."""
    shutil.copytree(CONTRACTS_DIR, tmp_path / "contracts", ignore=shutil.ignore_patterns("build"))
    (tmp_path / "node_modules").symlink_to(NODE_MODULES)
    source = tmp_path / "contracts" / "AIGCExchange.sol"
    original, mutated = MUTATION
    text = source.read_text()
    assert text.count(original) == 1, "the mutation no longer applies: update verification_helpers.MUTATION"
    source.write_text(text.replace(original, mutated))
    proc = _forge(tmp_path, "ci")
    output = proc.stdout + proc.stderr
    failed = dict(FAILED.findall(output))
    print(f"\nforge on the mutant: {len(failed)} invariants broken: {failed}")
    assert "Suite result: FAILED." in output, output[-4000:]  # (the wrapper's exit status is always 0)
    assert "invariant_lockSettlesAtMostOnce" in failed, output[-4000:]
