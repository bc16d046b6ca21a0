"""Short simulations on eth-tester and on anvil: every invariant holds; bad input is refused."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from cli.main import main
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
    "on_time",
    "honest_on_time_rate",
    "cheater_below_honest",
    "cheating_tasks_after_exploration",
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


def test_the_market_without_the_chain_sees_what_the_market_saw(tmp_path: Path):
    """run_dynamics: the same choices, costs, ratings and reputations as run_simulation, period by period."""
    from market.simulation import run_dynamics

    result = run_simulation(SHORT, Chain.embedded(), tmp_path)
    dynamics = run_dynamics(SHORT)
    for record, chosen, costs, reputation in zip(result.periods, dynamics.chosen, dynamics.costs, dynamics.reputation, strict=True):
        assert record.workload == [chosen.count(e) for e in range(SHORT.esps)]
        assert record.latency_s == [costs[m].latency_s for m in range(SHORT.producers)]
        assert record.completed == sum(p for p in dynamics.positive[record.period])
        assert record.reputation == pytest.approx(reputation, abs=1e-12)
    figures = dynamics.figures()
    assert figures == {k: result.summary[k] for k in ("honest_on_time_rate", "cheater_below_honest")}


def test_the_demo_figures_are_counted_over_honest_tasks_and_final_reputations():
    from market.flows import TaskCost
    from market.simulation import market_figures

    H, C, S = EspProfile.HONEST, EspProfile.CHEATING, EspProfile.SLOW

    def task(on_time: bool) -> TaskCost:
        return TaskCost(1.0, 1.0, on_time, 0.8, {})

    costs = [(0, task(True)), (1, task(False)), (0, task(True)), (2, task(False)), (3, task(False)), (1, task(True))]
    # Honest ESPs 0 and 1 ran 4 tasks, 3 on time; the cheater's (2) and the slow one's (3) do not count.
    figures = market_figures([H, H, C, S], costs, [0.80, 0.70, 0.69, 0.10])
    assert figures == {"honest_on_time_rate": 0.75, "cheater_below_honest": True}
    assert market_figures([H, H, C, S], costs, [0.80, 0.70, 0.71, 0.10])["cheater_below_honest"] is False
    assert market_figures([H, S], costs[:2], [0.5, 0.5]) == {"honest_on_time_rate": 1.0, "cheater_below_honest": None}
    assert market_figures([C, S], [(0, task(False))], [0.1, 0.5])["honest_on_time_rate"] is None


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
        ("caching", "cloud"),  # no edge caching needs a cloud that runs tasks; the market's system has none
        ("scheduler", "oracle"),
        ("scheduler", "maddpg:/no/such/checkpoint.pt"),
        ("servers_per_esp", 0),
        ("deadline_s", 0.0),
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
        (["--scheduler", "oracle"], "scheduler"),
        (["--scheduler", "maddpg:/no/such/checkpoint.pt"], "no checkpoint file"),
        (["--rpc", "http://127.0.0.1:{port}"], "no EVM JSON-RPC node answers"),
    ],
)
def test_bad_simulate_input_prints_one_line_and_exits_2(args, fragment, capsys):
    """In this process, through the entry point's own `main` (what `aigc-market` runs); one case below runs as
    a process of its own."""
    args = [a.format(port=free_port()) for a in args]
    code = main(["simulate", *args])
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0] and "Traceback" not in err


def test_bad_simulate_input_in_a_process_of_its_own_prints_one_line_and_exits_2():
    proc = run_cli("--scheduler", "oracle")
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "scheduler" in lines[0] and "Traceback" not in proc.stderr


def test_simulate_writes_the_report_and_ends_with_the_summary(tmp_path: Path):
    proc = run_cli("--periods", "3", "--out", str(tmp_path), "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(summary) >= SUMMARY_KEYS and all(summary["invariants"].values())
    assert (tmp_path / "summary.json").exists() and (tmp_path / "timeseries.csv").exists()
    # The demo's two figures are in the printed table as well as in summary.json.
    assert "honest ESPs' tasks on time" in proc.stdout and "cheating ESP below every honest one" in proc.stdout


def test_the_markets_reputation_returns_an_unchosen_esp_to_its_record_not_to_one_half():
    """docs/reputation.md, "An unchosen cheater's reputation": three producers rated ESP 0 (the cheater)
    negative once each and ESP 1 positive ten times in all, at t = 0. Records: a_0 = (0 + 0.5 * 2) / (3 + 2)
    = 0.2, a_1 = (10 + 1) / (10 + 2). Fresh, ESP 0 has beta = 0.6 (one negative each) and the others' mean
    opinion; 200 periods later every rating has faded (z = 0.9, z_neg = 0.98: 0.98^200 = 0.018) and each
    reputation is (nearly) its record, where generic MWSL returns both to 0.5."""
    from market.simulation import MARKET_REPUTATION
    from reputation import MWSL, MWSLConfig

    def rated(config: MWSLConfig) -> MWSL:
        model = MWSL(config, 3, 2)
        model.observe([0, 1, 2], [0, 0, 0], [False, False, False], 0.0)
        model.observe([0] * 4 + [1] * 3 + [2] * 3, [1] * 10, [True] * 10, 0.0)
        return model

    market, generic = rated(MARKET_REPUTATION), rated(MWSLConfig())
    assert (MARKET_REPUTATION.z_negative, MARKET_REPUTATION.base_rate_from_record) == (0.98, True)
    torch.testing.assert_close(market.base_rates(), torch.tensor([0.2, 11 / 12], dtype=torch.float64))
    beta = 0.6 * 0.98**200  # each producer's one negative of ESP 0, 200 periods on
    u = 2 / (beta + 2)  # every producer's local (and so consensus) uncertainty about ESP 0 is this u
    later = market.reputation(200.0)
    assert later[:, 0].tolist() == pytest.approx([0.2 * u * u / (2 * u - u * u)] * 3, rel=1e-9)
    assert later[:, 1].tolist() == pytest.approx([11 / 12] * 3, abs=1e-6)
    assert generic.reputation(200.0).flatten().tolist() == pytest.approx([0.5] * 6, abs=1e-6)
