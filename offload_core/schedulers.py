"""Schedulers: turn one step of tasks and the engine's state into an Action, vectorized over B.

Each decides all M tasks of a step from the state at the step's start; the load-aware ones also
count what they assign within the step, so that ten simultaneous tasks do not all pick the same
idle server.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from offload_core.engine import Action, EdgeEngine
from offload_core.scenario import TaskBatch

Scheduler = Callable[[EdgeEngine, TaskBatch, torch.Generator, "torch.Tensor | None"], Action]


def _one_hot_split(engine: EdgeEngine, column: torch.Tensor) -> torch.Tensor:
    # column: [B, M] index into {local, servers, cloud} -> [B, M, N + 2]
    c = engine.config
    split = torch.zeros((engine.batch, c.n_devices, c.n_servers + 2), device=engine.device, dtype=engine.dtype)
    return split.scatter_(2, column.unsqueeze(-1), 1.0)


def _all_download(engine: EdgeEngine) -> torch.Tensor:
    return torch.ones((engine.batch, engine.config.n_devices), dtype=torch.bool, device=engine.device)


def local_only(engine: EdgeEngine, tasks: TaskBatch, generator: torch.Generator, scores: torch.Tensor | None = None) -> Action:
    return Action(_one_hot_split(engine, torch.zeros_like(tasks.model)), _all_download(engine))


def cloud_only(engine: EdgeEngine, tasks: TaskBatch, generator: torch.Generator, scores: torch.Tensor | None = None) -> Action:
    cloud = torch.full_like(tasks.model, engine.config.n_servers + 1)
    return Action(_one_hot_split(engine, cloud), _all_download(engine))


def edge(engine: EdgeEngine, tasks: TaskBatch, generator: torch.Generator, scores: torch.Tensor | None = None) -> Action:
    """Everything to the nearest server, downloading missing models (the caching experiments)."""
    nearest = engine.topology.distance.argmin(dim=-1)  # [B, M]
    return Action(_one_hot_split(engine, nearest + 1), _all_download(engine))


def random_placement(engine: EdgeEngine, tasks: TaskBatch, generator: torch.Generator,
                     scores: torch.Tensor | None = None) -> Action:
    """A random server and a random offload ratio ([Wang 2025]'s Random baseline)."""
    c = engine.config
    target = torch.randint(0, c.n_servers, tasks.model.shape, generator=generator, device=engine.device)
    ratio = torch.rand(tasks.model.shape, generator=generator, device=engine.device, dtype=engine.dtype)
    return Action.target_ratio(target, ratio, c.n_servers)


def random_server(engine: EdgeEngine, tasks: TaskBatch, generator: torch.Generator,
                  scores: torch.Tensor | None = None) -> Action:
    """Each task whole to a uniformly random server (the survey's random allocation of ASPs)."""
    target = torch.randint(0, engine.config.n_servers, tasks.model.shape, generator=generator, device=engine.device)
    return Action(_one_hot_split(engine, target + 1), _all_download(engine))


def round_robin(engine: EdgeEngine, tasks: TaskBatch, generator: torch.Generator,
                scores: torch.Tensor | None = None) -> Action:
    """Servers in turn, over devices and steps."""
    c = engine.config
    turn = engine.steps * c.n_devices + torch.arange(c.n_devices, device=engine.device)
    target = (turn % c.n_servers).expand(engine.batch, -1)
    return Action(_one_hot_split(engine, target + 1), _all_download(engine))


def greedy(engine: EdgeEngine, tasks: TaskBatch, generator: torch.Generator, scores: torch.Tensor | None = None) -> Action:
    """The nearest server that holds the task's model, else local ([Wang 2025]'s Greedy)."""
    c, top = engine.config, engine.topology
    if engine.backend == "numba":
        from offload_core.kernel import greedy_kernel

        split = torch.empty((engine.batch, c.n_devices, c.n_servers + 2), dtype=engine.dtype)
        greedy_kernel(engine.cache.cached.numpy(), tasks.model.numpy(), top.distance.numpy(), split.numpy())
        return Action(split, _all_download(engine))
    holds = engine.cache.cached.gather(2, tasks.model.unsqueeze(1).expand(-1, c.n_servers, -1))  # [B, N, M]
    holds = holds.transpose(1, 2)  # [B, M, N]
    # A running minimum over the few servers: much faster on the CPU than argmin over a tiny last axis.
    best = torch.full_like(top.distance[..., 0], float("inf"))  # [B, M]
    column = torch.zeros_like(tasks.model)  # 0: local
    for server in range(c.n_servers):
        closer = holds[..., server] & (top.distance[..., server] < best)
        best = torch.where(closer, top.distance[..., server], best)
        column = torch.where(closer, torch.full_like(column, server + 1), column)
    return Action(_one_hot_split(engine, column), _all_download(engine))


def _server_load(engine: EdgeEngine) -> torch.Tensor:
    """Fraction of each server that is busy now: backlog in s (and occupied capacity for ASPs).  [B, N]"""
    backlog = (engine.busy_until - engine.time).clamp_min(0.0)
    if engine.running is None:
        return backlog
    alive = engine.running[..., 0] > engine.time
    occupied = (engine.running[..., 1] * alive).sum(-1)
    return occupied / engine.topology.server_capacity + backlog * 1e-6


def _assign_in_turn(engine: EdgeEngine, tasks: TaskBatch, cost: torch.Tensor, work: torch.Tensor) -> torch.Tensor:
    """Assign devices one by one to the server of least `cost`, adding each task's `work`.  [B, M]"""
    # cost: [B, N]; work: [B, M, N] cost a task adds to the server it goes to
    cost = cost.clone()
    targets = []
    for m in range(engine.config.n_devices):
        choice = cost.argmin(dim=-1, keepdim=True)  # [B, 1]
        targets.append(choice.squeeze(-1))
        cost.scatter_add_(1, choice, work[:, m].gather(1, choice))
    return torch.stack(targets, dim=1)


def least_loaded(engine: EdgeEngine, tasks: TaskBatch, generator: torch.Generator,
                 scores: torch.Tensor | None = None) -> Action:
    """The least loaded server (free capacity first for ASPs), counting this step's own assignments."""
    c = engine.config
    if engine.running is not None:
        work = tasks.demand.unsqueeze(-1) / engine.topology.server_capacity.unsqueeze(1)  # [B, M, N]
    else:
        work = (tasks.size * tasks.density).unsqueeze(-1) / c.server_freq_hz * torch.ones(
            (1, 1, c.n_servers), device=engine.device, dtype=engine.dtype)
    target = _assign_in_turn(engine, tasks, _server_load(engine), work)
    return Action(_one_hot_split(engine, target + 1), _all_download(engine))


def parallel_split(engine: EdgeEngine, tasks: TaskBatch, generator: torch.Generator,
                   scores: torch.Tensor | None = None) -> Action:
    """Split each task over the servers holding its model, in proportion to their free capacity.

    Seed 000's multimodal parallel offloading without its learned predictor; a task whose model no
    server holds goes whole to the nearest server, which downloads it.
    """
    c, top = engine.config, engine.topology
    holds = engine.cache.cached.gather(2, tasks.model.unsqueeze(1).expand(-1, c.n_servers, -1)).transpose(1, 2)
    if engine.running is not None:
        alive = engine.running[..., 0] > engine.time
        free = (top.server_capacity - (engine.running[..., 1] * alive).sum(-1)).clamp_min(0.0)  # [B, N]
    else:
        free = 1.0 / (1.0 + (engine.busy_until - engine.time).clamp_min(0.0))  # [B, N] share of an idle server
    weight = holds * free.unsqueeze(1)  # [B, M, N]
    total = weight.sum(-1, keepdim=True)
    nearest = _one_hot_split(engine, top.distance.argmin(dim=-1) + 1)
    split = torch.zeros_like(nearest)
    split[..., 1 : c.n_servers + 1] = weight / total.clamp_min(1e-30)
    split = torch.where(total > 0, split, nearest)
    return Action(split, _all_download(engine))


def reputation_weighted(engine: EdgeEngine, tasks: TaskBatch, generator: torch.Generator,
                        scores: torch.Tensor | None = None) -> Action:
    """A server drawn with probability proportional to its reputation score `scores` [B, N]."""
    c = engine.config
    if scores is None:
        raise ValueError("scores: the reputation-weighted scheduler needs a [B, N] score tensor")
    if tuple(scores.shape) != (engine.batch, c.n_servers) or bool((scores < 0).any()) or not bool(torch.isfinite(scores).all()):
        raise ValueError(f"scores must be a finite, non-negative [{engine.batch}, {c.n_servers}] tensor")
    weights = scores.to(engine.dtype) + 1e-12
    target = torch.multinomial(weights, c.n_devices, replacement=True, generator=generator)  # [B, M]
    return Action(_one_hot_split(engine, target + 1), _all_download(engine))


SCHEDULERS: dict[str, Scheduler] = {
    "local": local_only,
    "cloud": cloud_only,
    "edge": edge,
    "random": random_placement,
    "random-server": random_server,
    "round-robin": round_robin,
    "greedy": greedy,
    "least-loaded": least_loaded,
    "parallel-split": parallel_split,
    "reputation": reputation_weighted,
}


def scheduler(name: str) -> Scheduler:
    if name not in SCHEDULERS:
        raise ValueError(f"scheduler must be one of {sorted(SCHEDULERS)}, got {name!r}")
    return SCHEDULERS[name]
