"""The batched edge simulator: B independent environments stepped together on any torch device.

Same cost model as `offload_core.reference` (the readable definition): each server serves the parts
of a step in arrival order (ties by device); the step loops over those ranks, each vectorized over
environments and servers; every term of the breakdown is returned per task as a [B, M] tensor
(`StepResult`).

Environment API (B environments, M devices, N servers, I models; docs/cost-model.md):

    engine = EdgeEngine(config, batch=B, policy=CachingPolicy.LFU, device="cpu", dtype=torch.float32,
                        backend=Backend.TORCH)
    topology = engine.reset(seed)          # -> Topology: positions, frequencies, rates, each [B, ...]
    tasks = engine.sample_tasks(stream)    # -> TaskBatch: one task per device, each field [B, M]
    action = scheduler(engine, tasks, generator, scores)   # -> Action: split [B, M, N + 2], download [B, M]
    result = engine.step(tasks, action)    # -> StepResult: every term [B, M]; time advances by step_s
    result = engine.step(tasks, action, validate=False)   # the same, unchecked and sync-free (below)
    engine.view                            # -> EngineView: the state a policy may read (below)

`reset(seed)` draws B topologies and warm caches (cold ones for the `cloud` policy) from `seed` and
empties every queue; `step` places and costs one task per device and environment, updating queues
and caches: a model is loaded when its part starts on the server, which for a queued part lies after
the step's time. Policies (schedulers, observations, learners) read the state only through
`engine.view`, a read-only window in the manner of VMAS and PettingZoo: no policy reaches into the
engine's tensors, and the view shows the state at its time (`view.time`): the models resident then
(not yet those loaded later for queued parts), each server's effective frequency after it was slowed
down, when each queue empties.

`step(tasks, action, validate=False)` skips the action checks (which must read values back to raise
ValueError) and, on the torch backend, makes no host synchronisation at all: it loops over all M
arrival ranks under masks, evicts and loads under masks, keeps its pending-load and ASP slot buffers
at the sizes fixed by `reset`, and reads the step's time from a device tensor, so that
`torch.compile(fullgraph=True)` or a CUDA graph can capture it (`sync_free_step`). Its results equal
the default step's while those buffers do not overflow; docs/cost-model.md ("Sync-free step") gives
the bounds and what happens at overflow.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from offload_core.caching import CacheState, eviction_mask, eviction_scores
from offload_core.config import EdgeConfig
from offload_core.names import Backend, CachingPolicy, parse
from offload_core.result import BREAKDOWN_KEYS, FLAG_KEYS, StepResult
from offload_core.scenario import TaskBatch, Topology, draw_evict_keys, sample_tasks, sample_topology

__all__ = ["Action", "EdgeEngine", "EngineView", "StepResult", "asp_slots", "pending_slots"]


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


# Path codes of a served part (`EdgeEngine._serve`); _MISSED is added when its model was not resident.
_AT_EDGE, _FORWARDED, _FAILED, _CRASHED, _MISSED = 1, 2, 3, 4, 8


def pending_slots(config: EdgeConfig) -> int:
    """Pending-load slots per server allocated at reset (L): four steps' worth of parts, 4 M. The default step grows
    the buffer when a step could overflow it; the sync-free step keeps L (docs/cost-model.md, "Sync-free step")."""
    return 4 * config.n_devices


def asp_slots(config: EdgeConfig) -> int:
    """Running-part slots per ASP server allocated at reset (S), 0 for FIFO servers: as many whole tasks as the
    largest capacity holds at the smallest demand, plus the step's M parts. Split tasks have smaller demands, so more
    parts can run at once: the default step then grows the slots, the sync-free step crashes the arriving part."""
    if config.server_capacity is None:
        return 0
    return int(config.server_capacity[1] // max(config.task_demand[0], 1.0)) + 2 + config.n_devices


def _validate_action(action: Action, batch: int, devices: int, servers: int, cloud_execution: bool, compiled: bool = False) -> None:
    """ValueError naming what is wrong with `action`; `compiled`: check the split's values with the numba kernel
    (one pass instead of several tensor reductions; CPU tensors only)."""
    expected = (batch, devices, servers + 2)
    if tuple(action.split.shape) != expected:
        raise ValueError(f"action.split must have shape {expected}, got {tuple(action.split.shape)}")
    if tuple(action.download.shape) != (batch, devices):
        raise ValueError(f"action.download must have shape {(batch, devices)}, got {tuple(action.download.shape)}")
    if compiled:
        from offload_core.kernel import split_problem

        problem = split_problem(action.split.detach().contiguous().numpy(), cloud_execution)
    else:
        split = action.split
        ones = torch.ones((), dtype=split.dtype, device=split.device)
        problem = (
            1
            if bool((split < 0).any())
            else 2
            if not torch.allclose(split.sum(-1), ones, atol=1e-6)
            else 3
            if not cloud_execution and bool((split[..., servers + 1] > 0).any())
            else 0
        )
    if problem:
        raise ValueError(_SPLIT_PROBLEMS[problem])


_SPLIT_PROBLEMS = {
    1: "action.split must not be negative",
    2: "action.split must sum to 1 over local, servers and cloud",
    3: "action.split has a cloud share, but this config has no cloud execution (cloud_execution)",
}


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
        """Does server n hold model i in GPU memory at `time`: its load has started by then and it has not been
        evicted since. A load scheduled for a queued part shows once `time` reaches the part's start.  [B, N, I] bool"""
        return self._engine.cache.resident

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
        `offload_core.kernel` (FIFO servers on the CPU; ASP presets fall back to torch); "cuda" runs the same
        kernel compiled for CUDA (`offload_core.cuda_kernel`), one thread per environment (FIFO servers; ASP
        presets fall back to torch), on a CUDA device or under numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1)."""
        if not isinstance(config, EdgeConfig):
            raise ValueError(f"config must be an EdgeConfig, got {type(config).__name__}")
        if batch < 1:
            raise ValueError(f"batch (B) must be at least 1, got {batch}")
        self.policy = parse(CachingPolicy, policy, "policy")
        if self.policy == CachingPolicy.CLOUD and not config.cloud_execution:
            raise ValueError("policy 'cloud' forwards every part to the cloud: it needs a config with cloud_execution")
        self.backend = parse(Backend, backend, "backend")
        if self.backend == Backend.NUMBA and torch.device(device).type != "cpu":
            raise ValueError("backend 'numba' runs on the CPU only; use backend 'torch' on a GPU")
        if self.backend == Backend.CUDA:
            from offload_core.cuda_kernel import cuda_ready

            reason = cuda_ready()
            if reason is not None:
                raise ValueError(f"backend 'cuda' is not available: {reason}")
        self.config, self.batch = config, batch
        self.device, self.dtype = torch.device(device), dtype
        self.generator = torch.Generator(device=self.device)
        # [I, 3] (a0, a1, alpha) per model when the models have their own accuracy curves; None: the config's one.
        self.curves = None if config.models is None else torch.tensor(config.accuracy_curves(), device=self.device, dtype=dtype)
        self._kernel_curves = np.array(config.accuracy_curves(), dtype=np.float64)  # [I, 3] for the compiled kernel
        self.topology: Topology
        self.cache: CacheState
        self.busy_until: torch.Tensor  # [B, N] s
        self.running: torch.Tensor | None = None  # [B, N, S, 4] for ASP servers
        self.dropped: torch.Tensor  # [B]
        self.dropped_quality: torch.Tensor  # [B]
        self.clock: torch.Tensor  # [1] float64, steps taken, on the device: the sync-free step's time
        self.steps = 0

    @property
    def view(self) -> EngineView:
        """The read-only state that policies may read (see EngineView)."""
        return EngineView(self)

    # -- state ----------------------------------------------------------------------------------

    def reset(self, seed: int) -> Topology:
        """Draw B topologies from `seed`, empty every queue and fill each cache with random models that fit
        (the `cloud` policy's caches start empty: no edge caching at all)."""
        self.generator.manual_seed(seed)
        c, b = self.config, self.batch
        self.topology = sample_topology(c, b, self.generator, self.device, self.dtype)
        self.cache = CacheState.empty(b, c.n_servers, c.n_models, c.server_memory_bits, self.device, self.dtype, pending_slots(c))
        if self.policy != CachingPolicy.CLOUD:
            self.cache.warm_start(self.topology.model_size, self.generator)
        self.busy_until = torch.zeros((b, c.n_servers), device=self.device, dtype=self.dtype)
        self.running = None
        if c.server_capacity is not None:
            # [B, N, S, 4]: finish time, demand, quality, share of each running part (finish 0: empty slot)
            self.running = torch.zeros((b, c.n_servers, asp_slots(c), 4), device=self.device, dtype=self.dtype)
        self.dropped = torch.zeros(b, device=self.device, dtype=self.dtype)
        self.dropped_quality = torch.zeros(b, device=self.device, dtype=self.dtype)
        # Shape [1], not []: AOT autograd (torch 2.13) drops in-place updates of 0-dim CPU tensors.
        self.clock = torch.zeros(1, device=self.device, dtype=torch.float64)
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

    def step(self, tasks: TaskBatch, action: Action, validate: bool = True) -> StepResult:
        """Place and cost one task per device and environment; returns the breakdown, each term [B, M].

        `validate` (default): check the action first (ValueError naming the problem; this reads values back from
        the device). False: no check, and on the torch backend a step without any host synchronisation, with the
        buffers sized at `reset` (module docstring; docs/cost-model.md, "Sync-free step")."""
        c = self.config
        b, m_count, n = self.batch, c.n_devices, c.n_servers
        compiled = self.backend in (Backend.NUMBA, Backend.CUDA) and self.running is None
        if validate:
            _validate_action(action, b, m_count, n, c.cloud_execution, compiled and self.backend == Backend.NUMBA)
        if compiled:
            if validate or self.backend != Backend.CUDA:  # reserve reads the pending counts back from the device
                self.cache.reserve(m_count)
            return self._step_compiled(tasks, action)
        if validate:
            self.cache.reserve(m_count)
            result = self._advance(tasks, action, sync_free=False)
        else:
            result = self.sync_free_step(tasks, action)
        self.steps += 1
        return result

    def sync_free_step(self, tasks: TaskBatch, action: Action) -> StepResult:
        """The torch step proper without host synchronisation: reads and updates only tensors (the device clock
        included), never `steps`, so that `torch.compile(fullgraph=True)` or a CUDA graph can capture it. Called by
        `step(..., validate=False)`, which then counts the step; a caller that runs a captured copy instead counts
        it with `count_step()`."""
        return self._advance(tasks, action, sync_free=True)

    def count_step(self) -> None:
        """Advance the host's step count (`steps`, `time`) after a captured `sync_free_step` ran."""
        self.steps += 1

    def compile_step(self, **options: Any) -> Callable[[TaskBatch, Action], StepResult]:
        """`step(..., validate=False)` with its body compiled by `torch.compile(fullgraph=True, **options)` (for
        example backend="eager", or mode="reduce-overhead" for CUDA graphs). Compile again after `reset`."""
        body = torch.compile(self.sync_free_step, fullgraph=True, **options)

        def compiled_step(tasks: TaskBatch, action: Action) -> StepResult:
            result: StepResult = body(tasks, action)
            self.steps += 1
            return result

        return compiled_step

    def _advance(self, tasks: TaskBatch, action: Action, sync_free: bool) -> StepResult:
        """The torch step; `sync_free`: fixed loop counts and buffers, time from `clock` (no host synchronisation)."""
        c = self.config
        b, m_count, n = self.batch, c.n_devices, c.n_servers
        top = self.topology
        split = action.split.to(self.dtype)
        x, rho = tasks.size, tasks.density  # [B, M]
        s_loc, s_cloud = split[..., 0], split[..., n + 1]
        f_m = top.device_freq

        # Parts that need no shared state, all tasks at once.  [B, M]
        task_work = x * rho + tasks.demand * c.cycles_per_demand  # cycles of the whole task, wherever it runs
        t_loc = s_loc * task_work / f_m
        e_loc = c.device_kappa * f_m**2 * s_loc * task_work
        has_cloud = s_cloud > 0
        t_cloud = torch.where(
            has_cloud,
            s_cloud * x / c.cloud_rate_bps
            + c.wan_latency_s
            + s_cloud * task_work / c.cloud_freq_hz
            + s_cloud * c.output_bits / c.cloud_rate_bps,
            torch.zeros_like(x),
        )
        e_cloud_direct = torch.where(
            has_cloud,
            c.device_power_w * s_cloud * x / c.cloud_rate_bps + c.cloud_energy_per_cycle_j * s_cloud * task_work,
            torch.zeros_like(x),
        )

        # Every part's terms that need no shared state.  [B, M, N]
        # The step's time: float(steps x step_s) rounded to the dtype, from the host's count or the device clock.
        now: float | torch.Tensor = (self.clock * c.step_s).to(self.dtype) if sync_free else self.time
        s_es = split[..., 1 : n + 1]
        active = s_es > 0
        t_up = s_es * x.unsqueeze(-1) / top.up_rate
        t_down = s_es * c.output_bits / top.down_rate
        work = s_es * (x * rho).unsqueeze(-1)  # cycles of the part's input
        cycles = work + s_es * (tasks.demand * c.cycles_per_demand).unsqueeze(-1)
        run_time = cycles / top.server_freq.unsqueeze(1)  # T_es if it runs at the edge
        size = top.model_size.gather(1, tasks.model).unsqueeze(-1)  # [B, M, 1] the task's model
        switch_time = size / c.backhaul_bps + size / c.load_bps  # [B, M, 1] T_sw if its model is loaded

        # The shared state: each server serves its parts in arrival order, ties by device (rank r of server n is
        # device order[b, n, r]); a loop over ranks, every server and environment at once.
        order = torch.argsort(torch.where(active, t_up, torch.inf).transpose(1, 2), dim=-1, stable=True)  # [B, N, M]
        ranks = m_count if sync_free else int(active.sum(1).max())  # the most parts any server receives

        def ranked(value: torch.Tensor) -> torch.Tensor:  # [B, M] or [B, M, N] -> [B, N, M] in serving order
            per_server = value.unsqueeze(1).expand(b, n, m_count) if value.dim() == 2 else value.transpose(1, 2)
            return per_server.gather(2, order)

        model_r, download_r = ranked(tasks.model), ranked(action.download)
        s_r, t_up_r, run_r = ranked(s_es), ranked(t_up), ranked(run_time)
        size_r, switch_r = ranked(size.squeeze(-1)), ranked(switch_time.squeeze(-1))
        demand_r = s_r * ranked(tasks.demand)
        keys_r = None
        if tasks.evict_keys is not None:  # [B, M, N, I] -> [B, N, M, I] in serving order
            keys = tasks.evict_keys.transpose(1, 2)
            keys_r = keys.gather(2, order.unsqueeze(-1).expand_as(keys))
        served = [
            self._serve(
                now,
                model_r[..., r],
                s_r[..., r],
                download_r[..., r],
                t_up_r[..., r],
                size_r[..., r],
                switch_r[..., r],
                run_r[..., r],
                demand_r[..., r],
                None if keys_r is None else keys_r[:, :, r],
                sync_free,
            )
            for r in range(ranks)
        ]
        outcome = torch.zeros((4, b, n, m_count), device=self.device, dtype=self.dtype)
        if served:
            by_rank = torch.stack(served, dim=-1)  # [4, B, N, ranks]
            outcome.scatter_(3, order[..., :ranks].unsqueeze(0).expand_as(by_rank), by_rank)  # back to device order
        t_wait, loaded, edge_quality, code = outcome.transpose(2, 3).unbind(0)  # each [B, M, N]
        missed = code >= _MISSED
        path = code - _MISSED * missed.to(code.dtype)
        edge_f, forward_f = (path == _AT_EDGE).to(self.dtype), (path == _FORWARDED).to(self.dtype)
        failed, crashed = (path == _FAILED).any(-1), (path == _CRASHED).any(-1)  # [B, M]

        t_sw = loaded * switch_time
        e_sw = loaded * (c.backhaul_power_w * size / c.backhaul_bps + c.load_power_w * size / c.load_bps)
        t_es = edge_f * run_time
        e_es = edge_f * (c.server_kappa * top.server_freq.unsqueeze(1) ** 2 * cycles)
        t_fwd = forward_f * (s_es * x.unsqueeze(-1) / c.backhaul_bps + c.wan_latency_s + work / c.cloud_freq_hz)
        shown_down = (edge_f + forward_f) * t_down
        part_t = torch.where(active, t_up + t_wait + t_sw + t_es + t_fwd + shown_down, -1.0)  # -1: no part

        # The slowest part (the first server's on ties): a running maximum over the few servers, much faster on
        # the CPU than argmax over a tiny last axis.
        terms = torch.stack([t_up, t_wait, t_sw, t_es, shown_down])  # [5, B, M, N]
        t_part, picked = part_t[..., 0], terms[..., 0]  # [B, M] (-1 without an edge part); T_up..T_down [5, B, M]
        for server in range(1, n):
            slower = part_t[..., server] > t_part
            t_part = torch.where(slower, part_t[..., server], t_part)
            picked = torch.where(slower, terms[..., server], picked)
        offloaded = active.any(-1)

        t_total = torch.maximum(torch.maximum(t_loc, t_cloud), t_part)
        e_up = (c.device_power_w * t_up).sum(-1)
        e_sw, e_es = e_sw.sum(-1), e_es.sum(-1)
        e_cloud = e_cloud_direct + (forward_f * (c.cloud_energy_per_cycle_j * work)).sum(-1)
        e_total = e_loc + e_up + e_sw + e_es + e_cloud
        completed = (t_total <= tasks.deadline) & ~failed & ~crashed
        edge_quality_sum = edge_quality.sum(-1)
        quality = s_loc * c.light_quality + s_cloud * c.cloud_quality + edge_quality_sum
        quality = quality + (forward_f * s_es).sum(-1) * c.cloud_quality
        self.clock.add_(1.0)
        view_time = (self.clock * c.step_s).to(self.dtype) if sync_free else (self.steps + 1) * c.step_s
        self.cache.advance_view(view_time, sync_free)
        return StepResult(
            T_up=picked[0],
            T_wait=picked[1],
            T_sw=picked[2],
            T_es=picked[3],
            T_down=picked[4],
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
            model_hit=offloaded & ~missed.any(-1),
            offloaded=offloaded,
            failed=failed,
            crashed=crashed,
            quality=quality,
            edge_share=(edge_f * s_es).sum(-1),
            T_fwd=t_fwd.sum(-1),
            edge_quality=edge_quality_sum,
        )

    def _step_compiled(self, tasks: TaskBatch, action: Action) -> StepResult:
        """The same step through the compiled kernel (numba's CPU kernel of `offload_core.kernel`, or for backend
        "cuda" the same body compiled for CUDA, `offload_core.cuda_kernel`), updating the state tensors in place."""
        from offload_core import kernel

        c, top, cache = self.config, self.topology, self.cache
        out = torch.empty((self.batch, c.n_devices, len(BREAKDOWN_KEYS)), device=self.device, dtype=self.dtype)
        keys = tasks.evict_keys
        if keys is None:
            keys = torch.zeros((1, 1, 1, c.n_models), device=self.device, dtype=self.dtype)
        split = action.split.to(self.dtype).contiguous()
        run: Callable[..., None] = kernel.step_kernel
        array: Callable[[torch.Tensor], Any] = _numpy
        if self.backend == Backend.CUDA:
            from offload_core import cuda_kernel

            run, array = cuda_kernel.cuda_step, cuda_kernel.kernel_array
        run(
            self.time,
            kernel.kernel_params(c),
            kernel.POLICY_CODES[self.policy],
            self._kernel_curves,
            array(top.device_freq),
            array(top.model_size),
            array(top.server_quality),
            array(top.server_freq),
            array(top.up_rate),
            array(top.down_rate),
            array(tasks.model),
            array(tasks.size),
            array(tasks.density),
            array(tasks.deadline),
            array(tasks.demand),
            array(keys),
            int(tasks.evict_keys is not None),
            array(split),
            array(action.download),
            array(cache.cached),
            array(cache.free_memory),
            array(cache.loaded_at),
            array(cache.last_used),
            array(cache.frequency),
            array(cache.context),
            array(cache.context_time),
            array(cache.resident),
            array(cache.pending_time),
            array(cache.pending_cached),
            array(cache.pending_count),
            array(self.busy_until),
            array(out),
        )
        self.steps += 1
        self.clock.add_(1.0)
        columns = out.unbind(-1)  # one [B, M] view per term, in BREAKDOWN_KEYS order
        return StepResult(
            *(column > 0.5 if key in FLAG_KEYS else column for column, key in zip(columns, BREAKDOWN_KEYS, strict=True))
        )

    def _serve(
        self,
        now: float | torch.Tensor,
        model: torch.Tensor,
        s: torch.Tensor,
        download: torch.Tensor,
        t_up: torch.Tensor,
        size: torch.Tensor,
        switch_time: torch.Tensor,
        run_time: torch.Tensor,
        demand: torch.Tensor,
        evict_keys: torch.Tensor | None,
        sync_free: bool,
    ) -> torch.Tensor:
        """Every server's next part in its serving order, all environments at once: the part's model, share s,
        download flag, t_up, its model's size and switch time, its compute time, its ASP demand [B, N], and
        eviction keys [B, N, I]. Updates the queue, the cache and the ASP slots.

        Returns what the shared state decided, [4, B, N]: T_wait, loaded (0/1), edge quality s a(K) q_n, and the
        part's path code (_AT_EDGE, _FORWARDED, _FAILED, _CRASHED; 0 without a part) plus _MISSED on a miss.
        Masks are applied by multiplication: every term is finite, and fewer, fused operations are what makes a
        step fast on the CPU. `sync_free`: evict and load under masks even where no server loads (same result).
        """
        c, top, cache = self.config, self.topology, self.cache
        dtype = s.dtype
        active = s > 0
        model_idx = model.unsqueeze(-1)  # [B, N, 1]
        hit = cache.cached.gather(2, model_idx).squeeze(-1)  # [B, N] on the server's timeline
        miss = active & ~hit
        if self.policy == CachingPolicy.CLOUD:
            not_loaded = miss
        else:
            not_loaded = miss & ~(download & (size <= c.server_memory_bits))
        at_edge = active & ~not_loaded
        arrival = now + t_up
        crashed = torch.zeros_like(active)
        if self.running is not None:
            crashed = self._admit(at_edge, arrival, demand, sync_free)
            at_edge = at_edge & ~crashed

        edge_f = at_edge.to(dtype)
        if self.running is None:  # FIFO servers; ASPs run their tasks concurrently
            t_wait = edge_f * (self.busy_until - arrival).clamp_min(0.0)
        else:
            t_wait = torch.zeros_like(s)
        start = arrival + t_wait  # [B, N] the part's service start: its model's load and the cache's bookkeeping
        load = at_edge & ~hit
        load_f = load.to(dtype)
        if sync_free or bool(load.any()):
            scores = eviction_scores(self.policy, cache, start, c, evict_keys)
            evict = eviction_mask(scores, cache.cached, top.model_size, size, load, cache.free_memory)
            cache.replace(evict, load, model_idx, size, top.model_size, start)
        accuracy = cache.use(at_edge, model_idx, start, c, self.curves)  # [B, N]
        finish = start + load_f * switch_time + edge_f * run_time
        if self.running is None:
            self.busy_until = torch.where(at_edge, finish, self.busy_until)
        edge_quality = edge_f * (s * accuracy * top.server_quality)
        if self.running is not None:
            self._occupy(at_edge, finish, demand, edge_quality, s, sync_free)
        not_run = _FORWARDED if c.cloud_execution else _FAILED
        path = torch.where(at_edge, _AT_EDGE, torch.where(crashed, _CRASHED, torch.where(not_loaded, not_run, 0)))
        code = path.to(dtype) + _MISSED * miss.to(dtype)
        return torch.stack([t_wait, load_f, edge_quality, code])

    # -- ASP capacity and crashes ---------------------------------------------------------------

    def _admit(self, at_edge: torch.Tensor, arrival: torch.Tensor, demand: torch.Tensor, sync_free: bool) -> torch.Tensor:
        """Free finished slots; crash servers whose free capacity `demand` exceeds.  Returns crashed [B, N].

        `sync_free`: the crash is applied under masks, and a part that finds no free slot (more running parts than
        `asp_slots`) crashes alone: it is refused and its task counts as crashed, the running parts go on."""
        assert self.running is not None
        running = self.running
        finish = running[..., 0]  # [B, N, S]
        alive = (finish > arrival.unsqueeze(-1)) & at_edge.unsqueeze(-1)
        keep_other = ~at_edge.unsqueeze(-1)
        running.mul_((alive | keep_other).unsqueeze(-1).to(running.dtype))
        occupied = running[..., 1].sum(-1)  # [B, N]
        crashed = at_edge & (demand > self.topology.server_capacity - occupied)
        if sync_free or bool(crashed.any()):
            lost = (running[..., 0] > 0) & crashed.unsqueeze(-1)  # [B, N, S]
            self.dropped += (running[..., 3] * lost).sum(dim=(1, 2))
            self.dropped_quality += (running[..., 2] * lost).sum(dim=(1, 2))
            running.mul_((~crashed).unsqueeze(-1).unsqueeze(-1).to(running.dtype))
            self.busy_until = torch.where(crashed, arrival, self.busy_until)
        if sync_free:  # no slot left (the default step grows the slots in _occupy instead)
            crashed = crashed | (at_edge & ~(running[..., 0] <= 0).any(-1))
        return crashed

    def _occupy(
        self,
        at_edge: torch.Tensor,
        finish: torch.Tensor,
        demand: torch.Tensor,
        quality: torch.Tensor,
        share: torch.Tensor,
        sync_free: bool,
    ) -> None:
        """Put each admitted part into a free slot of its server (`sync_free`: `_admit` left one to every part)."""
        assert self.running is not None
        free = self.running[..., 0] <= 0  # [B, N, S]
        if not sync_free and bool((at_edge & ~free.any(-1)).any()):
            # More running parts than slots (split tasks have small demands): grow the slot axis.
            self.running = torch.cat([self.running, torch.zeros_like(self.running)], dim=2)
            free = self.running[..., 0] <= 0
        slot = free.to(torch.int8).argmax(dim=-1, keepdim=True)  # [B, N, 1] first free slot
        entry = torch.stack([finish, demand, quality, share], dim=-1).unsqueeze(2)  # [B, N, 1, 4]
        index = slot.unsqueeze(-1).expand(-1, -1, -1, 4)
        new = torch.where(at_edge.view(*at_edge.shape, 1, 1), entry, self.running.gather(2, index))
        self.running.scatter_(2, index, new)


def _numpy(tensor: torch.Tensor) -> Any:
    """A zero-copy NumPy view of a CPU tensor, for the numba CPU kernel."""
    return tensor.numpy()
