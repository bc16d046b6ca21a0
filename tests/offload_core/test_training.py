"""Shared training loop, checkpoints and the train/evaluate/sweep CLI."""

from __future__ import annotations

import contextlib
import csv
import io
import json
from pathlib import Path

import pytest
import torch

from cli.main import main
from offload_core.config import preset
from offload_core.maddpg import MADDPGConfig
from offload_core.mappo import MAPPOConfig
from offload_core.training import (
    METRICS,
    TrainSettings,
    evaluate,
    load_checkpoint,
    make_agent,
    save_checkpoint,
    sweep,
    train,
)

torch.set_num_threads(1)

SMALL = preset("mato", n_devices=4).config
FAST = MADDPGConfig(batch_size=64, learning_starts=64, buffer_size=2000)

# The CLI run below: MAPPO (learns fastest, see test_mappo.py) on the mato preset with 4 EDs.
RUN = TrainSettings(algo="mappo", envs=8, episodes=6, steps=25, seed=0)
EVAL_ENVS, EVAL_STEPS = 16, 25


def cli_json(argv: list[str]) -> dict:
    """Run the CLI in this process; its exit code must be 0 and its last stdout line is JSON."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(argv)
    assert code == 0, out.getvalue()[-2000:]
    return json.loads(out.getvalue().strip().splitlines()[-1])


def objective(metrics: dict[str, float]) -> float:
    """MAPPO's training reward per step, summed over the M devices: eq. 18 plus quality_weight x quality.

    `evaluate` reports the eq. 18 reward per step summed over devices and the quality per task."""
    return metrics["reward"] + MAPPOConfig().quality_weight * metrics["quality"] * SMALL.n_devices


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
            "--episodes",
            str(RUN.episodes),
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
    untrained = save_checkpoint(out / "untrained.pt", make_agent(RUN.algo, SMALL, RUN.seed), SMALL, RUN)
    evaluations = {
        name: cli_json(
            ["offload", "evaluate", "--checkpoint", str(path), "--envs", str(EVAL_ENVS), "--steps", str(EVAL_STEPS), "--json"]
        )["rows"]
        for name, path in (("trained", out / "checkpoint.pt"), ("untrained", untrained))
    }
    torch.set_num_threads(threads)
    return {"out": out, "summary": summary, **evaluations}


def test_training_is_deterministic_for_a_seed() -> None:
    settings = TrainSettings(algo="maddpg-mato", envs=4, episodes=2, steps=10, seed=3)
    first = train(SMALL, settings, hp=FAST)
    second = train(SMALL, settings, hp=FAST)
    assert first.curve == second.curve
    for a, b in zip(first.agent.state()["actor"].values(), second.agent.state()["actor"].values(), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("algo", ["maddpg-mato", "mappo"])
def test_a_checkpoint_round_trips_to_identical_actions(tmp_path: Path, algo: str) -> None:
    settings = TrainSettings(algo=algo, envs=4, episodes=1, steps=20, seed=1)
    agent = train(SMALL, settings, hp=FAST if algo != "mappo" else None).agent
    path = save_checkpoint(tmp_path / "agent.pt", agent, SMALL, settings)
    loaded, config, loaded_settings = load_checkpoint(path)
    assert config == SMALL and loaded_settings == settings
    assert evaluate(SMALL, algo, agent, 8, 5, 0) == evaluate(config, algo, loaded, 8, 5, 0)


def test_cli_training_improves_the_evaluated_objective_over_the_untrained_checkpoint(cli_run: dict) -> None:
    """Six episodes of MAPPO at seed 0 on held-out streams (16 environments x 25 steps): the objective it
    trains on rises from -1.44 (untrained checkpoint) to 0.39, and the eq. 18 reward alone from -3.49 to
    -1.03; Random scores -2.92 and -5.58. Asserted with margins of more than 1 on the objective."""
    trained, untrained = cli_run["trained"], cli_run["untrained"]
    assert objective(trained["mappo"]) > objective(untrained["mappo"]) + 1.0
    assert trained["mappo"]["reward"] > untrained["mappo"]["reward"] + 1.0
    assert objective(trained["mappo"]) > objective(trained["random"]) + 1.0
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
    assert [int(row["episode"]) for row in rows] == list(range(RUN.episodes))
    for row, episode in zip(rows, expected, strict=True):
        assert {metric: float(row[metric]) for metric in METRICS} == {metric: episode[metric] for metric in METRICS}
    assert (cli_run["out"] / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_train_writes_the_full_configuration_beside_its_results(cli_run: dict) -> None:
    config = json.loads((cli_run["out"] / "config.json").read_text())
    assert config["training"]["algo"] == RUN.algo and config["training"]["episodes"] == RUN.episodes
    assert config["edge"]["n_devices"] == SMALL.n_devices and config["edge"]["n_models"] == SMALL.n_models


def test_cli_evaluate_reads_back_the_numbers_of_the_trained_agent(cli_run: dict) -> None:
    """`offload evaluate` on the written checkpoint reports exactly what `evaluate` gives for the agent
    `train` returns at the same settings (so the checkpoint holds the trained weights, not the initial
    ones), and Random and Greedy as `evaluate` gives them on the same held-out streams."""
    agent, config, settings = load_checkpoint(cli_run["out"] / "checkpoint.pt")
    assert config == SMALL and settings == RUN
    trained_here = train(SMALL, RUN).agent
    rows = cli_run["trained"]
    assert set(rows) == {"mappo", "random", "greedy"}
    assert rows["mappo"] == evaluate(SMALL, "mappo", trained_here, EVAL_ENVS, EVAL_STEPS, 0)
    assert rows["mappo"] != cli_run["untrained"]["mappo"]
    for name in ("random", "greedy"):
        assert rows[name] == evaluate(SMALL, name, None, EVAL_ENVS, EVAL_STEPS, 0)


def test_a_sweep_has_one_row_per_value_seed_and_algorithm() -> None:
    settings = TrainSettings(envs=2, episodes=1, steps=3)
    rows = sweep(SMALL, "models", settings, seeds=1, algos=("random", "greedy", "mappo"), values=(3, 4), eval_envs=2, eval_steps=2)
    assert [(r["value"], r["algo"]) for r in rows] == [
        (3, "random"),
        (3, "greedy"),
        (3, "mappo"),
        (4, "random"),
        (4, "greedy"),
        (4, "mappo"),
    ]


def test_cli_bad_input_exits_2_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["offload", "train", "--algo", "dqn", "--out", "unused"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--algo" in err
