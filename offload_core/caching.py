"""Model caching on the edge servers' GPU memory, vectorized over environments and servers.

Every policy is an eviction order: when a model must be loaded, cached models are evicted in
ascending score (ties by model index) until it fits. random: a fresh random key; FIFO: load time;
LRU: last use; LFU: uses since loaded; LC (least context): the effective number of in-context
examples K = sum(nu ** age) (Age of Context, [Xu 2023]); cloud: never caches (misses are
forwarded to the cloud, so no score is needed).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from offload_core.config import EdgeConfig
from offload_core.names import CachingPolicy


@dataclass
class CacheState:
    """What each server holds in GPU memory and the bookkeeping the policies read.  All [B, N, I] but memory."""

    cached: torch.Tensor  # bool
    free_memory: torch.Tensor  # [B, N] bits
    loaded_at: torch.Tensor  # s
    last_used: torch.Tensor  # s
    frequency: torch.Tensor  # uses since loaded
    context: torch.Tensor  # effective in-context examples K at context_time
    context_time: torch.Tensor  # s

    @classmethod
    def empty(
        cls, batch: int, servers: int, models: int, memory_bits: float, device: torch.device, dtype: torch.dtype
    ) -> CacheState:
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

    def decayed_context(self, now: float | torch.Tensor, config: EdgeConfig) -> torch.Tensor:
        """K of every cached model as of `now`."""
        # [B, N, I]
        return self.context * config.context_decay ** ((now - self.context_time) / config.step_s)

    def replace(
        self,
        evict: torch.Tensor,
        load: torch.Tensor,
        model_idx: torch.Tensor,
        size: torch.Tensor,
        model_size: torch.Tensor,
        now: float | torch.Tensor,
    ) -> None:
        """Evict `evict` [B, N, I], then load the model `model_idx` [B, N, 1] of `size` [B, 1] where `load` [B, N]."""
        freed = (evict.to(model_size.dtype) * model_size.unsqueeze(1)).sum(-1)  # [B, N]
        self.free_memory = torch.where(load, self.free_memory + (freed - size), self.free_memory)
        self.cached = self.cached & ~evict
        self.context = torch.where(evict, 0.0, self.context)
        loaded = torch.zeros_like(self.cached).scatter(2, model_idx, load.unsqueeze(-1))  # [B, N, I]
        self.cached = self.cached | loaded
        self.loaded_at = torch.where(loaded, now, self.loaded_at)
        self.last_used = torch.where(loaded, now, self.last_used)
        self.context_time = torch.where(loaded, now, self.context_time)
        self.frequency = torch.where(loaded, 0.0, self.frequency)
        self.context = torch.where(loaded, 0.0, self.context)

    def use(self, used: torch.Tensor, model_idx: torch.Tensor, now: float | torch.Tensor, config: EdgeConfig) -> torch.Tensor:
        """Record a use of model `model_idx` [B, N, 1] where `used` [B, N]; returns its accuracy a(K) [B, N]."""
        k = (
            self.context.gather(2, model_idx)
            * config.context_decay ** ((now - self.context_time.gather(2, model_idx)) / config.step_s)
        ).squeeze(-1)  # [B, N]
        accuracy = config.accuracy_zero_shot + config.accuracy_gain * torch.log2(1.0 + k**config.accuracy_alpha)
        accuracy = accuracy.clamp_max(1.0)
        mask = torch.zeros_like(self.cached).scatter(2, model_idx, used.unsqueeze(-1))  # [B, N, I]
        self.context = torch.where(mask, (k + 1.0).unsqueeze(-1).expand_as(self.context), self.context)
        self.context_time = torch.where(mask, now, self.context_time)
        self.frequency = self.frequency + mask.to(self.frequency.dtype)
        self.last_used = torch.where(mask, now, self.last_used)
        return accuracy


def eviction_scores(
    policy: CachingPolicy, cache: CacheState, now: float | torch.Tensor, config: EdgeConfig, random_keys: torch.Tensor | None
) -> torch.Tensor:
    """Eviction priority of every model on every server (lowest first).  [B, N, I]"""
    if policy == CachingPolicy.FIFO:
        return cache.loaded_at
    if policy == CachingPolicy.LRU:
        return cache.last_used
    if policy == CachingPolicy.LFU:
        return cache.frequency
    if policy == CachingPolicy.LC:
        return cache.decayed_context(now, config)
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
    """Which cached models to evict so that a model of `size` [B] fits where `load` [B, N].

    Evicts in ascending score (ties by index) while the memory freed so far is short of the need.
    """
    # scores, cached: [B, N, I]; model_size: [B, I]; free_memory: [B, N] -> [B, N, I]
    need = size.unsqueeze(1) - free_memory  # [B, N]
    ranked = torch.where(cached, scores, torch.full_like(scores, float("inf")))
    order = torch.argsort(ranked, dim=-1, stable=True)
    sizes = torch.where(cached, model_size.unsqueeze(1).expand_as(scores), torch.zeros_like(scores)).gather(2, order)
    freed_before = torch.cat([torch.zeros_like(sizes[..., :1]), torch.cumsum(sizes, dim=-1)[..., :-1]], dim=-1)
    evict_sorted = cached.gather(2, order) & (freed_before < need.unsqueeze(-1)) & load.unsqueeze(-1)
    return torch.zeros_like(cached).scatter(2, order, evict_sorted)
