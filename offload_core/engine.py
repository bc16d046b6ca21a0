"""The batched edge simulator: B independent environments stepped together on any torch device.

Same cost model as `offload_core.reference` (the readable definition): tasks of a step are handled
in device order, each vectorized over environments and servers; every term of the breakdown is
returned per task as a [B, M] tensor (`StepResult`).

Environment API (B environments, M devices, N servers, I models; docs/cost-model.md):

    engine = EdgeEngine(config, batch=B, policy=CachingPolicy.LFU, device="cpu", dtype=torch.float32,
                        backend=Backend.TORCH)
    topology = engine.reset(seed)          # -> Topology: positions, frequencies, rates, each [B, ...]
    tasks = engine.sample_tasks(stream)    # -> TaskBatch: one task per device, each field [B, M]
    action = scheduler(engine, tasks, generator, scores)   # -> Action: split [B, M, N + 2], download [B, M]
    result = engine.step(tasks, action)    # -> StepResult: every term [B, M]; time advances by step_s
    engine.view                            # -> EngineView: the state a policy may read (below)

`reset(seed)` draws B topologies and warm caches from `seed` and empties every queue; `step` places
and costs one task per device and environment, updating queues and caches. Policies (schedulers,
observations, learners) read the state only through `engine.view`, a read-only window in the manner
of VMAS and PettingZoo: no policy reaches into the engine's tensors, and what the view shows is what
the step uses (e.g. a server's effective frequency after it was slowed down).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from offload_core.caching import CacheState, eviction_mask, eviction_scores
from offload_core.config import EdgeConfig
from offload_core.names import Backend, CachingPolicy, parse
from offload_core.result import BREAKDOWN_KEYS, FLAG_KEYS, StepResult
from offload_core.scenario import TaskBatch, Topology, draw_evict_keys, sample_tasks, sample_topology

__all__ = ["Action", "EdgeEngine", "EngineView", "StepResult"]


@dataclass
class Action:
    """Where each task runs: a split over {local, server 1..N, cloud} and a download flag."""

    split: torch.Tensor  # [B, M, N + 2], rows sum to 1
    download: torch.Tensor  # [B, M] bool

    @classmethod
    def target_ratio(
        cls, target: torch.Tensor, ratio: torch.Tensor, n_servers: int, download: torch.Tensor | None = None
    ) -> Action:
        """Seed 002's action: offload `ratio` of each task to server `target` (0-based), the rest local."""
        # target, ratio: [B, M] -> split [B, M, N + 2]
        batch, devices = target.shape
        split = torch.zeros((batch, devices, n_servers + 2), dtype=ratio.dtype, device=ratio.device)
        split[..., 0] = 1.0 - ratio
        split.scatter_(2, (target + 1).unsqueeze(-1), ratio.unsqueeze(-1))
        flags = torch.ones_like(target, dtype=torch.bool) if download is None else download
        return cls(split, flags)


def _validate_action(action: Action, batch: int, devices: int, servers: int) -> None:
    expected = (batch, devices, servers + 2)
    if tuple(action.split.shape) != expected:
        raise ValueError(f"action.split must have shape {expected}, got {tuple(action.split.shape)}")
    if bool((action.split < 0).any()):
        raise ValueError("action.split must not be negative")
    if not torch.allclose(action.split.sum(-1), torch.ones((), dtype=action.split.dtype, device=action.split.device), atol=1e-6):
        raise ValueError("action.split must sum to 1 over local, servers and cloud")
    if tuple(action.download.shape) != (batch, devices):
        raise ValueError(f"action.download must have shape {(batch, devices)}, got {tuple(action.download.shape)}")


