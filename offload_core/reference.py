"""The cost model in plain Python, one task at a time: the readable definition of the engine.

`ScalarEdge` simulates one environment. The batched engine (`offload_core.engine`) must give the
same per-task breakdown on the same topology, task stream and actions; tests hold them equal.

Per step (time t = step * step_s), tasks are handled in device order m = 0..M-1. A task's action
splits it over {local, server 1..N, cloud}; every part runs in parallel ([Zeng 2025]), so the task's
latency is the slowest part's and its energy the sum over parts (docs/cost-model.md).
A part placed on server n:
  - uplink T_up = s x / r_mn, E_up = p_m T_up;
  - if the model is cached: run it; else, if the action asks to download and the policy caches,
    load it (T_sw = X/r_cn + X/load_bw, evicting by the policy until it fits); if it can never fit,
    the part fails; if no download (or the cloud-only policy), the server forwards it to the cloud;
  - ASP semantics: a part whose demand exceeds the server's free capacity crashes the server,
    which drops every task it was running (they count as lost) and the part fails;
  - FIFO queue: T_wait = max(0, busy_until - arrival) (ASPs with a capacity run concurrently: no wait);
    T_es = cycles / f_n, E_es = kappa f_n^2 cycles;
  - result return T_down = s y_out / r_nm.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from offload_core.config import EdgeConfig
from offload_core.names import CachingPolicy
from offload_core.result import BREAKDOWN_KEYS as BREAKDOWN_KEYS  # noqa: F401  (the breakdown's names, re-exported)
from offload_core.scenario import Topology


@dataclass
class ScalarTopology:
    device_freq: list[float]
    model_size: list[float]
    server_capacity: list[float]
    server_quality: list[float]
    up_rate: list[list[float]]  # [M][N]
    down_rate: list[list[float]]  # [M][N]
    server_freq: list[float] | None = None  # [N] Hz; None: config.server_freq_hz for every server

    @classmethod
    def of(cls, top: Topology, b: int) -> ScalarTopology:
        """Environment `b` of a batched topology, as plain lists (to run the reference beside the engine)."""
        return cls(
            top.device_freq[b].tolist(),
            top.model_size[b].tolist(),
            top.server_capacity[b].tolist(),
            top.server_quality[b].tolist(),
            top.up_rate[b].tolist(),
            top.down_rate[b].tolist(),
            top.server_freq[b].tolist(),
        )


@dataclass
class ScalarTask:
    model: int
    size: float
    density: float
    deadline: float
    demand: float
    evict_keys: list[list[float]] | None = None  # [N][I]


@dataclass
class ServerState:
    """One edge server: its queue, GPU memory and cached models' bookkeeping."""

    busy_until: float = 0.0
    free_memory: float = 0.0
    cached: list[bool] = field(default_factory=list)
    loaded_at: list[float] = field(default_factory=list)
    last_used: list[float] = field(default_factory=list)
    frequency: list[float] = field(default_factory=list)
    context: list[float] = field(default_factory=list)
    context_time: list[float] = field(default_factory=list)
    running: list[tuple[float, float, float, float]] = field(default_factory=list)  # (finish, demand, quality, share)


def in_context_accuracy(config: EdgeConfig, k: float) -> float:
    """a(K) = a0 + a1 log2(1 + K^alpha), capped at 1 [Xu 2023, Fig. 4]."""
    return min(1.0, config.accuracy_zero_shot + config.accuracy_gain * math.log2(1.0 + k**config.accuracy_alpha))


