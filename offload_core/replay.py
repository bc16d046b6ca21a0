"""A ring replay buffer of joint transitions (one per environment step), stored as tensors."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Batch:
    obs: torch.Tensor  # [K, M, D]
    action: torch.Tensor  # [K, M, A]
    reward: torch.Tensor  # [K, M]
    next_obs: torch.Tensor  # [K, M, D]


class ReplayBuffer:
    """Holds the last `capacity` joint transitions; `add` takes B of them at once."""

    def __init__(self, capacity: int, agents: int, obs_dim: int, action_dim: int, device: torch.device, dtype: torch.dtype) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, got {capacity}")
        self.capacity, self.size, self.cursor = capacity, 0, 0
        self.obs = torch.zeros((capacity, agents, obs_dim), device=device, dtype=dtype)
        self.action = torch.zeros((capacity, agents, action_dim), device=device, dtype=dtype)
        self.reward = torch.zeros((capacity, agents), device=device, dtype=dtype)
        self.next_obs = torch.zeros((capacity, agents, obs_dim), device=device, dtype=dtype)

    def add(self, obs: torch.Tensor, action: torch.Tensor, reward: torch.Tensor, next_obs: torch.Tensor) -> None:
        """Store B transitions (obs, next_obs [B, M, D]; action [B, M, A]; reward [B, M]), overwriting the oldest."""
        count = obs.shape[0]
        index = (self.cursor + torch.arange(count, device=obs.device)) % self.capacity  # [B]
        self.obs[index], self.action[index] = obs, action
        self.reward[index], self.next_obs[index] = reward, next_obs
        self.cursor = (self.cursor + count) % self.capacity
        self.size = min(self.size + count, self.capacity)

    def sample(self, count: int, generator: torch.Generator) -> Batch:
        """`count` transitions drawn uniformly with replacement."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        index = torch.randint(0, self.size, (count,), generator=generator, device=generator.device)
        index = index.to(self.obs.device)
        return Batch(self.obs[index], self.action[index], self.reward[index], self.next_obs[index])
