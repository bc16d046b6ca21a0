"""A compiled CPU kernel of one engine step (numba), for FIFO servers.

The torch engine handles the tasks of a step one device at a time with a few dozen small tensor
operations each, and on a CPU the per-operation overhead, not the arithmetic, sets its speed. This
kernel runs the same cost model (`offload_core.reference` is the definition) as compiled loops:
environments in parallel, each environment's tasks in device order. It reads and updates the
engine's state tensors in place through zero-copy NumPy views. Servers with an ASP capacity
(crash semantics) stay on the torch path.
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
    "model_download_bps",
    "load_bps",
    "backhaul_power_w",
    "load_power_w",
    "server_kappa",
    "backhaul_bps",
    "cycles_per_demand",
    "step_s",
    "context_decay",
    "accuracy_zero_shot",
    "accuracy_gain",
    "accuracy_alpha",
)


def kernel_params(config: EdgeConfig) -> npt.NDArray[np.float64]:
    """The config's scalars in the order the kernel reads them."""
    return np.array([float(getattr(config, name)) for name in _PARAMS], dtype=np.float64)


@_compiled(cache=True, inline="always")
def _score(
    policy: int,
    j: int,
    now: float,
    step_s: float,
    decay: float,
    loaded_at: Floats,
    last_used: Floats,
    frequency: Floats,
    context: Floats,
    context_time: Floats,
    keys: Floats,
) -> float:
    """Eviction score of model j on one server (lowest evicted first).  Arrays: [I]"""
    if policy == 1:
        return float(loaded_at[j])
    if policy == 2:
        return float(last_used[j])
    if policy == 3:
        return float(frequency[j])
    if policy == 4:
        return float(context[j] * decay ** ((now - context_time[j]) / step_s))
    return float(keys[j])


