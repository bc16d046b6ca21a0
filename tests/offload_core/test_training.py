"""Shared training loop, checkpoints and the train/evaluate/sweep CLI."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
from pathlib import Path

import pytest
import torch

from cli.main import main
from offload_core.config import preset
from offload_core.maddpg import MADDPGConfig
from offload_core.names import PresetName
from offload_core.observations import step_reward
from offload_core.training import (
    FIXED_RULES,
    METRICS,
    Stream,
    TrainSettings,
    best_fixed_rule,
    episode_streams,
    evaluate,
    evaluate_rules,
    held_out_streams,
    load_checkpoint,
    make_agent,
    save_checkpoint,
    stream_seed,
    sweep,
    train,
)

torch.set_num_threads(1)

SMALL = preset("mato", n_devices=4).config
FAST = MADDPGConfig(batch_size=64, learning_starts=64, buffer_size=2000)

# The CLI run below: MAPPO (the fastest learner per second, see test_mappo.py) on the mato preset with 4 EDs:
# 320 updates are 20 episodes of 4 epochs x 4 minibatches.
RUN = TrainSettings(algo="mappo", envs=8, updates=320, steps=25, seed=0)
EVAL_ENVS, EVAL_STEPS = 16, 25


def cli_json(argv: list[str]) -> dict:
    """Run the CLI in this process; its exit code must be 0 and its last stdout line is JSON."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(argv)
    assert code == 0, out.getvalue()[-2000:]
    return json.loads(out.getvalue().strip().splitlines()[-1])


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """`offload train` once, `offload evaluate` on its checkpoint and on an untrained one (same settings)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as at import: an earlier numba kernel in this process may have changed it
    out = tmp_path_factory.mktemp("run")
    summary = cli_json(
        [
            "offload",
            "train",
            "--algo",
            RUN.algo,
            "--eds",
            str(SMALL.n_devices),
            "--updates",
            str(RUN.updates),
            "--steps",
            str(RUN.steps),
            "--envs",
            str(RUN.envs),
            "--seed",
            str(RUN.seed),
            "--out",
            str(out),
            "--json",
        ]
    )
    start = make_agent(RUN.algo, SMALL, stream_seed(RUN.seed, Stream.NETWORK))  # the run's initial networks
    untrained = save_checkpoint(out / "untrained.pt", start, SMALL, RUN)
    evaluations = {
        name: cli_json(
            ["offload", "evaluate", "--checkpoint", str(path), "--envs", str(EVAL_ENVS), "--steps", str(EVAL_STEPS), "--json"]
        )["rows"]
        for name, path in (("trained", out / "checkpoint.pt"), ("untrained", untrained))
    }
    torch.set_num_threads(threads)
    return {"out": out, "summary": summary, **evaluations}


def test_training_is_deterministic_for_a_seed() -> None:
    settings = TrainSettings(algo="maddpg-mato", envs=4, updates=10, steps=10, seed=3)
    first = train(SMALL, settings, hp=FAST)
    second = train(SMALL, settings, hp=FAST)
    assert first.curve == second.curve
    for a, b in zip(first.agent.state()["actor"].values(), second.agent.state()["actor"].values(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("algo", ["maddpg-mato", "mappo"])
def test_a_checkpoint_round_trips_to_identical_actions(tmp_path: Path, algo: str) -> None:
    settings = TrainSettings(algo=algo, envs=4, updates=16, steps=20, seed=1)
    agent = train(SMALL, settings, hp=FAST if algo != "mappo" else None).agent
    path = save_checkpoint(tmp_path / "agent.pt", agent, SMALL, settings)
    loaded, config, loaded_settings = load_checkpoint(path)
    assert config == SMALL and loaded_settings == settings
    assert evaluate(SMALL, algo, agent, 8, 5, 0) == evaluate(config, algo, loaded, 8, 5, 0)


@pytest.mark.parametrize("name", list(PresetName))
def test_a_checkpoint_restores_the_config_of_every_preset(tmp_path: Path, name: PresetName) -> None:
    """Including `lc`, whose config names its models (ModelSpec entries, saved as dicts)."""
    config = preset(name).config
    settings = TrainSettings(algo="saddpg", envs=1, episodes=1, steps=1)
    path = save_checkpoint(tmp_path / "agent.pt", make_agent("saddpg", config, 0), config, settings)
    _, loaded, _ = load_checkpoint(path)
    assert loaded == config


class _RunsCodeWhenUnpickled:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (exec, ("import pathlib; pathlib.Path('PWNED').write_text('ran')",))


def test_a_checkpoint_that_would_run_code_is_refused_without_running_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pt"
    torch.save({"format": 2, "payload": _RunsCodeWhenUnpickled()}, path)
    with pytest.raises(ValueError, match="cannot read checkpoint"):
        load_checkpoint(path)
    assert not (tmp_path / "PWNED").exists()


def test_cli_training_improves_the_evaluated_reward_over_the_untrained_checkpoint(cli_run: dict) -> None:
    """320 updates of MAPPO at seed 0, on held-out streams (16 environments x 25 steps): MAPPO trains on
    the eq. 18 reward it is scored on, which rises from -4.91 (untrained checkpoint) to -4.58, above
    Random's -5.81 (seeds 1-3: -4.65 -> -4.45, -4.22 -> -3.89, -4.55 -> -4.28); the references ran on
    the same held-out streams."""
    trained, untrained = cli_run["trained"], cli_run["untrained"]
    assert trained["mappo"]["reward"] > untrained["mappo"]["reward"] + 0.15
    assert trained["mappo"]["reward"] > trained["random"]["reward"] + 1.0
    assert untrained["random"] == trained["random"]  # the baselines ran on the same held-out streams


def test_cli_train_writes_the_curve_of_the_training_run(cli_run: dict) -> None:
    """curve.csv and the JSON summary hold the per-episode numbers of `train` at the same settings (the
    run is deterministic), with the first and last rewards the summary reports."""
    expected = train(SMALL, RUN).curve
    summary = cli_run["summary"]
    assert summary["curve"] == expected
    assert (summary["first_reward"], summary["last_reward"]) == (expected[0]["reward"], expected[-1]["reward"])
    with (cli_run["out"] / "curve.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [int(row["episode"]) for row in rows] == list(range(len(expected)))
    assert int(rows[-1]["updates"]) == RUN.updates
    for row, episode in zip(rows, expected, strict=True):
        assert {metric: float(row[metric]) for metric in METRICS} == {metric: episode[metric] for metric in METRICS}
    assert (cli_run["out"] / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_train_writes_the_full_configuration_beside_its_results(cli_run: dict) -> None:
    config = json.loads((cli_run["out"] / "config.json").read_text())
    assert config["training"]["algo"] == RUN.algo and config["training"]["updates"] == RUN.updates
    assert config["edge"]["n_devices"] == SMALL.n_devices and config["edge"]["n_models"] == SMALL.n_models


def test_cli_evaluate_reads_back_the_numbers_of_the_trained_agent(cli_run: dict) -> None:
    """`offload evaluate` on the written checkpoint reports exactly what `evaluate` gives for the agent
    `train` returns at the same settings (so the checkpoint holds the trained weights, not the initial
    ones), and Random and Greedy as `evaluate` gives them on the same held-out streams."""
    agent, config, settings = load_checkpoint(cli_run["out"] / "checkpoint.pt")
    assert config == SMALL and settings == RUN
    trained_here = train(SMALL, RUN).agent
    rows = cli_run["trained"]
    assert set(rows) == {"mappo", "random", "greedy", *FIXED_RULES}
    assert rows["mappo"] == evaluate(SMALL, "mappo", trained_here, EVAL_ENVS, EVAL_STEPS, 0)
    assert rows["mappo"] != cli_run["untrained"]["mappo"]
    for name in ("random", "greedy"):
        assert rows[name] == evaluate(SMALL, name, None, EVAL_ENVS, EVAL_STEPS, 0)
    assert {name: rows[name] for name in FIXED_RULES} == evaluate_rules(SMALL, EVAL_ENVS, EVAL_STEPS, 0)


def test_a_sweep_has_one_row_per_value_seed_and_algorithm_and_the_fixed_rules() -> None:
    settings = TrainSettings(envs=2, updates=1, episodes=1, steps=3)
    rows = sweep(
        SMALL,
        "models",
        settings,
        seeds=1,
        algos=("random", "greedy", "mappo"),
        values=(3, 4),
        eval_envs=2,
        eval_steps=2,
        rules=True,
    )
    rules = [f"rule:{name}" for name in FIXED_RULES]
    assert [(r["value"], r["algo"]) for r in rows] == [
        (value, algo) for value in (3, 4) for algo in ("random", "greedy", "mappo", *rules)
    ]
    assert all(set(row) == set(rows[0]) for row in rows)  # one CSV header fits every row
    learned = [row for row in rows if row["algo"] == "mappo"]
    assert all(isinstance(row["first_reward"], float) and row["first_reward"] == row["first_reward"] for row in learned)


# -- streams: task and topology seeds never overlap -------------------------------------------------------


def test_task_and_topology_seeds_come_from_separate_streams_and_never_coincide() -> None:
    """Every episode's topology and task seeds, the held-out pair and the network, exploration and
    scheduler seeds of 20 runs x 200 episodes are all distinct (SeedSequence keys, not offsets: the old
    scheme seeded episode e's tasks with episode e + 1's topology seed)."""
    seen: list[int] = []
    for seed in range(20):
        for episode in range(200):
            seen.extend(episode_streams(seed, episode))
        seen.extend(held_out_streams(seed))
        seen.extend(stream_seed(seed, key) for key in (Stream.NETWORK, Stream.EXPLORE, Stream.SCHEDULER))
    assert len(set(seen)) == len(seen)
    assert all(0 <= value < 2**63 for value in seen)
    topology, tasks = episode_streams(0, 0)
    assert episode_streams(0, 1)[0] != tasks and topology != tasks
    with pytest.raises(ValueError, match="seed"):
        TrainSettings(seed=-1)


# -- the budget: gradient updates, scaled with B ---------------------------------------------------------------


@pytest.mark.parametrize("envs", [4, 32])
def test_a_run_makes_exactly_its_budget_of_updates_with_updates_per_step_scaled_with_b(envs: int) -> None:
    """B = 4 environments earn an update every 4 steps (transitions_per_update 16), B = 32 two per step;
    either way the run stops at its budget, after the episodes `plan` asked for."""
    hp = MADDPGConfig(batch_size=32, learning_starts=32, buffer_size=500)
    settings = TrainSettings(algo="maddpg-nomodel", envs=envs, updates=20, steps=5, seed=0)
    result = train(SMALL, settings, hp=hp)
    assert result.agent.updates == 20 and result.curve[-1]["updates"] == 20
    warmup_steps = math.ceil(32 / envs) - 1  # the step that fills the buffer to a batch earns updates already
    assert len(result.curve) == math.ceil((warmup_steps + math.ceil(20 * 16 / envs)) / 5)
    counts = [result.curve[0]["updates"]] + [
        b["updates"] - a["updates"] for a, b in zip(result.curve, result.curve[1:], strict=False)
    ]
    assert max(counts) == (10 if envs == 32 else 2)  # 5 steps x 32 / 16; 5 steps x 4 / 16 = 1.25: 1 or 2


def test_mappo_makes_exactly_its_budget_of_updates_and_trains_on_the_reward_it_is_scored_on() -> None:
    """MAPPOConfig() trains on eq. 18 (the team reward: its sum over devices / M) alone: what `evaluate`
    reports next to MADDPG (the sum)."""
    settings = TrainSettings(algo="mappo", envs=4, updates=40, steps=5, seed=0)
    result = train(SMALL, settings)
    assert result.agent.updates == 40 and len(result.curve) == 3  # 16 updates per episode
    agent = make_agent("mappo", SMALL, 0)
    from offload_core.engine import EdgeEngine

    engine = EdgeEngine(SMALL, 4)
    engine.reset(1)
    generator = torch.Generator().manual_seed(0)
    tasks = engine.sample_tasks(generator)
    decision = agent.explore(engine, tasks, generator)
    out = engine.step(decision.tasks, decision.action)
    reward = step_reward(SMALL, out)
    agent.record(decision, reward, out, engine, engine.sample_tasks(generator), generator)
    assert torch.allclose(agent.rollout[0]["reward"], reward.mean(-1, keepdim=True).expand(-1, SMALL.n_devices))


def test_the_best_fixed_rule_is_the_one_with_the_highest_reward() -> None:
    rules = evaluate_rules(SMALL, 4, 5, 0)
    assert set(rules) == set(FIXED_RULES)
    name, reward = best_fixed_rule(rules)
    assert reward == max(row["reward"] for row in rules.values()) == rules[name]["reward"]


def test_cli_bad_input_exits_2_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["offload", "train", "--algo", "dqn", "--out", "unused"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--algo" in err


def test_offload_train_share_actor_writes_a_checkpoint_with_one_actor_network(tmp_path: Path) -> None:
    cli_json(
        ["offload", "train", "--algo", "maddpg-mato", "--eds", "3", "--updates", "2", "--steps", "4", "--envs", "4"]
        + ["--batch-size", "8", "--share-actor", "--out", str(tmp_path), "--json"]
    )
    agent, config, _ = load_checkpoint(tmp_path / "checkpoint.pt")
    assert agent.hp.share_actor and config.n_devices == 3
    assert {layer.weight.shape[0] for layer in agent.actor.layers} == {1}
