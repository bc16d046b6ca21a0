"""A compiled CPU kernel of one engine step (numba), for FIFO servers.

The torch engine serves the parts of a step one arrival rank at a time with a few dozen small
tensor operations each, and on a CPU the per-operation overhead, not the arithmetic, sets its
speed. This kernel runs the same cost model (`offload_core.reference` is the definition) as
compiled loops: environments in parallel; in each, the step's parts sorted by (arrival, device,
server), which is every server's FIFO order, then every task's totals. It reads and updates the
engine's state tensors in place through zero-copy NumPy views, and also checks actions
(`split_problem`). Servers with an ASP capacity (crash semantics) stay on the torch path.
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


@_compiled(cache=True, inline="always")
def _score(
    policy: int,
    j: int,
    at: float,
    step_s: float,
    decay: float,
    loaded_at: Floats,
    last_used: Floats,
    frequency: Floats,
    context: Floats,
    context_time: Floats,
    keys: Floats,
) -> float:
    """Eviction score of model j on one server at time `at` (lowest evicted first).  Arrays: [I]"""
    if policy == 1:
        return float(loaded_at[j])
    if policy == 2:
        return float(last_used[j])
    if policy == 3:
        return float(frequency[j])
    if policy == 4:
        return float(context[j] * decay ** ((at - context_time[j]) / step_s))
    return float(keys[j])


@_compiled(cache=True, parallel=True)
def step_kernel(  # noqa: C901
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
    """One step of every environment, in place.  out: [B, M, OUTPUT_COLUMNS] in BREAKDOWN_KEYS order.

    Shapes: curves [I, 3] (a0, a1, alpha); device_freq [B, M]; model_size [B, I]; server_quality,
    server_freq [B, N]; up_rate, down_rate [B, M, N]; model, size, density, deadline, demand [B, M];
    evict_keys [B, M, N, I] (or [1, 1, 1, I] with has_keys 0); split [B, M, N + 2]; download [B, M];
    cached, loaded_at, last_used, frequency, context, context_time, resident [B, N, I]; pending_time
    [B, N, L]; pending_cached [B, N, L, I]; pending_count, free_memory, busy_until [B, N].

    The step's parts are served in the order (arrival, device, server): each server's FIFO order. Of a
    task's equally slow parts the first server's is reported, as the reference does.
    """
    batch, devices = model.shape
    servers = cached.shape[1]
    models = cached.shape[2]
    (
        device_kappa,
        cloud_rate,
        wan,
        cloud_freq,
        output_bits,
        device_power,
        cloud_energy,
        light_q,
        cloud_q,
        memory,
        load_bps,
        backhaul_power,
        load_power,
        server_kappa,
        backhaul_bps,
        cycles_per_demand,
        step_s,
        decay,
        cloud_execution,
    ) = (
        p[0],
        p[1],
        p[2],
        p[3],
        p[4],
        p[5],
        p[6],
        p[7],
        p[8],
        p[9],
        p[10],
        p[11],
        p[12],
        p[13],
        p[14],
        p[15],
        p[16],
        p[17],
        p[18],
    )
    forwards = cloud_execution > 0.5
    caches = policy != 5
    view_time = now + step_s
    log_decay = math.log(decay)
    parts_max = devices * servers
    for b in numba.prange(batch):
        # Scratch (two allocations per environment): per-task edge totals, the step's parts, eviction order.
        floats = np.empty(devices * _ACC + 2 * parts_max + models, dtype=np.float64)
        ints = np.empty(2 * parts_max + models + devices, dtype=np.int64)
        acc = floats[: devices * _ACC].reshape((devices, _ACC))
        arrivals = floats[devices * _ACC : devices * _ACC + parts_max]
        uploads = floats[devices * _ACC + parts_max : devices * _ACC + 2 * parts_max]
        scores = floats[devices * _ACC + 2 * parts_max :]
        part_m = ints[:parts_max]
        part_n = ints[parts_max : 2 * parts_max]
        order = ints[2 * parts_max : 2 * parts_max + models]
        edge = ints[2 * parts_max + models :]  # does task m have an edge part (its acc row is then in use)
        # Every part of the step in order of (arrival, device, server): each server's FIFO order.
        count = 0
        for m in range(devices):
            edge[m] = 0
            for n in range(servers):
                s = split[b, m, n + 1]
                if s <= 0:
                    continue
                if edge[m] == 0:
                    edge[m] = 1
                    for k in range(_ACC):
                        acc[m, k] = 0.0
                    acc[m, _A_SLOW] = -1.0
                t_up = s * size[b, m] / up_rate[b, m, n]
                arrival = now + t_up
                q = count - 1
                while q >= 0 and arrivals[q] > arrival:
                    arrivals[q + 1] = arrivals[q]
                    uploads[q + 1] = uploads[q]
                    part_m[q + 1] = part_m[q]
                    part_n[q + 1] = part_n[q]
                    q -= 1
                arrivals[q + 1] = arrival
                uploads[q + 1] = t_up
                part_m[q + 1] = m
                part_n[q + 1] = n
                count += 1
        for k in range(count):
            m = part_m[k]
            n = part_n[k]
            arrival = arrivals[k]
            t_up = uploads[k]
            s = split[b, m, n + 1]
            x = size[b, m]
            rho = density[b, m]
            i = model[b, m]
            size_i = model_size[b, i]
            t_down = s * output_bits / down_rate[b, m, n]
            hit = cached[b, n, i]
            acc[m, _A_OFFLOADED] = 1.0
            if not hit:
                acc[m, _A_MISSED] = 1.0
            acc[m, _A_E_UP] += device_power * t_up
            p_wait = p_sw = p_es = p_down = 0.0
            t_part = t_up
            if not hit and not (download[b, m] and caches and size_i <= memory):
                if forwards:  # forwarded over the backhaul and run in the cloud
                    fwd = s * x / backhaul_bps + wan + s * x * rho / cloud_freq
                    p_down = t_down
                    t_part = t_up + fwd + t_down
                    acc[m, _A_FWD] += fwd
                    acc[m, _A_E_CLOUD] += cloud_energy * s * x * rho
                    acc[m, _A_QUALITY] += s * cloud_q
                else:  # the cloud only supplies models: no model, no service
                    acc[m, _A_FAILED] = 1.0
            else:
                start = max(arrival, busy_until[b, n])
                p_wait = start - arrival
                if not hit:
                    need = size_i - free_memory[b, n]
                    found = 0
                    for j in range(models):
                        if cached[b, n, j]:
                            order[found] = j
                            scores[found] = _score(
                                policy,
                                j,
                                start,
                                step_s,
                                decay,
                                loaded_at[b, n],
                                last_used[b, n],
                                frequency[b, n],
                                context[b, n],
                                context_time[b, n],
                                evict_keys[b * has_keys, m * has_keys, n * has_keys],
                            )
                            found += 1
                    # Insertion sort by (score, index): what the reference's sorted() does.
                    for k2 in range(1, found):
                        key_s = scores[k2]
                        key_j = order[k2]
                        q = k2 - 1
                        while q >= 0 and (scores[q] > key_s or (scores[q] == key_s and order[q] > key_j)):
                            scores[q + 1] = scores[q]
                            order[q + 1] = order[q]
                            q -= 1
                        scores[q + 1] = key_s
                        order[q + 1] = key_j
                    freed = 0.0
                    for k2 in range(found):
                        if freed >= need:
                            break
                        j = order[k2]
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
                    slot = pending_count[b, n]
                    pending_time[b, n, slot] = start
                    for j in range(models):
                        pending_cached[b, n, slot, j] = cached[b, n, j]
                    pending_count[b, n] = slot + 1
                    p_sw = size_i / backhaul_bps + size_i / load_bps
                    acc[m, _A_E_SW] += backhaul_power * size_i / backhaul_bps + load_power * size_i / load_bps
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
                acc[m, _A_E_ES] += server_kappa * f_n * f_n * cycles
                finish = start + p_sw + p_es
                busy_until[b, n] = finish
                p_down = t_down
                t_part = finish - now + t_down
                edge_quality = s * accuracy * server_quality[b, n]
                acc[m, _A_QUALITY] += edge_quality
                acc[m, _A_EDGE_QUALITY] += edge_quality
                acc[m, _A_SHARE] += s
            # The slowest part (the first server's of equally slow ones, as the reference reports).
            if t_part > acc[m, _A_SLOW] or (t_part == acc[m, _A_SLOW] and n < acc[m, _A_SLOW_N]):
                acc[m, _A_SLOW] = t_part
                acc[m, _A_SLOW_N] = n
                acc[m, _A_UP] = t_up
                acc[m, _A_WAIT] = p_wait
                acc[m, _A_SW] = p_sw
                acc[m, _A_ES] = p_es
                acc[m, _A_DOWN] = p_down
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
            row = out[b, m]
            if edge[m] == 0:  # no edge part: every edge term is 0
                row[_T_UP] = row[_T_WAIT] = row[_T_SW] = row[_T_ES] = row[_T_DOWN] = 0.0
                row[_T_LOC], row[_T_CLOUD], row[_T] = t_loc, t_cloud, max(t_loc, t_cloud)
                row[_E_UP] = row[_E_SW] = row[_E_ES] = 0.0
                row[_E_LOC], row[_E_CLOUD], row[_E] = e_loc, e_cloud, e_loc + e_cloud
                row[_COMPLETED] = 1.0 if max(t_loc, t_cloud) <= deadline[b, m] else 0.0
                row[_HIT] = row[_OFFLOADED] = row[_FAILED] = row[_CRASHED] = 0.0
                row[_QUALITY] = s_loc * light_q + s_cloud * cloud_q
                row[_EDGE_SHARE] = row[_T_FWD] = row[_EDGE_QUALITY] = 0.0
                continue
            a = acc[m]
            e_cloud += a[_A_E_CLOUD]
            t_total = max(t_loc, t_cloud, a[_A_SLOW])
            e_total = e_loc + a[_A_E_UP] + a[_A_E_SW] + a[_A_E_ES] + e_cloud
            offloaded = a[_A_OFFLOADED] > 0.5
            failed = a[_A_FAILED] > 0.5
            row[_T_UP], row[_T_WAIT], row[_T_SW], row[_T_ES], row[_T_DOWN] = a[_A_UP], a[_A_WAIT], a[_A_SW], a[_A_ES], a[_A_DOWN]
            row[_T_LOC], row[_T_CLOUD], row[_T] = t_loc, t_cloud, t_total
            row[_E_UP], row[_E_SW], row[_E_ES] = a[_A_E_UP], a[_A_E_SW], a[_A_E_ES]
            row[_E_LOC], row[_E_CLOUD], row[_E] = e_loc, e_cloud, e_total
            row[_COMPLETED] = 1.0 if (t_total <= deadline[b, m] and not failed) else 0.0
            row[_HIT] = 1.0 if (offloaded and a[_A_MISSED] < 0.5) else 0.0
            row[_OFFLOADED] = 1.0 if offloaded else 0.0
            row[_FAILED] = 1.0 if failed else 0.0
            row[_CRASHED] = 0.0
            row[_QUALITY] = s_loc * light_q + s_cloud * cloud_q + a[_A_QUALITY]
            row[_EDGE_SHARE] = a[_A_SHARE]
            row[_T_FWD] = a[_A_FWD]
            row[_EDGE_QUALITY] = a[_A_EDGE_QUALITY]
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
                    pending_time[b, n, k] = np.inf
            pending_count[b, n] = total - applied


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


@_compiled(cache=True, parallel=True)
def greedy_kernel(cached: Bools, model: Ints, distance: Floats, split: Floats) -> None:
    """Seed 002's Greedy: each task whole to the nearest server holding its model, else local.

    cached [B, N, I] bool, model [B, M], distance [B, M, N]; writes split [B, M, N + 2] (zeroed here).
    """
    batch, devices = model.shape
    servers = cached.shape[1]
    for b in numba.prange(batch):
        for m in range(devices):
            for k in range(servers + 2):
                split[b, m, k] = 0.0
            best = np.inf
            column = 0
            for n in range(servers):
                if cached[b, n, model[b, m]] and distance[b, m, n] < best:
                    best = distance[b, m, n]
                    column = n + 1
            split[b, m, column] = 1.0
