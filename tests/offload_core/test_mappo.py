"""MAPPO (seed 001): valid joint placement and denoising-step choices, and an update that learns."""

from __future__ import annotations

import torch

from offload_core.config import preset
from offload_core.engine import EdgeEngine
from offload_core.mappo import MAPPO, MAPPOConfig, quality_factor

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
        agent.record(decision, -out["T"], out, engine, next_tasks, generator)
        tasks = next_tasks
    agent.end_episode(engine, tasks, generator)
    assert agent.rollout == []
    assert not torch.equal(before, agent.actor.layers[0].weight)
