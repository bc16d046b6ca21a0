"""Random topologies and task streams, drawn on tensors with a leading batch dimension B.

Both the batched engine and the scalar reference consume these, so that the two can be held
equal on the same draws.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from offload_core.config import EdgeConfig

CLOUD_DISTANCE_M = 10_000.0  # only the cloud rate matters; its position is nominal


@dataclass
class Topology:
    """Static per-environment quantities (B environments)."""

    device_pos: torch.Tensor  # [B, M, 2] m
    server_pos: torch.Tensor  # [B, N, 2] m
    device_freq: torch.Tensor  # [B, M] Hz
    model_size: torch.Tensor  # [B, I] bits
    server_capacity: torch.Tensor  # [B, N] work units (inf: no crash semantics)
    server_quality: torch.Tensor  # [B, N] quality factor of each server's models
    server_freq: torch.Tensor  # [B, N] Hz (config.server_freq_hz; a market may slow one ESP down)
    up_rate: torch.Tensor  # [B, M, N] bit/s device -> server
    down_rate: torch.Tensor  # [B, M, N] bit/s server -> device
    distance: torch.Tensor  # [B, M, N] m

    @property
    def batch(self) -> int:
        return int(self.device_pos.shape[0])


@dataclass
class TaskBatch:
    """The tasks of one step: one per device and environment."""

    model: torch.Tensor  # [B, M] long, index of the required model
    size: torch.Tensor  # [B, M] bits
    density: torch.Tensor  # [B, M] cycles/bit
    deadline: torch.Tensor  # [B, M] s after arrival
    demand: torch.Tensor  # [B, M] work units occupied at a server (ASP semantics)
    evict_keys: torch.Tensor | None = None  # [B, M, N, I] random eviction priorities (random policy)


def _uniform(
    low: float, high: float, shape: tuple[int, ...], generator: torch.Generator, device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    return low + (high - low) * torch.rand(shape, generator=generator, device=device, dtype=dtype)


def shannon_rate(distance: torch.Tensor, power_w: float, config: EdgeConfig) -> torch.Tensor:
    """r = B log2(1 + p g0 d^-pl / sigma2), capped at B^max; distance clamped at 1 m."""
    # [...] -> [...]
    gain = config.channel_gain * distance.clamp_min(1.0) ** (-config.path_loss_exponent)
    rate = config.bandwidth_hz * torch.log2(1.0 + power_w * gain / config.noise_w)
    return rate.clamp_max(config.max_rate_bps)


def sample_topology(
    config: EdgeConfig, batch: int, generator: torch.Generator, device: torch.device, dtype: torch.dtype
) -> Topology:
    """Positions, frequencies, model sizes and rates of `batch` independent environments."""
    if batch < 1:
        raise ValueError(f"batch (B) must be at least 1, got {batch}")
    m, n, i = config.n_devices, config.n_servers, config.n_models
    device_pos = _uniform(0.0, config.area_m, (batch, m, 2), generator, device, dtype)
    server_pos = _uniform(0.0, config.area_m, (batch, n, 2), generator, device, dtype)
    device_freq = _uniform(*config.device_freq_hz, (batch, m), generator, device, dtype)
    model_size = _uniform(*config.model_size_bits, (batch, i), generator, device, dtype)
    if config.models is not None:  # named models have their own sizes ([Xu 2023, Table I])
        sizes = torch.tensor([spec.size_bits for spec in config.models], device=device, dtype=dtype)
        model_size = sizes.expand(batch, i).clone()
    if config.server_capacity is None:
        capacity = torch.full((batch, n), math.inf, device=device, dtype=dtype)
    else:
        capacity = _uniform(*config.server_capacity, (batch, n), generator, device, dtype).round()
    quality = _uniform(*config.server_quality, (batch, n), generator, device, dtype)
    distance = torch.linalg.vector_norm(device_pos[:, :, None, :] - server_pos[:, None, :, :], dim=-1)  # [B, M, N]
    return Topology(
        device_pos=device_pos,
        server_pos=server_pos,
        device_freq=device_freq,
        model_size=model_size,
        server_capacity=capacity,
        server_quality=quality,
        server_freq=torch.full((batch, n), config.server_freq_hz, device=device, dtype=dtype),
        up_rate=shannon_rate(distance, config.device_power_w, config),
        down_rate=shannon_rate(distance, config.server_power_w, config),
        distance=distance,
    )


def model_probabilities(config: EdgeConfig, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Zipf(s) popularity of the I models (uniform for s = 0)."""
    # [I]
    ranks = torch.arange(1, config.n_models + 1, device=device, dtype=dtype)
    weights = ranks ** (-config.model_popularity_zipf)
    return weights / weights.sum()


def draw_evict_keys(
    config: EdgeConfig, batch: int, generator: torch.Generator, device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    """Random eviction priorities for the random caching policy.  [B, M, N, I]"""
    shape = (batch, config.n_devices, config.n_servers, config.n_models)
    return torch.rand(shape, generator=generator, device=device, dtype=dtype)


def sample_tasks(config: EdgeConfig, batch: int, generator: torch.Generator, device: torch.device, dtype: torch.dtype) -> TaskBatch:
    """One step of tasks for `batch` environments."""
    m = config.n_devices
    cdf = torch.cumsum(model_probabilities(config, device, dtype), dim=0)
    cdf[-1] = 1.0
    draw = torch.rand((batch, m), generator=generator, device=device, dtype=dtype)
    model = torch.searchsorted(cdf, draw, right=True).clamp_max(config.n_models - 1)  # inverse CDF
    demand_low, demand_high = config.task_demand
    demand = (
        _uniform(demand_low, demand_high, (batch, m), generator, device, dtype).round()
        if demand_high > 0
        else (torch.zeros((batch, m), device=device, dtype=dtype))
    )
    size = _uniform(*config.task_size_bits, (batch, m), generator, device, dtype)
    density = _uniform(*config.task_density_cpb, (batch, m), generator, device, dtype)
    if config.models is not None:  # a task's compute is its model's work per request: density = work / x
        work = torch.tensor([spec.work_cycles for spec in config.models], device=device, dtype=dtype)  # [I]
        density = work[model] / size
    return TaskBatch(
        model=model,
        size=size,
        density=density,
        deadline=_uniform(*config.deadline_s, (batch, m), generator, device, dtype),
        demand=demand,
    )
