"""benchmarks/gas.py runs, ends with its JSON figures, and the measured HTLC round trip meets its target."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

from market.chain.connection import Chain
from market.chain.paths import REPO_ROOT

OPERATIONS = {
    "registerEsp",
    "announceExit",
    "withdrawStake",
    "lockGeneration",
    "withdrawGeneration",
    "refundGeneration",
    "rate",
    "register",
    "claimBond",
    "withdrawCredit (registry)",
    "withdrawCredit (exchange)",
    "lockPurchase",
    "withdrawPurchase (sale)",
    "withdrawPurchase (resale with royalty)",
    "refundPurchase",
    "challenge (upheld)",
    "challenge (rejected)",
    "proveEquivocation",
}
TARGET = 150_000

_spec = importlib.util.spec_from_file_location("aigc_gas_benchmark", REPO_ROOT / "benchmarks" / "gas.py")
assert _spec is not None and _spec.loader is not None
benchmark = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(benchmark)


def test_gas_benchmark_prints_every_operation_and_its_json_figures():
    proc = subprocess.run(
        [sys.executable, "benchmarks/gas.py", "--repeats", "2", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO_ROOT,
        check=True,
    )
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(figures["gas"]) >= OPERATIONS | {"deploy AIGCRegistry", "deploy AIGCExchange", "deploy ReputationLedger"}
    assert set(figures["first_call_gas"]) == set(figures["gas"])
    assert all(figures["gas"][op] > 21_000 for op in OPERATIONS)
    assert figures["htlc_round_trip"] == figures["gas"]["lockGeneration"] + figures["gas"]["withdrawGeneration"]
    assert figures["ratio_to_reference"] == round(figures["htlc_round_trip"] / 229_106, 4)
    assert figures["meets_target"] is (figures["htlc_round_trip"] <= TARGET)
    assert "HTLC round trip (lockGeneration + withdrawGeneration)" in proc.stdout


def test_the_measured_htlc_round_trip_is_at_most_150_000_gas():
    steady, _ = benchmark.summarise(benchmark.measure(Chain.embedded(), 2))
    round_trip = steady["lockGeneration"] + steady["withdrawGeneration"]
    assert benchmark.htlc_round_trip(steady) == round_trip
    assert round_trip <= TARGET, f"lockGeneration + withdrawGeneration costs {round_trip:,} gas"
    assert benchmark.TARGET_HTLC_ROUND_TRIP == TARGET
