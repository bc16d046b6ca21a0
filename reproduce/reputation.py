"""[Xu 2024] (seed 004, the survey), sec. V-D: reputation-based ESP selection, Figs. 14 and 15.

Setting: `reputation.experiments` (docs/reputation.md): 3 producers and 3 ESPs (the survey's
demonstration), MWSL reputation with softmax selection, the first 30 periods random. The survey numbers
its ESPs from 1; ours from 0, so the survey's ESP1 (the best, which later delays its services) is our
ESP 0 and its ESP2, ESP3 are our ESP 1, 2.

- `reputation-trends` (Fig. 14): `trends(LifecycleConfig(switch_period=10, seed=k))`, the experiment's
  own default switch period: ESP 0 serves best, then from period 10 delays every task.
- `reputation-workload` (Fig. 15): `workload(LifecycleConfig(seed=k))`: every strategy on the same
  setup; the survey's "traditional methods" are selecting the most familiar ESP, which the experiments
  implement in two readings (each producer's own most familiar, `most-familiar`, and the globally most
  familiar, `most-familiar-global`); the claims compare MWSL with both.

The survey gives no numbers for these figures, only what they show; the paper's setup (Draw Things
application, real ESPs) is replaced by the experiments' simulated ratings. Both experiments take a
fraction of a second per seed, so `default` and `full` are the same budget (`tiny` shortens the run for
the tests).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch

from reproduce.claims import Claim, Interval, Outcome, Verdict, above, best, combine, judge_all
from reproduce.report import Row, SummaryRow, TargetResult, bars, figure, line_with_band
from reputation.experiments import STRATEGIES, LifecycleConfig, trends, workload

Progress = Callable[[str], None]
WINDOW = 10
"""Periods after the switch within which the delaying ESP must fall below both others ("sharply")."""


@dataclass(frozen=True)
class ReputationBudget:
    level: str
    periods: int
    """Simulated periods."""
    random_periods: int = LifecycleConfig.random_periods
    """Periods of random selection at the start."""
    switch_period: int = 10
    """Trends: the period from which ESP 0 delays every task."""

    def config(self, seed: int, switch: bool) -> LifecycleConfig:
        base = LifecycleConfig(seed=seed, switch_period=self.switch_period if switch else None)
        return replace(base, periods=self.periods, random_periods=self.random_periods)


BUDGETS: dict[str, ReputationBudget] = {
    "tiny": ReputationBudget("tiny", periods=40, random_periods=5, switch_period=10),
    "default": ReputationBudget("default", periods=LifecycleConfig.periods),
    "full": ReputationBudget("full", periods=LifecycleConfig.periods),
}


# -- Fig. 14: trends ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Trends:
    reputation: list[torch.Tensor]
    """Per seed: [periods, E] reputation as producer 0 sees it."""
    switch: int

    def per_seed(self, fn: Callable[[torch.Tensor], float]) -> Interval:
        return Interval.of([fn(rep) for rep in self.reputation])

    def esp(self, j: int, fn: Callable[[torch.Tensor], float]) -> Interval:
        """`fn` of ESP j's reputation series [periods], one value per seed."""
        return Interval.of([fn(rep[:, j]) for rep in self.reputation])

    def falls_within(self, rep: torch.Tensor) -> int | None:
        """Periods after the switch until ESP 0 is below both others (None: not within WINDOW)."""
        window = rep[self.switch : self.switch + WINDOW]
        below = (window[:, 0] < window[:, 1:].min(dim=1).values).nonzero()
        return int(below[0]) + 1 if below.numel() else None


def _sharp_decline(d: Trends) -> Outcome:
    s = d.switch
    drop = d.per_seed(lambda r: float(r[s - 1, 0] - r[min(s + WINDOW - 1, r.shape[0] - 1), 0]))
    fell = [d.falls_within(rep) for rep in d.reputation]
    ours = f"drop {drop.fmt(3)}; below both others after " + ", ".join("-" if f is None else str(f) for f in fell) + " periods"
    if drop.low > 0 and all(f is not None for f in fell):
        return Outcome(Verdict.REPRODUCED, ours)
    if drop.mean > 0:
        return Outcome(Verdict.PARTLY, ours, f"it declines, but not below both others within {WINDOW} periods on every seed")
    return Outcome(Verdict.NOT_REPRODUCED, ours, "ESP 0's reputation does not decline after it starts delaying")


