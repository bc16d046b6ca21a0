"""The cost model in plain Python, one part at a time: the readable definition of the engine.

`ScalarEdge` simulates one environment. The batched engine (`offload_core.engine`) and the compiled
kernel (`offload_core.kernel`) must give the same per-task breakdown on the same topology, task
stream and actions; tests hold them equal. This module is written on its own: it uses none of the
engine's or the caching module's helpers, only the config and the topology's numbers.

One step at time t = step * step_s (docs/cost-model.md):

1. Every task's action splits it over {local, server 1..N, cloud}; every part runs in parallel
   ([Zeng 2025]), so the task's latency is its slowest part's and its energy the sum over parts.
   The local part and a direct cloud part need no shared state.
2. A part on server n uploads (T_up = s x / r_mn) and arrives at A = t + T_up. The parts of the step
   are served in the order (A, device, server): each server serves its parts first come, first served,
   ties by device index. Servers are independent, so one global order is every server's FIFO order.
3. A part whose model is resident on its server (on the server's own timeline: after every part served
   before it) runs there. Otherwise, if the action's download flag is set, the policy caches (not
   `cloud`) and the model fits in the server's memory, the model is loaded; if not, the part is forwarded
   to the cloud when the preset has cloud execution, and fails (costing its upload only) when it has not.
4. A part that runs at server n starts at S = max(A, busy_n) (FIFO; ASP servers with a capacity run
   parts side by side: S = A), waits T_wait = S - A, loads its model if missing (victims evicted at S,
   T_sw = X / r_cn + X / r_load), computes (T_es = cycles / f_n) and returns its result
   (T_down = s y_out / r_nm). The cache's bookkeeping (load time, last use, uses, context) is done at S.
   An ASP server whose free capacity the part's demand exceeds crashes instead (section 6 of the docs).
5. Models occupy memory from the start of their load. What a policy sees of a server's cache (the view,
   `resident`) is the set of models resident at the view's time: after the step, at t + step_s. A load
   whose start lies after that time is kept as a pending snapshot until the view's time reaches it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

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
    """One edge server: its queue, GPU memory, cached models' bookkeeping and what policies see of it."""

    busy_until: float = 0.0
    free_memory: float = 0.0
    cached: list[bool] = field(default_factory=list)  # after every part served so far (the server's timeline)
    loaded_at: list[float] = field(default_factory=list)
    last_used: list[float] = field(default_factory=list)
    frequency: list[float] = field(default_factory=list)
    context: list[float] = field(default_factory=list)
    context_time: list[float] = field(default_factory=list)
    running: list[tuple[float, float, float, float]] = field(default_factory=list)  # (finish, demand, quality, share)
    resident: list[bool] = field(default_factory=list)  # the view: models resident at the view's time
    pending: list[tuple[float, list[bool]]] = field(default_factory=list)  # (load start, cached after it), in order


@dataclass
class Part:
    """One share of a task on one server, and what serving it cost."""

    m: int
    n: int
    share: float
    arrival: float
    T_up: float
    T_wait: float = 0.0
    T_sw: float = 0.0
    T_es: float = 0.0
    T_down: float = 0.0
    T_fwd: float = 0.0
    T: float = 0.0
    E_up: float = 0.0
    E_sw: float = 0.0
    E_es: float = 0.0
    E_cloud: float = 0.0
    quality: float = 0.0
    edge_quality: float = 0.0
    edge_share: float = 0.0
    hit: bool = False
    failed: bool = False
    crashed: bool = False


