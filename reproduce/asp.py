"""[Xu 2024] (seed 004, the survey), sec. V-A: AIGC service provider (ASP) selection baselines.

Setting: the `asp` preset (20 ASPs with a capacity of 600-1500 diffusion steps, tasks of 100-250 steps,
1000 tasks per run: 10 devices x 100 steps). A task whose demand exceeds its ASP's free capacity crashes
the ASP and the tasks running on it. The survey's baselines: random allocation, round-robin, crash-avoid
(the ASP with the most free resources: our `least-loaded`) and the upper bound, which knows the utility
every ASP offers and avoids crashes. `greedy` ([Wang 2025]'s nearest server holding the model) is added
as a fifth policy; the survey's claims are judged on its four baselines only. The survey's DRL (SAC)
policy is not implemented.

The upper bound (`upper_bound`, ours, after the survey's description): each task in device order goes to
the ASP of highest quality (`server_quality`, the ASP's model capability, which the engine multiplies into
the task's utility) among those whose free capacity at the step's start, less what this step already
assigned, fits the task's demand; if none fits, to the ASP with the most free capacity.

All five policies run through `offload_core.compare.run_variant` (the upper bound as a placement function),
with its streams and metric definitions (topologies from the seed, tasks from seed + 1, random draws from
seed + 2).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch

from offload_core.compare import CompareSettings, run_variant
from offload_core.config import preset
from offload_core.engine import Action, EdgeEngine
from offload_core.names import PresetName, SchedulerName
from offload_core.scenario import TaskBatch
from offload_core.schedulers import Scheduler, scheduler
from reproduce.claims import Claim, EnvBudget, Interval, Outcome, PerSeed, Verdict, best, judge_all, worst
from reproduce.report import Row, SummaryRow, TargetResult, bars, figure

Progress = Callable[[str], None]
SEED_STRIDE = 1000
UPPER = "upper-bound"
RANDOM = "random"
ROUND_ROBIN = "round-robin"
CRASH_AVOID = "least-loaded"
GREEDY = "greedy"
POLICIES: tuple[str, ...] = (RANDOM, ROUND_ROBIN, GREEDY, CRASH_AVOID, UPPER)
SURVEY: tuple[str, ...] = (RANDOM, ROUND_ROBIN, CRASH_AVOID, UPPER)
"""The survey's baselines (crash-avoid is our least-loaded)."""
METRICS = ("utility", "completion_rate", "crash_rate", "dropped_rate", "failure_rate", "latency_s")


def upper_bound(engine: EdgeEngine, tasks: TaskBatch, generator: torch.Generator, scores: torch.Tensor | None = None) -> Action:
    """The survey's upper bound: the highest-quality ASP whose free capacity fits the task (module docstring)."""
    view = engine.view
    c = view.config
    quality = engine.topology.server_quality  # [B, N]
    free = (view.server_capacity - view.occupied).clone()  # [B, N]
    targets = []
    for m in range(c.n_devices):
        demand = tasks.demand[:, m].unsqueeze(-1)  # [B, 1]
        fits = free >= demand  # [B, N]
        choice = torch.where(fits, quality, torch.full_like(quality, -torch.inf)).argmax(dim=-1)  # [B]
        choice = torch.where(fits.any(dim=-1), choice, free.argmax(dim=-1))
        free.scatter_add_(1, choice.unsqueeze(-1), -demand)
        targets.append(choice)
    target = torch.stack(targets, dim=1)  # [B, M]
    split = torch.zeros((view.batch, c.n_devices, c.n_servers + 2), device=view.device, dtype=view.dtype)
    split.scatter_(2, (target + 1).unsqueeze(-1), 1.0)
    download = torch.ones((view.batch, c.n_devices), dtype=torch.bool, device=view.device)
    return Action(split, download)


def placement(name: str) -> Scheduler:
    """The policy called `name` (POLICIES)."""
    if name == UPPER:
        return upper_bound
    return scheduler({RANDOM: SchedulerName.RANDOM_SERVER}.get(name, name))


BUDGETS: dict[str, EnvBudget] = {
    "tiny": EnvBudget("tiny", envs=2, steps=5),
    "default": EnvBudget("default", envs=16),
    "full": EnvBudget("full", envs=CompareSettings.envs),
}


def _no_failures(d: PerSeed) -> Outcome:
    values = d.per_seed[(UPPER, "failure_rate")]
    failures = d.at("failure_rate")
    ours = f"{failures[UPPER].fmt(3)}; " + ", ".join(f"{p} {i.mean:.3g}" for p, i in failures.items() if p != UPPER)
    if all(v == 0.0 for v in values):
        return Outcome(Verdict.REPRODUCED, ours)
    if all(failures[UPPER].mean < i.mean for p, i in failures.items() if p != UPPER):
        return Outcome(Verdict.PARTLY, ours, "the upper bound has the fewest crashed tasks, but not none")
    return Outcome(Verdict.NOT_REPRODUCED, ours, "another baseline has fewer crashed tasks than the upper bound")


