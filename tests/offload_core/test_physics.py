"""Physical sanity of the cost model, on the batched engine."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from offload_core_helpers import random_action

from offload_core.config import preset
from offload_core.engine import Action, EdgeEngine, StepResult
from offload_core.scenario import TaskBatch


def engine_for(name: str = "mato", batch: int = 8, policy: str = "lfu", **overrides) -> EdgeEngine:
    engine = EdgeEngine(preset(name, **overrides).config, batch, policy, dtype=torch.float64)
    engine.reset(0)
    return engine


def whole_to(engine: EdgeEngine, column: int) -> Action:
    c = engine.config
    split = torch.zeros((engine.batch, c.n_devices, c.n_servers + 2), dtype=torch.float64)
    split[..., column] = 1.0
    return Action(split, torch.ones((engine.batch, c.n_devices), dtype=torch.bool))


def test_no_offload_means_no_uplink_energy_and_no_edge_terms():
    engine = engine_for()
    out = engine.step(engine.sample_tasks(), whole_to(engine, 0))
    for key in ("E_up", "E_sw", "E_es", "E_cloud", "T_up", "T_wait", "T_sw", "T_es", "T_down"):
        assert torch.all(getattr(out, key) == 0), key
    assert torch.equal(out.T, out.T_loc) and torch.equal(out.E, out.E_loc)


def test_energy_is_the_sum_of_its_parts_and_latency_the_slowest_part():
    engine = engine_for()
    generator = torch.Generator().manual_seed(1)
    for _ in range(5):
        out = engine.step(engine.sample_tasks(), random_action(engine, generator))
        parts = out.E_loc + out.E_up + out.E_sw + out.E_es + out.E_cloud
        torch.testing.assert_close(out.E, parts)
        assert torch.all(out.T_loc <= out.T) and torch.all(out.T_cloud <= out.T)
        edge_path = out.T_up + out.T_wait + out.T_sw + out.T_es + out.T_down
        assert torch.all(edge_path - 1e-9 <= out.T)


def test_only_the_local_share_costs_device_compute_energy():
    """[Wang 2025, eq. 4] charges the whole task locally; we charge only the local part (docs/cost-model.md, known divergences)."""
    engine = engine_for()
    tasks = engine.sample_tasks()
    half = whole_to(engine, 0)
    half.split[..., 0] = 0.5
    half.split[..., 1] = 0.5
    out = engine.step(tasks, half)
    full_local = engine.config.device_kappa * engine.topology.device_freq**2 * tasks.size * tasks.density
    torch.testing.assert_close(out.E_loc, 0.5 * full_local)


def _step_with(engine: EdgeEngine, tasks: TaskBatch, column: int) -> StepResult:
    engine.reset(0)
    return engine.step(tasks, whole_to(engine, column))


def test_latency_grows_with_task_size():
    engine = engine_for()
    tasks = engine.sample_tasks()
    bigger = replace(tasks, size=tasks.size * 2)
    for column in (0, 1, engine.config.n_servers + 1):
        small, large = _step_with(engine, tasks, column), _step_with(engine, bigger, column)
        assert torch.all(large.T > small.T), column


def test_latency_falls_with_cpu_frequency():
    slow, fast = engine_for(server_freq_hz=5e9), engine_for(server_freq_hz=10e9)
    tasks = slow.sample_tasks()
    assert torch.all(_step_with(fast, tasks, 1).T_es < _step_with(slow, tasks, 1).T_es)
    engine = engine_for()
    local = _step_with(engine, tasks, 0).T_loc
    engine.topology.device_freq = engine.topology.device_freq * 2
    doubled = engine.step(tasks, whole_to(engine, 0)).T_loc
    torch.testing.assert_close(doubled, local / 2)


def test_a_cached_model_costs_no_switch():
    engine = engine_for(batch=4)
    out = engine.step(engine.sample_tasks(), whole_to(engine, 1))
    assert torch.all(out.T_sw[out.model_hit] == 0) and torch.all(out.E_sw[out.model_hit] == 0)
    assert torch.all(out.T_sw[~out.model_hit] > 0)
    # Next step, every task asks for a model that server 1 holds now: no switch anywhere.
    held = engine.view.cache[:, 0].to(torch.int8).argmax(dim=-1, keepdim=True)  # [B, 1]
    tasks = engine.sample_tasks()
    again = engine.step(replace(tasks, model=held.expand_as(tasks.model).contiguous()), whole_to(engine, 1))
    assert bool(again.model_hit.all())
    assert torch.all(again.T_sw == 0) and torch.all(again.E_sw == 0)


def test_the_cloud_only_policy_never_switches_models():
    engine = engine_for(policy="cloud")
    generator = torch.Generator().manual_seed(2)
    for _ in range(5):
        out = engine.step(engine.sample_tasks(), random_action(engine, generator))
        assert torch.all(out.T_sw == 0)


def test_a_task_that_misses_its_deadline_is_not_completed():
    engine = engine_for(deadline_s=(0.001, 0.002))
    out = engine.step(engine.sample_tasks(), whole_to(engine, 0))
    assert not bool(out.completed.any())


@pytest.mark.parametrize("ratio", [0.0, 0.3, 1.0])
def test_target_ratio_action_is_the_special_case_of_a_split(ratio):
    engine = engine_for(batch=2)
    target = torch.ones((2, engine.config.n_devices), dtype=torch.long)
    action = Action.target_ratio(
        target, torch.full((2, engine.config.n_devices), ratio, dtype=torch.float64), engine.config.n_servers
    )
    assert torch.allclose(action.split[..., 0], torch.tensor(1.0 - ratio, dtype=torch.float64))
    assert torch.allclose(action.split[..., 2], torch.tensor(ratio, dtype=torch.float64))
    assert torch.allclose(action.split.sum(-1), torch.ones((), dtype=torch.float64))


def test_greedy_decides_the_same_on_both_backends():
    from offload_core.schedulers import greedy

    config = preset("mato").config
    engines = [EdgeEngine(config, 16, "lfu", dtype=torch.float64, backend=b) for b in ("torch", "numba")]
    for engine in engines:
        engine.reset(4)
    generator = torch.Generator().manual_seed(0)
    for _ in range(10):
        tasks = engines[0].sample_tasks()
        engines[1].sample_tasks()  # keep the two engines' generators in step
        actions = [greedy(engine, tasks, generator, None) for engine in engines]
        assert torch.equal(actions[0].split, actions[1].split)
        outs = [engine.step(tasks, action) for engine, action in zip(engines, actions, strict=True)]
        for key, value in outs[0].as_dict().items():
            torch.testing.assert_close(getattr(outs[1], key), value)
