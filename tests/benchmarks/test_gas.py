"""benchmarks/gas.py runs, ends with its JSON figures, and the HTLC round trip meets its target."""

from __future__ import annotations

import json
import subprocess
import sys

from market.chain.paths import REPO_ROOT

OPERATIONS = {
    "register", "challenge (upheld)", "challenge (rejected)", "lockGeneration", "withdraw (generation)",
    "refund", "lockPurchase", "withdraw (resale with royalty)", "rate",
}


def test_gas_benchmark_prints_every_operation_and_meets_the_htlc_target():
    proc = subprocess.run(
        [sys.executable, "benchmarks/gas.py", "--repeats", "2", "--json"],
        capture_output=True, text=True, timeout=300, cwd=REPO_ROOT, check=True,
    )
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(figures["gas"]) >= OPERATIONS
    assert all(figures["gas"][op] > 21_000 for op in OPERATIONS)
    assert figures["htlc_round_trip"] == figures["gas"]["lockGeneration"] + figures["gas"]["withdraw (generation)"]
    assert figures["htlc_round_trip"] <= 150_000
    assert figures["ratio_to_reference"] <= 0.65
