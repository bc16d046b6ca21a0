"""Shared training loop, checkpoints and the train/evaluate/sweep CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from cli.main import main
from offload_core.config import preset
from offload_core.maddpg import MADDPGConfig
from offload_core.training import TrainSettings, evaluate, load_checkpoint, save_checkpoint, sweep, train

torch.set_num_threads(1)

SMALL = preset("mato", n_devices=4).config
FAST = MADDPGConfig(batch_size=64, learning_starts=64, buffer_size=2000)


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


def test_a_short_maddpg_mato_training_beats_random_on_reward() -> None:
    # Observed at this seed and budget (a few seconds on one core): trained about -3.9, random about -5.6.
    settings = TrainSettings(algo="maddpg-mato", envs=8, episodes=6, steps=25, seed=0)
    agent = train(SMALL, settings, hp=FAST).agent
    trained = evaluate(SMALL, "maddpg-mato", agent, 16, 25, 0)["reward"]
    random = evaluate(SMALL, "random", None, 16, 25, 0)["reward"]
    assert trained > random


def test_a_sweep_has_one_row_per_value_seed_and_algorithm() -> None:
    settings = TrainSettings(envs=2, episodes=1, steps=3)
    rows = sweep(SMALL, "models", settings, seeds=1, algos=("random", "greedy", "mappo"), values=(3, 4), eval_envs=2,
                 eval_steps=2)
    assert [(r["value"], r["algo"]) for r in rows] == [(3, "random"), (3, "greedy"), (3, "mappo"), (4, "random"),
                                                         (4, "greedy"), (4, "mappo")]


def test_cli_bad_input_exits_2_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["offload", "train", "--algo", "dqn", "--out", "unused"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--algo" in err


def test_cli_train_writes_curve_and_checkpoint_and_evaluate_reads_it(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert main(["offload", "train", "--algo", "mappo", "--eds", "3", "--episodes", "2", "--steps", "3", "--envs", "2",
                 "--out", str(out), "--json"]) in (0, None)
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert len(summary["curve"]) == 2
    assert (out / "curve.csv").is_file() and (out / "curve.png").is_file()
    assert main(["offload", "evaluate", "--checkpoint", str(out / "checkpoint.pt"), "--envs", "2", "--steps", "2",
                 "--json"]) in (0, None)
    rows = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["rows"]
    assert set(rows) == {"mappo", "random", "greedy"}
