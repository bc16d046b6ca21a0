"""[Wang 2025] (seed 002, MADDPG-MATO), section IV: Fig. 2 (convergence), Fig. 3 (3-6 models), Fig. 4 (5-20 EDs).

Setting: the `mato` preset (IV-A: 1 CC that supplies models, 3 ES at 7 GHz, 10 ED at 1-3 GHz, tasks
2-20 MB, models 90-250 MB), trained and evaluated through `offload_core.training` (`train`, `evaluate`,
`scheduler_curve`, `sweep_config`): MADDPG-MATO against MADDPG-NoModel, SADDPG, Random and Greedy
(the paper's baselines; MAPPO is ours and not in the paper's figures).

Budgets. The paper gives the learning rate, discount, soft update, buffer and batch size (1024) but not
how long it trains. A run's budget is its number of gradient updates (`TrainSettings.updates`), every
other setting the learners' defaults (the paper's hyperparameters where it states them): `default` is
the learners' `DEFAULT_UPDATES` (2,000: past the ~2,000 updates over which the critics' value scale
settles), `full` their `FULL_UPDATES` (20,000: the budget of the paper's comparisons), `tiny` a few
updates for the tests (seconds; its verdicts mean nothing).

Readings of the paper (written here and in docs/reproduction.md):
- "an average reduction of 6.98% in latency" (and 7.12% energy, +3.72% completion) over 3-6 models:
  MADDPG-MATO against the best other algorithm at each model count (the one with the best mean over
  seeds on that metric), relative to that algorithm, averaged over the four counts; one value per seed.
- "surpassing other algorithms by at least 11.3%" at 20 EDs: relative to the best other algorithm
  (98% vs NoModel's ~88% is 11.4% relative, so the paper's percentages are relative).
- The reward of Fig. 2 is ours: eq. 18 summed over the devices, per step, averaged over environments
  and the episode's steps (`offload_core.training`); the paper does not state the scale of its curve.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from offload_core.config import EdgeConfig, preset
from offload_core.maddpg import MADDPGConfig
from offload_core.names import Algorithm, PresetName, SweepAxis
from offload_core.training import (
    DEFAULT_UPDATES,
    FULL_UPDATES,
    SWEEP_VALUES,
    EvalSettings,
    TrainSettings,
    best_fixed_rule,
    evaluate,
    evaluate_rules,
    scheduler_curve,
    sweep_config,
    train,
)
from reproduce.claims import (
    Claim,
    Interval,
    Outcome,
    Verdict,
    above,
    best,
    combine,
    gain,
    judge_all,
    near,
    share,
    worst,
)
from reproduce.report import Row, SummaryRow, TargetResult, errorbar_line, figure, line_with_band

Progress = Callable[[str], None]

MATO = Algorithm.MADDPG_MATO
NOMODEL = Algorithm.MADDPG_NOMODEL
LEARNERS: tuple[Algorithm, ...] = (Algorithm.MADDPG_MATO, Algorithm.MADDPG_NOMODEL, Algorithm.SADDPG)
"""The learned algorithms of the paper's figures."""
RULES: tuple[Algorithm, ...] = (Algorithm.RANDOM, Algorithm.GREEDY)
"""The paper's fixed-rule baselines."""
ALGOS: tuple[Algorithm, ...] = LEARNERS + RULES
SWEEP_METRICS = ("latency_s", "energy_j", "completion_rate", "reward")
FIXED = "best-fixed-rule"
"""Pseudo-algorithm of the sweeps' rows: the best of `offload_core.training.FIXED_RULES` on each seed."""


