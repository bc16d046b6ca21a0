"""MAPPO for joint offloading and inference ([Guo 2025]), in one readable file (CleanRL style).

Seed 001 (metadata only: its abstract) has devices hold lightweight generative models and edge servers
heavyweight ones; each device chooses where its task runs (its own light model, or a server's heavy
model) and how many denoising steps to run, trading delay and energy against content quality,
trained by MAPPO: decentralized actors, a centralized value function.

On our engine the discrete action of a device is a (placement, steps) pair. Placement 0 runs the task
locally; placement 1 + 2 (n R + r) + d offloads the share `ratio_levels[r]` of it to server n, runs
the rest locally and downloads a missing model if d = 1 (R = len(ratio_levels); [Wang 2025]'s
target, ratio and download flag, with the ratio on a grid). Denoising steps k out of `step_levels`
scale the task's compute density by k / max(step_levels) (the nominal task is the full schedule) and
its quality by q(k) / q(k_max) with q(k) = 1 - exp(-k / quality_scale).

Objective. By default (`MAPPOConfig()`) there is one step level and no quality term: MAPPO trains on
exactly what it is scored on next to MADDPG, the eq. 18 reward (team or per agent as MADDPG's,
`reward`), on the nominal tasks. `MAPPOConfig.denoising()` is [Guo 2025]'s trade-off: three step
levels and the training reward eq. 18 + `quality_weight` x quality, so fewer steps buy latency and
energy at a quality cost (then score it by that objective, not by eq. 18 alone).

Budget: `plan(updates, ...)` fixes the number of gradient (minibatch) updates: each episode's rollout
gives epochs x minibatches of them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch
from torch import nn

from offload_core.config import EdgeConfig
from offload_core.engine import Action, EdgeEngine
from offload_core.maddpg import AgentMLP
from offload_core.names import parse_among
from offload_core.observations import Decision, Reward, observation_size, observe, training_reward
from offload_core.result import StepResult
from offload_core.scenario import TaskBatch


@dataclass(frozen=True)
class MAPPOConfig:
    """Hyperparameters of MAPPO (CleanRL PPO defaults scaled to short runs).

    Checked when built: a field out of range raises ValueError naming it."""

    lr: float = 1e-3
    """Adam learning rate of actors and value function."""
    gamma: float = 0.95
    """Discount factor (as MADDPG's)."""
    gae_lambda: float = 0.95
    """GAE lambda."""
    clip: float = 0.2
    """PPO ratio clip."""
    epochs: int = 4
    """Passes over each episode's rollout."""
    minibatches: int = 4
    """Minibatches per pass."""
    entropy_coef: float = 0.01
    """Entropy bonus weight."""
    value_coef: float = 0.5
    """Value loss weight."""
    hidden: int = 64
    """Width of the hidden layers."""
    grad_clip: float = 0.5
    """Max gradient norm."""
    step_levels: tuple[int, ...] = (50,)
    """Denoising steps a device may choose; the largest is the nominal task (one level: the nominal task)."""
    quality_scale: float = 15.0
    """k0 of q(k) = 1 - exp(-k / k0)."""
    quality_weight: float = 0.0
    """Weight of the per-task quality in the training reward (0: eq. 18 alone, what MADDPG is scored on)."""
    ratio_levels: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0)
    """Offload ratios a device may send to a server (the rest runs locally); placement 0 is all local."""
    reward: Reward = Reward.TEAM
    """team: eq. 18's sum over devices / M, for every agent (ours: the scale, `observations.training_reward`);
    team-sum: the sum itself; agent: each agent its own task's reward."""

    def __post_init__(self) -> None:
        levels = tuple(self.step_levels)
        if not levels or any(float(k) != int(k) or int(k) < 1 for k in levels):
            raise ValueError(f"step_levels must be one or more positive whole numbers, got {self.step_levels}")
        object.__setattr__(self, "step_levels", tuple(int(k) for k in levels))
        ratios = tuple(float(r) for r in self.ratio_levels)
        if not ratios or any(not 0 < r <= 1 for r in ratios):
            raise ValueError(f"ratio_levels must be one or more numbers in (0, 1], got {self.ratio_levels}")
        object.__setattr__(self, "ratio_levels", ratios)
        object.__setattr__(self, "reward", parse_among(tuple(Reward), self.reward, "reward"))
        self.validate()

    @classmethod
    def denoising(cls, **overrides: Any) -> MAPPOConfig:
        """[Guo 2025]'s trade-off: 10, 25 or 50 denoising steps, reward eq. 18 + quality (module docstring)."""
        return cls(**{"step_levels": (10, 25, 50), "quality_weight": 1.0, **overrides})

    def state(self) -> dict[str, Any]:
        """The fields as plain values (names as strings), for checkpoints."""
        return {**asdict(self), "reward": self.reward.value}

    def validate(self) -> MAPPOConfig:
        """Return self, or raise ValueError naming the first field out of range (done when built)."""
        for name in ("lr", "clip", "grad_clip", "quality_scale"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if not 0 <= self.gamma < 1:
            raise ValueError(f"gamma must lie in [0, 1), got {self.gamma}")
        if not 0 <= self.gae_lambda <= 1:
            raise ValueError(f"gae_lambda must lie in [0, 1], got {self.gae_lambda}")
        for name in ("epochs", "minibatches", "hidden"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("entropy_coef", "value_coef", "quality_weight"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)}")
        return self


def quality_factor(steps: torch.Tensor, hp: MAPPOConfig) -> torch.Tensor:
    """q(k) / q(k_max).  [...] -> [...]"""
    full = 1.0 - math.exp(-max(hp.step_levels) / hp.quality_scale)
    return (1.0 - torch.exp(-steps / hp.quality_scale)) / full


class MAPPO:
    """Decentralized actors (one per device) and a centralized value per device over all observations."""

    def __init__(
        self, config: EdgeConfig, hp: MAPPOConfig, seed: int, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
    ) -> None:
        self.config, self.hp = config, hp
        self.device, self.dtype = torch.device(device), dtype
        m, n = config.n_devices, config.n_servers
        self.obs_dim = observation_size(config, True)
        self.placements = 1 + 2 * n * len(self.hp.ratio_levels)
        self.choices = self.placements * len(self.hp.step_levels)
        init = torch.Generator().manual_seed(seed)
        self.actor = AgentMLP(m, self.obs_dim, self.hp.hidden, self.choices, init, self.device, dtype, out_scale=0.01)
        self.value = AgentMLP(m, m * self.obs_dim, self.hp.hidden, 1, init, self.device, dtype)
        params = list(self.actor.parameters()) + list(self.value.parameters())
        self.optim = torch.optim.Adam(params, lr=self.hp.lr, eps=1e-5)
        self.levels = torch.tensor(self.hp.step_levels, device=self.device, dtype=dtype)
        self.ratios = torch.tensor((0.0, *self.hp.ratio_levels), device=self.device, dtype=dtype)
        self.rollout: list[dict[str, torch.Tensor]] = []
        self.updates = 0
        self.budget: int | None = None

    def plan(self, updates: int, envs: int, steps: int) -> int:
        """Fix the run's budget at `updates` minibatch updates; returns the episodes that earn them
        (epochs x minibatches per episode)."""
        if updates < 1:
            raise ValueError(f"updates must be at least 1, got {updates}")
        self.budget = updates
        return max(1, math.ceil(updates / (self.hp.epochs * self.hp.minibatches)))

    # -- acting -----------------------------------------------------------------------------------------

    def logits(self, obs: torch.Tensor) -> torch.Tensor:
        """obs [K, M, D] -> [K, M, choices]"""
        logits: torch.Tensor = self.actor(obs.transpose(0, 1))  # [M, K, choices]
        return logits.transpose(0, 1)

    def values(self, obs: torch.Tensor) -> torch.Tensor:
        """Centralized V_m(o_1..o_M).  obs [K, M, D] -> [K, M]"""
        k, m = obs.shape[0], obs.shape[1]
        joint = obs.reshape(1, k, -1).expand(m, k, -1)
        values: torch.Tensor = self.value(joint)  # [M, K, 1]
        return values.squeeze(-1).transpose(0, 1)

    def apply(self, engine: EdgeEngine, tasks: TaskBatch, choice: torch.Tensor) -> tuple[Action, TaskBatch, torch.Tensor]:
        """Choice indices [B, M] -> (action, tasks with scaled density, quality factor [B, M])."""
        levels = len(self.hp.step_levels)
        placement, level = choice // levels, choice % levels
        n, r = self.config.n_servers, len(self.hp.ratio_levels)
        dtype = engine.view.dtype
        offloaded = placement > 0
        slot = (placement - 1).clamp_min(0) // 2  # n R + r
        server = torch.where(offloaded, slot // r, torch.zeros_like(placement))  # [B, M] 0-based
        ratio = torch.where(offloaded, self.ratios[slot % r + 1], self.ratios[0]).to(dtype)
        download = offloaded & ((placement - 1) % 2 == 1)
        action = Action.target_ratio(server, ratio, n, download)
        steps = self.levels[level]
        share = (steps / max(self.hp.step_levels)).to(dtype)
        run = replace(tasks, density=tasks.density * share)
        return action, run, quality_factor(steps, self.hp).to(dtype)

    @torch.no_grad()
    def explore(self, engine: EdgeEngine, tasks: TaskBatch, generator: torch.Generator) -> Decision:
        """Sample each device's (placement, steps) from its actor."""
        obs = observe(engine, tasks, True).to(self.dtype)
        logits = self.logits(obs)
        gumbel = -torch.log(
            -torch.log(torch.rand(logits.shape, generator=generator, dtype=logits.dtype).clamp(1e-10, 1 - 1e-7))
        ).to(logits.device)
        choice = (logits + gumbel).argmax(dim=-1)  # a sample of the categorical
        logp = torch.log_softmax(logits, dim=-1).gather(-1, choice.unsqueeze(-1)).squeeze(-1)
        action, run, factor = self.apply(engine, tasks, choice)
        memory = {"obs": obs, "choice": choice, "logp": logp, "value": self.values(obs)}
        return Decision(action, run, factor, memory)

    @torch.no_grad()
    def decide(self, engine: EdgeEngine, tasks: TaskBatch) -> tuple[Action, TaskBatch, torch.Tensor]:
        """The most likely choice of every device (evaluation)."""
        obs = observe(engine, tasks, True).to(self.dtype)
        return self.apply(engine, tasks, self.logits(obs).argmax(dim=-1))

    # -- learning -----------------------------------------------------------------------------------------

    def record(
        self,
        decision: Decision,
        reward: torch.Tensor,
        out: StepResult,
        engine: EdgeEngine,
        next_tasks: TaskBatch,
        generator: torch.Generator,
    ) -> None:
        """Keep the step for the end-of-episode update; the reward adds the weighted quality."""
        quality = out.quality * decision.quality_factor
        objective = training_reward(reward + self.hp.quality_weight * quality, self.hp.reward)
        self.rollout.append({**decision.memory, "reward": objective.to(self.dtype)})

    def advantages(self, last_value: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """GAE over the stored episode (truncated: bootstraps from `last_value` [B, M]).  -> [T, B, M] twice"""
        rewards = torch.stack([s["reward"] for s in self.rollout])
        values = torch.stack([s["value"] for s in self.rollout])
        next_values = torch.cat([values[1:], last_value.unsqueeze(0)])
        deltas = rewards + self.hp.gamma * next_values - values
        advantage = torch.zeros_like(deltas)
        running = torch.zeros_like(last_value)
        for t in range(deltas.shape[0] - 1, -1, -1):  # over time, not over the batch
            running = deltas[t] + self.hp.gamma * self.hp.gae_lambda * running
            advantage[t] = running
        return advantage, advantage + values

    def end_episode(self, engine: EdgeEngine, tasks: TaskBatch, generator: torch.Generator) -> None:
        """PPO-clip epochs over the episode's rollout (while the budget lasts), then forget it."""
        if not self.rollout or (self.budget is not None and self.updates >= self.budget):
            self.rollout = []
            return
        with torch.no_grad():
            last_value = self.values(observe(engine, tasks, True).to(self.dtype))
        advantage, returns = self.advantages(last_value)
        obs = torch.cat([s["obs"] for s in self.rollout])  # [T B, M, D]
        choice = torch.cat([s["choice"] for s in self.rollout])
        old_logp = torch.cat([s["logp"] for s in self.rollout])
        advantage, returns = advantage.flatten(0, 1), returns.flatten(0, 1)
        advantage = (advantage - advantage.mean()) / (advantage.std() + 1e-8)
        count = obs.shape[0]
        for _ in range(self.hp.epochs):
            order = torch.randperm(count, generator=generator).to(obs.device)
            for index in torch.tensor_split(order, min(self.hp.minibatches, count)):
                if self.budget is not None and self.updates >= self.budget:
                    break
                self.ppo_step(obs[index], choice[index], old_logp[index], advantage[index], returns[index])
                self.updates += 1
        self.rollout = []

    def ppo_step(
        self, obs: torch.Tensor, choice: torch.Tensor, old_logp: torch.Tensor, advantage: torch.Tensor, returns: torch.Tensor
    ) -> float:
        """One clipped-surrogate step.  obs [K, M, D]; the rest [K, M]"""
        log_probs = torch.log_softmax(self.logits(obs), dim=-1)
        logp = log_probs.gather(-1, choice.unsqueeze(-1)).squeeze(-1)
        ratio = torch.exp(logp - old_logp)
        surrogate = torch.minimum(ratio * advantage, ratio.clamp(1 - self.hp.clip, 1 + self.hp.clip) * advantage)
        entropy = -(log_probs.exp() * log_probs).sum(-1)
        value_loss = ((self.values(obs) - returns) ** 2).mean()
        loss = -surrogate.mean() - self.hp.entropy_coef * entropy.mean() + self.hp.value_coef * value_loss
        self.optim.zero_grad()
        torch.autograd.backward(loss)  # loss.backward(), typed
        nn.utils.clip_grad_norm_(list(self.actor.parameters()) + list(self.value.parameters()), self.hp.grad_clip)
        self.optim.step()
        return float(loss.item())

    # -- checkpoints ----------------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {"hp": self.hp.state(), "actor": self.actor.state_dict(), "value": self.value.state_dict(), "updates": self.updates}

    def load_state(self, state: dict[str, Any]) -> None:
        self.actor.load_state_dict(state["actor"])
        self.value.load_state_dict(state["value"])
        self.updates = int(state.get("updates", 0))
