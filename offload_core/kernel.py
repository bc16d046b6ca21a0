"""The compiled kernels of one engine step and of Greedy (numba), for FIFO servers: one body, two targets.

The torch engine serves the parts of a step one arrival rank at a time with a few dozen small
tensor operations each, and on a CPU the per-operation overhead, not the arithmetic, sets its
speed. These kernels run the same cost model (`offload_core.reference` is the definition) as
compiled loops over one environment: the step's parts sorted by (arrival, device, server), which is
every server's FIFO order, then every task's totals. The per-environment bodies (`env_step`,
`greedy_env`) are plain Python in the subset numba compiles for both targets: here for the CPU
(`step_kernel`, `greedy_kernel`: environments in parallel, the engine's state tensors updated in place
through zero-copy NumPy views) and in `offload_core.cuda_kernel` for CUDA (one thread per environment).
This module also checks actions (`split_problem`). Servers with an ASP capacity (crash semantics) stay
on the torch path.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeVar, cast

import numba
import numpy as np
import numpy.typing as npt

from offload_core.config import EdgeConfig
from offload_core.names import CachingPolicy

POLICY_CODES: dict[CachingPolicy, int] = {
    CachingPolicy.RANDOM: 0,
    CachingPolicy.FIFO: 1,
    CachingPolicy.LRU: 2,
    CachingPolicy.LFU: 3,
    CachingPolicy.LC: 4,
    CachingPolicy.CLOUD: 5,
}
"""The kernel's integer code of each caching policy (`_score` and `step_kernel` test these)."""

Floats = npt.NDArray[np.floating[Any]]  # float32 or float64, as the engine's dtype
Ints = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]
Function = TypeVar("Function", bound=Callable[..., Any])


def _compiled(**options: Any) -> Callable[[Function], Function]:
    """numba.njit(**options), typed: the compiled function keeps the Python function's signature."""
    return cast(Callable[[Function], Function], numba.njit(**options))


# Layout of the scalar parameter vector (one float64 array, so the kernel signature stays short).
_PARAMS = (
    "device_kappa",
    "cloud_rate_bps",
    "wan_latency_s",
    "cloud_freq_hz",
    "output_bits",
    "device_power_w",
    "cloud_energy_per_cycle_j",
    "light_quality",
    "cloud_quality",
    "server_memory_bits",
    "load_bps",
    "backhaul_power_w",
    "load_power_w",
    "server_kappa",
    "backhaul_bps",
    "cycles_per_demand",
    "step_s",
    "context_decay",
    "cloud_execution",
)

# Columns of the output row (BREAKDOWN_KEYS order; a test holds them equal).
_T_UP, _T_WAIT, _T_SW, _T_ES, _T_DOWN, _T_LOC, _T_CLOUD, _T = 0, 1, 2, 3, 4, 5, 6, 7
_E_UP, _E_SW, _E_ES, _E_LOC, _E_CLOUD, _E = 8, 9, 10, 11, 12, 13
_COMPLETED, _HIT, _OFFLOADED, _FAILED, _CRASHED, _QUALITY, _EDGE_SHARE, _T_FWD, _EDGE_QUALITY = (
    14,
    15,
    16,
    17,
    18,
    19,
    20,
    21,
    22,
)
OUTPUT_COLUMNS = 23

# Columns of a task's edge totals in the kernel's scratch.
_A_SLOW, _A_SLOW_N, _A_UP, _A_WAIT, _A_SW, _A_ES, _A_DOWN = 0, 1, 2, 3, 4, 5, 6
_A_E_UP, _A_E_SW, _A_E_ES, _A_E_CLOUD, _A_QUALITY, _A_EDGE_QUALITY, _A_SHARE, _A_FWD = 7, 8, 9, 10, 11, 12, 13, 14
_A_FAILED, _A_MISSED, _A_OFFLOADED = 15, 16, 17
_ACC = 18


def kernel_params(config: EdgeConfig) -> npt.NDArray[np.float64]:
    """The config's scalars in the order the kernel reads them."""
    return np.array([float(getattr(config, name)) for name in _PARAMS], dtype=np.float64)


