"""Run caching policies or schedulers on identical task streams and summarize with 95% CIs.

Every variant gets the same topologies (engine seed) and the same tasks (a separate task-stream
generator with the same seed), so differences come from the policy alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from scipy import stats

from offload_core.config import DEFAULT_PRESET, Preset
from offload_core.cost import lc_system_cost
from offload_core.engine import EdgeEngine
from offload_core.names import CachingPolicy, PresetName, SchedulerName, parse
from offload_core.schedulers import Scheduler, available, scheduler

#: Variants compared per preset kind.
COMPARED_SCHEDULERS: tuple[SchedulerName, ...] = (
    SchedulerName.LOCAL,
    SchedulerName.CLOUD,
    SchedulerName.RANDOM,
    SchedulerName.ROUND_ROBIN,
    SchedulerName.GREEDY,
    SchedulerName.LEAST_LOADED,
    SchedulerName.PARALLEL_SPLIT,
)
COMPARED_POLICIES: tuple[CachingPolicy, ...] = (
    CachingPolicy.RANDOM,
    CachingPolicy.CLOUD,
    CachingPolicy.FIFO,
    CachingPolicy.LFU,
    CachingPolicy.LC,
)
"""The caching policies of [Xu 2023, Table II], in its column order."""
ASP_SCHEDULERS: tuple[SchedulerName, ...] = (
    SchedulerName.RANDOM_SERVER,
    SchedulerName.ROUND_ROBIN,
    SchedulerName.LEAST_LOADED,
    SchedulerName.PARALLEL_SPLIT,
)

COMMON_METRICS = ("latency_s", "energy_j", "completion_rate", "hit_rate", "crash_rate", "utility")
LC_METRICS = (
    "system_cost",
    "switching_cost",
    "accuracy_cost",
    "inference_latency",
    "offloading_latency",
    "cloud_cost",
    "edge_execution_ratio",
)


@dataclass(frozen=True)
class CompareSettings:
    """Defaults of a comparison run (`aigc-market offload compare`); checked when built."""

    preset: PresetName = DEFAULT_PRESET
    """The preset whose variants are compared."""
    envs: int = 64
    """Independent environments B: the confidence intervals are over them."""
    steps: int | None = None
    """Steps per run; None: the preset's."""
    seed: int = 0
    """Topology seed (the task stream uses seed + 1, the schedulers' draws seed + 2)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "preset", parse(PresetName, self.preset, "preset"))
        if self.envs < 1:
            raise ValueError(f"envs must be at least 1, got {self.envs}")
        if self.steps is not None and self.steps < 1:
            raise ValueError(f"steps must be at least 1, got {self.steps}")


@dataclass(frozen=True)
class MetricSummary:
    mean: float
    half_width: float
    """Half-width of the 95% confidence interval of the mean across environments."""


def confidence_interval(per_env: torch.Tensor) -> MetricSummary:
    """Mean and 95% t-interval half-width of per-environment values.  per_env: [B]"""
    values = per_env.double()
    count = values.numel()
    mean = float(values.mean())
    if count < 2:
        return MetricSummary(mean, math.nan)
    sem = float(values.std(unbiased=True)) / math.sqrt(count)
    return MetricSummary(mean, float(stats.t.ppf(0.975, count - 1)) * sem)


def run_variant(
    preset: Preset,
    policy: CachingPolicy | str,
    scheduler_name: SchedulerName | str | Scheduler,
    envs: int,
    steps: int,
    seed: int,
    device: str = "cpu",
    on_step: Callable[[], None] | None = None,
) -> dict[str, torch.Tensor]:
    """Simulate one (caching policy, scheduler) pair; returns per-environment metrics, each [B].

    The scheduler is a name (`SchedulerName`) or a placement function of one's own (`reproduce.asp`'s upper
    bound). ValueError if the scheduler or the policy needs the cloud and the preset has no cloud execution."""
    place = scheduler_name if callable(scheduler_name) else scheduler(scheduler_name, preset.config)
    engine = EdgeEngine(preset.config, envs, policy, device=device, dtype=torch.float64)
    engine.reset(seed)
    view = engine.view
    task_stream = torch.Generator(device=view.device).manual_seed(seed + 1)
    decisions = torch.Generator(device=view.device).manual_seed(seed + 2)
    sums: dict[str, torch.Tensor] = {}
    for _ in range(steps):
        tasks = engine.sample_tasks(task_stream)
        out = engine.step(tasks, place(engine, tasks, decisions, None))
        cost = lc_system_cost(out)
        fields = {  # each [B, M]
            "T": out.T,
            "E": out.E,
            "completed": out.completed,
            "crashed": out.crashed,
            "hit": out.model_hit,
            "offloaded": out.offloaded,
            "switching": cost.switching,
            "inference": cost.inference,
            "offloading": cost.offloading,
            "cloud": cost.cloud,
            "accuracy": cost.accuracy,
            "edge_share": out.edge_share,
            "utility": torch.where(out.completed, out.quality, torch.zeros_like(out.quality)),
        }
        for key, value in fields.items():
            sums[key] = sums.get(key, 0) + value.to(torch.float64).sum(dim=1)
        if on_step is not None:
            on_step()
    tasks_total = steps * preset.config.n_devices
    metrics = {
        "latency_s": sums["T"] / tasks_total,
        "energy_j": sums["E"] / tasks_total,
        "completion_rate": (sums["completed"] - view.dropped) / tasks_total,
        "hit_rate": sums["hit"] / sums["offloaded"].clamp_min(1.0),
        "crash_rate": sums["crashed"] / tasks_total,
        "dropped_rate": view.dropped / tasks_total,
        "failure_rate": (sums["crashed"] + view.dropped) / tasks_total,
        "utility": (sums["utility"] - view.dropped_quality) / tasks_total,
        "switching_cost": sums["switching"] / tasks_total,
        "accuracy_cost": sums["accuracy"] / tasks_total,
        "inference_latency": sums["inference"] / tasks_total,
        "offloading_latency": sums["offloading"] / tasks_total,
        "cloud_cost": sums["cloud"] / tasks_total,
        "edge_execution_ratio": sums["edge_share"] / tasks_total,
    }
    metrics["system_cost"] = (
        metrics["switching_cost"]
        + metrics["accuracy_cost"]
        + metrics["inference_latency"]
        + metrics["offloading_latency"]
        + metrics["cloud_cost"]
    )
    return metrics


def variants(preset: Preset) -> list[tuple[str, CachingPolicy, SchedulerName]]:
    """(label, caching policy, scheduler) for every variant the preset compares: [Xu 2023, Table II]'s
    policies, or the schedulers (those that need the cloud only on a preset with cloud execution)."""
    runnable = available(preset.config)
    if preset.compares == "caching":
        policies = [p for p in COMPARED_POLICIES if preset.config.cloud_execution or p != CachingPolicy.CLOUD]
        return [(policy.value, policy, preset.scheduler) for policy in policies]
    names = ASP_SCHEDULERS if preset.name == PresetName.ASP else COMPARED_SCHEDULERS
    return [(name.value, preset.caching, name) for name in names if name in runnable]


def metric_names(preset: Preset) -> tuple[str, ...]:
    return (LC_METRICS + COMMON_METRICS) if preset.compares == "caching" else COMMON_METRICS


def compare(
    preset: Preset, envs: int, steps: int, seed: int, device: str = "cpu", on_step: Callable[[], None] | None = None
) -> dict[str, dict[str, MetricSummary]]:
    """Every variant of `preset` on the same streams: {label: {metric: summary}}."""
    rows: dict[str, dict[str, MetricSummary]] = {}
    for label, policy, scheduler_name in variants(preset):
        per_env = run_variant(preset, policy, scheduler_name, envs, steps, seed, device, on_step)
        rows[label] = {name: confidence_interval(per_env[name]) for name in metric_names(preset)}
    return rows
