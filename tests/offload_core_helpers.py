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
    """Random split vectors (about `sparsity` of the entries zero; no cloud share without cloud execution)
    and random download flags."""
    c = engine.config
    shape = (engine.batch, c.n_devices, c.n_servers + 2)
    raw = torch.rand(shape, generator=generator, dtype=torch.float64)
    raw = raw * (torch.rand(shape, generator=generator, dtype=torch.float64) >= sparsity)
    if not c.cloud_execution:
        raw[..., -1] = 0.0
    raw[..., 0] += (raw.sum(-1) == 0).to(raw.dtype)  # never an all-zero row
    split = raw / raw.sum(-1, keepdim=True)
    download = torch.rand((engine.batch, c.n_devices), generator=generator) < 0.8
    return Action(split, download)


def float64_engine(config, batch: int = 4, policy: str = "lfu", seed: int = 0) -> EdgeEngine:
    engine = EdgeEngine(config, batch, policy, dtype=torch.float64)
    engine.reset(seed)
    return engine


def assert_step_matches_references(
    out: StepResult, references: list[ScalarEdge], tasks: TaskBatch, action: Action, engine: EdgeEngine | None = None
) -> None:
    """Step every reference on the same tasks and actions; each breakdown term equals (rel 1e-6), by name.

    With `engine` (already stepped), what its view shows after the step equals the reference's too: the models
    resident at the next step's time and when each queue empties."""
    import pytest

    from offload_core.reference import BREAKDOWN_KEYS

    terms = out.as_dict()
    for b, reference in enumerate(references):
        expected = reference.step(scalar_tasks(tasks, b), action.split[b].tolist(), action.download[b].tolist())
        for m, row in enumerate(expected):
            assert set(row) == set(BREAKDOWN_KEYS)
            for key in BREAKDOWN_KEYS:
                assert float(terms[key][b, m]) == pytest.approx(row[key], rel=1e-6, abs=1e-9), (b, m, key)
        if engine is not None:
            view = engine.view
            for n, server in enumerate(reference.servers):
                assert view.cache[b, n].tolist() == reference.resident(n), (b, n, "view.cache")
                assert float(view.busy_until[b, n]) == pytest.approx(server.busy_until, rel=1e-9, abs=1e-9), (b, n)


def controlled(
    config,
    backend: str = "torch",
    policy: str = "lfu",
    up_rate: float | list[float] = 1e8,
    model_size: list[float] | None = None,
    cached: list[list[bool]] | None = None,
) -> tuple[EdgeEngine, ScalarEdge]:
    """One environment (B = 1) with set inputs, on `backend`, and the scalar reference on the same inputs.

    Device m's links to every server have `up_rate` (one rate, or one per device) both ways, every server runs at the configured
    frequency, the models have `model_size`, and server n holds `cached[n]` at time 0."""
    from offload_core.reference import ScalarTopology

    engine = EdgeEngine(config, 1, policy, dtype=torch.float64, backend=backend)
    engine.reset(0)
    top, cache = engine.topology, engine.cache
    rates = torch.tensor(up_rate if isinstance(up_rate, list) else [up_rate] * config.n_devices, dtype=torch.float64)
    top.up_rate[0] = rates.unsqueeze(-1).expand(config.n_devices, config.n_servers)
    top.down_rate[0] = top.up_rate[0]
    if model_size is not None:
        top.model_size[0] = torch.tensor(model_size, dtype=torch.float64)
    if cached is not None:
        held = torch.tensor(cached, dtype=torch.bool)
        cache.cached[0] = held
        cache.resident[0] = held
        cache.free_memory[0] = config.server_memory_bits - (held.double() * top.model_size[0]).sum(-1)
    reference = ScalarEdge(config, ScalarTopology.of(top, 0), engine.policy, engine.view.cache[0].tolist())
    return engine, reference


def one_step(
    engine: EdgeEngine, reference: ScalarEdge, tasks: TaskBatch, split: torch.Tensor, download: torch.Tensor
) -> tuple[StepResult, list[dict[str, float]]]:
    """Step the engine and the reference on the same tasks and action (split [1, M, N + 2], download [1, M])."""
    out = engine.step(tasks, Action(split, download))
    return out, reference.step(scalar_tasks(tasks, 0), split[0].tolist(), download[0].tolist())


def task_batch(models: list[int], sizes: list[float], densities: list[float], deadline: float = 100.0) -> TaskBatch:
    """One environment's tasks (B = 1) with the given models, sizes (bits) and densities (cycles/bit)."""
    return TaskBatch(
        model=torch.tensor([models]),
        size=torch.tensor([sizes], dtype=torch.float64),
        density=torch.tensor([densities], dtype=torch.float64),
        deadline=torch.full((1, len(models)), deadline, dtype=torch.float64),
        demand=torch.zeros((1, len(models)), dtype=torch.float64),
    )