TRENDS_CLAIMS: tuple[Claim[Trends], ...] = (
    Claim(
        "best-esp-highest",
        "ESP1 (ours: ESP 0) attains the highest rank while it serves best (sec. V-D, Fig. 14)",
        "highest",
        "per seed, ESP 0's reputation minus the higher of the others', averaged over the periods before the switch: "
        "reproduced if the interval lies above 0, partly if the mean does, else not reproduced",
        lambda d: above(
            d.per_seed(lambda r: float((r[1 : d.switch, 0] - r[1 : d.switch, 1:].max(dim=1).values).mean())),
            0.0,
            "ESP 0's margin before the switch",
        ),
    ),
    Claim(
        "delaying-esp-declines",
        "when ESP1 deliberately delays its services its reputation declines sharply (sec. V-D, Fig. 14)",
        "sharp decline",
        f"per seed, ESP 0's reputation the period before the switch minus {WINDOW} periods after it: reproduced if the "
        f"interval lies above 0 and ESP 0 falls below both others within {WINDOW} periods on every seed, partly if the "
        "mean drop is positive, else not reproduced",
        _sharp_decline,
    ),
    Claim(
        "others-rise",
        "the reputations of ESP2 and ESP3 (ours: ESP 1, 2) continue to rise (sec. V-D, Fig. 14)",
        "rise",
        "per seed, each one's reputation at the last period minus at the switch: reproduced if both intervals lie above 0, "
        "partly if both means do, else not reproduced",
        lambda d: combine([above(d.esp(j, lambda col: float(col[-1] - col[d.switch])), 0.0, f"ESP {j}'s rise") for j in (1, 2)]),
    ),
)


def reputation_trends(
    level: str = "default", seeds: int = 5, progress: Progress | None = None, budget: ReputationBudget | None = None
) -> TargetResult:
    """Fig. 14: reputation of the three ESPs over the periods, ESP 0 delaying from the switch on."""
    budget = budget or BUDGETS[level]
    say = progress or (lambda _: None)
    started = time.perf_counter()
    reps: list[torch.Tensor] = []
    runs: list[Row] = []
    for seed in range(seeds):
        result = trends(budget.config(seed, switch=True))
        rep = result.reputation.to(torch.float64)
        reps.append(rep)
        for t in range(rep.shape[0]):
            row: Row = {"seed": seed, "period": t}
            row |= {f"reputation_esp{j}": float(rep[t, j]) for j in range(rep.shape[1])}
            row |= {f"tasks_esp{j}": int(result.load[t, j]) for j in range(rep.shape[1])}
            runs.append(row)
        say(f"seed {seed}: {rep.shape[0]} periods")
    data = Trends(reps, budget.switch_period)
    n_e, periods, s = reps[0].shape[1], reps[0].shape[0], budget.switch_period
    summary = []
    for j in range(n_e):
        summary += [
            SummaryRow("", f"ESP {j}", "mean_before_switch", data.esp(j, lambda col: float(col[1:s].mean()))),
            SummaryRow("", f"ESP {j}", f"mean_{WINDOW}_after_switch", data.esp(j, lambda col: float(col[s : s + WINDOW].mean()))),
            SummaryRow("", f"ESP {j}", "last_period", data.esp(j, lambda col: float(col[-1]))),
        ]

    def plot(path: Any) -> None:
        with figure(path, size=(7.5, 4.2)) as ax:
            for j in range(n_e):
                line_with_band(
                    ax, list(range(periods)), [Interval.of([float(r[t, j]) for r in reps]) for t in range(periods)], f"ESP {j}"
                )
            ax.axvline(s, color="grey", linestyle="--", linewidth=0.8, label="ESP 0 starts delaying")
            ax.axvline(budget.random_periods, color="grey", linestyle=":", linewidth=0.8, label="end of random selection")
            ax.set(xlabel="period", ylabel="reputation (seen by producer 0)", ylim=(0, 1))
            ax.set_title(f"reputation-trends ([Xu 2024] Fig. 14): mean and 95% CI over {seeds} seeds", fontsize=9)
            ax.legend(fontsize=7)

    return TargetResult(
        name="reputation-trends",
        title="[Xu 2024] Fig. 14: reputation trends of three ESPs",
        seeds=seeds,
        budget={"level": budget.level, "periods": budget.periods, "random_periods": budget.random_periods, "switch_period": s},
        runs=runs,
        summary=summary,
        claims=judge_all(TRENDS_CLAIMS, data),
        plot=plot,
        settings={"lifecycle": budget.config(0, switch=True)},
        elapsed_s=time.perf_counter() - started,
    )


# -- Fig. 15: workload ---------------------------------------------------------------------------------------

TRADITIONAL: tuple[str, ...] = ("most-familiar", "most-familiar-global")
WORKLOAD_METRICS = ("jain", "producer_jain", "latency", "positive_rate")


