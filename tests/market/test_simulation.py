"""Short simulations on eth-tester and on anvil: every invariant holds; bad input is refused."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from market.actors import EspProfile
from market.chain.anvil import free_port
from market.chain.connection import Chain
from market.chain.paths import REPO_ROOT
from market.report import write_report
from market.simulation import SimulationConfig, run_simulation
from reputation.selection import Selection

SUMMARY_KEYS = {
    "periods",
    "tasks",
    "completed",
    "refunded",
    "products",
    "trades",
    "challenges_upheld",
    "challenges_rejected",
    "plagiarism_detected_rate",
    "mean_latency_s",
    "mean_energy_j",
    "gas_by_operation",
    "reputation_final",
    "workload",
    "invariants",
    "attacks",
    "attacks_attempted",
    "attacks_failed",
    "bonds_released",
    "credits_withdrawn_wei",
}
SHORT = SimulationConfig(periods=6, random_periods=2, attack_probability=0.8, purchase_probability=0.6)


def check(result) -> None:  # type: ignore[no-untyped-def]
    summary = result.summary
    assert set(summary) >= SUMMARY_KEYS
    assert summary["invariants"] and all(summary["invariants"].values()), summary["invariants"]
    assert summary["tasks"] == SHORT.periods * SHORT.producers
    assert summary["refunded"] > 0  # the default profiles include a cheating ESP
    assert summary["trades"] > 0 and summary["attacks_attempted"] > 0
    # Every attack of the v1 threat table that the simulation tries fails under protocol v2.
    assert summary["attacks_failed"] == summary["attacks_attempted"], summary["attacks"]
    assert summary["bonds_released"] > 0 and summary["credits_withdrawn_wei"] > 0


def test_every_attack_kind_is_tried_and_fails_in_a_longer_run(tmp_path: Path):
    config = SimulationConfig(periods=16, random_periods=2, attack_probability=1.0, purchase_probability=0.5, seed=3)
    summary = run_simulation(config, Chain.embedded(), tmp_path).summary
    assert set(summary["attacks"]) == {"near_duplicate", "squat_A1", "priority_theft_A2", "exit_scam_A5"}
    for name, counts in summary["attacks"].items():
        assert counts["attempts"] > 0 and counts["failed"] == counts["attempts"], (name, counts)
    assert all(summary["invariants"].values()), summary["invariants"]


def test_a_short_simulation_on_eth_tester_keeps_every_invariant(tmp_path: Path):
    result = run_simulation(SHORT, Chain.embedded(), tmp_path)
    check(result)
    paths = write_report(result, tmp_path)
    assert {p.name for p in paths} == {
        "summary.json",
        "config.json",
        "timeseries.csv",
        "reputation.png",
        "workload.png",
        "latency_energy.png",
        "gas.png",
    }
    # The full config of the run is written beside its results, and reads back as the same config.
    written = json.loads((tmp_path / "config.json").read_text())
    assert written == json.loads((tmp_path / "summary.json").read_text())["config"] == SHORT.to_json()
    assert SimulationConfig.from_mapping(written) == SHORT


def test_a_short_simulation_on_anvil_keeps_every_invariant(tmp_path: Path, anvil_node):
    check(run_simulation(SHORT, Chain.connect(anvil_node.url), tmp_path))


def test_the_same_seed_gives_the_same_market(tmp_path: Path):
    first = run_simulation(SHORT, Chain.embedded(), tmp_path / "a").summary
    second = run_simulation(SHORT, Chain.embedded(), tmp_path / "b").summary
    for key in ("tasks", "completed", "refunded", "products", "trades", "workload", "challenges_upheld"):
        assert first[key] == second[key], key


@pytest.mark.parametrize(
    "field,value",
    [
        ("producers", 0),
        ("periods", -1),
        ("consumers", -1),
        ("selection", "oracle"),
        ("caching", "belady"),
        ("attack_probability", 1.5),
        ("purchase_probability", -0.1),
        ("temperature", 0.0),
        ("esp_profiles", ()),
        ("esp_profiles", ("honest", "lazy")),
        ("producers", 2.5),
        ("seed", "zero"),
        ("period_s", 600),
    ],
)
def test_a_config_refuses_a_bad_value_when_it_is_built(field, value):
    with pytest.raises(ValueError, match=field):
        SimulationConfig(**{field: value})


def test_a_config_turns_names_into_their_enums_and_back_into_the_same_json():
    config = SimulationConfig(selection="round-robin", esp_profiles=["slow", "cheating"])  # type: ignore[arg-type]
    assert config.selection is Selection.ROUND_ROBIN
    assert config.esp_profiles == (EspProfile.SLOW, EspProfile.CHEATING)
    assert config.to_json()["selection"] == "round-robin" and config.to_json()["esp_profiles"] == ["slow", "cheating"]
    assert config == SimulationConfig(selection=Selection.ROUND_ROBIN, esp_profiles=(EspProfile.SLOW, EspProfile.CHEATING))
    assert dataclasses.replace(config, periods=7).periods == 7
    with pytest.raises(ValueError, match="producers"):
        dataclasses.replace(config, producers=0)  # a changed copy checks itself too


def test_a_config_from_a_mapping_refuses_unknown_fields():
    assert SimulationConfig.from_mapping({"periods": 4, "esp_profiles": ["honest"]}) == SimulationConfig(
        periods=4, esp_profiles=(EspProfile.HONEST,)
    )
    with pytest.raises(ValueError, match="unknown SimulationConfig field: preiods"):
        SimulationConfig.from_mapping({"preiods": 4})


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli", "simulate", *args], capture_output=True, text=True, timeout=300, cwd=REPO_ROOT
    )


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["--producers", "0"], "--producers"),
        (["--periods", "-3"], "--periods"),
        (["--selection", "oracle"], "selection"),
        (["--rpc", "http://127.0.0.1:{port}"], "no EVM JSON-RPC node answers"),
    ],
)
def test_bad_simulate_input_prints_one_line_and_exits_2(args, fragment):
    args = [a.format(port=free_port()) for a in args]
    proc = run_cli(*args)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0] and "Traceback" not in proc.stderr


def test_simulate_writes_the_report_and_ends_with_the_summary(tmp_path: Path):
    proc = run_cli("--periods", "3", "--out", str(tmp_path), "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(summary) >= SUMMARY_KEYS and all(summary["invariants"].values())
    assert (tmp_path / "summary.json").exists() and (tmp_path / "timeseries.csv").exists()