class ScalarEdge:
    """One environment, simulated task by task."""

    def __init__(
        self,
        config: EdgeConfig,
        topology: ScalarTopology,
        policy: CachingPolicy | str,
        initial_cache: list[list[bool]] | None = None,
    ) -> None:
        self.config = config
        self.topology = topology
        self.policy = policy
        self.caches = policy != CachingPolicy.CLOUD  # the cloud-only policy never loads a model
        n_models = config.n_models
        self.servers = [
            ServerState(
                free_memory=config.server_memory_bits,
                cached=[False] * n_models,
                loaded_at=[0.0] * n_models,
                last_used=[0.0] * n_models,
                frequency=[0.0] * n_models,
                context=[0.0] * n_models,
                context_time=[0.0] * n_models,
            )
            for _ in range(config.n_servers)
        ]
        for n, cached in enumerate(initial_cache or []):
            for j, present in enumerate(cached):
                if present:
                    self.servers[n].cached[j] = True
                    self.servers[n].free_memory -= topology.model_size[j]
        self.time = 0.0
        self.steps = 0
        self.dropped = 0.0  # task shares lost in crashes
        self.dropped_quality = 0.0

    def step(self, tasks: list[ScalarTask], splits: list[list[float]], downloads: list[bool]) -> list[dict[str, float]]:
        """Handle one task per device at time step * step_s; returns one breakdown per task.

        Each breakdown is {name: value} over BREAKDOWN_KEYS, the field names of the engine's
        StepResult (flags as 0.0 or 1.0), so the two are compared term by term by name."""
        self.time = self.steps * self.config.step_s
        results = [self._task(m, task, splits[m], downloads[m]) for m, task in enumerate(tasks)]
        self.steps += 1
        return results

    # -- one task -------------------------------------------------------------------------------

    def _task(self, m: int, task: ScalarTask, split: list[float], download: bool) -> dict[str, float]:
        c, top = self.config, self.topology
        n_servers = c.n_servers
        x, rho = task.size, task.density
        s_loc, s_cloud = split[0], split[n_servers + 1]
        f_m = top.device_freq[m]

        t_loc = s_loc * x * rho / f_m
        e_loc = c.device_kappa * f_m**2 * s_loc * x * rho
        t_cloud = e_cloud = 0.0
        if s_cloud > 0:
            t_cloud = (
                s_cloud * x / c.cloud_rate_bps
                + c.wan_latency_s
                + s_cloud * x * rho / c.cloud_freq_hz
                + s_cloud * c.output_bits / c.cloud_rate_bps
            )
            e_cloud = c.device_power_w * s_cloud * x / c.cloud_rate_bps + c.cloud_energy_per_cycle_j * s_cloud * x * rho
        quality = s_loc * c.light_quality + s_cloud * c.cloud_quality

        out = {"T_up": 0.0, "T_wait": 0.0, "T_sw": 0.0, "T_es": 0.0, "T_down": 0.0}
        e_up = e_sw = e_es = 0.0
        slowest = -1.0
        failed = crashed = False
        any_edge = False
        all_hit = True
        edge_share = 0.0
        for n in range(n_servers):
            s = split[n + 1]
            if s <= 0:
                continue
            any_edge = True
            part = self._edge_part(m, n, s, task, download)
            e_up += part["E_up"]
            e_sw += part["E_sw"]
            e_es += part["E_es"]
            e_cloud += part["E_cloud"]
            quality += part["quality"]
            failed |= part["failed"]
            crashed |= part["crashed"]
            all_hit &= part["hit"]
            edge_share += part["edge_share"]
            if part["T"] > slowest:
                slowest = part["T"]
                for key in out:
                    out[key] = part[key]
        t_total = max(t_loc, t_cloud, slowest)
        e_total = e_loc + e_up + e_sw + e_es + e_cloud
        ok = (t_total <= task.deadline) and not failed and not crashed
        return {
            **out,
            "T_loc": t_loc,
            "T_cloud": t_cloud,
            "T": t_total,
            "E_up": e_up,
            "E_sw": e_sw,
            "E_es": e_es,
            "E_loc": e_loc,
            "E_cloud": e_cloud,
            "E": e_total,
            "completed": float(ok),
            "model_hit": float(any_edge and all_hit),
            "offloaded": float(any_edge),
            "failed": float(failed),
            "crashed": float(crashed),
            "quality": quality,
            "edge_share": edge_share,
        }

    def _edge_part(self, m: int, n: int, s: float, task: ScalarTask, download: bool) -> dict[str, Any]:
        """One part on server n: its terms (floats) and flags (failed, crashed, hit: bools)."""
        c, top, server = self.config, self.topology, self.servers[n]
        x, rho, i = task.size, task.density, task.model
        size = top.model_size[i]
        t_up = s * x / top.up_rate[m][n]
        e_up = c.device_power_w * t_up
        t_down = s * c.output_bits / top.down_rate[m][n]
        part = {
            "T_up": t_up,
            "T_wait": 0.0,
            "T_sw": 0.0,
            "T_es": 0.0,
            "T_down": 0.0,
            "E_up": e_up,
            "E_sw": 0.0,
            "E_es": 0.0,
            "E_cloud": 0.0,
            "quality": 0.0,
            "failed": False,
            "crashed": False,
            "hit": server.cached[i],
            "edge_share": 0.0,
            "T": t_up,
        }
        if not server.cached[i] and not (download and self.caches):
            # Forwarded over the backhaul and run in the cloud.
            part["T_down"] = t_down
            part["T"] = t_up + s * x / c.backhaul_bps + c.wan_latency_s + s * x * rho / c.cloud_freq_hz + t_down
            part["E_cloud"] = c.cloud_energy_per_cycle_j * s * x * rho
            part["quality"] = s * c.cloud_quality
            return part
        if not server.cached[i] and size > c.server_memory_bits:
            part["failed"] = True
            return part

        arrival = self.time + t_up
        demand = s * task.demand
        if math.isfinite(top.server_capacity[n]):
            server.running = [r for r in server.running if r[0] > arrival]
            occupied = sum(r[1] for r in server.running)
            if demand > top.server_capacity[n] - occupied:
                self.dropped += sum(r[3] for r in server.running)
                self.dropped_quality += sum(r[2] for r in server.running)
                server.running = []
                server.busy_until = arrival
                part["crashed"] = True
                return part

        if not server.cached[i]:
            self._load(server, i, size, task, n)
            part["T_sw"] = size / c.model_download_bps + size / c.load_bps
            part["E_sw"] = c.backhaul_power_w * size / c.model_download_bps + c.load_power_w * size / c.load_bps
        accuracy = self._use(server, i)
        cycles = s * x * rho + demand * c.cycles_per_demand
        concurrent = math.isfinite(top.server_capacity[n])  # ASPs run tasks side by side, no queue
        part["T_wait"] = 0.0 if concurrent else max(0.0, server.busy_until - arrival)
        f_n = top.server_freq[n] if top.server_freq is not None else c.server_freq_hz
        part["T_es"] = cycles / f_n
        part["E_es"] = c.server_kappa * f_n**2 * cycles
        finish = arrival + part["T_wait"] + part["T_sw"] + part["T_es"]
        if not concurrent:
            server.busy_until = finish
        part["T_down"] = t_down
        part["T"] = finish - self.time + t_down
        part["quality"] = s * accuracy * top.server_quality[n]
        part["edge_share"] = s
        if concurrent:
            server.running.append((finish, demand, part["quality"], s))
        return part

    # -- caching --------------------------------------------------------------------------------

    def _decayed_context(self, server: ServerState, j: int) -> float:
        age = (self.time - server.context_time[j]) / self.config.step_s
        decayed: float = self.config.context_decay**age
        return server.context[j] * decayed

    def _eviction_score(self, server: ServerState, j: int, task: ScalarTask, n: int) -> float:
        if self.policy == CachingPolicy.FIFO:
            return server.loaded_at[j]
        if self.policy == CachingPolicy.LRU:
            return server.last_used[j]
        if self.policy == CachingPolicy.LFU:
            return server.frequency[j]
        if self.policy == CachingPolicy.LC:
            return self._decayed_context(server, j)
        assert task.evict_keys is not None, "the random policy needs evict_keys"
        return task.evict_keys[n][j]

    def _load(self, server: ServerState, i: int, size: float, task: ScalarTask, n: int) -> None:
        need = size - server.free_memory
        candidates = sorted(
            (j for j in range(self.config.n_models) if server.cached[j]),
            key=lambda j: (self._eviction_score(server, j, task, n), j),
        )
        freed = 0.0
        for j in candidates:
            if freed >= need:
                break
            server.cached[j] = False
            freed += self.topology.model_size[j]
            server.context[j] = 0.0
        server.free_memory += freed - size
        server.cached[i] = True
        server.loaded_at[i] = self.time
        server.last_used[i] = self.time
        server.frequency[i] = 0.0
        server.context[i] = 0.0
        server.context_time[i] = self.time

    def _use(self, server: ServerState, i: int) -> float:
        """Record one use of cached model i; returns its in-context accuracy for this task."""
        k = self._decayed_context(server, i)
        accuracy = in_context_accuracy(self.config, k)
        server.context[i] = k + 1.0
        server.context_time[i] = self.time
        server.frequency[i] += 1.0
        server.last_used[i] = self.time
        return accuracy