class EngineView:
    """A read-only window onto an engine's current state: what schedulers, observations and learners read.

    Every attribute reads the engine's state at the moment it is read (after a step, the new state);
    tensors are the engine's own, not copies, so reading costs nothing: never write into them. Shapes:
    B environments, M devices, N servers, I models. Valid after `reset`.
    """

    __slots__ = ("_engine",)

    def __init__(self, engine: EdgeEngine) -> None:
        self._engine = engine

    # -- static: the system and how it is simulated --------------------------------------------------

    @property
    def config(self) -> EdgeConfig:
        """The (frozen) system configuration."""
        return self._engine.config

    @property
    def batch(self) -> int:
        """B, the number of environments."""
        return self._engine.batch

    @property
    def device(self) -> torch.device:
        """The torch device of every tensor."""
        return self._engine.device

    @property
    def dtype(self) -> torch.dtype:
        """The floating dtype of every float tensor."""
        return self._engine.dtype

    @property
    def policy(self) -> CachingPolicy:
        """The servers' caching policy."""
        return self._engine.policy

    @property
    def backend(self) -> Backend:
        """How the engine steps (a scheduler may use the matching compiled kernel)."""
        return self._engine.backend

    @property
    def concurrent(self) -> bool:
        """True if servers have an ASP capacity (parts run side by side, no queue); False: FIFO queues."""
        return self._engine.running is not None

    # -- time ----------------------------------------------------------------------------------------

    @property
    def steps(self) -> int:
        """Steps taken since `reset`."""
        return self._engine.steps

    @property
    def time(self) -> float:
        """Time of the next step's arrivals, in s (steps x step_s)."""
        return self._engine.time

    # -- topology (static per episode) ---------------------------------------------------------------

    @property
    def distance(self) -> torch.Tensor:
        """Device-server distances, in m.  [B, M, N]"""
        return self._engine.topology.distance

    @property
    def device_pos(self) -> torch.Tensor:
        """Device positions, in m.  [B, M, 2]"""
        return self._engine.topology.device_pos

    @property
    def server_pos(self) -> torch.Tensor:
        """Server positions, in m.  [B, N, 2]"""
        return self._engine.topology.server_pos

    @property
    def device_freq(self) -> torch.Tensor:
        """Device CPU frequencies f_m, in Hz.  [B, M]"""
        return self._engine.topology.device_freq

    @property
    def server_freq(self) -> torch.Tensor:
        """Effective server frequencies f_n, in Hz: the ones the step computes with, so a server slowed
        down (e.g. a slow ESP) shows here, unlike `config.server_freq_hz`.  [B, N]"""
        return self._engine.topology.server_freq

    @property
    def server_capacity(self) -> torch.Tensor:
        """ASP capacity of each server, in work units (inf for FIFO servers).  [B, N]"""
        return self._engine.topology.server_capacity

    # -- dynamic state -------------------------------------------------------------------------------

    @property
    def cache(self) -> torch.Tensor:
        """Does server n hold model i in GPU memory.  [B, N, I] bool"""
        return self._engine.cache.cached

    @property
    def busy_until(self) -> torch.Tensor:
        """When each server's FIFO queue empties, in s (compare with `time`).  [B, N]"""
        return self._engine.busy_until

    @property
    def occupied(self) -> torch.Tensor:
        """ASP capacity held at `time` by parts still running, in work units (0 for FIFO servers).  [B, N]"""
        engine = self._engine
        if engine.running is None:
            return torch.zeros_like(engine.busy_until)
        alive = engine.running[..., 0] > engine.time  # [B, N, S]
        return (engine.running[..., 1] * alive).sum(-1)

    @property
    def dropped(self) -> torch.Tensor:
        """Task shares lost in server crashes since `reset`.  [B]"""
        return self._engine.dropped

    @property
    def dropped_quality(self) -> torch.Tensor:
        """Quality of the task shares lost in crashes since `reset`.  [B]"""
        return self._engine.dropped_quality


