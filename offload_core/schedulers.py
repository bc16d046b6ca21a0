"""Schedulers: turn one step of tasks and the engine's state into an Action, vectorized over B.

Each decides all M tasks of a step from the state at the step's start, read through `engine.view`
(`EngineView`: caches, queues, effective server frequencies, distances); the load-aware ones also
count what they assign within the step, so that ten simultaneous tasks do not all pick the same
idle server. A scheduler is called as `scheduler(name)(engine, tasks, generator, scores)`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from offload_core.config import EdgeConfig
from offload_core.engine import Action, EdgeEngine, EngineView
from offload_core.names import Backend, SchedulerName, parse
from offload_core.scenario import TaskBatch

Scheduler = Callable[[EdgeEngine, TaskBatch, torch.Generator, "torch.Tensor | None"], Action]


def _one_hot_split(view: EngineView, column: torch.Tensor) -> torch.Tensor:
    # column: [B, M] index into {local, servers, cloud} -> [B, M, N + 2]
    c = view.config
    split = torch.zeros((view.batch, c.n_devices, c.n_servers + 2), device=view.device, dtype=view.dtype)
    return split.scatter_(2, column.unsqueeze(-1), 1.0)


def _all_download(view: EngineView) -> torch.Tensor:
    # [B, M] bool
    return torch.ones((view.batch, view.config.n_devices), dtype=torch.bool, device=view.device)


def local_only(engine: EdgeEngine, tasks: TaskBatch, generator: torch.Generator, scores: torch.Tensor | None = None) -> Action:
    view = engine.view
    return Action(_one_hot_split(view, torch.zeros_like(tasks.model)), _all_download(view))


def cloud_only(engine: EdgeEngine, tasks: TaskBatch, generator: torch.Generator, scores: torch.Tensor | None = None) -> Action:
    """Every task whole to the cloud (needs a preset with cloud execution)."""
    view = engine.view
    require_cloud(SchedulerName.CLOUD, view.config)
    cloud = torch.full_like(tasks.model, view.config.n_servers + 1)
    return Action(_one_hot_split(view, cloud), _all_download(view))


def edge(engine: EdgeEngine, tasks: TaskBatch, generator: torch.Generator, scores: torch.Tensor | None = None) -> Action:
    """Everything to the nearest server, downloading missing models (the caching experiments)."""
    view = engine.view
    nearest = view.distance.argmin(dim=-1)  # [B, M]
    return Action(_one_hot_split(view, nearest + 1), _all_download(view))


def random_placement(
    engine: EdgeEngine, tasks: TaskBatch, generator: torch.Generator, scores: torch.Tensor | None = None
) -> Action:
    """A random server and a random offload ratio ([Wang 2025]'s Random baseline)."""
    view = engine.view
    n_servers = view.config.n_servers
    target = torch.randint(0, n_servers, tasks.model.shape, generator=generator, device=view.device)  # [B, M]
    ratio = torch.rand(tasks.model.shape, generator=generator, device=view.device, dtype=view.dtype)  # [B, M]
    return Action.target_ratio(target, ratio, n_servers)


def random_server(engine: EdgeEngine, tasks: TaskBatch, generator: torch.Generator, scores: torch.Tensor | None = None) -> Action:
    """Each task whole to a uniformly random server (the survey's random allocation of ASPs)."""
    view = engine.view
    target = torch.randint(0, view.config.n_servers, tasks.model.shape, generator=generator, device=view.device)
    return Action(_one_hot_split(view, target + 1), _all_download(view))


def round_robin(engine: EdgeEngine, tasks: TaskBatch, generator: torch.Generator, scores: torch.Tensor | None = None) -> Action:
    """Servers in turn, over devices and steps."""
    view = engine.view
    c = view.config
    turn = view.steps * c.n_devices + torch.arange(c.n_devices, device=view.device)  # [M]
    target = (turn % c.n_servers).expand(view.batch, -1)  # [B, M]
    return Action(_one_hot_split(view, target + 1), _all_download(view))


def greedy(engine: EdgeEngine, tasks: TaskBatch, generator: torch.Generator, scores: torch.Tensor | None = None) -> Action:
    """The nearest server that holds the task's model, else local ([Wang 2025]'s Greedy)."""
    view = engine.view
    c, distance = view.config, view.distance  # distance [B, M, N]
    if view.backend == Backend.NUMBA:
        from offload_core.kernel import greedy_kernel

        split = torch.empty((view.batch, c.n_devices, c.n_servers + 2), dtype=view.dtype)
        greedy_kernel(view.cache.numpy(), tasks.model.numpy(), distance.numpy(), split.numpy())
        return Action(split, _all_download(view))
    if view.backend == Backend.CUDA:
        from offload_core.cuda_kernel import cuda_greedy, kernel_array

        split = torch.empty((view.batch, c.n_devices, c.n_servers + 2), device=view.device, dtype=view.dtype)
        cuda_greedy(kernel_array(view.cache), kernel_array(tasks.model), kernel_array(distance), kernel_array(split))
        return Action(split, _all_download(view))
    holds = view.cache.gather(2, tasks.model.unsqueeze(1).expand(-1, c.n_servers, -1))  # [B, N, M]
    holds = holds.transpose(1, 2)  # [B, M, N]
    # A running minimum over the few servers: much faster on the CPU than argmin over a tiny last axis.
    best = torch.full_like(distance[..., 0], float("inf"))  # [B, M]
    column = torch.zeros_like(tasks.model)  # 0: local
    for server in range(c.n_servers):
        closer = holds[..., server] & (distance[..., server] < best)
        best = torch.where(closer, distance[..., server], best)
        column = torch.where(closer, torch.full_like(column, server + 1), column)
    return Action(_one_hot_split(view, column), _all_download(view))


def _server_load(view: EngineView) -> torch.Tensor:
    """Fraction of each server that is busy now: backlog in s (and occupied capacity for ASPs).  [B, N]"""
    backlog = (view.busy_until - view.time).clamp_min(0.0)
    if not view.concurrent:
        return backlog
    return view.occupied / view.server_capacity + backlog * 1e-6


def _assign_in_turn(view: EngineView, cost: torch.Tensor, work: torch.Tensor) -> torch.Tensor:
    """Assign devices one by one to the server of least `cost`, adding each task's `work`.  [B, M]"""
    # cost: [B, N]; work: [B, M, N] cost a task adds to the server it goes to
    cost = cost.clone()
    targets = []
    for m in range(view.config.n_devices):
        choice = cost.argmin(dim=-1, keepdim=True)  # [B, 1]
        targets.append(choice.squeeze(-1))
        cost.scatter_add_(1, choice, work[:, m].gather(1, choice))
    return torch.stack(targets, dim=1)


def least_loaded(engine: EdgeEngine, tasks: TaskBatch, generator: torch.Generator, scores: torch.Tensor | None = None) -> Action:
    """The least loaded server (free capacity first for ASPs), counting this step's own assignments.

    A FIFO task adds its compute time at the server's effective frequency (`view.server_freq`), so a
    slowed server fills up faster."""
    view = engine.view
    if view.concurrent:
        work = tasks.demand.unsqueeze(-1) / view.server_capacity.unsqueeze(1)  # [B, M, N]
    else:
        work = (tasks.size * tasks.density).unsqueeze(-1) / view.server_freq.unsqueeze(1)  # [B, M, N] s
    target = _assign_in_turn(view, _server_load(view), work)
    return Action(_one_hot_split(view, target + 1), _all_download(view))


def parallel_split(engine: EdgeEngine, tasks: TaskBatch, generator: torch.Generator, scores: torch.Tensor | None = None) -> Action:
    """Split each task over the servers holding its model, in proportion to their free capacity.

    Seed 000's multimodal parallel offloading without its learned predictor; a task whose model no
    server holds goes whole to the nearest server, which downloads it.
    """
    view = engine.view
    c = view.config
    holds = view.cache.gather(2, tasks.model.unsqueeze(1).expand(-1, c.n_servers, -1)).transpose(1, 2)  # [B, M, N]
    if view.concurrent:
        free = (view.server_capacity - view.occupied).clamp_min(0.0)  # [B, N]
    else:
        free = 1.0 / (1.0 + (view.busy_until - view.time).clamp_min(0.0))  # [B, N] share of an idle server
    weight = holds * free.unsqueeze(1)  # [B, M, N]
    total = weight.sum(-1, keepdim=True)
    nearest = _one_hot_split(view, view.distance.argmin(dim=-1) + 1)
    split = torch.zeros_like(nearest)
    split[..., 1 : c.n_servers + 1] = weight / total.clamp_min(1e-30)
    split = torch.where(total > 0, split, nearest)
    return Action(split, _all_download(view))


def reputation_weighted(
    engine: EdgeEngine, tasks: TaskBatch, generator: torch.Generator, scores: torch.Tensor | None = None
) -> Action:
    """A server drawn with probability proportional to its reputation score `scores` [B, N]."""
    view = engine.view
    c = view.config
    if scores is None:
        raise ValueError("scores: the reputation-weighted scheduler needs a [B, N] score tensor")
    if tuple(scores.shape) != (view.batch, c.n_servers) or bool((scores < 0).any()) or not bool(torch.isfinite(scores).all()):
        raise ValueError(f"scores must be a finite, non-negative [{view.batch}, {c.n_servers}] tensor")
    weights = scores.to(view.dtype) + 1e-12
    target = torch.multinomial(weights, c.n_devices, replacement=True, generator=generator)  # [B, M]
    return Action(_one_hot_split(view, target + 1), _all_download(view))


SCHEDULERS: dict[SchedulerName, Scheduler] = {
    SchedulerName.LOCAL: local_only,
    SchedulerName.CLOUD: cloud_only,
    SchedulerName.EDGE: edge,
    SchedulerName.RANDOM: random_placement,
    SchedulerName.RANDOM_SERVER: random_server,
    SchedulerName.ROUND_ROBIN: round_robin,
    SchedulerName.GREEDY: greedy,
    SchedulerName.LEAST_LOADED: least_loaded,
    SchedulerName.PARALLEL_SPLIT: parallel_split,
    SchedulerName.REPUTATION: reputation_weighted,
}
assert set(SCHEDULERS) == set(SchedulerName)


NEEDS_CLOUD: frozenset[SchedulerName] = frozenset({SchedulerName.CLOUD})
"""Schedulers that send tasks to the cloud: only for configs with cloud execution."""


def require_cloud(name: SchedulerName, config: EdgeConfig) -> None:
    """ValueError if scheduler `name` needs the cloud and `config` has no cloud execution."""
    if name in NEEDS_CLOUD and not config.cloud_execution:
        raise ValueError(
            f"scheduler {name.value!r} sends tasks to the cloud, but this preset has no cloud execution "
            "(the cloud only supplies models); use a preset with cloud_execution, e.g. 'mato-cloud'"
        )


def scheduler(name: SchedulerName | str, config: EdgeConfig | None = None) -> Scheduler:
    """The scheduler called `name`; ValueError naming `scheduler` if there is none, or if it needs the
    cloud and `config` (when given) has no cloud execution."""
    chosen = parse(SchedulerName, name, "scheduler")
    if config is not None:
        require_cloud(chosen, config)
    return SCHEDULERS[chosen]


def available(config: EdgeConfig) -> tuple[SchedulerName, ...]:
    """The schedulers that can run on `config` (those needing the cloud only with cloud execution)."""
    return tuple(name for name in SchedulerName if config.cloud_execution or name not in NEEDS_CLOUD)
