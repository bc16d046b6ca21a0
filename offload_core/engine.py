"""The batched edge simulator: B independent environments stepped together on any torch device.

Same cost model as `offload_core.reference` (the readable definition): tasks of a step are handled
in device order, each vectorized over environments and servers; every quantity of the breakdown
is returned per task as a [B, M] tensor.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from offload_core.caching import CacheState, eviction_mask, eviction_scores
from offload_core.config import CACHING_POLICIES, EdgeConfig
from offload_core.reference import BREAKDOWN_KEYS
from offload_core.scenario import TaskBatch, Topology, draw_evict_keys, sample_tasks, sample_topology


@dataclass
class Action:
    """Where each task runs: a split over {local, server 1..N, cloud} and a download flag."""

    split: torch.Tensor  # [B, M, N + 2], rows sum to 1
    download: torch.Tensor  # [B, M] bool

    @classmethod
    def target_ratio(cls, target: torch.Tensor, ratio: torch.Tensor, n_servers: int,
                     download: torch.Tensor | None = None) -> Action:
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
    if not torch.allclose(action.split.sum(-1), torch.ones((), dtype=action.split.dtype, device=action.split.device),
                          atol=1e-6):
        raise ValueError("action.split must sum to 1 over local, servers and cloud")
    if tuple(action.download.shape) != (batch, devices):
        raise ValueError(f"action.download must have shape {(batch, devices)}, got {tuple(action.download.shape)}")


class EdgeEngine:
    """B environments of one EdgeConfig, with one caching policy."""

    def __init__(self, config: EdgeConfig, batch: int, policy: str = "lfu", device: str | torch.device = "cpu",
                 dtype: torch.dtype = torch.float32, backend: str = "torch") -> None:
        """backend "torch" runs anywhere torch does; "numba" runs the compiled CPU kernel of
        `offload_core.kernel` (FIFO servers on the CPU; ASP presets fall back to torch)."""
        config.validate()
        if batch < 1:
            raise ValueError(f"batch (B) must be at least 1, got {batch}")
        if policy not in CACHING_POLICIES:
            raise ValueError(f"policy must be one of {list(CACHING_POLICIES)}, got {policy!r}")
        if backend not in ("torch", "numba"):
            raise ValueError(f"backend must be 'torch' or 'numba', got {backend!r}")
        if backend == "numba" and torch.device(device).type != "cpu":
            raise ValueError("backend 'numba' runs on the CPU only; use backend 'torch' on a GPU")
        self.config, self.batch, self.policy = config, batch, policy
        self.backend = backend
        self.device, self.dtype = torch.device(device), dtype
        self.generator = torch.Generator(device=self.device)
        self.topology: Topology
        self.cache: CacheState
        self.busy_until: torch.Tensor
        self.running: torch.Tensor | None = None
        self.steps = 0

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
        if self.policy == "random":
            tasks.evict_keys = draw_evict_keys(self.config, self.batch, self.generator, self.device, self.dtype)
        return tasks

    @property
    def time(self) -> float:
        return self.steps * self.config.step_s

    # -- one step -------------------------------------------------------------------------------

    def step(self, tasks: TaskBatch, action: Action) -> dict[str, torch.Tensor]:
        """Place and cost one task per device and environment; returns the breakdown, each [B, M]."""
        c = self.config
        b, m_count, n = self.batch, c.n_devices, c.n_servers
        _validate_action(action, b, m_count, n)
        if self.backend == "numba" and self.running is None:
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
            s_cloud * x / c.cloud_rate_bps + c.wan_latency_s + s_cloud * x * rho / c.cloud_freq_hz
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
        picked, summed, flags = zip(*(
            self._edge_parts(now, tasks.size[:, m : m + 1], tasks.density[:, m : m + 1], tasks.demand[:, m : m + 1],
                        tasks.model[:, m], split[:, m, 1 : n + 1], action.download[:, m : m + 1],
                        t_up_all[:, m], t_down_all[:, m], None if keys is None else keys[:, m])
            for m in range(m_count)), strict=True)
        # Stacked along leading dimensions (contiguous copies), then viewed as [B, M] per term.
        pick = torch.stack(picked, dim=1).transpose(1, 2)  # [6, B, M]
        total = torch.stack(summed, dim=1).transpose(1, 2)  # [6, B, M]
        flag = torch.stack(flags, dim=1).transpose(1, 2)  # [4, B, M] bool
        edge = {
            "T_part": pick[0], "T_up": pick[1], "T_wait": pick[2], "T_sw": pick[3], "T_es": pick[4], "T_down": pick[5],
            "E_up": total[0], "E_sw": total[1], "E_es": total[2], "E_cloud": total[3],
            "quality": total[4], "edge_share": total[5],
            "failed": flag[0], "crashed": flag[1], "model_hit": flag[2], "offloaded": flag[3],
        }

        t_total = torch.maximum(torch.maximum(t_loc, t_cloud), edge["T_part"])
        e_cloud = e_cloud_direct + edge["E_cloud"]
        e_total = e_loc + edge["E_up"] + edge["E_sw"] + edge["E_es"] + e_cloud
        failed, crashed = edge["failed"], edge["crashed"]
        completed = (t_total <= tasks.deadline) & ~failed & ~crashed
        quality = s_loc * c.light_quality + s_cloud * c.cloud_quality + edge["quality"]
        self.steps += 1
        result = {
            "T_up": edge["T_up"], "T_wait": edge["T_wait"], "T_sw": edge["T_sw"], "T_es": edge["T_es"],
            "T_down": edge["T_down"], "T_loc": t_loc, "T_cloud": t_cloud, "T": t_total,
            "E_up": edge["E_up"], "E_sw": edge["E_sw"], "E_es": edge["E_es"], "E_loc": e_loc, "E_cloud": e_cloud,
            "E": e_total, "completed": completed, "model_hit": edge["model_hit"], "offloaded": edge["offloaded"],
            "failed": failed, "crashed": crashed, "quality": quality, "edge_share": edge["edge_share"],
        }
        assert set(result) == set(BREAKDOWN_KEYS)
        return result

    def _step_compiled(self, tasks: TaskBatch, action: Action) -> dict[str, torch.Tensor]:
        """The same step through the compiled kernel, updating the state tensors in place."""
        from offload_core.kernel import POLICY_CODES, kernel_params, step_kernel

        c, top, cache = self.config, self.topology, self.cache
        out = torch.empty((self.batch, c.n_devices, len(BREAKDOWN_KEYS)), dtype=self.dtype)
        keys = tasks.evict_keys if tasks.evict_keys is not None else torch.zeros((1, 1, 1, c.n_models), dtype=self.dtype)
        split = action.split.to(self.dtype).contiguous()
        step_kernel(
            self.time, kernel_params(c), POLICY_CODES[self.policy], top.device_freq.numpy(), top.model_size.numpy(),
            top.server_quality.numpy(), top.server_freq.numpy(), top.up_rate.numpy(), top.down_rate.numpy(),
            tasks.model.numpy(), tasks.size.numpy(), tasks.density.numpy(), tasks.deadline.numpy(), tasks.demand.numpy(),
            keys.numpy(), int(tasks.evict_keys is not None), split.numpy(), action.download.numpy(),
            cache.cached.numpy(), cache.free_memory.numpy(), cache.loaded_at.numpy(), cache.last_used.numpy(),
            cache.frequency.numpy(), cache.context.numpy(), cache.context_time.numpy(), self.busy_until.numpy(),
            out.numpy(),
        )
        self.steps += 1
        flags = {"completed", "model_hit", "offloaded", "failed", "crashed"}
        return {key: out[..., k] > 0.5 if key in flags else out[..., k] for k, key in enumerate(BREAKDOWN_KEYS)}

    def _edge_parts(self, now: float | torch.Tensor, x: torch.Tensor, rho: torch.Tensor, demand_task: torch.Tensor,
                    model: torch.Tensor, s: torch.Tensor, download: torch.Tensor, t_up: torch.Tensor,
                    t_down: torch.Tensor, evict_keys: torch.Tensor | None,
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
        wants = download & (self.policy != "cloud")  # [B, 1]
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
        summed = torch.stack([
            c.device_power_w * t_up * active_f, e_sw, edge_f * (c.server_kappa * top.server_freq**2 * cycles),
            forward_f * (c.cloud_energy_per_cycle_j * work), part_quality + forward_f * (s * c.cloud_quality),
            edge_f * s,
        ]).sum(dim=2)  # [6, B]
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

    def _occupy(self, at_edge: torch.Tensor, finish: torch.Tensor, demand: torch.Tensor, quality: torch.Tensor,
                share: torch.Tensor) -> None:
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