class EdgeEngine:
    """B environments of one EdgeConfig, with one caching policy (the environment API: module docstring)."""

    def __init__(
        self,
        config: EdgeConfig,
        batch: int,
        policy: CachingPolicy | str = CachingPolicy.LFU,
        device: str | torch.device = "cpu",
        dtype: torch.dtype = torch.float32,
        backend: Backend | str = Backend.TORCH,
    ) -> None:
        """backend "torch" runs anywhere torch does; "numba" runs the compiled CPU kernel of
        `offload_core.kernel` (FIFO servers on the CPU; ASP presets fall back to torch)."""
        if not isinstance(config, EdgeConfig):
            raise ValueError(f"config must be an EdgeConfig, got {type(config).__name__}")
        if batch < 1:
            raise ValueError(f"batch (B) must be at least 1, got {batch}")
        self.policy = parse(CachingPolicy, policy, "policy")
        self.backend = parse(Backend, backend, "backend")
        if self.backend == Backend.NUMBA and torch.device(device).type != "cpu":
            raise ValueError("backend 'numba' runs on the CPU only; use backend 'torch' on a GPU")
        self.config, self.batch = config, batch
        self.device, self.dtype = torch.device(device), dtype
        self.generator = torch.Generator(device=self.device)
        self.topology: Topology
        self.cache: CacheState
        self.busy_until: torch.Tensor  # [B, N] s
        self.running: torch.Tensor | None = None  # [B, N, S, 4] for ASP servers
        self.dropped: torch.Tensor  # [B]
        self.dropped_quality: torch.Tensor  # [B]
        self.steps = 0

    @property
    def view(self) -> EngineView:
        """The read-only state that policies may read (see EngineView)."""
        return EngineView(self)

    # -- state ----------------------------------------------------------------------------------

    def reset(self, seed: int) -> Topology:
        """Draw B topologies from `seed`, empty every queue and fill each cache with random models that fit."""
        self.generator.manual_seed(seed)
        c, b = self.config, self.batch
        self.topology = sample_topology(c, b, self.generator, self.device, self.dtype)
        self.cache = CacheState.empty(b, c.n_servers, c.n_models, c.server_memory_bits, self.device, self.dtype)
        self.cache.warm_start(self.topology.model_size, self.generator)
        self.busy_until = torch.zeros((b, c.n_servers), device=self.device, dtype=self.dtype)
        self.running = None
        if c.server_capacity is not None:
            slots = int(c.server_capacity[1] // max(c.task_demand[0], 1.0)) + 2
            # [B, N, S, 4]: finish time, demand, quality, share of each running part (finish 0: empty slot)
            self.running = torch.zeros((b, c.n_servers, slots, 4), device=self.device, dtype=self.dtype)
        self.dropped = torch.zeros(b, device=self.device, dtype=self.dtype)
        self.dropped_quality = torch.zeros(b, device=self.device, dtype=self.dtype)
        self.steps = 0
        return self.topology

    def sample_tasks(self, generator: torch.Generator | None = None) -> TaskBatch:
        """The next step's tasks (from `generator`, default the engine's), with eviction keys if random."""
        generator = generator or self.generator
        tasks = sample_tasks(self.config, self.batch, generator, self.device, self.dtype)
        if self.policy == CachingPolicy.RANDOM:
            tasks.evict_keys = draw_evict_keys(self.config, self.batch, self.generator, self.device, self.dtype)
        return tasks

    @property
    def time(self) -> float:
        """Time of the next step, in s."""
        return self.steps * self.config.step_s

    # -- one step -------------------------------------------------------------------------------

    def step(self, tasks: TaskBatch, action: Action) -> StepResult:
        """Place and cost one task per device and environment; returns the breakdown, each term [B, M]."""
        c = self.config
        b, m_count, n = self.batch, c.n_devices, c.n_servers
        _validate_action(action, b, m_count, n)
        if self.backend == Backend.NUMBA and self.running is None:
            return self._step_compiled(tasks, action)
        top = self.topology
        split = action.split.to(self.dtype)
        x, rho = tasks.size, tasks.density  # [B, M]
        s_loc, s_cloud = split[..., 0], split[..., n + 1]
        f_m = top.device_freq

        # Parts that need no shared state, all tasks at once.  [B, M]
        t_loc = s_loc * x * rho / f_m
        e_loc = c.device_kappa * f_m**2 * s_loc * x * rho
        has_cloud = s_cloud > 0
        t_cloud = torch.where(
            has_cloud,
            s_cloud * x / c.cloud_rate_bps
            + c.wan_latency_s
            + s_cloud * x * rho / c.cloud_freq_hz
            + s_cloud * c.output_bits / c.cloud_rate_bps,
            torch.zeros_like(x),
        )
        e_cloud_direct = torch.where(
            has_cloud,
            c.device_power_w * s_cloud * x / c.cloud_rate_bps + c.cloud_energy_per_cycle_j * s_cloud * x * rho,
            torch.zeros_like(x),
        )
        s_es_all = split[..., 1 : n + 1]  # [B, M, N]
        t_up_all = s_es_all * x.unsqueeze(-1) / top.up_rate  # [B, M, N]
        t_down_all = s_es_all * c.output_bits / top.down_rate  # [B, M, N]

        now = self.time
        keys = tasks.evict_keys
        picked, summed, flags = zip(
            *(
                self._edge_parts(
                    now,
                    tasks.size[:, m : m + 1],
                    tasks.density[:, m : m + 1],
                    tasks.demand[:, m : m + 1],
                    tasks.model[:, m],
                    split[:, m, 1 : n + 1],
                    action.download[:, m : m + 1],
                    t_up_all[:, m],
                    t_down_all[:, m],
                    None if keys is None else keys[:, m],
                )
                for m in range(m_count)
            ),
            strict=True,
        )
        # Stacked along leading dimensions (contiguous copies), then viewed as [B, M] per term.
        pick = torch.stack(picked, dim=1).transpose(1, 2)  # [6, B, M]: T_part, T_up, T_wait, T_sw, T_es, T_down
        total = torch.stack(summed, dim=1).transpose(1, 2)  # [6, B, M]: E_up, E_sw, E_es, E_cloud, quality, edge share
        flag = torch.stack(flags, dim=1).transpose(1, 2)  # [4, B, M] bool: failed, crashed, model hit, offloaded
        t_part = pick[0]  # [B, M] the slowest edge part's latency (-1 without one)
        e_up, e_sw, e_es, e_cloud_edge = total[0], total[1], total[2], total[3]
        failed, crashed = flag[0], flag[1]

        t_total = torch.maximum(torch.maximum(t_loc, t_cloud), t_part)
        e_cloud = e_cloud_direct + e_cloud_edge
        e_total = e_loc + e_up + e_sw + e_es + e_cloud
        completed = (t_total <= tasks.deadline) & ~failed & ~crashed
        quality = s_loc * c.light_quality + s_cloud * c.cloud_quality + total[4]
        self.steps += 1
        return StepResult(
            T_up=pick[1],
            T_wait=pick[2],
            T_sw=pick[3],
            T_es=pick[4],
            T_down=pick[5],
            T_loc=t_loc,
            T_cloud=t_cloud,
            T=t_total,
            E_up=e_up,
            E_sw=e_sw,
            E_es=e_es,
            E_loc=e_loc,
            E_cloud=e_cloud,
            E=e_total,
            completed=completed,
            model_hit=flag[2],
            offloaded=flag[3],
            failed=failed,
            crashed=crashed,
            quality=quality,
            edge_share=total[5],
        )

    def _step_compiled(self, tasks: TaskBatch, action: Action) -> StepResult:
        """The same step through the compiled kernel, updating the state tensors in place."""
        from offload_core.kernel import POLICY_CODES, kernel_params, step_kernel

        c, top, cache = self.config, self.topology, self.cache
        out = torch.empty((self.batch, c.n_devices, len(BREAKDOWN_KEYS)), dtype=self.dtype)  # [B, M, terms]
        keys = tasks.evict_keys if tasks.evict_keys is not None else torch.zeros((1, 1, 1, c.n_models), dtype=self.dtype)
        split = action.split.to(self.dtype).contiguous()
        step_kernel(
            self.time,
            kernel_params(c),
            POLICY_CODES[self.policy],
            top.device_freq.numpy(),
            top.model_size.numpy(),
            top.server_quality.numpy(),
            top.server_freq.numpy(),
            top.up_rate.numpy(),
            top.down_rate.numpy(),
            tasks.model.numpy(),
            tasks.size.numpy(),
            tasks.density.numpy(),
            tasks.deadline.numpy(),
            tasks.demand.numpy(),
            keys.numpy(),
            int(tasks.evict_keys is not None),
            split.numpy(),
            action.download.numpy(),
            cache.cached.numpy(),
            cache.free_memory.numpy(),
            cache.loaded_at.numpy(),
            cache.last_used.numpy(),
            cache.frequency.numpy(),
            cache.context.numpy(),
            cache.context_time.numpy(),
            self.busy_until.numpy(),
            out.numpy(),
        )
        self.steps += 1
        columns = out.unbind(-1)  # one [B, M] view per term, in BREAKDOWN_KEYS order
        return StepResult(
            *(column > 0.5 if key in FLAG_KEYS else column for column, key in zip(columns, BREAKDOWN_KEYS, strict=True))
        )

    def _edge_parts(
        self,
        now: float | torch.Tensor,
        x: torch.Tensor,
        rho: torch.Tensor,
        demand_task: torch.Tensor,
        model: torch.Tensor,
        s: torch.Tensor,
        download: torch.Tensor,
        t_up: torch.Tensor,
        t_down: torch.Tensor,
        evict_keys: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One task of every environment (x, rho, demand [B, 1]; model [B]; server shares s, t_up,
        t_down [B, N]; download [B, 1]) on every server it sends a part to.

        Returns the slowest part's latency terms [6, B] (T_part, T_up, T_wait, T_sw, T_es, T_down),
        sums over parts [6, B] (E_up, E_sw, E_es, E_cloud, quality, edge share) and flags [4, B]
        (failed, crashed, model hit, offloaded). Masks are applied by multiplication: every term is
        finite, and fewer, fused operations are what makes a step fast on the CPU.
        """
        c, top, cache = self.config, self.topology, self.cache
        b, n = self.batch, c.n_servers
        dtype = s.dtype
        active = s > 0
        model_idx = model.view(b, 1, 1).expand(b, n, 1)
        size = top.model_size.gather(1, model.view(b, 1))  # [B, 1]

        hit = cache.cached.gather(2, model_idx).squeeze(-1)  # [B, N]
        miss = active & ~hit
        wants = download & (self.policy != CachingPolicy.CLOUD)  # [B, 1]
        forwarded = miss & ~wants
        failed = miss & wants & (size > c.server_memory_bits)
        at_edge = active & ~forwarded & ~failed
        arrival = now + t_up
        demand = s * demand_task  # [B, N]
        crashed = torch.zeros_like(active)
        if self.running is not None:
            crashed = self._admit(at_edge, arrival, demand)
            at_edge = at_edge & ~crashed

        load = at_edge & ~hit
        load_f = load.to(dtype)
        t_sw = load_f * (size / c.model_download_bps + size / c.load_bps)
        e_sw = load_f * (c.backhaul_power_w * size / c.model_download_bps + c.load_power_w * size / c.load_bps)
        if bool(load.any()):
            scores = eviction_scores(self.policy, cache, now, c, evict_keys)
            evict = eviction_mask(scores, cache.cached, top.model_size, size.squeeze(-1), load, cache.free_memory)
            cache.replace(evict, load, model_idx, size, top.model_size, now)
        accuracy = cache.use(at_edge, model_idx, now, c)  # [B, N]

        edge_f = at_edge.to(dtype)
        work = s * x * rho  # [B, N] cycles of the part's input
        cycles = work + demand * c.cycles_per_demand
        t_es = edge_f * (cycles / top.server_freq)
        if self.running is None:  # FIFO servers; ASPs run their tasks concurrently
            t_wait = edge_f * (self.busy_until - arrival).clamp_min(0.0)
            finish = arrival + t_wait + t_sw + t_es
            self.busy_until = torch.where(at_edge, finish, self.busy_until)
        else:
            t_wait = torch.zeros_like(s)
            finish = arrival + t_sw + t_es
        part_quality = edge_f * (s * accuracy * top.server_quality)
        if self.running is not None:
            self._occupy(at_edge, finish, demand, part_quality, s)

        forward_f = forwarded.to(dtype)
        forward_t = t_up + s * x / c.backhaul_bps + c.wan_latency_s + work / c.cloud_freq_hz + t_down
        # Inactive servers get -1 so that argmax finds the slowest active part (first on ties, as the reference).
        t_part = torch.where(at_edge, finish - now + t_down, torch.where(forwarded, forward_t, t_up))
        t_part = torch.where(active, t_part, -1.0)
        shown_down = (edge_f + forward_f) * t_down
        slowest = t_part.argmax(dim=1, keepdim=True)  # [B, 1]

        active_f = active.to(dtype)
        per_part = torch.stack([t_part, t_up * active_f, t_wait, t_sw, t_es, shown_down])  # [6, B, N]
        picked = per_part.gather(2, slowest.unsqueeze(0).expand(6, b, 1)).squeeze(2)  # [6, B]
        summed = torch.stack(
            [
                c.device_power_w * t_up * active_f,
                e_sw,
                edge_f * (c.server_kappa * top.server_freq**2 * cycles),
                forward_f * (c.cloud_energy_per_cycle_j * work),
                part_quality + forward_f * (s * c.cloud_quality),
                edge_f * s,
            ]
        ).sum(dim=2)  # [6, B]
        any_active = active.any(dim=1)
        flags = torch.stack([failed.any(dim=1), crashed.any(dim=1), any_active & ~miss.any(dim=1), any_active])
        return picked, summed, flags

    # -- ASP capacity and crashes ---------------------------------------------------------------

    def _admit(self, at_edge: torch.Tensor, arrival: torch.Tensor, demand: torch.Tensor) -> torch.Tensor:
        """Free finished slots; crash servers whose free capacity `demand` exceeds.  Returns crashed [B, N]."""
        assert self.running is not None
        running = self.running
        finish = running[..., 0]  # [B, N, S]
        alive = (finish > arrival.unsqueeze(-1)) & at_edge.unsqueeze(-1)
        keep_other = ~at_edge.unsqueeze(-1)
        running.mul_((alive | keep_other).unsqueeze(-1).to(running.dtype))
        occupied = running[..., 1].sum(-1)  # [B, N]
        crashed = at_edge & (demand > self.topology.server_capacity - occupied)
        if bool(crashed.any()):
            lost = (running[..., 0] > 0) & crashed.unsqueeze(-1)  # [B, N, S]
            self.dropped += (running[..., 3] * lost).sum(dim=(1, 2))
            self.dropped_quality += (running[..., 2] * lost).sum(dim=(1, 2))
            running.mul_((~crashed).unsqueeze(-1).unsqueeze(-1).to(running.dtype))
            self.busy_until = torch.where(crashed, arrival, self.busy_until)
        return crashed

    def _occupy(
        self, at_edge: torch.Tensor, finish: torch.Tensor, demand: torch.Tensor, quality: torch.Tensor, share: torch.Tensor
    ) -> None:
        """Put each admitted part into a free slot of its server."""
        assert self.running is not None
        free = self.running[..., 0] <= 0  # [B, N, S]
        if bool((at_edge & ~free.any(-1)).any()):
            # More running parts than slots (split tasks have small demands): grow the slot axis.
            self.running = torch.cat([self.running, torch.zeros_like(self.running)], dim=2)
            free = self.running[..., 0] <= 0
        slot = free.to(torch.int8).argmax(dim=-1, keepdim=True)  # [B, N, 1] first free slot
        entry = torch.stack([finish, demand, quality, share], dim=-1).unsqueeze(2)  # [B, N, 1, 4]
        index = slot.unsqueeze(-1).expand(-1, -1, -1, 4)
        new = torch.where(at_edge.view(*at_edge.shape, 1, 1), entry, self.running.gather(2, index))
        self.running.scatter_(2, index, new)