CLAIMS: tuple[Claim[PerSeed], ...] = (
    Claim(
        "upper-bound-best",
        "the upper bound sets an upper limit on the users' utility (sec. V-A, Fig. 9)",
        "highest utility",
        "among the survey's baselines: reproduced if the upper bound's utility interval lies above every other's, partly "
        "if its mean is highest, else not reproduced",
        lambda d: best(d.at("utility"), UPPER, True, "utility"),
    ),
    Claim(
        "upper-bound-no-crash",
        "the upper bound avoids system failures (sec. V-A)",
        "no crashed tasks",
        "failure rate = tasks that crashed an ASP or were dropped in a crash, per task: reproduced if 0 on every seed, "
        "partly if the upper bound's mean is the lowest, else not reproduced",
        _no_failures,
    ),
    Claim(
        "random-minimum",
        "random allocation is the minimum benchmark (sec. V-A)",
        "lowest utility",
        "among the survey's baselines: reproduced if random's utility interval lies below every other's, partly if its "
        "mean is lowest, else not reproduced",
        lambda d: worst(d.at("utility"), [RANDOM], True, "utility"),
    ),
    Claim(
        "crash-avoid-fewer-crashes",
        "crash-avoid, which prefers ASPs with more free resources, prevents overburdening (sec. V-A)",
        "fewer crashes than random and round-robin",
        "failure rate among random, round-robin and crash-avoid (least-loaded): reproduced if crash-avoid's interval lies "
        "below both others', partly if its mean is lowest, else not reproduced",
        lambda d: best(d.at("failure_rate", (RANDOM, ROUND_ROBIN, CRASH_AVOID)), CRASH_AVOID, False, "failure rate"),
    ),
)


def baselines(
    level: str = "default", seeds: int = 5, progress: Progress | None = None, budget: EnvBudget | None = None
) -> TargetResult:
    """Sec. V-A: the five policies on the `asp` preset, `seeds` seeds of `budget.envs` environments each."""
    budget = budget or BUDGETS[level]
    say = progress or (lambda _: None)
    chosen = preset(PresetName.ASP)
    steps = budget.steps or chosen.steps
    started = time.perf_counter()
    runs: list[Row] = []
    per_seed: dict[tuple[str, str], list[float]] = {}
    for seed in range(seeds):
        for name in POLICIES:
            metrics = run_variant(chosen, chosen.caching, placement(name), budget.envs, steps, SEED_STRIDE * seed)
            row = {k: float(v.mean()) for k, v in metrics.items()}
            runs.append({"seed": seed, "policy": name, **row})
            for metric, value in row.items():
                per_seed.setdefault((name, metric), []).append(value)
        say(f"seed {seed}: {len(POLICIES)} policies x {budget.envs} envs x {steps} steps")
    data = PerSeed(per_seed, tuple(SURVEY))
    summary = [SummaryRow("", p, m, Interval.of(per_seed[(p, m)])) for m in METRICS for p in POLICIES]

    def plot(path: Any) -> None:
        shown = ("utility", "completion_rate", "failure_rate", "latency_s")
        with figure(path, ncols=len(shown), size=(15, 3.8)) as axes:
            for ax, metric in zip(axes, shown, strict=True):
                bars(ax, list(POLICIES), [Interval.of(per_seed[(p, metric)]) for p in POLICIES], color="tab:blue")
                labels = [f"crash-avoid\n({p})" if p == CRASH_AVOID else p for p in POLICIES]
                ax.set_xticks(range(len(POLICIES)), labels, rotation=30, ha="right", fontsize=8)
                ax.set_title(metric, fontsize=9)
            axes[0].figure.suptitle(f"asp-baselines ([Xu 2024] sec. V-A): 95% CI over {seeds} seeds", fontsize=9)

    return TargetResult(
        name="asp-baselines",
        title="[Xu 2024] sec. V-A: ASP selection baselines and the upper bound",
        seeds=seeds,
        budget={"level": budget.level, "envs": budget.envs, "steps": steps},
        runs=runs,
        summary=summary,
        claims=judge_all(CLAIMS, data),
        plot=plot,
        settings={
            "preset": PresetName.ASP.value,
            "edge": chosen.config,
            "caching": chosen.caching.value,
            "seed_stride": SEED_STRIDE,
        },
        elapsed_s=time.perf_counter() - started,
    )
