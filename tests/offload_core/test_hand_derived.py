"""Single tasks whose every cost term is derived by hand from the papers, against engine, kernel and reference.

Each test builds one controlled environment: the topology is overwritten with known positions,
frequencies and model sizes, the caches are set to known contents, and the rates are recomputed
here. The expected numbers are plain arithmetic on the papers' formulas and the presets' stated
values, with the equation named beside each; no helper of the project computes an expected number.
The same scene is run on the batched engine (torch), the compiled kernel (numba) and the scalar
reference (`ScalarEdge`), and each must give the hand-derived breakdown.

Sources: [Wang 2025] (seed 002, MADDPG-MATO) eqs. 3-13 and sec. IV-A for `mato`; [Xu 2023]
(seed 003, paper 2) Table I/II for `lc`; [Xu 2024] (seed 004) sec. V-A for `asp`; the semantics
decided for issue 15 (cloud execution per preset, FIFO by arrival, model download at r_cn, no
result return in `mato`, energy summed over parts, the share's work on each part).

The papers' ceilings in [Wang 2025] eqs. 3 and 9 are not applied: the simulator runs in
continuous time (docs/cost-model.md, sec. 4).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import pytest
import torch

from offload_core.config import EdgeConfig, preset
from offload_core.engine import Action, EdgeEngine
from offload_core.names import Backend
from offload_core.reference import ScalarEdge, ScalarTask, ScalarTopology
from offload_core.scenario import TaskBatch

REFERENCE = "reference"
BACKENDS = [Backend.TORCH.value, Backend.NUMBA.value, REFERENCE]

MB = 8e6  # bits in a megabyte: the papers state sizes in MB
GHZ = 1e9

# [Wang 2025, sec. IV-A]: "The computational capacities of the CC, ES and ED are set to 40 GHz, 7 GHz,
# and a random value in [1, 3] GHz"; tasks of [2, 20] MB; models of [90, 250] MB.
F_ES_MATO = 7 * GHZ

TERMS = (
    "T_up",
    "T_wait",
    "T_sw",
    "T_es",
    "T_down",
    "T_loc",
    "T_cloud",
    "T",
    "E_up",
    "E_sw",
    "E_es",
    "E_loc",
    "E_cloud",
    "E",
    "completed",
    "model_hit",
    "offloaded",
    "failed",
    "edge_share",
)
"""The breakdown terms every hand-derived task is checked on (issue 15, Must show)."""

NOTHING = dict.fromkeys(TERMS, 0.0)
"""A task that costs nothing anywhere: the base every expected breakdown is written over."""


# -- the controlled scene --------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    """One device's task of a step: required model, size x (bit), density rho (cycles/bit), deadline (s), ASP demand."""

    model: int
    size: float
    density: float
    deadline: float
    demand: float = 0.0


@dataclass(frozen=True)
class Scene:
    """One environment whose every input is set by the test."""

    config: EdgeConfig
    policy: str
    device_pos: list[tuple[float, float]]  # [M] m
    server_pos: list[tuple[float, float]]  # [N] m
    device_freq: list[float]  # [M] Hz
    model_size: list[float]  # [I] bit
    cached: list[list[bool]]  # [N][I]
    server_freq: list[float]  # [N] Hz
    server_capacity: list[float]  # [N] work units (inf: FIFO server)
    server_quality: list[float]  # [N]

    def distance(self, m: int, n: int) -> float:
        (xm, ym), (xn, yn) = self.device_pos[m], self.server_pos[n]
        return math.hypot(xm - xn, ym - yn)

    def up_rate(self, m: int, n: int) -> float:
        return hand_rate(self.config, self.distance(m, n), self.config.device_power_w)

    def down_rate(self, m: int, n: int) -> float:
        return hand_rate(self.config, self.distance(m, n), self.config.server_power_w)


def hand_rate(config: EdgeConfig, distance: float, power_w: float) -> float:
    """r = min(B log2(1 + p g0 d^-pl / sigma^2), B_max), by hand.

    The cap B_n^max is [Wang 2025, constraint c5]; the Shannon form is ours (the paper gives no rate
    formula; docs/cost-model.md sec. 3)."""
    snr = power_w * config.channel_gain * distance ** (-config.path_loss_exponent) / config.noise_w
    return min(config.bandwidth_hz * math.log2(1.0 + snr), config.max_rate_bps)


Step = tuple[list[Job], list[list[float]], list[bool]]
"""One step's input: a job per device, a split per device over {local, servers, cloud}, download flags."""


def run(backend: str, scene: Scene, steps: list[Step]) -> list[list[dict[str, float]]]:
    """Each step's breakdown per device, {term: value} (flags as 0.0/1.0), from `backend` on `scene`."""
    if backend == REFERENCE:
        return _run_reference(scene, steps)
    return _run_engine(backend, scene, steps)


def _run_engine(backend: str, scene: Scene, steps: list[Step]) -> list[list[dict[str, float]]]:
    c = scene.config
    m_count, n_count = c.n_devices, c.n_servers
    engine = EdgeEngine(c, 1, scene.policy, dtype=torch.float64, backend=backend)
    engine.reset(0)

    def f64(values: object) -> torch.Tensor:
        return torch.tensor(values, dtype=torch.float64)

    top = engine.topology
    top.device_pos[0] = f64(scene.device_pos)
    top.server_pos[0] = f64(scene.server_pos)
    top.distance[0] = f64([[scene.distance(m, n) for n in range(n_count)] for m in range(m_count)])
    top.device_freq[0] = f64(scene.device_freq)
    top.model_size[0] = f64(scene.model_size)
    top.server_freq[0] = f64(scene.server_freq)
    top.server_capacity[0] = f64(scene.server_capacity)
    top.server_quality[0] = f64(scene.server_quality)
    top.up_rate[0] = f64([[scene.up_rate(m, n) for n in range(n_count)] for m in range(m_count)])
    top.down_rate[0] = f64([[scene.down_rate(m, n) for n in range(n_count)] for m in range(m_count)])
    _place_cache(engine, scene)

    results = []
    for jobs, splits, downloads in steps:
        tasks = TaskBatch(
            model=torch.tensor([[job.model for job in jobs]], dtype=torch.long),
            size=f64([[job.size for job in jobs]]),
            density=f64([[job.density for job in jobs]]),
            deadline=f64([[job.deadline for job in jobs]]),
            demand=f64([[job.demand for job in jobs]]),
        )
        out = engine.step(tasks, Action(f64([splits]), torch.tensor([downloads], dtype=torch.bool)))
        terms = out.as_dict()
        results.append([{key: float(terms[key][0, m]) for key in terms} for m in range(m_count)])
    return results


