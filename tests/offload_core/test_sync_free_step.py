"""The sync-free torch step (issue 21, item 2): `step(..., validate=False)` equals the default step, compiles as one
graph, and at a full buffer crashes the part or coarsens the view, never losing a cost (docs/cost-model.md)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch._dynamo.testing
from offload_core_helpers import random_action

from offload_core.config import CACHING_POLICIES, preset
from offload_core.engine import Action, EdgeEngine, StepResult

STEPS = 5

CASES = [
    (name, policy)
    for name in ("mato", "mato-cloud", "lc", "asp")
    for policy in CACHING_POLICIES
    if policy != "cloud" or preset(name).config.cloud_execution
]


def twin_engines(
    name: str, policy: str, seed: int = 0, batch: int = 4, dtype: torch.dtype = torch.float64
) -> tuple[EdgeEngine, EdgeEngine]:
    config = preset(name).config
    engines = tuple(EdgeEngine(config, batch, policy, dtype=dtype) for _ in range(2))
    for engine in engines:
        engine.reset(seed)
    return engines[0], engines[1]


def assert_same_state(result: StepResult, expected: StepResult, engine: EdgeEngine, default: EdgeEngine) -> None:
    for field in dataclasses.fields(StepResult):
        got, want = getattr(result, field.name), getattr(expected, field.name)
        assert torch.equal(got, want), field.name
    assert torch.equal(engine.busy_until, default.busy_until)
    assert torch.equal(engine.view.cache, default.view.cache)
    assert torch.equal(engine.dropped, default.dropped) and torch.equal(engine.dropped_quality, default.dropped_quality)
    assert engine.steps == default.steps and float(engine.clock) == default.steps


@pytest.mark.parametrize("name,policy", CASES)
def test_the_sync_free_step_equals_the_default_step_on_every_preset_and_policy(name, policy):
    """Bit for bit, breakdown and state, while queues form, models load and (asp) servers crash."""
    engine, default = twin_engines(name, policy)
    decisions = torch.Generator().manual_seed(11)
    seen = {"queued": 0, "loads": 0, "crashed": 0}
    sparsity = 0.93 if name == "asp" else 0.5  # mostly whole tasks on ASPs, as in the reference equality test
    for _ in range(4 * STEPS if name == "asp" else STEPS):  # crashes need the ASPs to fill up
        tasks = default.sample_tasks()
        action = random_action(default, decisions, sparsity)
        expected = default.step(tasks, action)
        result = engine.step(tasks, action, validate=False)
        assert_same_state(result, expected, engine, default)
        seen["queued"] += int((expected.T_wait > 0).sum())
        seen["loads"] += int((expected.T_sw > 0).sum())
        seen["crashed"] += int(expected.crashed.sum())
    if policy == "cloud":  # no edge caching: every part is forwarded, nothing queues, loads or crashes
        return
    if name == "asp":
        assert seen["crashed"] > 0, "the crash path was never exercised"
    else:
        assert seen["queued"] > 0 and seen["loads"] > 0, "queues and loads were never exercised"


@pytest.mark.parametrize("name", ["mato", "asp"])
def test_the_sync_free_step_equals_the_default_step_in_float32(name):
    """The device clock (float64 steps) gives each float32 time the rounding of the host's float time."""
    engine, default = twin_engines(name, "lfu", dtype=torch.float32)
    decisions = torch.Generator().manual_seed(3)
    for _ in range(STEPS):
        tasks = default.sample_tasks()
        action = random_action(default, decisions, 0.93 if name == "asp" else 0.5)
        assert_same_state(engine.step(tasks, action, validate=False), default.step(tasks, action), engine, default)


def count_graphs_over_steps(engine: EdgeEngine, default: EdgeEngine, steps: int, backend: str) -> int:
    """Run `steps` steps of a fullgraph-compiled sync-free step beside default steps; every result must be equal.
    Returns how many graphs were compiled."""
    counter = torch._dynamo.testing.CompileCounterWithBackend(backend)
    step = engine.compile_step(backend=counter)
    decisions = torch.Generator().manual_seed(5)
    for _ in range(steps):
        tasks = default.sample_tasks()
        action = random_action(default, decisions, 0.93 if engine.running is not None else 0.5)
        expected = default.step(tasks, action)
        assert_same_state(step(tasks, action), expected, engine, default)
    return int(counter.frame_count)


