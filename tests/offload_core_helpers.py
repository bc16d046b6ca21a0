"""Helpers for the offloading-core tests: run the engine and the scalar reference side by side."""

from __future__ import annotations

import torch

from offload_core.engine import Action, EdgeEngine, StepResult
from offload_core.reference import ScalarEdge, ScalarTask, ScalarTopology
from offload_core.scenario import TaskBatch


def scalar_tasks(tasks: TaskBatch, b: int) -> list[ScalarTask]:
    keys = tasks.evict_keys
    return [
        ScalarTask(
            int(tasks.model[b, m]),
            float(tasks.size[b, m]),
            float(tasks.density[b, m]),
            float(tasks.deadline[b, m]),
            float(tasks.demand[b, m]),
            keys[b, m].tolist() if keys is not None else None,
        )
        for m in range(tasks.model.shape[1])
    ]


def references_for(engine: EdgeEngine) -> list[ScalarEdge]:
    return [
        ScalarEdge(engine.config, ScalarTopology.of(engine.topology, b), engine.policy, engine.view.cache[b].tolist())
        for b in range(engine.batch)
    ]


def random_action(engine: EdgeEngine, generator: torch.Generator, sparsity: float = 0.5) -> Action:
    """Random split vectors (about `sparsity` of the entries zero) and random download flags."""
    c = engine.config
    shape = (engine.batch, c.n_devices, c.n_servers + 2)
    raw = torch.rand(shape, generator=generator, dtype=torch.float64)
    raw = raw * (torch.rand(shape, generator=generator, dtype=torch.float64) >= sparsity)
    raw[..., 0] += (raw.sum(-1) == 0).to(raw.dtype)  # never an all-zero row
    split = raw / raw.sum(-1, keepdim=True)
    download = torch.rand((engine.batch, c.n_devices), generator=generator) < 0.8
    return Action(split, download)


def float64_engine(config, batch: int = 4, policy: str = "lfu", seed: int = 0) -> EdgeEngine:
    engine = EdgeEngine(config, batch, policy, dtype=torch.float64)
    engine.reset(seed)
    return engine


def assert_step_matches_references(out: StepResult, references: list[ScalarEdge], tasks: TaskBatch, action: Action) -> None:
    """Step every reference on the same tasks and actions; each breakdown term equals (rel 1e-6), by name."""
    import pytest

    from offload_core.reference import BREAKDOWN_KEYS

    terms = out.as_dict()
    for b, reference in enumerate(references):
        expected = reference.step(scalar_tasks(tasks, b), action.split[b].tolist(), action.download[b].tolist())
        for m, row in enumerate(expected):
            assert set(row) == set(BREAKDOWN_KEYS)
            for key in BREAKDOWN_KEYS:
                assert float(terms[key][b, m]) == pytest.approx(row[key], rel=1e-6, abs=1e-9), (b, m, key)
