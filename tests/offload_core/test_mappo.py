"""MAPPO ([Guo 2025]): valid joint placement and denoising-step choices, and training that learns."""

from __future__ import annotations

import pytest
import torch

from offload_core.config import preset
from offload_core.engine import EdgeEngine
from offload_core.mappo import MAPPO, MAPPOConfig, quality_factor
from offload_core.training import EVAL_OFFSET, TrainSettings, evaluate, make_agent, train

torch.set_num_threads(1)


def _setup(envs: int = 8):
    config = preset("mato", n_devices=4).config
    engine = EdgeEngine(config, envs)
    engine.reset(5)
    tasks = engine.sample_tasks(torch.Generator().manual_seed(6))
    return config, engine, tasks, MAPPO(config, MAPPOConfig(), seed=0)


def test_mappo_runs_each_task_whole_on_the_device_or_one_server() -> None:
    config, engine, tasks, agent = _setup()
    decision = agent.explore(engine, tasks, torch.Generator().manual_seed(0))
    split = decision.action.split
    assert torch.equal(split.sum(-1), torch.ones(8, 4)) and bool(((split == 0) | (split == 1)).all())
    assert float(split[..., -1].sum()) == 0.0  # never the cloud directly
    engine.step(decision.tasks, decision.action)


def test_fewer_denoising_steps_cut_compute_and_quality() -> None:
    config, engine, tasks, agent = _setup()
    levels = len(agent.hp.step_levels)
    fewest = torch.zeros((8, 4), dtype=torch.long)  # local, fewest steps
    most = torch.full((8, 4), levels - 1)  # local, full schedule
    _, light, light_q = agent.apply(engine, tasks, fewest)
    _, full, full_q = agent.apply(engine, tasks, most)
    assert torch.allclose(full.density, tasks.density) and torch.allclose(full_q, torch.ones(8, 4))
    assert bool((light.density < full.density).all()) and bool((light_q < full_q).all())
    assert float(quality_factor(torch.tensor(10.0), agent.hp)) < 1.0


def test_a_ppo_update_changes_the_actor_and_clears_the_rollout() -> None:
    config, engine, tasks, agent = _setup()
    generator = torch.Generator().manual_seed(0)
    before = agent.actor.layers[0].weight.clone()
    for _ in range(3):
        decision = agent.explore(engine, tasks, generator)
        out = engine.step(decision.tasks, decision.action)
        next_tasks = engine.sample_tasks(torch.Generator().manual_seed(7))
        agent.record(decision, -out.T, out, engine, next_tasks, generator)
        tasks = next_tasks
    agent.end_episode(engine, tasks, generator)
    assert agent.rollout == []
    assert not torch.equal(before, agent.actor.layers[0].weight)


# -- learning: the trained policy against its own start and Random ----------------------------------------

SMALL = preset("mato", n_devices=4).config
SEEDS = (0, 1, 2)
EPISODES = 6  # 8 environments x 25 steps each: about 1.5 s per seed on one core
EVAL_ENVS, EVAL_STEPS = 16, 25


def objective(metrics: dict[str, float]) -> float:
    """What MAPPO maximizes per step, summed over the M devices: eq. 18 plus quality_weight x quality
    (`evaluate` gives the eq. 18 reward summed over devices and the quality per task)."""
    return metrics["reward"] + MAPPOConfig().quality_weight * metrics["quality"] * SMALL.n_devices


@torch.no_grad()
def fewest_steps_share(agent: MAPPO, seed: int) -> float:
    """Share of held-out tasks (the streams `evaluate` uses) run with the fewest denoising steps."""
    engine = EdgeEngine(SMALL, EVAL_ENVS)
    engine.reset(seed + EVAL_OFFSET)
    stream = torch.Generator().manual_seed(seed + EVAL_OFFSET + 1)
    fewest = quality_factor(torch.tensor(float(min(agent.hp.step_levels))), agent.hp)
    share = 0.0
    for _ in range(EVAL_STEPS):
        tasks = engine.sample_tasks(stream)
        action, run, factor = agent.decide(engine, tasks)
        share += float(torch.isclose(factor, fewest.to(factor.dtype)).double().mean()) / EVAL_STEPS
        engine.step(run, action)
    return share