def _place_cache(engine: EdgeEngine, scene: Scene) -> None:
    """Servers hold exactly `scene.cached`, loaded before the episode (time 0), with their memory used."""
    cache = engine.cache
    cached = torch.tensor(scene.cached, dtype=torch.bool)
    used = [sum(size for size, held in zip(scene.model_size, row, strict=True) if held) for row in scene.cached]
    cache.cached[0] = cached  # each server's own timeline
    cache.resident[0] = cached  # what policies see at the view's time
    cache.free_memory[0] = torch.tensor([scene.config.server_memory_bits - u for u in used], dtype=torch.float64)


def _run_reference(scene: Scene, steps: list[Step]) -> list[list[dict[str, float]]]:
    c = scene.config
    m_count, n_count = c.n_devices, c.n_servers
    topology = ScalarTopology(
        device_freq=list(scene.device_freq),
        model_size=list(scene.model_size),
        server_capacity=list(scene.server_capacity),
        server_quality=list(scene.server_quality),
        up_rate=[[scene.up_rate(m, n) for n in range(n_count)] for m in range(m_count)],
        down_rate=[[scene.down_rate(m, n) for n in range(n_count)] for m in range(m_count)],
        server_freq=list(scene.server_freq),
    )
    edge = ScalarEdge(c, topology, scene.policy, [list(row) for row in scene.cached])
    results = []
    for jobs, splits, downloads in steps:
        tasks = [ScalarTask(job.model, job.size, job.density, job.deadline, job.demand) for job in jobs]
        results.append(edge.step(tasks, splits, downloads))
    return results


def assert_breakdown(got: dict[str, float], expected: dict[str, float], backend: str) -> None:
    """Every expected term equals the backend's (relative 1e-9), named in the failure."""
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-12), f"{backend}: {key} = {got[key]!r}, by hand {value!r}"


def split_row(n_servers: int, local: float = 0.0, server: int | None = None, share: float = 0.0, cloud: float = 0.0) -> list[float]:
    """A split over {local, server 1..N, cloud}: `local`, `share` on `server` (0-based), `cloud`."""
    row = [0.0] * (n_servers + 2)
    row[0] = local
    if server is not None:
        row[1 + server] = share
    row[n_servers + 1] = cloud
    return row


# -- mato: [Wang 2025] ----------------------------------------------------------------------------

MATO_X = 10 * MB  # a task of 10 MB: inside [2, 20] MB of sec. IV-A
MATO_RHO = 200.0  # cycles/bit (our density range 100-300)
MATO_DEADLINE = 15.0  # s
MATO_F_DEVICE = 2 * GHZ  # inside [1, 3] GHz of sec. IV-A
MATO_MODEL_SIZES = [100 * MB, 150 * MB, 200 * MB]  # inside [90, 250] MB of sec. IV-A
MATO_DISTANCE = 500.0  # device 0 to server 0, m (a 300-400-500 triangle below)
FILLER = Job(model=0, size=2 * MB, density=100.0, deadline=16.0)
"""The other devices' task, kept local so that no other task touches a server."""


def mato_scene(cached: list[list[bool]] | None = None) -> Scene:
    """3 ES at 7 GHz in 1 km x 1 km ([Wang 2025, sec. IV-A]); device 0 is 500 m from server 0.

    Server n holds model n unless `cached` says otherwise."""
    c = preset("mato").config
    servers = [(200.0, 200.0), (800.0, 200.0), (500.0, 900.0)]
    devices = [(500.0, 600.0)] + [(90.0 * k, 50.0) for k in range(1, c.n_devices)]
    return Scene(
        config=c,
        policy="lfu",
        device_pos=devices,
        server_pos=servers,
        device_freq=[MATO_F_DEVICE] + [1.5 * GHZ] * (c.n_devices - 1),
        model_size=list(MATO_MODEL_SIZES),
        cached=cached if cached is not None else [[n == i for i in range(c.n_models)] for n in range(c.n_servers)],
        server_freq=[c.server_freq_hz] * c.n_servers,
        server_capacity=[math.inf] * c.n_servers,
        server_quality=[1.0] * c.n_servers,
    )


def mato_step(job: Job, split: list[float], download: bool) -> Step:
    """Device 0 runs `job` with `split`; every other device runs FILLER locally."""
    c = preset("mato").config
    local = split_row(c.n_servers, local=1.0)
    return (
        [job] + [FILLER] * (c.n_devices - 1),
        [split] + [local] * (c.n_devices - 1),
        [download] + [True] * (c.n_devices - 1),
    )


def test_the_mato_scene_is_the_papers_setting():
    """The numbers the hand derivations take from [Wang 2025, sec. IV-A] are the preset's."""
    c = preset("mato").config
    assert (c.n_servers, c.n_devices, c.n_models) == (3, 10, 3)
    assert c.area_m == 1000.0
    assert c.server_freq_hz == F_ES_MATO
    assert c.cloud_freq_hz == 40 * GHZ
    assert c.device_freq_hz == (1 * GHZ, 3 * GHZ)
    assert c.task_size_bits == (2 * MB, 20 * MB)
    assert c.model_size_bits == (90 * MB, 250 * MB)
    assert c.cloud_execution is False  # "the CC supplies models only"
    assert c.output_bits == 0.0  # eq. 11 has no result-return term
    assert mato_scene().distance(0, 0) == MATO_DISTANCE


