"""Per-device observations of [Wang 2025, eq. 16], batched over environments.

s_m(t) = {mu, x, rho, f_n^edge, d_{m,i,n}, h_ED_m, h_ES_n, h_CC}: task type (one-hot over the I models),
size, density and deadline, each server's capacity (its compute and the share of the next step it is
still busy), model compatibility d (does server n hold the model of this device's task), the
positions of the device, the servers and the cloud, plus the device's own compute and its distance to
each server (a function of the positions, given to spare the network learning a norm). Every feature is
scaled to about [0, 1]. `model_aware=False` drops the compatibility block (MADDPG-NoModel).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from offload_core.config import EdgeConfig
from offload_core.engine import Action, EdgeEngine
from offload_core.scenario import TaskBatch

CLOUD_POSITION = (0.5, 0.5)  # the cloud's nominal position, in units of the area side


def observation_size(config: EdgeConfig, model_aware: bool = True) -> int:
    """Length of one device's observation."""
    n = config.n_servers
    size = config.n_models + 4 + 2 * n + 2 + 2 * n + 2 + n  # task, device, servers, positions, cloud, distance
    return size + (n if model_aware else 0)


def compatibility(engine: EdgeEngine, tasks: TaskBatch) -> torch.Tensor:
    """d_{m,i,n}: does server n hold the model of device m's task.  [B, M, N] bool"""
    n = engine.config.n_servers
    holds = engine.cache.cached.gather(2, tasks.model.unsqueeze(1).expand(-1, n, -1))  # [B, N, M]
    return holds.transpose(1, 2)


def observe(engine: EdgeEngine, tasks: TaskBatch, model_aware: bool = True) -> torch.Tensor:
    """Every device's observation before its task is placed.  [B, M, observation_size]"""
    c, top = engine.config, engine.topology
    b, m, n = engine.batch, c.n_devices, c.n_servers
    dtype = engine.dtype
    kind = torch.nn.functional.one_hot(tasks.model, c.n_models).to(dtype)  # [B, M, I]
    task = torch.stack([
        tasks.size / c.task_size_bits[1], tasks.density / c.task_density_cpb[1], tasks.deadline / c.deadline_s[1],
        top.device_freq / c.device_freq_hz[1],
    ], dim=-1)  # [B, M, 4]
    busy = ((engine.busy_until - engine.time).clamp_min(0.0) / c.step_s).clamp_max(4.0)  # [B, N]
    freq = torch.full((b, n), c.server_freq_hz / c.cloud_freq_hz, device=engine.device, dtype=dtype)
    servers = torch.cat([freq, busy], dim=-1).unsqueeze(1).expand(b, m, 2 * n)  # [B, M, 2N]
    own = top.device_pos / c.area_m  # [B, M, 2]
    server_pos = (top.server_pos / c.area_m).reshape(b, 1, 2 * n).expand(b, m, 2 * n)
    cloud = torch.tensor(CLOUD_POSITION, device=engine.device, dtype=dtype).expand(b, m, 2)
    distance = top.distance / (c.area_m * 2**0.5)  # [B, M, N]
    parts = [kind, task, servers, own, server_pos, cloud, distance]
    if model_aware:
        parts.append(compatibility(engine, tasks).to(dtype))
    return torch.cat(parts, dim=-1)


def step_reward(config: EdgeConfig, out: dict[str, torch.Tensor]) -> torch.Tensor:
    """Seed eq. 18 per task (sigma_l = 1): -(w1 T + w2 E) / scale - P_e if the deadline is missed.  [B, M]"""
    cost = config.latency_weight * out["T"] + config.energy_weight * out["E"]
    return -cost / config.reward_scale - config.deadline_penalty * (~out["completed"]).to(out["T"].dtype)


@dataclass
class Decision:
    """What a learner did in one step: the engine action, the tasks as run, and what it must remember."""

    action: Action
    tasks: TaskBatch
    quality_factor: torch.Tensor  # [B, M] multiplies the engine's quality (denoising steps; 1 for MADDPG)
    memory: dict[str, torch.Tensor] = field(default_factory=dict)