def scratch_widths(devices: int, servers: int, models: int) -> tuple[int, int]:
    """Columns of the per-environment float64 and int64 scratch rows of `env_step`."""
    parts = devices * servers
    return devices * _ACC + 2 * parts + models, 2 * parts + models + devices


def env_step(  # noqa: C901
    b: int,
    now: float,
    p: npt.NDArray[np.float64],
    policy: int,
    curves: npt.NDArray[np.float64],
    topology: tuple[Floats, Floats, Floats, Floats, Floats, Floats],
    tasks: tuple[Ints, Floats, Floats, Floats, Floats, Floats, int],
    action: tuple[Floats, Bools],
    state: tuple[Bools, Floats, Floats, Floats, Floats, Floats, Floats, Bools, Floats, Bools, Ints, Floats],
    out: Floats,
    fl: npt.NDArray[np.float64],
    it: Ints,
) -> None:
    """One step of environment `b`, in place: THE body of both kernels (issue 21). Plain Python in the
    subset that numba compiles for the CPU (`step_kernel`, environments in parallel) and for CUDA
    (`cuda_step`, one thread per environment): scalars and element indexing only, no allocation, the
    environment's scratch passed in (fl [F] float64, it [G] int64, `scratch_widths`).

    The arrays come in four tuples (numba inlines a call of at most about 25 arguments):
    topology = (device_freq [B, M], model_size [B, I], server_quality [B, N], server_freq [B, N], up_rate
    [B, M, N], down_rate [B, M, N]); tasks = (model, size, density, deadline, demand [B, M], evict_keys
    [B, M, N, I] or [1, 1, 1, I], has_keys 1 or 0); action = (split [B, M, N + 2], download [B, M]);
    state = (cached, free_memory [B, N], loaded_at, last_used, frequency, context, context_time, resident
    [B, N, I] except free_memory, pending_time [B, N, L], pending_cached [B, N, L, I], pending_count [B, N],
    busy_until [B, N]). curves [I, 3] (a0, a1, alpha); out [B, M, OUTPUT_COLUMNS] in BREAKDOWN_KEYS order.

    The step's parts are served in the order (arrival, device, server): each server's FIFO order. Of a
    task's equally slow parts the first server's is reported, as the reference does.
    """
    device_freq, model_size, server_quality, server_freq, up_rate, down_rate = topology
    model, size, density, deadline, demand, evict_keys, has_keys = tasks
    split, download = action
    (
        cached,
        free_memory,
        loaded_at,
        last_used,
        frequency,
        context,
        context_time,
        resident,
        pending_time,
        pending_cached,
        pending_count,
        busy_until,
    ) = state
    devices = model.shape[1]
    servers = cached.shape[1]
    models = cached.shape[2]
    device_kappa = p[0]
    cloud_rate = p[1]
    wan = p[2]
    cloud_freq = p[3]
    output_bits = p[4]
    device_power = p[5]
    cloud_energy = p[6]
    light_q = p[7]
    cloud_q = p[8]
    memory = p[9]
    load_bps = p[10]
    backhaul_power = p[11]
    load_power = p[12]
    server_kappa = p[13]
    backhaul_bps = p[14]
    cycles_per_demand = p[15]
    step_s = p[16]
    decay = p[17]
    forwards = p[18] > 0.5
    caches = policy != 5
    view_time = now + step_s
    log_decay = math.log(decay)
    parts_max = devices * servers
    # Scratch layout. floats: per-task edge totals [M x _ACC], part arrivals, part uploads, eviction scores;
    # ints: part device, part server, eviction order, does task m have an edge part.
    arrivals0 = devices * _ACC
    uploads0 = arrivals0 + parts_max
    scores0 = uploads0 + parts_max
    part_n0 = parts_max
    order0 = 2 * parts_max
    edge0 = order0 + models
    # Every part of the step in order of (arrival, device, server): each server's FIFO order.
    count = 0
    for m in range(devices):
        it[edge0 + m] = 0
        for n in range(servers):
            s = split[b, m, n + 1]
            if s <= 0:
                continue
            if it[edge0 + m] == 0:
                it[edge0 + m] = 1
                for k in range(_ACC):
                    fl[m * _ACC + k] = 0.0
                fl[m * _ACC + _A_SLOW] = -1.0
            t_up = s * size[b, m] / up_rate[b, m, n]
            arrival = now + t_up
            q = count - 1
            while q >= 0 and fl[arrivals0 + q] > arrival:
                fl[arrivals0 + q + 1] = fl[arrivals0 + q]
                fl[uploads0 + q + 1] = fl[uploads0 + q]
                it[q + 1] = it[q]
                it[part_n0 + q + 1] = it[part_n0 + q]
                q -= 1
            fl[arrivals0 + q + 1] = arrival
            fl[uploads0 + q + 1] = t_up
            it[q + 1] = m
            it[part_n0 + q + 1] = n
            count += 1
    for k in range(count):
        m = it[k]
        n = it[part_n0 + k]
        arrival = fl[arrivals0 + k]
        t_up = fl[uploads0 + k]
        a0 = m * _ACC  # this task's edge totals in fl
        s = split[b, m, n + 1]
        x = size[b, m]
        rho = density[b, m]
        i = model[b, m]
        size_i = model_size[b, i]
        t_down = s * output_bits / down_rate[b, m, n]
        hit = cached[b, n, i]
        fl[a0 + _A_OFFLOADED] = 1.0
        if not hit:
            fl[a0 + _A_MISSED] = 1.0
        fl[a0 + _A_E_UP] += device_power * t_up
        p_wait = 0.0
        p_sw = 0.0
        p_es = 0.0
        p_down = 0.0
        t_part = t_up
        if not hit and not (download[b, m] and caches and size_i <= memory):
            if forwards:  # forwarded over the backhaul and run in the cloud
                fwd = s * x / backhaul_bps + wan + s * x * rho / cloud_freq
                p_down = t_down
                t_part = t_up + fwd + t_down
                fl[a0 + _A_FWD] += fwd
                fl[a0 + _A_E_CLOUD] += cloud_energy * s * x * rho
                fl[a0 + _A_QUALITY] += s * cloud_q
            else:  # the cloud only supplies models: no model, no service
                fl[a0 + _A_FAILED] = 1.0
        else:
            start = max(arrival, busy_until[b, n])
            p_wait = start - arrival
            if not hit:
                need = size_i - free_memory[b, n]
                found = 0
                for j in range(models):
                    if cached[b, n, j]:
                        # Eviction score of model j at `start` (lowest evicted first): FIFO, LRU, LFU, LC or keys.
                        if policy == 1:
                            score = loaded_at[b, n, j]
                        elif policy == 2:
                            score = last_used[b, n, j]
                        elif policy == 3:
                            score = frequency[b, n, j]
                        elif policy == 4:
                            score = context[b, n, j] * decay ** ((start - context_time[b, n, j]) / step_s)
                        else:
                            score = evict_keys[b * has_keys, m * has_keys, n * has_keys, j]
                        it[order0 + found] = j
                        fl[scores0 + found] = score
                        found += 1
                # Insertion sort by (score, index): what the reference's sorted() does.
                for k2 in range(1, found):
                    key_s = fl[scores0 + k2]
                    key_j = it[order0 + k2]
                    q = k2 - 1
                    while q >= 0 and (fl[scores0 + q] > key_s or (fl[scores0 + q] == key_s and it[order0 + q] > key_j)):
                        fl[scores0 + q + 1] = fl[scores0 + q]
                        it[order0 + q + 1] = it[order0 + q]
                        q -= 1
                    fl[scores0 + q + 1] = key_s
                    it[order0 + q + 1] = key_j
                freed = 0.0
                for k2 in range(found):
                    if freed >= need:
                        break
                    j = it[order0 + k2]
                    cached[b, n, j] = False
                    freed += model_size[b, j]
                    context[b, n, j] = 0.0
                free_memory[b, n] += freed - size_i
                cached[b, n, i] = True
                loaded_at[b, n, i] = start
                last_used[b, n, i] = start
                frequency[b, n, i] = 0.0
                context[b, n, i] = 0.0
                context_time[b, n, i] = start
                # A full buffer (only without `reserve`: the CUDA step with validate=False) replaces its newest
                # snapshot, as the sync-free torch step does: the view may skip a state, no cost changes.
                slot = min(pending_count[b, n], pending_time.shape[2] - 1)
                pending_time[b, n, slot] = start
                for j in range(models):
                    pending_cached[b, n, slot, j] = cached[b, n, j]
                pending_count[b, n] = slot + 1
                p_sw = size_i / backhaul_bps + size_i / load_bps
                fl[a0 + _A_E_SW] += backhaul_power * size_i / backhaul_bps + load_power * size_i / load_bps
            # K decayed to the start, nu ** (age in steps), and a(K); exp/log: faster than ** for fractional powers.
            k_eff = context[b, n, i]
            if k_eff > 0:
                k_eff *= math.exp(log_decay * (start - context_time[b, n, i]) / step_s)
            gain = 0.0
            if curves[i, 1] != 0 and k_eff > 0:
                alpha = curves[i, 2]
                powered = math.sqrt(k_eff) if alpha == 0.5 else math.exp(alpha * math.log(k_eff))
                gain = curves[i, 1] * math.log2(1.0 + powered)
            accuracy = min(1.0, curves[i, 0] + gain)
            context[b, n, i] = k_eff + 1.0
            context_time[b, n, i] = start
            frequency[b, n, i] += 1.0
            last_used[b, n, i] = start
            cycles = s * x * rho + s * demand[b, m] * cycles_per_demand
            f_n = server_freq[b, n]
            p_es = cycles / f_n
            fl[a0 + _A_E_ES] += server_kappa * f_n * f_n * cycles
            finish = start + p_sw + p_es
            busy_until[b, n] = finish
            p_down = t_down
            t_part = finish - now + t_down
            edge_quality = s * accuracy * server_quality[b, n]
            fl[a0 + _A_QUALITY] += edge_quality
            fl[a0 + _A_EDGE_QUALITY] += edge_quality
            fl[a0 + _A_SHARE] += s
        # The slowest part (the first server's of equally slow ones, as the reference reports).
        slowest = fl[a0 + _A_SLOW]
        if t_part > slowest or (t_part == slowest and n < fl[a0 + _A_SLOW_N]):
            fl[a0 + _A_SLOW] = t_part
            fl[a0 + _A_SLOW_N] = n
            fl[a0 + _A_UP] = t_up
            fl[a0 + _A_WAIT] = p_wait
            fl[a0 + _A_SW] = p_sw
            fl[a0 + _A_ES] = p_es
            fl[a0 + _A_DOWN] = p_down
    # Every task: its local and direct cloud parts, its edge parts' totals.
    for m in range(devices):
        x = size[b, m]
        rho = density[b, m]
        s_loc = split[b, m, 0]
        s_cloud = split[b, m, servers + 1]
        f_m = device_freq[b, m]
        work = x * rho + demand[b, m] * cycles_per_demand  # cycles of the whole task, wherever it runs
        t_loc = s_loc * work / f_m
        e_loc = device_kappa * f_m * f_m * s_loc * work
        t_cloud = 0.0
        e_cloud = 0.0
        if s_cloud > 0:
            t_cloud = s_cloud * x / cloud_rate + wan + s_cloud * work / cloud_freq + s_cloud * output_bits / cloud_rate
            e_cloud = device_power * s_cloud * x / cloud_rate + cloud_energy * s_cloud * work
        if it[edge0 + m] == 0:  # no edge part: every edge term is 0
            t_total = max(t_loc, t_cloud)
            out[b, m, _T_UP] = 0.0
            out[b, m, _T_WAIT] = 0.0
            out[b, m, _T_SW] = 0.0
            out[b, m, _T_ES] = 0.0
            out[b, m, _T_DOWN] = 0.0
            out[b, m, _T_LOC] = t_loc
            out[b, m, _T_CLOUD] = t_cloud
            out[b, m, _T] = t_total
            out[b, m, _E_UP] = 0.0
            out[b, m, _E_SW] = 0.0
            out[b, m, _E_ES] = 0.0
            out[b, m, _E_LOC] = e_loc
            out[b, m, _E_CLOUD] = e_cloud
            out[b, m, _E] = e_loc + e_cloud
            out[b, m, _COMPLETED] = 1.0 if t_total <= deadline[b, m] else 0.0
            out[b, m, _HIT] = 0.0
            out[b, m, _OFFLOADED] = 0.0
            out[b, m, _FAILED] = 0.0
            out[b, m, _CRASHED] = 0.0
            out[b, m, _QUALITY] = s_loc * light_q + s_cloud * cloud_q
            out[b, m, _EDGE_SHARE] = 0.0
            out[b, m, _T_FWD] = 0.0
            out[b, m, _EDGE_QUALITY] = 0.0
            continue
        a0 = m * _ACC
        e_cloud += fl[a0 + _A_E_CLOUD]
        t_total = max(max(t_loc, t_cloud), fl[a0 + _A_SLOW])
        e_up = fl[a0 + _A_E_UP]
        e_sw = fl[a0 + _A_E_SW]
        e_es = fl[a0 + _A_E_ES]
        offloaded = fl[a0 + _A_OFFLOADED] > 0.5
        failed = fl[a0 + _A_FAILED] > 0.5
        out[b, m, _T_UP] = fl[a0 + _A_UP]
        out[b, m, _T_WAIT] = fl[a0 + _A_WAIT]
        out[b, m, _T_SW] = fl[a0 + _A_SW]
        out[b, m, _T_ES] = fl[a0 + _A_ES]
        out[b, m, _T_DOWN] = fl[a0 + _A_DOWN]
        out[b, m, _T_LOC] = t_loc
        out[b, m, _T_CLOUD] = t_cloud
        out[b, m, _T] = t_total
        out[b, m, _E_UP] = e_up
        out[b, m, _E_SW] = e_sw
        out[b, m, _E_ES] = e_es
        out[b, m, _E_LOC] = e_loc
        out[b, m, _E_CLOUD] = e_cloud
        out[b, m, _E] = e_loc + e_up + e_sw + e_es + e_cloud
        out[b, m, _COMPLETED] = 1.0 if (t_total <= deadline[b, m] and not failed) else 0.0
        out[b, m, _HIT] = 1.0 if (offloaded and fl[a0 + _A_MISSED] < 0.5) else 0.0
        out[b, m, _OFFLOADED] = 1.0 if offloaded else 0.0
        out[b, m, _FAILED] = 1.0 if failed else 0.0
        out[b, m, _CRASHED] = 0.0
        out[b, m, _QUALITY] = s_loc * light_q + s_cloud * cloud_q + fl[a0 + _A_QUALITY]
        out[b, m, _EDGE_SHARE] = fl[a0 + _A_SHARE]
        out[b, m, _T_FWD] = fl[a0 + _A_FWD]
        out[b, m, _EDGE_QUALITY] = fl[a0 + _A_EDGE_QUALITY]
    # The view: models resident at the next step's time (pending loads that started by then, in order).
    for n in range(servers):
        total = pending_count[b, n]
        applied = 0
        while applied < total and pending_time[b, n, applied] <= view_time:
            applied += 1
        if applied == total:
            for j in range(models):
                resident[b, n, j] = cached[b, n, j]
        elif applied > 0:
            for j in range(models):
                resident[b, n, j] = pending_cached[b, n, applied - 1, j]
        if applied > 0:
            for k in range(total - applied):
                pending_time[b, n, k] = pending_time[b, n, k + applied]
                for j in range(models):
                    pending_cached[b, n, k, j] = pending_cached[b, n, k + applied, j]
            for k in range(total - applied, total):
                pending_time[b, n, k] = math.inf
        pending_count[b, n] = total - applied