@pytest.mark.parametrize("backend", BACKENDS)
def test_mato_a_local_task_costs_eq3_latency_and_eq4_energy(backend):
    c = preset("mato").config
    job = Job(model=0, size=MATO_X, density=MATO_RHO, deadline=MATO_DEADLINE)
    got = run(backend, mato_scene(), [mato_step(job, split_row(c.n_servers, local=1.0), True)])[0][0]

    t_loc = MATO_X * MATO_RHO / MATO_F_DEVICE  # eq. 3, eta = 0: 10 MB x 200 cycles/bit / 2 GHz = 8 s
    e_loc = c.device_kappa * MATO_F_DEVICE**2 * MATO_X * MATO_RHO  # eq. 4, c(f) = kappa f^2 per cycle
    assert t_loc == pytest.approx(8.0)
    expected = {**NOTHING, "T_loc": t_loc, "T": t_loc, "E_loc": e_loc, "E": e_loc, "completed": 1.0}
    assert_breakdown(got, expected, backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_mato_a_part_offloaded_to_a_server_holding_its_model_costs_eqs_5_to_13_without_switch(backend):
    c = preset("mato").config
    eta = 0.8
    job = Job(model=0, size=MATO_X, density=MATO_RHO, deadline=MATO_DEADLINE)  # server 0 holds model 0
    split = split_row(c.n_servers, local=1.0 - eta, server=0, share=eta)
    got = run(backend, mato_scene(), [mato_step(job, split, False)])[0][0]

    r_up = hand_rate(c, MATO_DISTANCE, c.device_power_w)  # r_m^n, capped at B_n^max (c5)
    t_loc = (1.0 - eta) * MATO_X * MATO_RHO / MATO_F_DEVICE  # eq. 3
    e_loc = c.device_kappa * MATO_F_DEVICE**2 * (1.0 - eta) * MATO_X * MATO_RHO  # eq. 4 on the local share
    t_up = MATO_X * eta / r_up  # eq. 5
    e_up = c.device_power_w * t_up  # eq. 6
    t_es = MATO_X * eta * MATO_RHO / F_ES_MATO  # eq. 9
    e_es = c.server_kappa * F_ES_MATO**2 * MATO_X * eta * MATO_RHO  # eq. 10 on the offloaded share
    t_edge = t_up + 0.0 + t_es  # eq. 11, T_switch = 0 on a cached model; the queue is empty; no return term
    t_total = max(t_loc, t_edge)  # eq. 13
    e_total = e_loc + e_up + e_es  # energy of parallel parts adds up (eq. 14's max: documented divergence)
    assert t_edge > t_loc, "the edge part must be the slowest, so that T checks eq. 11"
    expected = {
        **NOTHING,
        "T_up": t_up,
        "T_es": t_es,
        "T_loc": t_loc,
        "T": t_total,
        "E_up": e_up,
        "E_es": e_es,
        "E_loc": e_loc,
        "E": e_total,
        "completed": float(t_total <= MATO_DEADLINE),
        "model_hit": 1.0,
        "offloaded": 1.0,
        "edge_share": eta,
    }
    assert expected["completed"] == 1.0
    assert_breakdown(got, expected, backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_mato_a_part_offloaded_with_a_download_pays_eqs_7_and_8_at_the_backhaul_rate(backend):
    c = preset("mato").config
    eta = 0.8
    job = Job(model=1, size=MATO_X, density=MATO_RHO, deadline=MATO_DEADLINE)  # server 0 lacks model 1
    split = split_row(c.n_servers, local=1.0 - eta, server=0, share=eta)
    got = run(backend, mato_scene(), [mato_step(job, split, True)])[0][0]

    model_x = MATO_MODEL_SIZES[1]  # X_i = 150 MB; server 0 has 300 MB free: nothing is evicted
    r_up = hand_rate(c, MATO_DISTANCE, c.device_power_w)
    t_loc = (1.0 - eta) * MATO_X * MATO_RHO / MATO_F_DEVICE  # eq. 3
    e_loc = c.device_kappa * MATO_F_DEVICE**2 * (1.0 - eta) * MATO_X * MATO_RHO  # eq. 4
    t_up = MATO_X * eta / r_up  # eq. 5
    e_up = c.device_power_w * t_up  # eq. 6
    # eq. 7: X_i / r_c^n with r_c^n the backhaul; plus the GPU load X_i / load_bw (ours, [Xu 2023]'s switching cost)
    t_sw = model_x / c.backhaul_bps + model_x / c.load_bps
    # eq. 8: p_c^n T_switch; plus the load power over the GPU load (ours)
    e_sw = c.backhaul_power_w * model_x / c.backhaul_bps + c.load_power_w * model_x / c.load_bps
    t_es = MATO_X * eta * MATO_RHO / F_ES_MATO  # eq. 9
    e_es = c.server_kappa * F_ES_MATO**2 * MATO_X * eta * MATO_RHO  # eq. 10 on the share
    t_edge = t_up + t_sw + t_es  # eq. 11 (the load starts when the part arrives at the idle server)
    t_total = max(t_loc, t_edge)  # eq. 13
    e_total = e_loc + e_up + e_sw + e_es  # eq. 12 plus the local part
    expected = {
        **NOTHING,
        "T_up": t_up,
        "T_sw": t_sw,
        "T_es": t_es,
        "T_loc": t_loc,
        "T": t_total,
        "E_up": e_up,
        "E_sw": e_sw,
        "E_es": e_es,
        "E_loc": e_loc,
        "E": e_total,
        "completed": float(t_total <= MATO_DEADLINE),
        "model_hit": 0.0,
        "offloaded": 1.0,
        "edge_share": eta,
    }
    assert expected["completed"] == 1.0
    assert_breakdown(got, expected, backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_mato_a_miss_without_the_download_flag_fails_after_its_upload(backend):
    """[Wang 2025]: the CC supplies models only, so a task on a server without its model and no
    download (beta = 0) cannot run: it costs its upload (eqs. 5-6), fails and completes nothing."""
    c = preset("mato").config
    job = Job(model=1, size=MATO_X, density=MATO_RHO, deadline=MATO_DEADLINE)  # server 0 lacks model 1
    got = run(backend, mato_scene(), [mato_step(job, split_row(c.n_servers, server=0, share=1.0), False)])[0][0]

    t_up = MATO_X / hand_rate(c, MATO_DISTANCE, c.device_power_w)  # eq. 5, eta = 1
    e_up = c.device_power_w * t_up  # eq. 6
    expected = {**NOTHING, "T_up": t_up, "T": t_up, "E_up": e_up, "E": e_up, "offloaded": 1.0, "failed": 1.0}
    assert_breakdown(got, expected, backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_mato_rejects_an_action_that_sends_a_share_to_the_cloud(backend):
    """[Wang 2025]: a task runs locally and/or on one ES; the cloud column must stay 0."""
    c = preset("mato").config
    job = Job(model=0, size=MATO_X, density=MATO_RHO, deadline=MATO_DEADLINE)
    with pytest.raises(ValueError, match="cloud"):
        run(backend, mato_scene(), [mato_step(job, split_row(c.n_servers, local=0.5, cloud=0.5), True)])


NEAR, FAR = 100.0, 800.0
"""Distances of devices 1 and 0 to server 0 in the arrival-order tests, m (60-80-100 and 480-640-800 triangles)."""


def near_and_far_scene() -> Scene:
    """`mato_scene` with device 0 800 m and device 1 100 m from server 0, every device at 2 GHz."""
    c = preset("mato").config
    devices = [(200.0 + 480.0, 200.0 + 640.0), (200.0 + 60.0, 200.0 + 80.0)] + [(90.0 * k, 50.0) for k in range(2, c.n_devices)]
    scene = replace(mato_scene(), device_pos=devices, device_freq=[MATO_F_DEVICE] * c.n_devices)
    assert (scene.distance(0, 0), scene.distance(1, 0)) == (FAR, NEAR)
    return scene


def both_to_server_0(jobs: list[Job], download: bool) -> Step:
    """Devices 0 and 1 send their whole task to server 0; the others run FILLER locally."""
    c = preset("mato").config
    whole = split_row(c.n_servers, server=0, share=1.0)
    local = split_row(c.n_servers, local=1.0)
    others = c.n_devices - 2
    return (jobs + [FILLER] * others, [whole, whole] + [local] * others, [download, download] + [True] * others)


@pytest.mark.parametrize("backend", BACKENDS)
def test_mato_serves_the_earlier_arrival_first_though_its_device_index_is_higher(backend):
    """FIFO by arrival time ([Wang 2025, sec. II-A]): device 1 (near) arrives before device 0 (far),
    is served at once, and device 0 waits until device 1's part is done."""
    c = preset("mato").config
    r_far = hand_rate(c, FAR, c.device_power_w)
    r_near = hand_rate(c, NEAR, c.device_power_w)
    x1, rho1 = 20 * MB, 300.0  # device 1's task: the largest of sec. IV-A
    arrival_1 = x1 / r_near  # eq. 5: device 1's part reaches server 0
    finish_1 = arrival_1 + x1 * rho1 / F_ES_MATO  # eq. 9: device 1's part leaves server 0
    x0, rho0 = r_far * (arrival_1 + finish_1) / 2.0, 200.0  # device 0 reaches server 0 mid-way through device 1's part
    arrival_0 = x0 / r_far  # eq. 5
    assert arrival_1 < arrival_0 < finish_1
    assert 2 * MB <= x0 <= 20 * MB, "device 0's task stays within sec. IV-A's sizes"

    jobs = [Job(0, x0, rho0, 60.0), Job(0, x1, rho1, 60.0)]  # server 0 holds model 0
    got = run(backend, near_and_far_scene(), [both_to_server_0(jobs, download=False)])[0]

    t_wait_0 = finish_1 - arrival_0  # FIFO: max(0, busy_until - arrival) with busy_until = finish_1
    t_es_0 = x0 * rho0 / F_ES_MATO  # eq. 9
    assert_breakdown(got[1], {"T_wait": 0.0, "T": finish_1, "T_up": arrival_1}, backend)
    assert_breakdown(got[0], {"T_wait": t_wait_0, "T_up": arrival_0, "T_es": t_es_0, "T": finish_1 + t_es_0}, backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_mato_the_earlier_arrival_downloads_the_model_and_the_later_one_finds_it_cached(backend):
    """Hit or miss is decided on the server's own timeline, in arrival order: device 1 (near, first)
    downloads model 1 onto server 0 (eqs. 7-8); device 0 (far, later, lower index) waits and hits."""
    c = preset("mato").config
    model_x = MATO_MODEL_SIZES[1]  # server 0 lacks model 1 and has room for it
    r_far = hand_rate(c, FAR, c.device_power_w)
    r_near = hand_rate(c, NEAR, c.device_power_w)
    x1, rho1 = 20 * MB, 300.0
    arrival_1 = x1 / r_near  # eq. 5
    t_sw_1 = model_x / c.backhaul_bps + model_x / c.load_bps  # eq. 7 at r_cn, plus the GPU load (ours)
    e_sw_1 = c.backhaul_power_w * model_x / c.backhaul_bps + c.load_power_w * model_x / c.load_bps  # eq. 8 + ours
    finish_1 = arrival_1 + t_sw_1 + x1 * rho1 / F_ES_MATO  # eqs. 7 and 9: load, then compute
    x0, rho0 = r_far * (arrival_1 + finish_1) / 2.0, 200.0  # device 0 arrives while device 1's part runs
    arrival_0 = x0 / r_far  # eq. 5
    assert arrival_1 < arrival_0 < finish_1 and 2 * MB <= x0 <= 20 * MB

    jobs = [Job(1, x0, rho0, 60.0), Job(1, x1, rho1, 60.0)]
    got = run(backend, near_and_far_scene(), [both_to_server_0(jobs, download=True)])[0]

    t_es_0 = x0 * rho0 / F_ES_MATO  # eq. 9
    assert_breakdown(got[1], {"model_hit": 0.0, "T_sw": t_sw_1, "E_sw": e_sw_1, "T_wait": 0.0, "T": finish_1}, backend)
    assert_breakdown(
        got[0],
        {"model_hit": 1.0, "T_sw": 0.0, "E_sw": 0.0, "T_wait": finish_1 - arrival_0, "T": finish_1 + t_es_0},
        backend,
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_mato_serves_simultaneous_arrivals_in_device_order(backend):
    """Ties in arrival time go to the lower device index: devices 0 and 1 stand at the same spot
    with the same task; device 1 waits for device 0's part."""
    c = preset("mato").config
    scene = mato_scene()
    spot = scene.device_pos[0]
    scene = replace(scene, device_pos=[spot, spot] + list(scene.device_pos[2:]))
    job = Job(model=0, size=MATO_X, density=MATO_RHO, deadline=60.0)
    whole = split_row(c.n_servers, server=0, share=1.0)
    local = split_row(c.n_servers, local=1.0)
    steps = [([job, job] + [FILLER] * (c.n_devices - 2), [whole, whole] + [local] * (c.n_devices - 2), [False] * c.n_devices)]
    got = run(backend, scene, steps)[0]

    t_up = MATO_X / hand_rate(c, MATO_DISTANCE, c.device_power_w)  # eq. 5, both devices
    t_es = MATO_X * MATO_RHO / F_ES_MATO  # eq. 9, both devices
    assert_breakdown(got[0], {"T_wait": 0.0, "T": t_up + t_es}, backend)
    assert_breakdown(got[1], {"T_wait": t_es, "T": t_up + t_es + t_es}, backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_mato_refuses_the_cloud_caching_policy(backend):
    """`cloud` means every miss runs in the cloud, which `mato` does not have (spec: ValueError)."""
    scene = replace(mato_scene(), policy="cloud")
    job = Job(model=0, size=MATO_X, density=MATO_RHO, deadline=MATO_DEADLINE)
    with pytest.raises(ValueError):
        run(backend, scene, [mato_step(job, split_row(scene.config.n_servers, local=1.0), True)])


# -- asp: [Xu 2024, sec. V-A] --------------------------------------------------------------------

ASP_X = 0.3 * MB  # a prompt of 0.3 MB (our range 0.1-0.5 MB)
ASP_RHO = 1.0  # cycles/bit (the preset's)
ASP_DEMAND = 200.0  # diffusion steps: inside V-A's 100-250
ASP_DEADLINE = 40.0  # s
ASP_CAPACITY = 1000.0  # diffusion steps: inside V-A's 600-1500
ASP_QUALITY = 0.8
ASP_MODEL_X = 90 * MB  # the preset's one model
ASP_DISTANCE = 300.0  # device 0 to server 0, m (a 180-240-300 triangle)
ASP_F_DEVICE = 2 * GHZ


def asp_scene(server_0_holds_the_model: bool) -> Scene:
    """20 ASPs ([Xu 2024, sec. V-A]) on a grid; device 0 is 300 m from ASP 0; one model of 90 MB."""
    c = preset("asp").config
    servers = [(100.0 + 200.0 * (k % 5), 125.0 + 250.0 * (k // 5)) for k in range(c.n_servers)]
    devices = [(100.0 + 180.0, 125.0 + 240.0)] + [(90.0 * k, 20.0) for k in range(1, c.n_devices)]
    cached = [[True] for _ in range(c.n_servers)]
    cached[0] = [server_0_holds_the_model]
    return Scene(
        config=c,
        policy="lfu",
        device_pos=devices,
        server_pos=servers,
        device_freq=[ASP_F_DEVICE] * c.n_devices,
        model_size=[ASP_MODEL_X],
        cached=cached,
        server_freq=[c.server_freq_hz] * c.n_servers,
        server_capacity=[ASP_CAPACITY] * c.n_servers,
        server_quality=[ASP_QUALITY] * c.n_servers,
    )


def asp_step(split: list[float]) -> Step:
    c = preset("asp").config
    job = Job(model=0, size=ASP_X, density=ASP_RHO, deadline=ASP_DEADLINE, demand=ASP_DEMAND)
    filler = Job(model=0, size=0.1 * MB, density=ASP_RHO, deadline=ASP_DEADLINE, demand=100.0)
    local = split_row(c.n_servers, local=1.0)
    return ([job] + [filler] * (c.n_devices - 1), [split] + [local] * (c.n_devices - 1), [True] * c.n_devices)


def test_the_asp_scene_is_the_surveys_setting():
    c = preset("asp").config
    assert c.n_servers == 20  # 20 ASPs
    assert c.server_capacity == (600.0, 1500.0)  # total diffusion steps per ASP
    assert c.task_demand == (100.0, 250.0)  # diffusion steps per request
    assert c.model_size_bits == (ASP_MODEL_X, ASP_MODEL_X)
    assert asp_scene(True).distance(0, 0) == ASP_DISTANCE


@pytest.mark.parametrize("backend", BACKENDS)
def test_asp_a_local_task_pays_its_diffusion_steps_on_the_device(backend):
    c = preset("asp").config
    got = run(backend, asp_scene(True), [asp_step(split_row(c.n_servers, local=1.0))])[0][0]
    # The device runs the whole generation: its input cycles and 200 diffusion steps of 0.35 Gcycles each
    # (docs/cost-model.md, the cycles row), 0.3 MB x 1 cycle/bit + 70 Gcycles at 2 GHz = 35.0013 s.
    cycles = ASP_X * ASP_RHO + ASP_DEMAND * 0.35e9
    t_loc = cycles / ASP_F_DEVICE  # C / f_m ([Wang 2025] eq. 3 with the task's cycles)
    e_loc = c.device_kappa * ASP_F_DEVICE**2 * cycles  # kappa f^2 per cycle
    expected = {**NOTHING, "T_loc": t_loc, "T": t_loc, "E_loc": e_loc, "E": e_loc, "completed": 1.0, "crashed": 0.0}
    assert_breakdown(got, expected, backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_asp_a_task_sent_to_the_cloud_pays_its_diffusion_steps_there(backend):
    c = preset("asp").config
    got = run(backend, asp_scene(True), [asp_step(split_row(c.n_servers, cloud=1.0))])[0][0]
    cycles = ASP_X * ASP_RHO + ASP_DEMAND * 0.35e9  # the whole generation, as on the device
    t_cloud = ASP_X / c.cloud_rate_bps + c.wan_latency_s + cycles / c.cloud_freq_hz + c.output_bits / c.cloud_rate_bps
    e_cloud = c.device_power_w * ASP_X / c.cloud_rate_bps + c.cloud_energy_per_cycle_j * cycles  # radio + cloud cycles
    expected = {**NOTHING, "T_cloud": t_cloud, "T": t_cloud, "E_cloud": e_cloud, "E": e_cloud, "completed": 1.0, "crashed": 0.0}
    assert t_cloud <= ASP_DEADLINE
    assert_breakdown(got, expected, backend)


def _asp_edge_terms(c: EdgeConfig, t_sw: float, e_sw: float, hit: bool) -> dict[str, float]:
    """The hand breakdown of the whole ASP task on ASP 0 (no queue: ASPs run their tasks side by side)."""
    r_up = hand_rate(c, ASP_DISTANCE, c.device_power_w)
    r_down = hand_rate(c, ASP_DISTANCE, c.server_power_w)
    t_up = ASP_X / r_up  # upload, [Wang 2025] eq. 5
    e_up = c.device_power_w * t_up  # eq. 6
    cycles = ASP_X * ASP_RHO + ASP_DEMAND * c.cycles_per_demand  # input cycles + diffusion steps x cycles per step (ours)
    t_es = cycles / c.server_freq_hz  # eq. 9 on these cycles
    e_es = c.server_kappa * c.server_freq_hz**2 * cycles  # eq. 10 on these cycles
    t_down = c.output_bits / r_down  # the generated content returns (ours: s y_out / r_nm)
    t_total = t_up + t_sw + t_es + t_down  # 200 steps of 1000 free: admitted at arrival, no wait
    # quality of the share run at ASP 0: s a(K) q_n, with K = 0 examples in context at the model's first use,
    # so a(0) = a0 + a1 log2(1 + 0^alpha) = a0 ([Xu 2023, Fig. 4]; the a0 of this preset is ours)
    quality = 1.0 * c.accuracy_zero_shot * ASP_QUALITY
    return {
        **NOTHING,
        "T_up": t_up,
        "T_sw": t_sw,
        "T_es": t_es,
        "T_down": t_down,
        "T": t_total,
        "E_up": e_up,
        "E_sw": e_sw,
        "E_es": e_es,
        "E": e_up + e_sw + e_es,
        "completed": float(t_total <= ASP_DEADLINE),
        "model_hit": float(hit),
        "offloaded": 1.0,
        "edge_share": 1.0,
        "crashed": 0.0,
        "edge_quality": quality,
        "quality": quality,
    }


@pytest.mark.parametrize("backend", BACKENDS)
def test_asp_a_task_on_an_asp_holding_its_model_runs_its_diffusion_steps_without_waiting(backend):
    c = preset("asp").config
    got = run(backend, asp_scene(True), [asp_step(split_row(c.n_servers, server=0, share=1.0))])[0][0]
    expected = _asp_edge_terms(c, t_sw=0.0, e_sw=0.0, hit=True)
    assert expected["completed"] == 1.0
    assert_breakdown(got, expected, backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_asp_a_task_on_an_asp_without_its_model_first_downloads_it_over_the_backhaul(backend):
    c = preset("asp").config
    got = run(backend, asp_scene(False), [asp_step(split_row(c.n_servers, server=0, share=1.0))])[0][0]
    t_sw = ASP_MODEL_X / c.backhaul_bps + ASP_MODEL_X / c.load_bps  # [Wang 2025] eq. 7 at r_cn, plus the GPU load (ours)
    e_sw = c.backhaul_power_w * ASP_MODEL_X / c.backhaul_bps + c.load_power_w * ASP_MODEL_X / c.load_bps  # eq. 8 + ours
    expected = _asp_edge_terms(c, t_sw=t_sw, e_sw=e_sw, hit=False)
    assert expected["completed"] == 1.0
    assert_breakdown(got, expected, backend)


# -- lc: [Xu 2023], paper 2 of seed 003 -------------------------------------------------------------

# [Xu 2023, Table I]: (name, "Model Size (M)" parameters in millions, GFLOPs per request), in the Table's order.
TABLE_I = (
    ("GPT3-13B", 12850.0, 26.54),
    ("GPT3-175B", 174600.0, 354.03),
    ("UniFormer-S", 22.0, 3.6),
    ("UniFormer-B", 50.0, 8.3),
    ("CLIP-ViT-L/14", 428.0, 175.5),
    ("CLIP-ViT-H/14", 986.0, 381.9),
)
GPT3_13B, GPT3_175B, UNIFORMER_S, CLIP_L = 0, 1, 2, 4
LC_SIZES = [params * 1e6 * 2 * 8 for _, params, _ in TABLE_I]  # X_i: parameters x 2 bytes (fp16, ours) x 8 bits
LC_WORK = [gflops * 1e9 for _, _, gflops in TABLE_I]  # work of one request: one forward pass, GFLOPs x 1e9
LC_F_ES = 312e12  # FLOP/s of the edge server (ours: one A100 at fp16; a cycle is a FLOP in lc)
# a0 of GPT3-13B, relative to the cloud's full-context accuracy: Table I's zero-shot over few-shot score,
# averaged over its three downstream tasks (translation, basic arithmetic, SuperGLUE): a(0) at the edge.
A0_GPT3_13B = (15.45 / 30.83 + 3.79 / 14.34 + 54.4 / 66.9) / 3
LC_X = 1 * MB  # a prompt of 1 MB (our range 0.5-2 MB)
LC_DEADLINE = 12.0  # s
LC_F_DEVICE = 2 * GHZ
LC_DISTANCE = 300.0  # device 0 to the edge server, m (a 180-240-300 triangle)
LC_COST_TERMS = ("switching", "accuracy", "inference", "offloading", "cloud", "total")


def lc_scene() -> Scene:
    """[Xu 2023, sec. V-A]: one edge server in front of the cloud, holding GPT3-13B; device 0 300 m from it."""
    c = preset("lc").config
    devices = [(500.0 + 180.0, 500.0 + 240.0)] + [(90.0 * k, 30.0) for k in range(1, c.n_devices)]
    return Scene(
        config=c,
        policy="lc",
        device_pos=devices,
        server_pos=[(500.0, 500.0)],
        device_freq=[LC_F_DEVICE] * c.n_devices,
        model_size=list(LC_SIZES),
        cached=[[i == GPT3_13B for i in range(c.n_models)]],
        server_freq=[c.server_freq_hz],
        server_capacity=[math.inf],
        server_quality=[1.0],
    )


def lc_step(model: int, split: list[float], download: bool) -> Step:
    """Device 0 requests `model` with a 1 MB prompt; the others run a UniFormer-S request locally."""
    c = preset("lc").config
    job = Job(model=model, size=LC_X, density=LC_WORK[model] / LC_X, deadline=LC_DEADLINE)  # x rho = the model's work
    filler = Job(model=UNIFORMER_S, size=0.5 * MB, density=LC_WORK[UNIFORMER_S] / (0.5 * MB), deadline=LC_DEADLINE)
    local = split_row(c.n_servers, local=1.0)
    return ([job] + [filler] * (c.n_devices - 1), [split] + [local] * (c.n_devices - 1), [download] + [True] * (c.n_devices - 1))


def lc_costs(rows: list[dict[str, float]]) -> dict[str, float]:
    """Device 0's Table II terms, through `offload_core.cost.lc_system_cost` on the step's breakdown."""
    from offload_core.cost import lc_system_cost
    from offload_core.result import BREAKDOWN_KEYS, FLAG_KEYS, StepResult

    def column(key: str) -> torch.Tensor:
        values = torch.tensor([[row[key] for row in rows]], dtype=torch.float64)
        return values > 0.5 if key in FLAG_KEYS else values

    cost = lc_system_cost(StepResult(*(column(key) for key in BREAKDOWN_KEYS)))
    return {key: float(value[0, 0]) for key, value in cost.as_dict().items()}


def test_the_lc_scene_is_the_papers_setting():
    c = preset("lc").config
    assert c.n_servers == 1  # "a remote cloud center, an edge server, and multiple vehicles"
    assert c.cloud_execution is True  # a miss may be migrated to the cloud (sec. III-C)
    assert c.cloud_quality == 1.0  # Table II: the cloud column's accuracy cost is 0
    assert c.server_freq_hz == LC_F_ES
    assert c.models is not None
    assert [spec.name for spec in c.models] == [name for name, _, _ in TABLE_I]
    assert [spec.size_bits for spec in c.models] == pytest.approx(LC_SIZES, rel=1e-12)
    assert [spec.work_cycles for spec in c.models] == pytest.approx(LC_WORK, rel=1e-12)
    assert c.accuracy_curves()[GPT3_13B][0] == pytest.approx(A0_GPT3_13B, rel=1e-12)
    assert c.accuracy_curves()[CLIP_L][:2] == (1.0, 0.0)  # an MFM: no in-context learning, as good as the cloud
    assert LC_SIZES[GPT3_13B] + LC_SIZES[CLIP_L] <= c.server_memory_bits < LC_SIZES[GPT3_175B]
    assert lc_scene().distance(0, 0) == LC_DISTANCE


@pytest.mark.parametrize("backend", BACKENDS)
def test_lc_a_local_request_costs_its_work_on_the_device_and_nothing_in_table_ii(backend):
    c = preset("lc").config
    rows = run(backend, lc_scene(), [lc_step(UNIFORMER_S, split_row(c.n_servers, local=1.0), True)])[0]
    t_loc = LC_WORK[UNIFORMER_S] / LC_F_DEVICE  # x rho / f_m with x rho = 3.6 GFLOPs (Table I)
    e_loc = c.device_kappa * LC_F_DEVICE**2 * LC_WORK[UNIFORMER_S]  # kappa f^2 per cycle
    expected = {**NOTHING, "T_loc": t_loc, "T": t_loc, "E_loc": e_loc, "E": e_loc, "completed": 1.0}
    assert_breakdown(rows[0], expected, backend)
    assert_breakdown(lc_costs(rows), dict.fromkeys(LC_COST_TERMS, 0.0), backend)


def _lc_edge_terms(c: EdgeConfig, model: int, t_sw: float, e_sw: float, accuracy: float) -> dict[str, float]:
    """The hand breakdown of device 0's whole request run at the edge server."""
    r_up = hand_rate(c, LC_DISTANCE, c.device_power_w)
    r_down = hand_rate(c, LC_DISTANCE, c.server_power_w)
    t_up = LC_X / r_up  # upload of the prompt ([Wang 2025] eq. 5 form)
    e_up = c.device_power_w * t_up
    t_es = LC_WORK[model] / LC_F_ES  # one forward pass at 312 TFLOP/s
    e_es = c.server_kappa * LC_F_ES**2 * LC_WORK[model]  # kappa f^2 per FLOP
    t_down = c.output_bits / r_down  # the answer returns to the vehicle
    t_total = t_up + t_sw + t_es + t_down
    return {
        **NOTHING,
        "T_up": t_up,
        "T_sw": t_sw,
        "T_es": t_es,
        "T_down": t_down,
        "T": t_total,
        "E_up": e_up,
        "E_sw": e_sw,
        "E_es": e_es,
        "E": e_up + e_sw + e_es,
        "completed": float(t_total <= LC_DEADLINE),
        "model_hit": float(t_sw == 0.0),
        "offloaded": 1.0,
        "edge_share": 1.0,
        "edge_quality": accuracy,  # s a(K) q_n with s = 1, q_n = 1
    }


@pytest.mark.parametrize("backend", BACKENDS)
def test_lc_a_request_for_the_cached_gpt3_13b_costs_its_inference_offloading_and_accuracy_loss(backend):
    c = preset("lc").config
    rows = run(backend, lc_scene(), [lc_step(GPT3_13B, split_row(c.n_servers, server=0, share=1.0), True)])[0]
    # K = 0 examples in context at the first use: a(0) = a0 + a1 log2(1 + 0^alpha) = a0 (Fig. 4)
    expected = _lc_edge_terms(c, GPT3_13B, t_sw=0.0, e_sw=0.0, accuracy=A0_GPT3_13B)
    assert expected["completed"] == 1.0
    assert_breakdown(rows[0], expected, backend)
    costs = {
        "switching": 0.0,  # a hit: no model switch
        "accuracy": 1.0 - A0_GPT3_13B,  # 1 - accuracy of the edge part (the cloud's is 1)
        "inference": expected["T_es"],  # edge inference latency
        "offloading": expected["T_up"] + expected["T_down"],  # edge offloading latency
        "cloud": 0.0,  # nothing ran in the cloud
    }
    assert_breakdown(lc_costs(rows), {**costs, "total": sum(costs.values())}, backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_lc_a_request_for_clip_l_downloads_it_beside_gpt3_13b_and_pays_the_switching_cost(backend):
    c = preset("lc").config
    rows = run(backend, lc_scene(), [lc_step(CLIP_L, split_row(c.n_servers, server=0, share=1.0), True)])[0]
    model_x = LC_SIZES[CLIP_L]  # 428 M parameters x 2 bytes; fits in the memory GPT3-13B leaves free
    t_sw = model_x / c.backhaul_bps + model_x / c.load_bps  # download at r_cn ([Wang 2025] eq. 7) + GPU load (ours)
    e_sw = c.backhaul_power_w * model_x / c.backhaul_bps + c.load_power_w * model_x / c.load_bps  # eq. 8 + ours
    expected = _lc_edge_terms(c, CLIP_L, t_sw=t_sw, e_sw=e_sw, accuracy=1.0)  # an MFM: a(K) = 1 relative to the cloud
    assert expected["completed"] == 1.0
    assert_breakdown(rows[0], expected, backend)
    costs = {
        "switching": t_sw,
        "accuracy": 0.0,
        "inference": expected["T_es"],
        "offloading": expected["T_up"] + expected["T_down"],
        "cloud": 0.0,
    }
    assert_breakdown(lc_costs(rows), {**costs, "total": sum(costs.values())}, backend)


@pytest.mark.parametrize(
    ("model", "download"),
    [(GPT3_175B, True), (CLIP_L, False)],
    ids=["gpt3-175b-never-fits", "clip-l-not-downloaded"],
)
@pytest.mark.parametrize("backend", BACKENDS)
def test_lc_a_request_the_edge_server_cannot_serve_is_migrated_to_the_cloud_at_its_cloud_cost(backend, model, download):
    """[Xu 2023, sec. III-C]: on a miss the edge server migrates the request to the cloud over the core
    network; Table II books that path as the cloud computing cost."""
    c = preset("lc").config
    rows = run(backend, lc_scene(), [lc_step(model, split_row(c.n_servers, server=0, share=1.0), download)])[0]
    r_up = hand_rate(c, LC_DISTANCE, c.device_power_w)
    r_down = hand_rate(c, LC_DISTANCE, c.server_power_w)
    t_up = LC_X / r_up
    e_up = c.device_power_w * t_up
    t_fwd = LC_X / c.backhaul_bps + c.wan_latency_s + LC_WORK[model] / c.cloud_freq_hz  # backhaul, core network, cloud
    t_down = c.output_bits / r_down
    e_cloud = c.cloud_energy_per_cycle_j * LC_WORK[model]
    t_total = t_up + t_fwd + t_down
    expected = {
        **NOTHING,
        "T_up": t_up,
        "T_down": t_down,
        "T": t_total,
        "E_up": e_up,
        "E_cloud": e_cloud,
        "E": e_up + e_cloud,
        "completed": float(t_total <= LC_DEADLINE),
        "model_hit": 0.0,
        "offloaded": 1.0,
        "edge_share": 0.0,
        "T_fwd": t_fwd,
        "quality": 1.0 * c.cloud_quality,
    }
    assert expected["completed"] == 1.0
    assert_breakdown(rows[0], expected, backend)
    costs = {"switching": 0.0, "accuracy": 0.0, "inference": 0.0, "offloading": 0.0, "cloud": t_fwd}
    assert_breakdown(lc_costs(rows), {**costs, "total": t_fwd}, backend)


# -- the topology's rates --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["mato", "lc", "asp"])
def test_the_drawn_rates_are_shannon_rates_capped_at_b_max(name):
    """The tests above overwrite the rates with hand-computed ones; the engine's own, drawn at reset
    from the drawn distances, follow the same formula (uplink at p_m, downlink at the server's power)."""
    c = preset(name).config
    engine = EdgeEngine(c, 2, "lfu", dtype=torch.float64)
    top = engine.reset(3)
    for b in range(2):
        for m in range(c.n_devices):
            for n in range(c.n_servers):
                d = float(top.distance[b, m, n])
                assert float(top.up_rate[b, m, n]) == pytest.approx(hand_rate(c, d, c.device_power_w), rel=1e-12)
                assert float(top.down_rate[b, m, n]) == pytest.approx(hand_rate(c, d, c.server_power_w), rel=1e-12)


# -- the cloud caching policy: no edge caching ([Xu 2023, Table II], column "Cloud") ---------------


@pytest.mark.parametrize("name", ["lc", "mato-cloud", "asp"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_the_cloud_policy_with_the_edge_scheduler_runs_nothing_at_the_edge(backend, name):
    """[Xu 2023, Table II]'s cloud-only column has an edge execution ratio of 0%: caches start empty and
    never load, so every part sent to an edge server is a miss forwarded to the cloud, on every step
    (on each preset with cloud execution)."""
    from offload_core.schedulers import scheduler

    config = preset(name).config
    engine = EdgeEngine(config, 2, "cloud", dtype=torch.float64, backend=backend if backend != REFERENCE else "torch")
    engine.reset(0)
    references = [
        ScalarEdge(config, ScalarTopology.of(engine.topology, b), "cloud", engine.view.cache[b].tolist()) for b in range(2)
    ]
    place = scheduler("edge")
    decisions = torch.Generator().manual_seed(0)
    for _ in range(6):
        tasks = engine.sample_tasks()
        action = place(engine, tasks, decisions, None)
        if backend == REFERENCE:
            rows = [
                references[b].step(
                    [
                        ScalarTask(
                            int(tasks.model[b, m]),
                            float(tasks.size[b, m]),
                            float(tasks.density[b, m]),
                            float(tasks.deadline[b, m]),
                            float(tasks.demand[b, m]),
                        )
                        for m in range(config.n_devices)
                    ],
                    action.split[b].tolist(),
                    action.download[b].tolist(),
                )
                for b in range(2)
            ]
            shares = [row["edge_share"] for env in rows for row in env]
            offloaded = [row["offloaded"] for env in rows for row in env]
        else:
            out = engine.step(tasks, action)
            shares, offloaded = out.edge_share.flatten().tolist(), out.offloaded.flatten().tolist()
        assert all(offloaded), "the edge scheduler sends every task to the edge server"
        assert shares == [0.0] * len(shares)