@dataclass(frozen=True)
class MatoBudget:
    """How long each learner trains and how it is evaluated; None: the learners' own default."""

    level: str
    updates: int
    """Gradient updates of each training run (TrainSettings.updates)."""
    envs: int | None = None
    """Batched training environments (TrainSettings.envs)."""
    episodes: int | None = None
    """Training episodes (TrainSettings.episodes); None: as many as earn `updates` (the learner's plan)."""
    steps: int | None = None
    """Steps per episode (TrainSettings.steps)."""
    batch_size: int | None = None
    """Replay batch (MADDPGConfig.batch_size; the paper's is 1024)."""
    learning_starts: int | None = None
    """Transitions stored before the first update (MADDPGConfig.learning_starts)."""
    eval_envs: int = EvalSettings.envs
    """Environments of each evaluation (held-out streams)."""
    eval_steps: int = EvalSettings.steps
    """Steps of each evaluation."""
    values: tuple[int, ...] | None = None
    """Sweep points; None: the paper's (3-6 models, 5-20 EDs)."""

    def settings(self, algo: Algorithm, seed: int) -> TrainSettings:
        changes: dict[str, Any] = {k: v for k, v in (("envs", self.envs), ("steps", self.steps)) if v is not None}
        return replace(TrainSettings(algo=algo, seed=seed, updates=self.updates, episodes=self.episodes), **changes)

    def hp(self) -> MADDPGConfig | None:
        pairs = (("batch_size", self.batch_size), ("learning_starts", self.learning_starts))
        changes: dict[str, Any] = {k: v for k, v in pairs if v is not None}
        return replace(MADDPGConfig(), **changes) if changes else None


TINY = MatoBudget("tiny", updates=4, envs=4, episodes=3, steps=4, batch_size=8, learning_starts=8, eval_envs=2, eval_steps=3)
CONVERGENCE_BUDGETS: dict[str, MatoBudget] = {
    "tiny": TINY,
    "default": MatoBudget("default", updates=DEFAULT_UPDATES),
    "full": MatoBudget("full", updates=FULL_UPDATES),
}
SWEEP_BUDGETS: dict[str, MatoBudget] = {
    "tiny": replace(TINY, episodes=2, steps=3),
    "default": MatoBudget("default", updates=DEFAULT_UPDATES),
    "full": MatoBudget("full", updates=FULL_UPDATES),
}


def mato_config() -> EdgeConfig:
    return preset(PresetName.MATO).config