env_step_cpu = _compiled(cache=True, inline="always")(env_step)
"""`env_step` compiled by numba for the CPU, inlined into `step_kernel`."""


@_compiled(cache=True, parallel=True)
def step_kernel(
    now: float,
    p: npt.NDArray[np.float64],
    policy: int,
    curves: npt.NDArray[np.float64],
    device_freq: Floats,
    model_size: Floats,
    server_quality: Floats,
    server_freq: Floats,
    up_rate: Floats,
    down_rate: Floats,
    model: Ints,
    size: Floats,
    density: Floats,
    deadline: Floats,
    demand: Floats,
    evict_keys: Floats,
    has_keys: int,
    split: Floats,
    download: Bools,
    cached: Bools,
    free_memory: Floats,
    loaded_at: Floats,
    last_used: Floats,
    frequency: Floats,
    context: Floats,
    context_time: Floats,
    resident: Bools,
    pending_time: Floats,
    pending_cached: Bools,
    pending_count: Ints,
    busy_until: Floats,
    out: Floats,
) -> None:
    """One step of every environment on the CPU, in place, environments in parallel (`env_step` each)."""
    batch, devices = model.shape
    servers = cached.shape[1]
    models = cached.shape[2]
    parts = devices * servers
    for b in numba.prange(batch):
        # Scratch per environment, freshly allocated: small and hot in the core's cache (one [B, F] block, cold,
        # halved the speed).
        fl = np.empty(devices * _ACC + 2 * parts + models, dtype=np.float64)
        it = np.empty(2 * parts + models + devices, dtype=np.int64)
        env_step_cpu(
            b,
            now,
            p,
            policy,
            curves,
            (device_freq, model_size, server_quality, server_freq, up_rate, down_rate),
            (model, size, density, deadline, demand, evict_keys, has_keys),
            (split, download),
            (
                cached,
                free_memory,
                loaded_at,
                last_used,
                frequency,
                context,
                context_time,
                resident,
                pending_time,
                pending_cached,
                pending_count,
                busy_until,
            ),
            out,
            fl,
            it,
        )


