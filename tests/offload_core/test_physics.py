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
    engine = engine_for("mato-cloud")  # with a cloud column
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
    engine = engine_for(batch=4, step_s=1000.0)  # every queue empties within a step: the view is the final cache
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
    engine = engine_for("mato-cloud", policy="cloud")
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


# -- dynamics: arrival order, load timing, cloud execution (issue 15) ----------------------------------------

MB = 8e6
BACKENDS = ["torch", "numba"]


def _whole(config, columns: dict[int, int]) -> torch.Tensor:
    """Split [1, M, N + 2]: device m whole to column columns[m] (1..N servers), every other device local."""
    split = torch.zeros((1, config.n_devices, config.n_servers + 2), dtype=torch.float64)
    split[0, :, 0] = 1.0
    for m, column in columns.items():
        split[0, m, 0] = 0.0
        split[0, m, column] = 1.0
    return split


def _assert_same(out, rows) -> None:
    for m, row in enumerate(rows):
        for key, value in row.items():
            assert float(getattr(out, key)[0, m]) == pytest.approx(value, rel=1e-9, abs=1e-12), (m, key)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_server_serves_its_parts_in_arrival_order_not_device_order(backend):
    """Device 1 (20 MB at 1 Gbit/s: arrives at 0.16 s, then computes 4.57 s) reaches server 1 before device 0
    (2 MB at 32 Mbit/s: arrives at 0.5 s). Device 0 waits behind device 1 until 4.73 s, though its index is lower;
    device 1 does not wait. In device order it would be the other way round."""
    from offload_core_helpers import controlled, one_step, task_batch

    config = preset("mato").config
    rates = [3.2e7, 1e9] + [1e8] * (config.n_devices - 2)
    cached = [[True, False, False]] * config.n_servers
    engine, reference = controlled(config, backend, up_rate=rates, model_size=[100 * MB, 150 * MB, 200 * MB], cached=cached)
    tasks = task_batch([0] * config.n_devices, [2 * MB, 20 * MB] + [2 * MB] * (config.n_devices - 2), [200.0] * config.n_devices)
    split = _whole(config, {0: 1, 1: 1})
    out, rows = one_step(engine, reference, tasks, split, torch.ones((1, config.n_devices), dtype=torch.bool))
    _assert_same(out, rows)
    arrival_0, arrival_1 = 2 * MB / 3.2e7, 20 * MB / 1e9  # 0.5 s, 0.16 s
    finish_1 = arrival_1 + 20 * MB * 200.0 / config.server_freq_hz  # 0.16 + 4.571 s
    assert float(out.T_wait[0, 1]) == 0.0
    assert float(out.T_wait[0, 0]) == pytest.approx(finish_1 - arrival_0, rel=1e-12)
    assert float(engine.view.busy_until[0, 0]) == pytest.approx(finish_1 + 2 * MB * 200.0 / config.server_freq_hz, rel=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_model_loaded_for_a_queued_part_shows_in_the_view_only_once_its_load_starts(backend):
    """Server 1 holds models 0 and 2 (350 of 400 MB). Device 1's long task on model 0 keeps it busy until 31.6 s;
    device 0's part needs model 1 (100 MB), so it is loaded, evicting model 2 (fewer uses), when that part starts
    at 31.6 s. At the next step's time (20 s) the view still shows models 0 and 2; at 40 s, models 0 and 1."""
    from offload_core_helpers import controlled, one_step, task_batch

    config = preset("mato").config
    held = [[True, False, True]] + [[False] * 3] * (config.n_servers - 1)
    rates = [5e7] + [1e9] * (config.n_devices - 1)  # device 0 arrives at 0.32 s, after device 1 (0.16 s)
    engine, reference = controlled(config, backend, up_rate=rates, model_size=[200 * MB, 100 * MB, 150 * MB], cached=held)
    densities = [100.0, 1400.0] + [100.0] * (config.n_devices - 2)
    tasks = task_batch([1, 0] + [0] * (config.n_devices - 2), [2 * MB, 20 * MB] + [2 * MB] * (config.n_devices - 2), densities)
    download = torch.ones((1, config.n_devices), dtype=torch.bool)
    out, rows = one_step(engine, reference, tasks, _whole(config, {0: 1, 1: 1}), download)
    _assert_same(out, rows)
    start = 20 * MB / 1e9 + 20 * MB * 1400.0 / config.server_freq_hz  # device 1's finish: device 0's part starts
    assert start > config.step_s and float(out.T_sw[0, 0]) > 0
    assert float(out.T_wait[0, 0]) == pytest.approx(start - 2 * MB / 5e7, rel=1e-12)
    assert engine.view.cache[0, 0].tolist() == [True, False, True] == reference.resident(0)
    assert engine.cache.cached[0, 0].tolist() == [True, True, False]  # the server's own timeline
    idle = task_batch([0] * config.n_devices, [2 * MB] * config.n_devices, [100.0] * config.n_devices)
    out, rows = one_step(engine, reference, idle, _whole(config, {}), download)
    _assert_same(out, rows)
    assert engine.view.cache[0, 0].tolist() == [True, True, False] == reference.resident(0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_without_cloud_execution_a_miss_without_download_fails_costing_its_upload(backend):
    from offload_core_helpers import controlled, one_step, task_batch

    config = preset("mato").config
    cached = [[True, False, False]] * config.n_servers
    engine, reference = controlled(config, backend, up_rate=1e8, model_size=[100 * MB, 150 * MB, 200 * MB], cached=cached)
    tasks = task_batch([1] * config.n_devices, [10 * MB] * config.n_devices, [200.0] * config.n_devices)
    download = torch.zeros((1, config.n_devices), dtype=torch.bool)
    out, rows = one_step(engine, reference, tasks, _whole(config, {0: 1}), download)
    _assert_same(out, rows)
    t_up = 10 * MB / 1e8
    assert bool(out.failed[0, 0]) and not bool(out.completed[0, 0]) and not bool(out.model_hit[0, 0])
    assert float(out.T[0, 0]) == pytest.approx(t_up) and float(out.E[0, 0]) == pytest.approx(config.device_power_w * t_up)
    assert float(out.edge_share[0, 0]) == 0.0 and float(out.T_fwd[0, 0]) == 0.0 and float(out.E_cloud[0, 0]) == 0.0
    assert engine.view.cache[0].tolist() == cached  # nothing was loaded


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["mato-cloud", "lc"])
def test_the_cloud_policy_runs_nothing_at_the_edge(name, backend):
    """`cloud` caching is no edge caching: cold caches that never fill, so every edge part is forwarded and the
    edge execution ratio is exactly 0, whatever the actions ([Xu 2023, Table II]: the Cloud column's 0%)."""
    from offload_core_helpers import random_action

    from offload_core.compare import run_variant
    from offload_core.schedulers import edge

    engine = EdgeEngine(preset(name).config, 4, "cloud", dtype=torch.float64, backend=backend)
    engine.reset(0)
    generator = torch.Generator().manual_seed(0)
    assert not bool(engine.view.cache.any())
    for step in range(10):
        tasks = engine.sample_tasks()
        action = edge(engine, tasks, generator) if step % 2 else random_action(engine, generator)
        out = engine.step(tasks, action)
        assert bool((out.edge_share == 0).all()) and bool((out.T_sw == 0).all()) and bool((out.T_es == 0).all())
        assert not bool(out.model_hit.any()) and not bool(engine.view.cache.any())
        assert bool((out.T_fwd[out.offloaded] > 0).all())
    metrics = run_variant(preset(name), "cloud", "edge", envs=4, steps=5, seed=0)
    assert bool((metrics["edge_execution_ratio"] == 0).all())


def test_model_downloads_run_at_the_backhaul_rate_r_cn():
    """[Wang 2025, eqs. 7-8]: T_switch = X / r_cn, E_switch = p_cn T_switch; we add the GPU load X / r_load at P_load."""
    from offload_core_helpers import controlled, one_step, task_batch

    config = preset("mato", backhaul_bps=2e8, load_bps=4e9).config
    engine, reference = controlled(config, up_rate=1e8, model_size=[100 * MB, 150 * MB, 200 * MB], cached=[[False] * 3] * 3)
    tasks = task_batch([1] * config.n_devices, [2 * MB] * config.n_devices, [100.0] * config.n_devices)
    out, rows = one_step(engine, reference, tasks, _whole(config, {0: 1}), torch.ones((1, config.n_devices), dtype=torch.bool))
    _assert_same(out, rows)
    assert float(out.T_sw[0, 0]) == pytest.approx(150 * MB / 2e8 + 150 * MB / 4e9, rel=1e-12)
    assert float(out.E_sw[0, 0]) == pytest.approx(
        config.backhaul_power_w * 150 * MB / 2e8 + config.load_power_w * 150 * MB / 4e9, rel=1e-12
    )