@dataclass(frozen=True)
class Workload:
    per_seed: dict[tuple[str, str], list[float]]

    def at(self, metric: str, strategies: Sequence[str]) -> dict[str, Interval]:
        return {s: Interval.of(self.per_seed[(s, metric)]) for s in strategies}


WORKLOAD_CLAIMS: tuple[Claim[Workload], ...] = (
    Claim(
        "mwsl-balances",
        "reputation-based selection balances the workload among ESPs, traditional selection leaves it uneven (sec. V-D, Fig. 15)",
        "balanced vs uneven",
        "Jain's index of the tasks per ESP after the random phase: reproduced if MWSL's interval lies above both "
        "most-familiar readings', partly if its mean is above both, else not reproduced",
        lambda d: best(d.at("jain", ("mwsl", *TRADITIONAL)), "mwsl", True, "Jain's index"),
    ),
    Claim(
        "traditional-slower",
        "traditional selection extends service latencies (sec. V-D)",
        "longer latency",
        "mean latency of the tasks after the random phase: reproduced if MWSL's interval lies below both most-familiar "
        "readings', partly if its mean is below both, else not reproduced",
        lambda d: best(d.at("latency", ("mwsl", *TRADITIONAL)), "mwsl", False, "latency"),
    ),
)


def reputation_workload(
    level: str = "default", seeds: int = 5, progress: Progress | None = None, budget: ReputationBudget | None = None
) -> TargetResult:
    """Fig. 15: tasks per ESP under every strategy, Jain's index and latency."""
    budget = budget or BUDGETS[level]
    say = progress or (lambda _: None)
    started = time.perf_counter()
    strategies = tuple(STRATEGIES)
    runs: list[Row] = []
    per_seed: dict[tuple[str, str], list[float]] = {}
    n_e = 0
    for seed in range(seeds):
        result = workload(budget.config(seed, switch=False), strategies)
        for name in strategies:
            load = result.load[name]
            n_e = len(load)
            values: dict[str, float] = {
                "jain": result.jain[name],
                "producer_jain": result.producer_jain[name],
                "latency": result.latency[name],
                "positive_rate": result.positive_rate[name],
                **{f"tasks_esp{j}": float(x) for j, x in enumerate(load)},
            }
            run_row: Row = {"seed": seed, "strategy": name}
            run_row.update(values)
            runs.append(run_row)
            for key, value in values.items():
                per_seed.setdefault((name, key), []).append(float(value))
        say(f"seed {seed}: {len(strategies)} strategies")
    data = Workload(per_seed)
    metrics = (*WORKLOAD_METRICS, *(f"tasks_esp{j}" for j in range(n_e)))
    summary = [SummaryRow("", s, m, Interval.of(per_seed[(s, m)])) for s in strategies for m in metrics]

    def plot(path: Any) -> None:
        with figure(path, ncols=2, size=(14, 4.2)) as axes:
            width = 0.8 / n_e
            for j in range(n_e):
                bars(
                    axes[0],
                    list(strategies),
                    [Interval.of(per_seed[(s, f"tasks_esp{j}")]) for s in strategies],
                    offset=(j - (n_e - 1) / 2) * width,
                    width=width,
                    label=f"ESP {j}",
                )
            axes[0].set_xticks(range(len(strategies)), list(strategies), rotation=30, ha="right", fontsize=8)
            axes[0].set(ylabel="tasks after the random phase")
            axes[0].set_title("tasks per ESP (Fig. 15)", fontsize=9)
            axes[0].legend(fontsize=7)
            bars(axes[1], list(strategies), [Interval.of(per_seed[(s, "jain")]) for s in strategies], color="tab:green")
            axes[1].set_xticks(range(len(strategies)), list(strategies), rotation=30, ha="right", fontsize=8)
            axes[1].set_title("Jain's index of the workload (1 = even)", fontsize=9)
            axes[0].figure.suptitle(f"reputation-workload ([Xu 2024] Fig. 15): mean and 95% CI over {seeds} seeds", fontsize=9)

    return TargetResult(
        name="reputation-workload",
        title="[Xu 2024] Fig. 15: workload of three ESPs under each selection method",
        seeds=seeds,
        budget={"level": budget.level, "periods": budget.periods, "random_periods": budget.random_periods},
        runs=runs,
        summary=summary,
        claims=judge_all(WORKLOAD_CLAIMS, data),
        plot=plot,
        settings={"lifecycle": budget.config(0, switch=False), "strategies": list(strategies)},
        elapsed_s=time.perf_counter() - started,
    )