@_compiled(cache=True)
def split_problem(split: Floats, cloud_execution: bool) -> int:
    """What is wrong with a split [B, M, N + 2]: 0 nothing, 1 a negative share, 2 a row not summing to 1 (within
    1e-6 + 1e-5, torch.allclose's tolerance), 3 a cloud share without cloud execution."""
    batch, devices, columns = split.shape
    unsummed = clouded = False
    for b in range(batch):
        for m in range(devices):
            total = 0.0
            for k in range(columns):
                value = split[b, m, k]
                if value < 0:
                    return 1
                total += value
            unsummed |= not abs(total - 1.0) <= 1.1e-5
            clouded |= not cloud_execution and split[b, m, columns - 1] > 0
    return 2 if unsummed else 3 if clouded else 0


def greedy_env(b: int, cached: Bools, model: Ints, distance: Floats, split: Floats) -> None:
    """Seed 002's Greedy for environment `b`: each task whole to the nearest server holding its model, else
    local. The body of both greedy kernels (CPU and CUDA).

    cached [B, N, I] bool, model [B, M], distance [B, M, N]; writes split [B, M, N + 2] (zeroed here).
    """
    devices = model.shape[1]
    servers = cached.shape[1]
    for m in range(devices):
        for k in range(servers + 2):
            split[b, m, k] = 0.0
        best = math.inf
        column = 0
        for n in range(servers):
            if cached[b, n, model[b, m]] and distance[b, m, n] < best:
                best = distance[b, m, n]
                column = n + 1
        split[b, m, column] = 1.0


greedy_env_cpu = _compiled(cache=True, inline="always")(greedy_env)


@_compiled(cache=True, parallel=True)
def greedy_kernel(cached: Bools, model: Ints, distance: Floats, split: Floats) -> None:
    """Seed 002's Greedy on the CPU, environments in parallel (`greedy_env` each)."""
    for b in numba.prange(model.shape[0]):
        greedy_env_cpu(b, cached, model, distance, split)
