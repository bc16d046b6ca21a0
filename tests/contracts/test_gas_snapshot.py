"""contracts/gas-snapshot.json holds: no operation costs more than 2% above its committed figure."""

from __future__ import annotations

import importlib.util

from market.chain.paths import REPO_ROOT

_spec = importlib.util.spec_from_file_location("aigc_gas_snapshot", REPO_ROOT / "tools" / "gas_snapshot.py")
assert _spec is not None and _spec.loader is not None
gas_snapshot = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gas_snapshot)

EXPECTED_OPERATIONS = {
    "deploy AIGCRegistry",
    "deploy AIGCExchange",
    "deploy ReputationLedger",
    "registerEsp",
    "announceExit",
    "withdrawStake",
    "proveEquivocation",
    "lockGeneration",
    "withdrawGeneration",
    "refundGeneration",
    "rate",
    "register",
    "claimBond",
    "challenge (upheld)",
    "challenge (rejected)",
    "lockPurchase",
    "withdrawPurchase (sale)",
    "withdrawPurchase (resale with royalty)",
    "refundPurchase",
    "withdrawCredit (registry)",
    "withdrawCredit (exchange)",
}


def test_the_snapshot_covers_every_operation_of_protocol_v2():
    assert set(gas_snapshot.load_snapshot()) == EXPECTED_OPERATIONS


def test_no_operation_costs_more_than_two_percent_above_the_snapshot():
    measured = gas_snapshot.measure_gas()
    assert set(measured) == EXPECTED_OPERATIONS
    problems = gas_snapshot.compare(gas_snapshot.load_snapshot(), measured)
    assert problems == [], "gas regressed (a deliberate change updates contracts/gas-snapshot.json):\n" + "\n".join(problems)


def test_the_comparison_flags_three_percent_and_allows_two():
    snapshot = {"op": 100_000}
    assert gas_snapshot.compare(snapshot, {"op": 102_000}) == []
    assert gas_snapshot.compare(snapshot, {"op": 95_000}) == []
    assert len(gas_snapshot.compare(snapshot, {"op": 102_001})) == 1
    assert len(gas_snapshot.compare(snapshot, {"op": 103_000})) == 1
    assert len(gas_snapshot.compare(snapshot, {"op": 1, "new op": 1})) == 1
    assert len(gas_snapshot.compare(snapshot, {})) == 1