class ScalarEdge:
    """One environment, simulated part by part."""

    def __init__(
        self,
        config: EdgeConfig,
        topology: ScalarTopology,
        policy: CachingPolicy | str,
        initial_cache: list[list[bool]] | None = None,
    ) -> None:
        """`initial_cache` [N][I]: the models each server holds at time 0 (ignored by the `cloud` policy,
        whose caches start and stay empty)."""
        self.config = config
        self.topology = topology
        self.policy = CachingPolicy(policy)
        if self.policy == CachingPolicy.CLOUD and not config.cloud_execution:
            raise ValueError("policy 'cloud' forwards every part to the cloud: it needs a config with cloud_execution")
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
        if self.policy != CachingPolicy.CLOUD:
            for n, cached in enumerate(initial_cache or []):
                for j, present in enumerate(cached):
                    if present:
                        self.servers[n].cached[j] = True
                        self.servers[n].free_memory -= topology.model_size[j]
        for server in self.servers:
            server.resident = list(server.cached)
        self.time = 0.0
        self.steps = 0
        self.dropped = 0.0  # task shares lost in crashes
        self.dropped_quality = 0.0

    def step(self, tasks: list[ScalarTask], splits: list[list[float]], downloads: list[bool]) -> list[dict[str, float]]:
        """Handle one task per device at time step * step_s; returns one breakdown per task.

        Each breakdown is {name: value} over BREAKDOWN_KEYS, the field names of the engine's
        StepResult (flags as 0.0 or 1.0), so the two are compared term by term by name."""
        c = self.config
        n_servers = c.n_servers
        self.time = self.steps * c.step_s
        if not c.cloud_execution and any(split[n_servers + 1] > 0 for split in splits):
            raise ValueError("action.split has a cloud share, but this config has no cloud execution (cloud_execution)")
        parts = []
        for m, task in enumerate(tasks):
            for n in range(n_servers):
                share = splits[m][n + 1]
                if share > 0:
                    t_up = share * task.size / self.topology.up_rate[m][n]
                    parts.append(Part(m, n, share, self.time + t_up, t_up))
        for part in sorted(parts, key=lambda p: (p.arrival, p.m, p.n)):
            self._serve(part, tasks[part.m], downloads[part.m])
        results = [self._task(m, task, splits[m], [p for p in parts if p.m == m]) for m, task in enumerate(tasks)]
        self.steps += 1
        self._advance_views(self.steps * c.step_s)
        return results

    def resident(self, n: int) -> list[bool]:
        """Which models server n holds at the view's time (what `EngineView.cache` shows)."""
        return list(self.servers[n].resident)

    # -- one task: its local and cloud parts and its edge parts' totals -------------------------

    def _task(self, m: int, task: ScalarTask, split: list[float], parts: list[Part]) -> dict[str, float]:
        c, top = self.config, self.topology
        x, rho = task.size, task.density
        s_loc, s_cloud = split[0], split[c.n_servers + 1]
        f_m = top.device_freq[m]

        work = x * rho + task.demand * c.cycles_per_demand  # cycles of the whole task, wherever it runs
        t_loc = s_loc * work / f_m
        e_loc = c.device_kappa * f_m**2 * s_loc * work
        t_cloud = e_cloud = 0.0
        if s_cloud > 0:
            t_cloud = (
                s_cloud * x / c.cloud_rate_bps
                + c.wan_latency_s
                + s_cloud * work / c.cloud_freq_hz
                + s_cloud * c.output_bits / c.cloud_rate_bps
            )
            e_cloud = c.device_power_w * s_cloud * x / c.cloud_rate_bps + c.cloud_energy_per_cycle_j * s_cloud * work
        quality = s_loc * c.light_quality + s_cloud * c.cloud_quality

        slowest: Part | None = None
        for part in parts:  # in server order: the first of equally slow parts is reported
            if slowest is None or part.T > slowest.T:
                slowest = part
        e_up = sum(p.E_up for p in parts)
        e_sw = sum(p.E_sw for p in parts)
        e_es = sum(p.E_es for p in parts)
        e_cloud += sum(p.E_cloud for p in parts)
        failed = any(p.failed for p in parts)
        crashed = any(p.crashed for p in parts)
        t_total = max(t_loc, t_cloud, slowest.T if slowest is not None else -1.0)
        e_total = e_loc + e_up + e_sw + e_es + e_cloud
        ok = (t_total <= task.deadline) and not failed and not crashed
        return {
            "T_up": slowest.T_up if slowest else 0.0,
            "T_wait": slowest.T_wait if slowest else 0.0,
            "T_sw": slowest.T_sw if slowest else 0.0,
            "T_es": slowest.T_es if slowest else 0.0,
            "T_down": slowest.T_down if slowest else 0.0,
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
            "model_hit": float(bool(parts) and all(p.hit for p in parts)),
            "offloaded": float(bool(parts)),
            "failed": float(failed),
            "crashed": float(crashed),
            "quality": quality + sum(p.quality for p in parts),
            "edge_share": sum(p.edge_share for p in parts),
            "T_fwd": sum(p.T_fwd for p in parts),
            "edge_quality": sum(p.edge_quality for p in parts),
        }

    # -- one part on one server -------------------------------------------------------------------

    def _serve(self, part: Part, task: ScalarTask, download: bool) -> None:
        """Serve `part` on its server at its turn, filling in its terms."""
        c, top = self.config, self.topology
        m, n, s = part.m, part.n, part.share
        server = self.servers[n]
        x, rho, i = task.size, task.density, task.model
        size = top.model_size[i]
        t_down = s * c.output_bits / top.down_rate[m][n]
        part.E_up = c.device_power_w * part.T_up
        part.T = part.T_up
        part.hit = server.cached[i]

        if not server.cached[i]:
            loads = download and self.policy != CachingPolicy.CLOUD and size <= c.server_memory_bits
            if not loads and c.cloud_execution:
                # Forwarded over the backhaul and run in the cloud ([Xu 2023, sec. III-C]).
                part.T_fwd = s * x / c.backhaul_bps + c.wan_latency_s + s * x * rho / c.cloud_freq_hz
                part.T_down = t_down
                part.T = part.T_up + part.T_fwd + t_down
                part.E_cloud = c.cloud_energy_per_cycle_j * s * x * rho
                part.quality = s * c.cloud_quality
                return
            if not loads:
                part.failed = True  # the cloud only supplies models: no model, no service
                return

        concurrent = math.isfinite(top.server_capacity[n])  # an ASP: parts run side by side, no queue
        demand = s * task.demand
        if concurrent:
            server.running = [r for r in server.running if r[0] > part.arrival]
            occupied = sum(r[1] for r in server.running)
            if demand > top.server_capacity[n] - occupied:
                self.dropped += sum(r[3] for r in server.running)
                self.dropped_quality += sum(r[2] for r in server.running)
                server.running = []
                server.busy_until = part.arrival
                part.crashed = True
                return

        start = part.arrival if concurrent else max(part.arrival, server.busy_until)
        part.T_wait = start - part.arrival
        if not server.cached[i]:
            self._load(server, i, size, task, n, start)
            part.T_sw = size / c.backhaul_bps + size / c.load_bps
            part.E_sw = c.backhaul_power_w * size / c.backhaul_bps + c.load_power_w * size / c.load_bps
        accuracy = self._use(server, i, start)
        cycles = s * x * rho + demand * c.cycles_per_demand
        f_n = top.server_freq[n] if top.server_freq is not None else c.server_freq_hz
        part.T_es = cycles / f_n
        part.E_es = c.server_kappa * f_n**2 * cycles
        finish = start + part.T_sw + part.T_es
        if not concurrent:
            server.busy_until = finish
        part.T_down = t_down
        part.T = finish - self.time + t_down
        part.edge_quality = s * accuracy * top.server_quality[n]
        part.quality = part.edge_quality
        part.edge_share = s
        if concurrent:
            server.running.append((finish, demand, part.quality, s))

    # -- caching ----------------------------------------------------------------------------------

    def _context_at(self, server: ServerState, j: int, at: float) -> float:
        """Effective in-context examples of model j at time `at`: K nu ** (age in steps)."""
        age = (at - server.context_time[j]) / self.config.step_s
        decayed: float = self.config.context_decay**age
        return server.context[j] * decayed

    def _eviction_score(self, server: ServerState, j: int, task: ScalarTask, n: int, at: float) -> float:
        if self.policy == CachingPolicy.FIFO:
            return server.loaded_at[j]
        if self.policy == CachingPolicy.LRU:
            return server.last_used[j]
        if self.policy == CachingPolicy.LFU:
            return server.frequency[j]
        if self.policy == CachingPolicy.LC:
            return self._context_at(server, j, at)
        assert task.evict_keys is not None, "the random policy needs evict_keys"
        return task.evict_keys[n][j]

    def _load(self, server: ServerState, i: int, size: float, task: ScalarTask, n: int, start: float) -> None:
        """Evict (lowest score first, ties by index) until model i fits, then load it, all at `start`."""
        need = size - server.free_memory
        candidates = sorted(
            (j for j in range(self.config.n_models) if server.cached[j]),
            key=lambda j: (self._eviction_score(server, j, task, n, start), j),
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
        server.loaded_at[i] = start
        server.last_used[i] = start
        server.frequency[i] = 0.0
        server.context[i] = 0.0
        server.context_time[i] = start
        server.pending.append((start, list(server.cached)))

    def _use(self, server: ServerState, i: int, start: float) -> float:
        """Record one use of model i at `start`; returns its in-context accuracy a(K) for this part."""
        k = self._context_at(server, i, start)
        if self.config.models is None:
            a0, a1, alpha = self.config.accuracy_zero_shot, self.config.accuracy_gain, self.config.accuracy_alpha
        else:
            spec = self.config.models[i]
            a0, a1, alpha = spec.accuracy_zero_shot, spec.accuracy_gain, spec.accuracy_alpha
        accuracy = min(1.0, a0 + a1 * math.log2(1.0 + k**alpha))  # [Xu 2023, Fig. 4]
        server.context[i] = k + 1.0
        server.context_time[i] = start
        server.frequency[i] += 1.0
        server.last_used[i] = start
        return accuracy

    def _advance_views(self, view_time: float) -> None:
        """Apply, in order, every pending load whose start is at or before `view_time`."""
        for server in self.servers:
            while server.pending and server.pending[0][0] <= view_time:
                server.resident = server.pending.pop(0)[1]


def in_context_accuracy(config: EdgeConfig, k: float, model: int = 0) -> float:
    """a(K) = min(1, a0 + a1 log2(1 + K^alpha)) of `model` [Xu 2023, Fig. 4]."""
    a0, a1, alpha = config.accuracy_curves()[model]
    return min(1.0, a0 + a1 * math.log2(1.0 + k**alpha))