# "eager" runs the captured graph as traced; "aot_eager" also functionalizes it (in-place state updates become
# copies back into the engine's tensors), as inductor and CUDA graphs do: slower to compile, so on one preset only.
@pytest.mark.parametrize("name,backend", [("mato", "aot_eager"), ("asp", "eager")])
def test_the_compiled_sync_free_step_is_one_graph_and_equals_the_default_step(name, backend):
    """fullgraph=True raises at any graph break; one graph for every step (the time is a tensor, not a guard)."""
    torch._dynamo.reset()
    engine, default = twin_engines(name, "lfu", batch=3)
    assert count_graphs_over_steps(engine, default, steps=3, backend=backend) == 1


def test_dynamo_finds_no_graph_break_in_the_sync_free_step():
    torch._dynamo.reset()
    engine, _ = twin_engines("mato-cloud", "random", batch=2)
    tasks = engine.sample_tasks()
    action = random_action(engine, torch.Generator().manual_seed(1))
    explanation = torch._dynamo.explain(engine.sync_free_step)(tasks, action)
    assert (explanation.graph_count, explanation.graph_break_count) == (1, 0), explanation.break_reasons


def test_a_part_that_finds_every_asp_slot_taken_crashes_alone_in_the_sync_free_step():
    """One slot per server: two whole tasks on server 0, both within its capacity. The default step makes room
    for both; the sync-free step admits the first arrival and refuses the second, whose task counts as crashed
    (never completed); the running part is not dropped."""
    engine, default = twin_engines("asp", "lfu", batch=1)
    for twin in (engine, default):
        assert twin.running is not None
        twin.running = twin.running[:, :, :1].clone()
    tasks = default.sample_tasks()
    tasks.model.zero_()  # asp has one model; every server holds it from the warm start
    tasks.demand.fill_(100.0)  # two parts need 200 of a capacity of at least 600: no capacity crash
    servers = engine.config.n_servers
    split = torch.zeros((1, engine.config.n_devices, servers + 2), dtype=torch.float64)
    split[0, :, 0] = 1.0
    split[0, :2, 0], split[0, :2, 1] = 0.0, 1.0  # devices 0 and 1 send their whole task to server 0
    action = Action(split, torch.ones((1, engine.config.n_devices), dtype=torch.bool))
    t_up = tasks.size[0, :2] / engine.topology.up_rate[0, :2, 0]  # s x / r, s = 1
    first, second = (0, 1) if t_up[0] <= t_up[1] else (1, 0)
    expected = default.step(tasks, action)
    result = engine.step(tasks, action, validate=False)
    assert not expected.crashed[0, :2].any(), "the default step grows the slots instead"
    assert expected.T[0, first] > t_up[second], "the first part must still run when the second arrives"
    assert not result.crashed[0, first] and result.crashed[0, second]
    assert not result.completed[0, second]
    assert result.edge_quality[0, second] == 0 and result.edge_share[0, second] == 0
    assert float(engine.dropped[0]) == 0.0
    assert int((engine.running[0, 0, :, 0] > 0).sum()) == 1


def test_a_full_pending_buffer_changes_no_cost_in_the_sync_free_step():
    """One pending-load slot per server: loads queued beyond it overwrite the newest snapshot (the view skips a
    state), but every cost, queue and cache on the servers' timeline stays the default step's."""
    engine, default = twin_engines("mato", "lru", seed=2)
    cache = engine.cache
    cache.pending_time = cache.pending_time[:, :, :1].clone()
    cache.pending_cached = cache.pending_cached[:, :, :1].clone()
    decisions = torch.Generator().manual_seed(2)
    most_pending = 0
    for _ in range(STEPS):
        tasks = default.sample_tasks()
        action = random_action(default, decisions, sparsity=0.3)
        expected = default.step(tasks, action)
        result = engine.step(tasks, action, validate=False)
        most_pending = max(most_pending, int(default.cache.pending_count.max()))
        for field in dataclasses.fields(StepResult):
            assert torch.equal(getattr(result, field.name), getattr(expected, field.name)), field.name
        assert torch.equal(engine.busy_until, default.busy_until)
        assert torch.equal(engine.cache.cached, default.cache.cached)
        assert int(engine.cache.pending_count.max()) <= 1
    assert most_pending > 1, "no step queued two loads on a server: the buffer never overflowed"