@pytest.fixture(scope="module")
def learning() -> dict[int, dict]:
    """Per seed: held-out metrics of the untrained policy, the trained one, and Random."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as at import: an earlier numba kernel in this process may have changed it
    runs = {}
    for seed in SEEDS:
        untrained = make_agent("mappo", SMALL, seed)
        trained = train(SMALL, TrainSettings(algo="mappo", envs=8, episodes=EPISODES, steps=25, seed=seed)).agent
        runs[seed] = {
            "untrained": evaluate(SMALL, "mappo", untrained, EVAL_ENVS, EVAL_STEPS, seed),
            "trained": evaluate(SMALL, "mappo", trained, EVAL_ENVS, EVAL_STEPS, seed),
            "random": evaluate(SMALL, "random", None, EVAL_ENVS, EVAL_STEPS, seed),
            "untrained_fewest": fewest_steps_share(untrained, seed),
            "trained_fewest": fewest_steps_share(trained, seed),
        }
    torch.set_num_threads(threads)
    return runs


def test_a_trained_mappo_policy_beats_its_untrained_policy_on_its_objective_at_each_of_three_seeds(learning) -> None:
    """Held-out objective, untrained -> trained (6 episodes): -1.44 -> 0.39, -1.97 -> 0.31, -0.73 -> 0.39;
    the eq. 18 reward alone -3.49 -> -1.03, -4.23 -> -1.10, -2.74 -> -1.02. (Over seeds 0-7 every seed
    gains more than 1.1 on the objective.)"""
    for seed in SEEDS:
        run = learning[seed]
        assert objective(run["trained"]) > objective(run["untrained"]) + 0.5, seed
        assert run["trained"]["reward"] > run["untrained"]["reward"] + 1.0, seed
    gains = [objective(learning[s]["trained"]) - objective(learning[s]["untrained"]) for s in SEEDS]
    assert sum(gains) / len(gains) > 1.0, gains


def test_a_trained_mappo_policy_beats_random_on_its_objective_and_on_the_reward(learning) -> None:
    """Random (a random server and ratio, full denoising schedule): objective -2.92 / -3.36 / -2.82 and
    reward -5.58 / -6.03 / -5.50 against the trained 0.39 / 0.31 / 0.39 and -1.03 / -1.10 / -1.02."""
    for seed in SEEDS:
        run = learning[seed]
        assert objective(run["trained"]) > objective(run["random"]) + 2.0, seed
        assert run["trained"]["reward"] > run["random"]["reward"] + 2.0, seed


def test_a_trained_mappo_policy_trades_quality_for_latency_with_fewer_denoising_steps(learning) -> None:
    """The trade the reward sets up, for a mean task (88 Mbit x 200 cycles/bit = 1.76e10 cycles) run
    locally at 2 GHz: the full 50-step schedule takes 8.8 s and 1e-28 * (2e9)^2 * 1.76e10 = 7.0 J, an eq. 18
    cost of 0.5 * 8.8 / 10 + 0.5 * 7.0 / 10 = 0.79 plus the deadline penalty 1 in the 40% of tasks whose
    deadline (4-16 s) is under 8.8 s; 10 steps take a fifth: 1.76 s and 1.4 J, cost 0.16 and no missed
    deadline, a saving of about 1.0. The quality given up is 0.6 * (1 - q(10) / q(50)) = 0.6 * 0.50 = 0.30.
    So the trained policy should run most tasks with the fewest steps: quality per task falls, and
    latency, energy and missed deadlines fall with it. Observed: the share of tasks run with 10 steps
    rises from 0.36 / 0.20 / 0.42 to 0.75 / 0.75 / 0.77 (three of the four devices always choose it);
    at seed 0 quality 0.51 -> 0.35, latency 5.5 -> 2.4 s, energy 8.2 -> 2.3 J, completion 0.81 -> 0.98."""
    assert float(quality_factor(torch.tensor(10.0), MAPPOConfig())) == pytest.approx(0.5046, abs=1e-4)
    for seed in SEEDS:
        before, after = learning[seed]["untrained"], learning[seed]["trained"]
        assert learning[seed]["trained_fewest"] > 0.7 > 0.5 > learning[seed]["untrained_fewest"], seed
        assert after["quality"] < before["quality"] - 0.1, seed
        assert after["latency_s"] < before["latency_s"] - 1.0 and after["energy_j"] < before["energy_j"] - 2.0, seed
        assert after["completion_rate"] > before["completion_rate"], seed
