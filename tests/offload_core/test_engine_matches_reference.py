"""The batched engine equals the scalar reference (relative 1e-6) task by task."""

from __future__ import annotations

import math

import pytest
import torch
from offload_core_helpers import assert_step_matches_references, random_action, references_for

from offload_core.config import CACHING_POLICIES, preset
from offload_core.engine import EdgeEngine

TASKS_PER_CASE = 1000


def compare_runs(
    name: str, policy: str, batch: int = 4, seed: int = 0, sparsity: float = 0.5, backend: str = "torch"
) -> dict[str, int]:
    config = preset(name).config
    engine = EdgeEngine(config, batch, policy, dtype=torch.float64, backend=backend)
    engine.reset(seed)
    references = references_for(engine)
    decisions = torch.Generator().manual_seed(seed + 7)
    steps = math.ceil(TASKS_PER_CASE / (batch * config.n_devices))
    seen = {"tasks": 0, "queued": 0, "loads": 0, "crashed": 0, "failed": 0, "forwarded": 0}
    for _ in range(steps):
        tasks = engine.sample_tasks()
        action = random_action(engine, decisions, sparsity)
        out = engine.step(tasks, action)
        assert_step_matches_references(out, references, tasks, action, engine)
        seen["tasks"] += out.T.numel()
        seen["queued"] += int((out.T_wait > 0).sum())
        seen["loads"] += int((out.T_sw > 0).sum())
        seen["crashed"] += int(out.crashed.sum())
        seen["failed"] += int(out.failed.sum())
        seen["forwarded"] += int((out.T_fwd > 0).sum())
    assert float(engine.dropped.sum()) == pytest.approx(sum(r.dropped for r in references), abs=1e-9)
    return seen


FIFO_CASES = [
    (name, policy)
    for name in ("mato", "mato-cloud", "lc")
    for policy in CACHING_POLICIES
    if policy != "cloud" or preset(name).config.cloud_execution
]


@pytest.mark.parametrize("backend", ["torch", "numba"])
@pytest.mark.parametrize("name,policy", FIFO_CASES)
def test_engine_equals_reference_on_every_fifo_preset_and_policy(name, policy, backend):
    """Terms, views and queues agree on random streams: FIFO by arrival, loads at the part's start, pending views."""
    seen = compare_runs(name, policy, backend=backend)
    assert seen["tasks"] >= TASKS_PER_CASE
    if policy == "cloud":
        assert seen["loads"] == 0 and seen["forwarded"] > 0
        return
    assert seen["queued"] > 0, "the queueing path was never exercised"
    assert seen["loads"] > 0, "no model switch (eviction path) was exercised"
    if preset(name).config.cloud_execution:
        assert seen["forwarded"] > 0, "no part was forwarded to the cloud"
    else:
        assert seen["failed"] > 0 and seen["forwarded"] == 0, "a miss without download must fail, never forward"


def test_engine_equals_reference_on_asp_including_crashes():
    seen = compare_runs("asp", "lfu", sparsity=0.93)  # mostly whole tasks, as ASPs receive them
    assert seen["tasks"] >= TASKS_PER_CASE
    assert seen["crashed"] > 0, "the crash path was never exercised"


def test_engine_equals_reference_when_a_model_can_never_fit():
    config = preset("mato", model_size_bits=(300e6 * 8, 600e6 * 8), server_memory_bits=400e6 * 8).config
    engine = EdgeEngine(config, 4, "lru", dtype=torch.float64)
    engine.reset(3)
    references = references_for(engine)
    decisions = torch.Generator().manual_seed(3)
    failures = 0
    for _ in range(10):
        tasks = engine.sample_tasks()
        action = random_action(engine, decisions, sparsity=0.3)
        out = engine.step(tasks, action)
        assert_step_matches_references(out, references, tasks, action, engine)
        failures += int(out.failed.sum())
    assert failures > 0


def test_engine_equals_reference_with_one_slow_server():
    config = preset("mato").config
    engine = EdgeEngine(config, 4, "lfu", dtype=torch.float64)
    engine.reset(5)
    engine.topology.server_freq[:, 0] = config.server_freq_hz / 4
    references = references_for(engine)
    decisions = torch.Generator().manual_seed(5)
    for _ in range(10):
        tasks = engine.sample_tasks()
        action = random_action(engine, decisions)
        out = engine.step(tasks, action)
        assert_step_matches_references(out, references, tasks, action, engine)


def test_the_numba_backend_keeps_asp_presets_on_the_torch_path_with_crashes():
    seen = compare_runs("asp", "lfu", sparsity=0.93, backend="numba")
    assert seen["crashed"] > 0


def test_the_numba_backend_is_refused_off_the_cpu():
    with pytest.raises(ValueError, match="backend"):
        EdgeEngine(preset("mato").config, 1, backend="numba", device="meta")
