"""Model caching on the edge servers' GPU memory, vectorized over environments and servers.

Every policy is an eviction order: when a model must be loaded, cached models are evicted in
ascending score (ties by model index) until it fits. random: a fresh random key; FIFO: load time;
LRU: last use; LFU: uses since loaded; LC (least context): the effective number of in-context
examples K = sum(nu ** age) (Age of Context, [Xu 2023]); cloud: no edge caching at all (caches
start empty and never load; every part is forwarded to the cloud, so no score is needed).

Time: a model is loaded (and its victims evicted) when the part that needs it starts on its server,
which for a queued part lies after the step's time. `cached` is each server's cache on its own
timeline (after every part served so far); `resident` is what policies see (`EngineView.cache`): the
models resident at the view's time. A load that starts after the view's time is kept as a pending
snapshot (`pending_time`, `pending_cached`) until the view's time reaches its start.

The pending buffer has L slots per server, L fixed at `empty`. The engine's default step grows it
before a step that could overflow it (`reserve`, which reads a count back from the device); its
sync-free step (`EdgeEngine.step(..., validate=False)`) never grows it: a load that finds it full
replaces the newest snapshot, so the view skips that intermediate cache state (costs and queues are
never affected; docs/cost-model.md, "Sync-free step").
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from offload_core.config import EdgeConfig
from offload_core.names import CachingPolicy


@dataclass
class CacheState:
    """What each server holds in GPU memory and the bookkeeping the policies read.  [B, N, I] unless noted."""

    cached: torch.Tensor  # bool, on each server's timeline
    free_memory: torch.Tensor  # [B, N] bits, on each server's timeline
    loaded_at: torch.Tensor  # s, start of the model's load
    last_used: torch.Tensor  # s, start of its last use
    frequency: torch.Tensor  # uses since loaded
    context: torch.Tensor  # effective in-context examples K at context_time
    context_time: torch.Tensor  # s
    resident: torch.Tensor  # bool, the models resident at the view's time
    pending_time: torch.Tensor  # [B, N, L] s, starts of loads after the view's time, in serving order (inf: empty)
    pending_cached: torch.Tensor  # [B, N, L, I] bool, the server's cache after each of those loads
    pending_count: torch.Tensor  # [B, N] long, pending loads per server

    @classmethod
    def empty(
        cls,
        batch: int,
        servers: int,
        models: int,
        memory_bits: float,
        device: torch.device,
        dtype: torch.dtype,
        pending_slots: int = 0,
    ) -> CacheState:
        """Empty caches with `pending_slots` (L) free pending-load slots per server."""

        def zeros() -> torch.Tensor:
            return torch.zeros((batch, servers, models), device=device, dtype=dtype)

        return cls(
            cached=torch.zeros((batch, servers, models), device=device, dtype=torch.bool),
            free_memory=torch.full((batch, servers), memory_bits, device=device, dtype=dtype),
            loaded_at=zeros(),
            last_used=zeros(),
            frequency=zeros(),
            context=zeros(),
            context_time=zeros(),
            resident=torch.zeros((batch, servers, models), device=device, dtype=torch.bool),
            pending_time=torch.full((batch, servers, pending_slots), float("inf"), device=device, dtype=dtype),
            pending_cached=torch.zeros((batch, servers, pending_slots, models), device=device, dtype=torch.bool),
            pending_count=torch.zeros((batch, servers), device=device, dtype=torch.long),
        )

    def warm_start(self, model_size: torch.Tensor, generator: torch.Generator) -> None:
        """Cache models in a random order per server while they fit (servers start with models, [Wang 2025])."""
        # model_size: [B, I]
        batch, servers, models = self.cached.shape
        order = torch.argsort(torch.rand((batch, servers, models), generator=generator, device=model_size.device), dim=-1)
        sizes = model_size.unsqueeze(1).expand(batch, servers, models).gather(2, order)
        fits_sorted = torch.cumsum(sizes, dim=-1) <= self.free_memory.unsqueeze(-1)
        self.cached = torch.zeros_like(self.cached).scatter(2, order, fits_sorted)
        used = torch.where(self.cached, model_size.unsqueeze(1).expand_as(self.context), torch.zeros_like(self.context))
        self.free_memory = self.free_memory - used.sum(-1)
        self.resident = self.cached.clone()

    def decayed_context(self, at: torch.Tensor, config: EdgeConfig) -> torch.Tensor:
        """K of every model as of `at` [B, N] (each server's own time).  [B, N, I]"""
        return self.context * config.context_decay ** ((at.unsqueeze(-1) - self.context_time) / config.step_s)

    def reserve(self, extra: int) -> None:
        """Make room for `extra` more pending loads per server (a step adds at most one per part)."""
        slots = self.pending_time.shape[2]
        needed = int(self.pending_count.max()) + extra if self.pending_count.numel() else extra
        if needed > slots:
            batch, servers, _, models = self.pending_cached.shape
            grow = max(needed - slots, slots)
            like = self.pending_time
            self.pending_time = torch.cat(
                [like, torch.full((batch, servers, grow), float("inf"), device=like.device, dtype=like.dtype)], dim=2
            )
            self.pending_cached = torch.cat(
                [self.pending_cached, torch.zeros((batch, servers, grow, models), device=like.device, dtype=torch.bool)], dim=2
            )

    def replace(
        self,
        evict: torch.Tensor,
        load: torch.Tensor,
        model_idx: torch.Tensor,
        size: torch.Tensor,
        model_size: torch.Tensor,
        start: torch.Tensor,
    ) -> None:
        """Evict `evict` [B, N, I], then load model `model_idx` [B, N, 1] of `size` [B, N] where `load` [B, N],
        at each server's `start` [B, N]; the load is recorded as pending for the view."""
        freed = (evict.to(model_size.dtype) * model_size.unsqueeze(1)).sum(-1)  # [B, N]
        self.free_memory = torch.where(load, self.free_memory + (freed - size), self.free_memory)
        self.cached = self.cached & ~evict
        self.context = torch.where(evict, 0.0, self.context)
        loaded = torch.zeros_like(self.cached).scatter(2, model_idx, load.unsqueeze(-1))  # [B, N, I]
        self.cached = self.cached | loaded
        at = start.unsqueeze(-1).expand_as(self.loaded_at)  # [B, N, I]
        self.loaded_at = torch.where(loaded, at, self.loaded_at)
        self.last_used = torch.where(loaded, at, self.last_used)
        self.context_time = torch.where(loaded, at, self.context_time)
        self.frequency = torch.where(loaded, 0.0, self.frequency)
        self.context = torch.where(loaded, 0.0, self.context)
        # Pending snapshot: (start, cache after the load) in the next free slot of each loading server; a full
        # buffer (sync-free step only, `reserve` prevents it otherwise) has its newest snapshot replaced.
        slots = self.pending_time.shape[2]
        slot = self.pending_count.clamp_max(slots - 1).unsqueeze(-1)  # [B, N, 1]
        old_time = self.pending_time.gather(2, slot)
        self.pending_time.scatter_(2, slot, torch.where(load.unsqueeze(-1), start.unsqueeze(-1), old_time))
        index = slot.unsqueeze(-1).expand(-1, -1, 1, self.cached.shape[2])  # [B, N, 1, I]
        old_cached = self.pending_cached.gather(2, index)
        self.pending_cached.scatter_(2, index, torch.where(load.view(*load.shape, 1, 1), self.cached.unsqueeze(2), old_cached))
        self.pending_count = (self.pending_count + load.to(torch.long)).clamp_max(slots)

    def use(
        self, used: torch.Tensor, model_idx: torch.Tensor, start: torch.Tensor, config: EdgeConfig, curves: torch.Tensor | None
    ) -> torch.Tensor:
        """Record a use of model `model_idx` [B, N, 1] at `start` [B, N] where `used` [B, N]; returns a(K) [B, N].

        `curves` [I, 3]: (a0, a1, alpha) per model; None: the config's single curve."""
        k = self.context.gather(2, model_idx).squeeze(-1) * config.context_decay ** (
            (start - self.context_time.gather(2, model_idx).squeeze(-1)) / config.step_s
        )  # [B, N]
        if curves is None:
            accuracy = config.accuracy_zero_shot + config.accuracy_gain * torch.log2(1.0 + k**config.accuracy_alpha)
        else:
            model = model_idx.squeeze(-1)
            a0, a1, alpha = curves[:, 0][model], curves[:, 1][model], curves[:, 2][model]  # [B, N]
            accuracy = a0 + a1 * torch.log2(1.0 + k**alpha)
        accuracy = accuracy.clamp_max(1.0)
        mask = torch.zeros_like(self.cached).scatter(2, model_idx, used.unsqueeze(-1))  # [B, N, I]
        at = start.unsqueeze(-1).expand_as(self.context)
        self.context = torch.where(mask, (k + 1.0).unsqueeze(-1).expand_as(self.context), self.context)
        self.context_time = torch.where(mask, at, self.context_time)
        self.frequency = self.frequency + mask.to(self.frequency.dtype)
        self.last_used = torch.where(mask, at, self.last_used)
        return accuracy

    def advance_view(self, view_time: float | torch.Tensor, sync_free: bool = False) -> None:
        """Show the models resident at `view_time` (s; a [1] tensor of the cache's dtype in the sync-free step):
        apply, in order, the pending loads that started by then. `sync_free`: never read a value back (the general
        path, same result)."""
        slots = self.pending_time.shape[2]
        if slots == 0 or (not sync_free and not bool(self.pending_count.any())):  # nothing pending: the view is the timeline
            self.resident = self.cached.clone()
            return
        started = (self.pending_time <= view_time).to(torch.long).cumprod(dim=-1)  # [B, N, L] leading run only
        applied = started.sum(-1)  # [B, N]
        last = (applied - 1).clamp_min(0)
        index = last.view(*last.shape, 1, 1).expand(-1, -1, 1, self.cached.shape[2])
        snapshot = self.pending_cached.gather(2, index).squeeze(2)  # [B, N, I]
        remaining = self.pending_count - applied
        shown = torch.where((applied > 0).unsqueeze(-1), snapshot, self.resident)
        self.resident = torch.where((remaining == 0).unsqueeze(-1), self.cached, shown)
        # Drop the applied entries: entry j moves to j - applied.
        source = torch.arange(slots, device=applied.device) + applied.unsqueeze(-1)  # [B, N, L]
        valid = source < slots
        source = source.clamp_max(slots - 1)
        self.pending_time = torch.where(valid, self.pending_time.gather(2, source), float("inf"))
        self.pending_cached = self.pending_cached.gather(2, source.unsqueeze(-1).expand_as(self.pending_cached))
        self.pending_count = remaining


def eviction_scores(
    policy: CachingPolicy, cache: CacheState, at: torch.Tensor, config: EdgeConfig, random_keys: torch.Tensor | None
) -> torch.Tensor:
    """Eviction priority of every model on every server at each server's time `at` [B, N] (lowest first).  [B, N, I]"""
    if policy == CachingPolicy.FIFO:
        return cache.loaded_at
    if policy == CachingPolicy.LRU:
        return cache.last_used
    if policy == CachingPolicy.LFU:
        return cache.frequency
    if policy == CachingPolicy.LC:
        return cache.decayed_context(at, config)
    if policy == CachingPolicy.RANDOM:
        if random_keys is None:
            raise ValueError("the random policy needs random eviction keys (TaskBatch.evict_keys)")
        return random_keys
    return torch.zeros_like(cache.frequency)  # cloud: never loads, nothing to evict


def eviction_mask(
    scores: torch.Tensor,
    cached: torch.Tensor,
    model_size: torch.Tensor,
    size: torch.Tensor,
    load: torch.Tensor,
    free_memory: torch.Tensor,
) -> torch.Tensor:
    """Which cached models to evict so that a model of `size` [B, N] fits where `load` [B, N].

    Evicts in ascending score (ties by index) while the memory freed so far is short of the need.
    """
    # scores, cached: [B, N, I]; model_size: [B, I]; free_memory: [B, N] -> [B, N, I]
    need = size - free_memory  # [B, N]
    ranked = torch.where(cached, scores, torch.full_like(scores, float("inf")))
    order = torch.argsort(ranked, dim=-1, stable=True)
    sizes = torch.where(cached, model_size.unsqueeze(1).expand_as(scores), torch.zeros_like(scores)).gather(2, order)
    freed_before = torch.cat([torch.zeros_like(sizes[..., :1]), torch.cumsum(sizes, dim=-1)[..., :-1]], dim=-1)
    evict_sorted = cached.gather(2, order) & (freed_before < need.unsqueeze(-1)) & load.unsqueeze(-1)
    return torch.zeros_like(cached).scatter(2, order, evict_sorted)