def _window(episodes: int) -> int:
    """Episodes averaged as a run's final reward: the last tenth (at least one)."""
    return max(1, episodes // 10)


def _mean(xs: Sequence[float]) -> float:
    return math.fsum(xs) / len(xs)


def _note(outcome: Outcome, note: str) -> Outcome:
    """Append a standing explanation to the reason of a claim that is not reproduced."""
    if outcome.verdict == Verdict.REPRODUCED:
        return outcome
    return Outcome(outcome.verdict, outcome.ours, f"{outcome.reason}; {note}")


# -- Fig. 2: convergence -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Convergence:
    """Per algorithm: the reward curve over seeds and what the claims read from it."""

    curves: dict[str, list[Interval]]
    """Per algorithm (learners and rules): training reward per episode (rules: on the same streams)."""
    final: dict[str, Interval]
    """Mean training reward of the last tenth of the episodes."""
    improvement: dict[str, Interval]
    """Learners: final minus first-episode reward, per seed."""
    plateau: dict[str, Interval]
    """Learners: final window minus the window before it, per seed."""
    above_rule: dict[str, Interval]
    """Learners: evaluation reward minus the best fixed rule's (held-out streams), per seed."""


def _plateau(change: Interval, final: Interval, what: str) -> Outcome:
    tolerance = 0.05 * abs(final.mean)
    ours = f"last-window change {change.fmt(3)}"
    if change.contains(0.0) or abs(change.mean) <= tolerance:
        return Outcome(Verdict.REPRODUCED, ours)
    return Outcome(Verdict.PARTLY, ours, f"{what} still changing by {change.mean:+.3g} per window (more than 5% of its level)")


CONVERGENCE_CLAIMS: tuple[Claim[Convergence], ...] = (
    Claim(
        "mato-level",
        "MADDPG-MATO converges to about -40 (sec. IV-B, Fig. 2)",
        "about -40",
        "reproduced if our final reward's interval contains -40 or its mean is within 5 of it, "
        "partly if within 10, else not reproduced",
        lambda d: _note(
            near(d.final[MATO], -40.0, 5.0, 10.0, "final reward"),
            "the paper does not state its reward's scale (weights, divisor, penalty, steps summed); ours is eq. 18 "
            "summed over devices per step",
        ),
    ),
    Claim(
        "mato-above-baselines",
        "MADDPG-MATO ends above MADDPG-NoModel and SADDPG (sec. IV-B, Fig. 2)",
        "MATO highest",
        "reproduced if MATO's final-reward interval lies above NoModel's and SADDPG's, partly if its mean is highest, "
        "else not reproduced",
        lambda d: best({a: d.final[a] for a in LEARNERS}, MATO, True, "final reward"),
    ),
    Claim(
        "mato-converges",
        "MADDPG-MATO learns quickly and converges (sec. IV-B, Fig. 2)",
        "converges",
        "reproduced if its final reward is above its first episode's (interval of the paired difference above 0) and "
        "the last window differs from the one before by an interval containing 0 or by at most 5% of the level; "
        "partly if the improvement holds only by its mean or the reward is still changing, else not reproduced",
        lambda d: combine(
            [
                above(d.improvement[MATO], 0.0, "final minus first-episode reward"),
                _plateau(d.plateau[MATO], d.final[MATO], "the reward"),
            ]
        ),
    ),
    Claim(
        "learners-improve",
        "every learner ends above its own first-episode reward (issue 15)",
        "-",
        "reproduced if for every learner the interval of final minus first-episode reward lies above 0, partly if "
        "for more than half at least the mean does, else not reproduced",
        lambda d: share(
            [above(d.improvement[a], 0.0, a) for a in LEARNERS],
            ", ".join(f"{a} {d.improvement[a].fmt(3)}" for a in LEARNERS),
            "learners improving",
        ),
        check=True,
    ),
    Claim(
        "learners-above-rules",
        "every learner ends above the best fixed rule (issue 15; `offload_core.training.FIXED_RULES`, held-out streams)",
        "-",
        "per seed, the learner's evaluation reward minus the best fixed rule's on the same held-out streams: reproduced "
        "if the interval lies above 0 for every learner, partly if for more than half at least the mean does, else not "
        "reproduced",
        lambda d: share(
            [above(d.above_rule[a], 0.0, a) for a in LEARNERS],
            ", ".join(f"{a} {d.above_rule[a].fmt(3)}" for a in LEARNERS),
            "learners above the best rule",
        ),
        check=True,
    ),
)


def convergence(
    level: str = "default", seeds: int = 5, progress: Progress | None = None, budget: MatoBudget | None = None
) -> TargetResult:
    """Fig. 2: reward per episode of the three learners (and the rules on the same streams), `seeds` seeds."""
    budget = budget or CONVERGENCE_BUDGETS[level]
    say = progress or (lambda _: None)
    config = mato_config()
    started = time.perf_counter()
    rewards: dict[str, list[list[float]]] = {a.value: [] for a in ALGOS}
    above_rule: dict[str, list[float]] = {a.value: [] for a in LEARNERS}
    runs: list[Row] = []
    for seed in range(seeds):
        rules = evaluate_rules(config, budget.eval_envs, budget.eval_steps, seed, TrainSettings().policy)
        rule_name, rule_reward = best_fixed_rule(rules)
        episodes = 0
        for algo in LEARNERS:
            settings = budget.settings(algo, seed)
            t0 = time.perf_counter()
            result = train(config, settings, hp=budget.hp())
            curve = [row["reward"] for row in result.curve]
            episodes = max(episodes, len(curve))
            rewards[algo.value].append(curve)
            evaluation = evaluate(config, algo, result.agent, budget.eval_envs, budget.eval_steps, seed, settings.policy)
            above_rule[algo.value].append(evaluation["reward"] - rule_reward)
            for row in result.curve:
                runs.append({"seed": seed, "algo": algo.value, **row})
            runs.append(
                {
                    "seed": seed,
                    "algo": algo.value,
                    "episode": "eval",
                    **evaluation,
                    "best_rule": rule_name,
                    "best_rule_reward": rule_reward,
                }
            )
            say(f"seed {seed} {algo.value}: {len(curve)} episodes in {time.perf_counter() - t0:.0f} s")
        for rule in RULES:
            rule_curve = scheduler_curve(config, rule, budget.settings(MATO, seed), episodes)
            rewards[rule.value].append(rule_curve)
            runs += [{"seed": seed, "algo": rule.value, "episode": e, "reward": r} for e, r in enumerate(rule_curve)]
    data = _convergence_data(rewards, above_rule)
    summary = [SummaryRow("", a, "final_reward", data.final[a], -40.0 if a == MATO else None) for a in data.final]
    summary += [SummaryRow("", a, "final_minus_first", data.improvement[a]) for a in data.improvement]
    summary += [SummaryRow("", a, "last_window_change", data.plateau[a]) for a in data.plateau]
    summary += [SummaryRow("", a, "eval_minus_best_rule", data.above_rule[a]) for a in data.above_rule]

    def plot(path: Any) -> None:
        with figure(path, size=(7.5, 4.2)) as ax:
            for algo in ALGOS:
                xs = list(range(len(data.curves[algo])))
                if algo in LEARNERS:
                    line_with_band(ax, xs, data.curves[algo], algo.value)
                else:
                    ax.plot(xs, [i.mean for i in data.curves[algo]], linestyle="--", linewidth=1, label=f"{algo.value} (rule)")
            ax.axhline(-40.0, color="grey", linestyle=":", linewidth=1, label="paper: MATO about -40")
            ax.set(xlabel="episode", ylabel="reward per step (eq. 18 summed over EDs)")
            ax.set_title(f"mato-convergence ([Wang 2025] Fig. 2): mean and 95% CI over {seeds} seeds", fontsize=9)
            ax.legend(fontsize=7)

    return TargetResult(
        name="mato-convergence",
        title="[Wang 2025] Fig. 2: convergence of MADDPG-MATO, MADDPG-NoModel and SADDPG",
        seeds=seeds,
        budget=_budget_fields(budget, {a: len(rewards[a][0]) for a in LEARNERS}),
        runs=runs,
        summary=summary,
        claims=judge_all(CONVERGENCE_CLAIMS, data),
        plot=plot,
        settings={
            "preset": PresetName.MATO.value,
            "edge": config,
            "train": budget.settings(MATO, 0),
            "hp": budget.hp() or MADDPGConfig(),
        },
        elapsed_s=time.perf_counter() - started,
    )


def _padded(runs: list[list[float]]) -> list[list[float]]:
    """Curves of one algorithm over seeds cut to the shortest (a learner plans the same episodes per seed)."""
    shortest = min(len(run) for run in runs)
    return [run[:shortest] for run in runs]


def _convergence_data(rewards: dict[str, list[list[float]]], above_rule: dict[str, list[float]]) -> Convergence:
    rewards = {a: _padded(runs) for a, runs in rewards.items()}
    curves = {a: [Interval.of([run[e] for run in runs]) for e in range(len(runs[0]))] for a, runs in rewards.items()}
    final, improvement, plateau = {}, {}, {}
    for a, runs in rewards.items():
        w = _window(len(runs[0]))
        final[a] = Interval.of([_mean(run[-w:]) for run in runs])
        if a in LEARNERS:
            improvement[a] = Interval.of([_mean(run[-w:]) - run[0] for run in runs])
            before = [_mean(run[-2 * w : -w]) if len(run) >= 2 * w + 1 else run[0] for run in runs]
            plateau[a] = Interval.of([_mean(run[-w:]) - b for run, b in zip(runs, before, strict=True)])
    return Convergence(
        curves=curves,
        final=final,
        improvement=improvement,
        plateau=plateau,
        above_rule={a: Interval.of(v) for a, v in above_rule.items()},
    )


def _budget_fields(budget: MatoBudget, episodes: dict[str, int] | None = None) -> dict[str, Any]:
    """The budget as it ran: every None replaced by the learners' default it stood for."""
    settings = budget.settings(MATO, 0)
    hp = budget.hp() or MADDPGConfig()
    fields: dict[str, Any] = {
        "level": budget.level,
        "updates": settings.updates,
        "envs": settings.envs,
        "steps": settings.steps,
        "batch_size": hp.batch_size,
        "learning_starts": hp.learning_starts,
        "eval_envs": budget.eval_envs,
        "eval_steps": budget.eval_steps,
    }
    if episodes:
        fields["episodes"] = ", ".join(f"{a} {n}" for a, n in episodes.items())
    return fields


# -- Figs. 3 and 4: sweeps ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sweep:
    """Per (point, algorithm, metric): per-seed values, and their intervals."""

    axis: SweepAxis
    values: tuple[int, ...]
    per_seed: dict[tuple[int, str, str], list[float]]

    def at(self, value: int, metric: str, algos: Sequence[str] = ALGOS) -> dict[str, Interval]:
        return {a: Interval.of(self.per_seed[(value, a, metric)]) for a in algos}

    def best_other(self, value: int, metric: str, higher: bool) -> str:
        """The algorithm other than MATO with the best mean on `metric` at `value`."""
        others = [a for a in ALGOS if a != MATO]
        means = {a: _mean(self.per_seed[(value, a, metric)]) for a in others}
        return max(others, key=means.__getitem__) if higher else min(others, key=means.__getitem__)

    def relative_gain(self, value: int, metric: str, higher: bool) -> list[float]:
        """Per seed: MATO's gain over the best other algorithm at `value`, in % of that algorithm's value
        (a reduction for lower-is-better metrics, an increase for higher-is-better ones)."""
        other = self.best_other(value, metric, higher)
        gains = []
        for mine, theirs in zip(self.per_seed[(value, MATO, metric)], self.per_seed[(value, other, metric)], strict=True):
            delta = mine - theirs if higher else theirs - mine
            gains.append(100.0 * delta / abs(theirs) if theirs != 0 else 0.0)
        return gains

    def mean_gain(self, metric: str, higher: bool) -> Interval:
        """MATO's relative gain over the best other algorithm, averaged over the points, per seed."""
        per_point = [self.relative_gain(v, metric, higher) for v in self.values]
        return Interval.of([_mean(list(seed_gains)) for seed_gains in zip(*per_point, strict=True)])

    def paired(self, value: int, algo: str, minuend: str, subtrahend: str) -> Interval:
        a, b = self.per_seed[(value, algo, minuend)], self.per_seed[(value, algo, subtrahend)]
        return Interval.of([x - y for x, y in zip(a, b, strict=True)])

    def above_best_rule(self, value: int, algo: str) -> Interval:
        """Per seed: the algorithm's evaluation reward minus the best fixed rule's on the same streams."""
        a, b = self.per_seed[(value, algo, "reward")], self.per_seed[(value, FIXED, "reward")]
        return Interval.of([x - y for x, y in zip(a, b, strict=True)])

    def trend(self, algo: str, metric: str, rising: bool) -> Interval:
        """Per seed: metric at the last point minus at the first, signed so that the paper's direction is positive."""
        first, last = self.per_seed[(self.values[0], algo, metric)], self.per_seed[(self.values[-1], algo, metric)]
        sign = 1.0 if rising else -1.0
        return Interval.of([sign * (b - a) for a, b in zip(first, last, strict=True)])


def _mato_best_everywhere(d: Sweep) -> Outcome:
    per_point = []
    for v in d.values:
        per_point.append(
            combine(
                [
                    best(d.at(v, "latency_s"), MATO, False, f"latency at {v}"),
                    best(d.at(v, "energy_j"), MATO, False, f"energy at {v}"),
                    best(d.at(v, "completion_rate"), MATO, True, f"completion at {v}"),
                ]
            )
        )
    ours = ", ".join(f"{v}: {o.verdict.value}" for v, o in zip(d.values, per_point, strict=True))
    return share(per_point, ours, "MATO best on latency, energy and completion")


def _checks(axis_label: str) -> tuple[Claim[Sweep], ...]:
    return (
        Claim(
            "learners-improve",
            f"every learner ends above its own first-episode reward at every {axis_label} (issue 15)",
            "-",
            "reproduced if for every (learner, point) the interval of final-window minus first-episode training reward "
            "lies above 0, partly if for more than half at least the mean does, else not reproduced",
            lambda d: share(
                [
                    above(d.paired(v, a, "final_train_reward", "first_reward"), 0.0, f"{a} at {v}")
                    for v in d.values
                    for a in LEARNERS
                ],
                "; ".join(
                    f"{a}: " + ", ".join(f"{d.paired(v, a, 'final_train_reward', 'first_reward').mean:+.3g}" for v in d.values)
                    for a in LEARNERS
                ),
                "learners improving",
            ),
            check=True,
        ),
        Claim(
            "learners-above-rules",
            f"every learner's evaluation reward is above the best fixed rule's at every {axis_label} (issue 15)",
            "-",
            "per seed, the learner's evaluation reward minus the best fixed rule's (`offload_core.training.FIXED_RULES`, "
            "best on that seed's held-out streams): reproduced if the interval lies above 0 for every (learner, point), "
            "partly if for more than half at least the mean does, else not reproduced",
            lambda d: share(
                [above(d.above_best_rule(v, a), 0.0, f"{a} at {v}") for v in d.values for a in LEARNERS],
                "; ".join(f"{a}: " + ", ".join(f"{d.above_best_rule(v, a).mean:+.3g}" for v in d.values) for a in LEARNERS),
                "learners above the best rule",
            ),
            check=True,
        ),
    )


MODELS_CLAIMS: tuple[Claim[Sweep], ...] = (
    Claim(
        "latency-reduction",
        "over 3-6 models MADDPG-MATO reduces latency by about 6.98% on average (abstract, sec. IV-C1, Fig. 3)",
        "6.98%",
        "MATO's latency reduction relative to the best other algorithm at each count, averaged over the counts, per seed: "
        "reproduced if its interval lies above 0 and contains 6.98% or lies above it, partly if its mean is positive, "
        "else not reproduced",
        lambda d: gain(d.mean_gain("latency_s", False), 6.98, "latency reduction"),
    ),
    Claim(
        "energy-reduction",
        "over 3-6 models MADDPG-MATO reduces energy by about 7.12% on average (abstract, sec. IV-C1, Fig. 3)",
        "7.12%",
        "as latency-reduction, on energy: reproduced if the interval lies above 0 and contains 7.12% or lies above it, "
        "partly if the mean is positive, else not reproduced",
        lambda d: gain(d.mean_gain("energy_j", False), 7.12, "energy reduction"),
    ),
    Claim(
        "completion-increase",
        "over 3-6 models MADDPG-MATO raises the completion rate by about 3.72% (abstract, sec. IV-C1, Fig. 3)",
        "+3.72%",
        "MATO's completion rate relative to the best other algorithm's, averaged over the counts, per seed: reproduced if "
        "the interval lies above 0 and contains 3.72% or lies above it, partly if the mean is positive, else not reproduced",
        lambda d: gain(d.mean_gain("completion_rate", True), 3.72, "completion increase"),
    ),
    Claim(
        "more-models-cost-more",
        "with more model types latency and energy rise and completion falls (sec. IV-C1)",
        "rises / falls",
        "per (algorithm, metric), the paired change from 3 to 6 models signed in the paper's direction: reproduced if "
        "every interval lies above 0, partly if more than half have a mean in the paper's direction, else not reproduced",
        lambda d: share(
            [
                above(d.trend(a, m, r), 0.0, f"{a} {m}")
                for a in ALGOS
                for m, r in (("latency_s", True), ("energy_j", True), ("completion_rate", False))
            ],
            "; ".join(
                f"{a}: "
                + ", ".join(
                    f"{d.trend(a, m, r).mean:+.3g}"
                    for m, r in (("latency_s", True), ("energy_j", True), ("completion_rate", False))
                )
                for a in ALGOS
            ),
            "trend with the number of models",
        ),
    ),
    Claim(
        "mato-best",
        "MADDPG-MATO has the lowest latency and energy and the highest completion rate at every model count (Fig. 3)",
        "MATO best",
        "per count: reproduced if MATO's interval is better than every other algorithm's on all three metrics; over the "
        "counts: reproduced if at every count, partly if at least partly at more than half, else not reproduced",
        _mato_best_everywhere,
    ),
    Claim(
        "gain-grows-with-models",
        "MATO's improvement is most notable in high-diversity scenarios (sec. IV-C1)",
        "larger at 6 than at 3 models",
        "MATO's latency reduction over the best other algorithm at 6 models minus at 3 models, per seed: reproduced if "
        "the interval lies above 0, partly if the mean does, else not reproduced",
        lambda d: above(
            Interval.of(
                [
                    b - a
                    for a, b in zip(
                        d.relative_gain(d.values[0], "latency_s", False),
                        d.relative_gain(d.values[-1], "latency_s", False),
                        strict=True,
                    )
                ]
            ),
            0.0,
            "gain at the last count minus at the first (percentage points)",
        ),
    ),
    *_checks("model count"),
)


def _at_max(d: Sweep) -> int:
    return d.values[-1]


EDS_CLAIMS: tuple[Claim[Sweep], ...] = (
    Claim(
        "mato-98",
        "with 20 EDs MADDPG-MATO completes about 98% of tasks (sec. IV-C2, Fig. 4)",
        "98%",
        "reproduced if our interval contains 98% or the mean is within 2 points of it, partly if within 5 points, else "
        "not reproduced",
        lambda d: near(d.at(_at_max(d), "completion_rate")[MATO], 0.98, 0.02, 0.05, "completion", scale=100, unit="%"),
    ),
    Claim(
        "mato-margin",
        "with 20 EDs MADDPG-MATO's completion rate surpasses every other algorithm's by at least 11.3% (sec. IV-C2)",
        ">= 11.3%",
        "MATO's completion rate relative to the best other algorithm's at 20 EDs, per seed: reproduced if the interval "
        "lies above 0 and contains 11.3% or lies above it, partly if the mean is positive, else not reproduced",
        lambda d: gain(Interval.of(d.relative_gain(_at_max(d), "completion_rate", True)), 11.3, "completion margin"),
    ),
    Claim(
        "nomodel-88",
        "with 20 EDs MADDPG-NoModel completes about 88% of tasks (sec. IV-C2)",
        "88%",
        "reproduced if our interval contains 88% or the mean is within 2 points of it, partly if within 5 points, else "
        "not reproduced",
        lambda d: near(d.at(_at_max(d), "completion_rate")[NOMODEL], 0.88, 0.02, 0.05, "completion", scale=100, unit="%"),
    ),
    Claim(
        "rules-worst",
        "Random and Greedy perform worst, with the highest latency and energy (sec. IV-C2, Fig. 4)",
        "Random, Greedy highest",
        "per ED count: reproduced if the intervals of Random and Greedy lie above every learner's on latency and on energy; "
        "over the counts: reproduced if at every count, partly if at least partly at more than half, else not reproduced",
        lambda d: share(
            [
                combine(
                    [
                        worst(d.at(v, "latency_s"), list(RULES), False, f"latency at {v}"),
                        worst(d.at(v, "energy_j"), list(RULES), False, f"energy at {v}"),
                    ]
                )
                for v in d.values
            ],
            "; ".join(f"{v}: latency " + ", ".join(f"{a} {i.mean:.3g}" for a, i in d.at(v, "latency_s").items()) for v in d.values),
            "Random and Greedy worst",
        ),
    ),
    Claim(
        "mato-best",
        "MADDPG-MATO consistently has low latency, low energy and a high completion rate as EDs increase (sec. IV-C2)",
        "MATO best",
        "per ED count: reproduced if MATO's interval is better than every other algorithm's on all three metrics; over "
        "the counts: reproduced if at every count, partly if at least partly at more than half, else not reproduced",
        _mato_best_everywhere,
    ),
    *_checks("ED count"),
)


def sweep_target(
    axis: SweepAxis,
    level: str = "default",
    seeds: int = 5,
    progress: Progress | None = None,
    budget: MatoBudget | None = None,
    values: tuple[int, ...] | None = None,
) -> TargetResult:
    """Fig. 3 (axis models) or Fig. 4 (axis eds): every algorithm at every point (`values`, default the
    budget's or the paper's), `seeds` seeds each. The claims read the first and last points as the paper's
    extremes (3 and 6 models, 5 and 20 EDs)."""
    budget = budget or SWEEP_BUDGETS[level]
    if values is not None:
        budget = replace(budget, values=values)
    say = progress or (lambda _: None)
    base = mato_config()
    values = budget.values or SWEEP_VALUES[axis]
    started = time.perf_counter()
    runs: list[Row] = []
    per_seed: dict[tuple[int, str, str], list[float]] = {}
    total, done = len(values) * seeds * len(LEARNERS), 0
    for value in values:
        config = sweep_config(base, axis, value)
        for seed in range(seeds):
            policy = TrainSettings().policy
            rule_name, rule_reward = best_fixed_rule(evaluate_rules(config, budget.eval_envs, budget.eval_steps, seed, policy))
            runs.append({axis.value: value, "seed": seed, "algo": FIXED, "reward": rule_reward, "rule": rule_name})
            per_seed.setdefault((value, FIXED, "reward"), []).append(rule_reward)
            for algo in ALGOS:
                settings = budget.settings(MATO if algo in RULES else algo, seed)
                agent, extra = None, {}
                if algo in LEARNERS:
                    t0 = time.perf_counter()
                    trained = train(config, settings, hp=budget.hp())
                    agent = trained.agent
                    curve = [row["reward"] for row in trained.curve]
                    extra = {
                        "first_reward": curve[0],
                        "final_train_reward": _mean(curve[-_window(len(curve)) :]),
                        "episodes": float(len(curve)),
                        "updates": trained.curve[-1].get("updates", 0.0),
                    }
                    done += 1
                    say(
                        f"{axis.value}={value} seed {seed} {algo.value}: trained in {time.perf_counter() - t0:.0f} s "
                        f"({done}/{total})"
                    )
                metrics = evaluate(config, algo, agent, budget.eval_envs, budget.eval_steps, seed, settings.policy)
                row: Row = {axis.value: value, "seed": seed, "algo": algo.value, **metrics, **extra}
                runs.append(row)
                for key, number in {**metrics, **extra}.items():
                    per_seed.setdefault((value, algo.value, key), []).append(float(number))
    data = Sweep(axis, tuple(values), per_seed)
    summary = [
        SummaryRow(f"{axis.value}={v}", a.value, m, Interval.of(per_seed[(v, a.value, m)]))
        for v in values
        for a in ALGOS
        for m in SWEEP_METRICS
    ]
    summary += [SummaryRow(f"{axis.value}={v}", FIXED, "reward", Interval.of(per_seed[(v, FIXED, "reward")])) for v in values]
    figure_no = 3 if axis == SweepAxis.MODELS else 4
    label = "number of models" if axis == SweepAxis.MODELS else "number of EDs"

    def plot(path: Any) -> None:
        titles = {
            "latency_s": "latency (s)",
            "energy_j": "energy (J)",
            "completion_rate": "completion rate",
            "reward": "reward per step",
        }
        with figure(path, ncols=len(SWEEP_METRICS), size=(15, 3.8)) as axes:
            for ax, metric in zip(axes, SWEEP_METRICS, strict=True):
                for a in ALGOS:
                    errorbar_line(ax, list(values), [Interval.of(per_seed[(v, a.value, metric)]) for v in values], a.value)
                ax.set(xlabel=label, title=titles[metric])
                ax.set_xticks(list(values))
            axes[0].legend(fontsize=7)
            axes[0].figure.suptitle(
                f"mato-{axis.value} ([Wang 2025] Fig. {figure_no}): mean and 95% CI over {seeds} seeds", fontsize=9
            )

    name = f"mato-{axis.value}"
    return TargetResult(
        name=name,
        title=f"[Wang 2025] Fig. {figure_no}: latency, energy and completion rate against the {label}",
        seeds=seeds,
        budget={**_budget_fields(budget), "values": list(values)},
        runs=runs,
        summary=summary,
        claims=judge_all(MODELS_CLAIMS if axis == SweepAxis.MODELS else EDS_CLAIMS, data),
        plot=plot,
        settings={
            "preset": PresetName.MATO.value,
            "edge": base,
            "vary": axis.value,
            "values": list(values),
            "train": asdict(budget.settings(MATO, 0)),
            "hp": budget.hp() or MADDPGConfig(),
        },
        elapsed_s=time.perf_counter() - started,
    )


def models(
    level: str = "default",
    seeds: int = 5,
    progress: Progress | None = None,
    budget: MatoBudget | None = None,
    values: tuple[int, ...] | None = None,
) -> TargetResult:
    """Fig. 3: 3-6 models."""
    return sweep_target(SweepAxis.MODELS, level, seeds, progress, budget, values)


def eds(
    level: str = "default",
    seeds: int = 5,
    progress: Progress | None = None,
    budget: MatoBudget | None = None,
    values: tuple[int, ...] | None = None,
) -> TargetResult:
    """Fig. 4: 5-20 EDs."""
    return sweep_target(SweepAxis.EDS, level, seeds, progress, budget, values)
