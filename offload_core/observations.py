"""Per-device observations of [Wang 2025, eq. 16], batched over environments.

s_m(t) = {mu, x, rho, f_n^edge, d_{m,i,n}, h_ED_m, h_ES_n, h_CC}: task type (one-hot over the I models),
size, density and deadline, each server's capacity (its effective compute, so a slowed server shows
slower, and the share of the next step it is still busy), model compatibility d (does server n hold
the model of this device's task), the
positions of the device, the servers and the cloud, plus the device's own compute and its distance to
each server (a function of the positions, given to spare the network learning a norm). Every feature is
scaled to about [0, 1]. `model_aware=False` drops the compatibility block (MADDPG-NoModel). The
engine's state is read through `engine.view` only.

Some features are the same for every device (the servers' compute and load, the servers' and the
cloud's positions): `feature_split` names them, so that a centralized critic can read the global state
s(t) of [Wang 2025, sec. III-B] once, as the shared features plus every device's own ones, instead of
M copies of them (the same information, a smaller input).

Rewards (`Reward`, `training_reward`): eq. 18 sums the per-task rewards over the M devices, so the
reward every agent learns from is the team's (`Reward.TEAM`, the default); `Reward.AGENT` gives each
agent only its own task's reward (an option: a download's benefit then falls on other agents, and the
agent that pays for it never sees it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import torch

from offload_core.config import EdgeConfig
from offload_core.engine import Action, EdgeEngine, EngineView
from offload_core.result import StepResult
from offload_core.scenario import TaskBatch

CLOUD_POSITION = (0.5, 0.5)  # the cloud's nominal position, in units of the area side


def observation_size(config: EdgeConfig, model_aware: bool = True) -> int:
    """Length of one device's observation."""
    n = config.n_servers
    size = config.n_models + 4 + 2 * n + 2 + 2 * n + 2 + n  # task, device, servers, positions, cloud, distance
    return size + (n if model_aware else 0)


def feature_split(config: EdgeConfig, model_aware: bool = True) -> tuple[list[int], list[int]]:
    """(own, shared): positions in one observation of the features that differ between devices (task,
    device, position, distances, compatibility) and of those every device sees alike (servers' compute
    and load, servers' and cloud's positions), in `observe`'s order."""
    i, n = config.n_models, config.n_servers
    start_servers = i + 4
    start_own_pos = start_servers + 2 * n
    start_server_pos = start_own_pos + 2
    start_distance = start_server_pos + 2 * n + 2
    shared = list(range(start_servers, start_own_pos)) + list(range(start_server_pos, start_distance))
    own = [k for k in range(observation_size(config, model_aware)) if k not in set(shared)]
    return own, shared


class Reward(StrEnum):
    """Which reward an agent learns from."""

    TEAM = "team"
    """Eq. 18's team reward, the same for every agent: its sum over the M devices divided by M."""
    TEAM_SUM = "team-sum"
    """Eq. 18's sum over the M devices as it stands (values M times larger than TEAM's)."""
    AGENT = "agent"
    """Each agent its own task's reward (the summand of eq. 18)."""


def training_reward(reward: torch.Tensor, kind: Reward) -> torch.Tensor:
    """Per-task rewards [B, M] -> the reward each agent learns from [B, M].

    TEAM divides eq. 18's sum by M: a positive constant, so the same best policy, while the critics'
    values stay on one task's scale (about -1 per step, -20 discounted) instead of M times that: Adam
    moves a critic's output by about its learning rate per update, so a value scale M times larger
    takes about M times as many updates to reach."""
    if kind == Reward.TEAM:
        return reward.mean(dim=-1, keepdim=True).expand_as(reward)
    if kind == Reward.TEAM_SUM:
        return reward.sum(dim=-1, keepdim=True).expand_as(reward)
    return reward


def compatibility(engine: EdgeEngine | EngineView, tasks: TaskBatch) -> torch.Tensor:
    """d_{m,i,n}: does server n hold the model of device m's task.  [B, M, N] bool"""
    view = engine if isinstance(engine, EngineView) else engine.view
    n = view.config.n_servers
    holds = view.cache.gather(2, tasks.model.unsqueeze(1).expand(-1, n, -1))  # [B, N, M]
    return holds.transpose(1, 2)


def observe(engine: EdgeEngine, tasks: TaskBatch, model_aware: bool = True) -> torch.Tensor:
    """Every device's observation before its task is placed.  [B, M, observation_size]"""
    view = engine.view
    c = view.config
    b, m, n = view.batch, c.n_devices, c.n_servers
    dtype = view.dtype
    kind = torch.nn.functional.one_hot(tasks.model, c.n_models).to(dtype)  # [B, M, I]
    task = torch.stack(
        [
            tasks.size / c.task_size_bits[1],
            tasks.density / c.task_density_cpb[1],
            tasks.deadline / c.deadline_s[1],
            view.device_freq / c.device_freq_hz[1],
        ],
        dim=-1,
    )  # [B, M, 4]
    busy = ((view.busy_until - view.time).clamp_min(0.0) / c.step_s).clamp_max(4.0)  # [B, N]
    # [B, N] effective server compute relative to the cloud's. The divisor is a tensor so that a GPU divides
    # too (with a Python number it multiplies by the reciprocal): a server at its configured frequency
    # shows exactly the value it did when this feature was the constant server_freq_hz / cloud_freq_hz.
    cloud_freq = torch.full((), c.cloud_freq_hz, device=view.device, dtype=dtype)
    freq = view.server_freq / cloud_freq
    servers = torch.cat([freq, busy], dim=-1).unsqueeze(1).expand(b, m, 2 * n)  # [B, M, 2N]
    own = view.device_pos / c.area_m  # [B, M, 2]
    server_pos = (view.server_pos / c.area_m).reshape(b, 1, 2 * n).expand(b, m, 2 * n)  # [B, M, 2N]
    cloud = torch.tensor(CLOUD_POSITION, device=view.device, dtype=dtype).expand(b, m, 2)  # [B, M, 2]
    distance = view.distance / (c.area_m * 2**0.5)  # [B, M, N]
    parts = [kind, task, servers, own, server_pos, cloud, distance]
    if model_aware:
        parts.append(compatibility(view, tasks).to(dtype))
    return torch.cat(parts, dim=-1)


def step_reward(config: EdgeConfig, out: StepResult) -> torch.Tensor:
    """Seed eq. 18 per task (sigma_l = 1): -(w1 T + w2 E) / scale - P_e if the deadline is missed.  [B, M]"""
    cost = config.latency_weight * out.T + config.energy_weight * out.E
    return -cost / config.reward_scale - config.deadline_penalty * (~out.completed).to(out.T.dtype)


@dataclass
class Decision:
    """What a learner did in one step: the engine action, the tasks as run, and what it must remember."""

    action: Action
    tasks: TaskBatch
    quality_factor: torch.Tensor  # [B, M] multiplies the engine's quality (denoising steps; 1 for MADDPG)
    memory: dict[str, torch.Tensor] = field(default_factory=dict)