@_compiled(cache=True, parallel=True)
def step_kernel(
    now: float,
    p: npt.NDArray[np.float64],
    policy: int,  # noqa: C901
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
    busy_until: Floats,
    out: Floats,
) -> None:
    """One step of every environment, in place.  out: [B, M, 21] in BREAKDOWN_KEYS order.

    Shapes: device_freq [B, M]; model_size [B, I]; server_quality, server_freq [B, N]; up_rate,
    down_rate [B, M, N]; model, size, density, deadline, demand [B, M]; evict_keys [B, M, N, I] (or
    [1, 1, 1, I] with has_keys 0); split [B, M, N + 2]; download [B, M]; cached, loaded_at, last_used,
    frequency, context, context_time [B, N, I]; free_memory, busy_until [B, N].
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
        download_bps,
        load_bps,
        backhaul_power,
        load_power,
        server_kappa,
        backhaul_bps,
        cycles_per_demand,
        step_s,
        decay,
        a0,
        a1,
        alpha,
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
        p[19],
        p[20],
        p[21],
    )
    for b in numba.prange(batch):
        order = np.empty(models, dtype=np.int64)
        scores = np.empty(models, dtype=np.float64)
        for m in range(devices):
            x = size[b, m]
            rho = density[b, m]
            i = model[b, m]
            s_loc = split[b, m, 0]
            s_cloud = split[b, m, servers + 1]
            f_m = device_freq[b, m]
            t_loc = s_loc * x * rho / f_m
            e_loc = device_kappa * f_m * f_m * s_loc * x * rho
            t_cloud = 0.0
            e_cloud = 0.0
            if s_cloud > 0:
                t_cloud = s_cloud * x / cloud_rate + wan + s_cloud * x * rho / cloud_freq + s_cloud * output_bits / cloud_rate
                e_cloud = device_power * s_cloud * x / cloud_rate + cloud_energy * s_cloud * x * rho
            quality = s_loc * light_q + s_cloud * cloud_q
            o_up = o_wait = o_sw = o_es = o_down = 0.0
            e_up = e_sw = e_es = 0.0
            slowest = -1.0
            failed = False
            any_edge = False
            all_hit = True
            edge_share = 0.0
            size_i = model_size[b, i]
            for n in range(servers):
                s = split[b, m, n + 1]
                if s <= 0:
                    continue
                any_edge = True
                t_up = s * x / up_rate[b, m, n]
                part_e_up = device_power * t_up
                t_down = s * output_bits / down_rate[b, m, n]
                hit = cached[b, n, i]
                all_hit = all_hit and hit
                e_up += part_e_up
                p_wait = p_sw = p_es = p_down = 0.0
                if not hit and not (download[b, m] and policy != 5):
                    p_down = t_down
                    t_part = t_up + s * x / backhaul_bps + wan + s * x * rho / cloud_freq + t_down
                    e_cloud += cloud_energy * s * x * rho
                    quality += s * cloud_q
                elif not hit and size_i > memory:
                    failed = True
                    t_part = t_up
                else:
                    arrival = now + t_up
                    if not hit:
                        need = size_i - free_memory[b, n]
                        count = 0
                        for j in range(models):
                            if cached[b, n, j]:
                                order[count] = j
                                scores[count] = _score(
                                    policy,
                                    j,
                                    now,
                                    step_s,
                                    decay,
                                    loaded_at[b, n],
                                    last_used[b, n],
                                    frequency[b, n],
                                    context[b, n],
                                    context_time[b, n],
                                    evict_keys[b * has_keys, m * has_keys, n * has_keys],
                                )
                                count += 1
                        # Insertion sort by (score, index): what the reference's sorted() does.
                        for k in range(1, count):
                            key_s = scores[k]
                            key_j = order[k]
                            q = k - 1
                            while q >= 0 and (scores[q] > key_s or (scores[q] == key_s and order[q] > key_j)):
                                scores[q + 1] = scores[q]
                                order[q + 1] = order[q]
                                q -= 1
                            scores[q + 1] = key_s
                            order[q + 1] = key_j
                        freed = 0.0
                        for k in range(count):
                            if freed >= need:
                                break
                            j = order[k]
                            cached[b, n, j] = False
                            freed += model_size[b, j]
                            context[b, n, j] = 0.0
                        free_memory[b, n] += freed - size_i
                        cached[b, n, i] = True
                        loaded_at[b, n, i] = now
                        last_used[b, n, i] = now
                        frequency[b, n, i] = 0.0
                        context[b, n, i] = 0.0
                        context_time[b, n, i] = now
                        p_sw = size_i / download_bps + size_i / load_bps
                        e_sw += backhaul_power * size_i / download_bps + load_power * size_i / load_bps
                    k_eff = context[b, n, i] * decay ** ((now - context_time[b, n, i]) / step_s)
                    accuracy = min(1.0, a0 + a1 * math.log2(1.0 + k_eff**alpha))
                    context[b, n, i] = k_eff + 1.0
                    context_time[b, n, i] = now
                    frequency[b, n, i] += 1.0
                    last_used[b, n, i] = now
                    cycles = s * x * rho + s * demand[b, m] * cycles_per_demand
                    f_n = server_freq[b, n]
                    p_wait = max(0.0, busy_until[b, n] - arrival)
                    p_es = cycles / f_n
                    e_es += server_kappa * f_n * f_n * cycles
                    finish = arrival + p_wait + p_sw + p_es
                    busy_until[b, n] = finish
                    p_down = t_down
                    t_part = finish - now + t_down
                    quality += s * accuracy * server_quality[b, n]
                    edge_share += s
                if t_part > slowest:
                    slowest = t_part
                    o_up, o_wait, o_sw, o_es, o_down = t_up, p_wait, p_sw, p_es, p_down
            t_total = max(t_loc, t_cloud, slowest)
            e_total = e_loc + e_up + e_sw + e_es + e_cloud
            row = out[b, m]
            row[0], row[1], row[2], row[3], row[4] = o_up, o_wait, o_sw, o_es, o_down
            row[5], row[6], row[7] = t_loc, t_cloud, t_total
            row[8], row[9], row[10], row[11], row[12], row[13] = e_up, e_sw, e_es, e_loc, e_cloud, e_total
            row[14] = 1.0 if (t_total <= deadline[b, m] and not failed) else 0.0
            row[15] = 1.0 if (any_edge and all_hit) else 0.0
            row[16] = 1.0 if any_edge else 0.0
            row[17] = 1.0 if failed else 0.0
            row[18] = 0.0
            row[19] = quality
            row[20] = edge_share


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
