"""Claims of the papers, the rules that give each its verdict, and 95% confidence intervals over seeds.

A `Claim` holds what a paper says (and where), the paper's number, and the rule that turns our
measurements into one of three verdicts (`Verdict`): the rule is written in words next to the claim
(`Claim.rule`) and in code (`Claim.judge`), and every verdict other than "reproduced" carries its
reason. The generic rules below (`best`, `ordered`, `gain`, `near`, ...) are the ones the targets
use; each documents its thresholds, which are fixed here and never chosen per result.

Intervals are Student-t 95% intervals of the mean over seeds (`Interval.of`): one value per seed,
each seed a complete independent run.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

from scipy import stats


class Verdict(StrEnum):
    """The three verdicts a claim can get."""

    REPRODUCED = "reproduced"
    PARTLY = "partly"
    NOT_REPRODUCED = "not reproduced"


VERDICTS: tuple[str, ...] = tuple(v.value for v in Verdict)


@dataclass(frozen=True)
class Interval:
    """Mean and 95% t-interval over seeds (low = high = mean with one seed)."""

    mean: float
    low: float
    high: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Interval:
        """The mean of `values` (one per seed) and its 95% Student-t confidence interval."""
        xs = [float(v) for v in values]
        if not xs:
            raise ValueError("an interval needs at least one value")
        n = len(xs)
        mean = math.fsum(xs) / n
        if n < 2:
            return cls(mean, mean, mean, n)
        var = math.fsum((x - mean) ** 2 for x in xs) / (n - 1)
        half = float(stats.t.ppf(0.975, n - 1)) * math.sqrt(var / n)
        return cls(mean, mean - half, mean + half, n)

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high

    def fmt(self, digits: int = 3, scale: float = 1.0, unit: str = "") -> str:
        """'mean [low, high]unit' with `digits` significant digits, values multiplied by `scale`."""

        def g(x: float) -> str:
            return f"{x * scale:.{digits}g}"

        return f"{g(self.mean)} [{g(self.low)}, {g(self.high)}]{unit}"

    def __str__(self) -> str:
        return self.fmt()


@dataclass(frozen=True)
class EnvBudget:
    """The budget of a target measured over batched environments (`lc-table2`, `asp-baselines`)."""

    level: str
    envs: int
    """Environments per seed (the mean over them is the seed's value)."""
    steps: int | None = None
    """Steps per run; None: the preset's."""


@dataclass(frozen=True)
class PerSeed:
    """(policy, metric) -> one value per seed, and the policies a claim compares by default."""

    per_seed: dict[tuple[str, str], list[float]]
    policies: tuple[str, ...]

    def at(self, metric: str, policies: Sequence[str] | None = None) -> dict[str, Interval]:
        """The interval of `metric` for each of `policies` (default: all of `self.policies`)."""
        return {p: Interval.of(self.per_seed[(p, metric)]) for p in (self.policies if policies is None else policies)}


@dataclass(frozen=True)
class Outcome:
    """What a rule decided: the verdict, our value as shown in the table, and why (unless reproduced)."""

    verdict: Verdict
    ours: str
    reason: str = ""

    def __post_init__(self) -> None:
        if self.verdict != Verdict.REPRODUCED and not self.reason:
            raise ValueError("a verdict other than 'reproduced' needs its reason")


Data = TypeVar("Data")


@dataclass(frozen=True)
class Claim(Generic[Data]):
    """One claim of a paper and the rule that judges it on a target's measurements (`Data`)."""

    key: str
    """Short identifier, e.g. 'lc-lowest-cost'."""
    text: str
    """What the paper says, with its section, figure or table."""
    paper: str
    """The paper's number or statement, as it gives it."""
    rule: str
    """The verdict rule in words: reproduced if ..., partly if ..., else not reproduced."""
    judge: Callable[[Data], Outcome]
    """The same rule in code."""
    check: bool = False
    """True for a check of ours (e.g. that training reached a plateau), not a claim of the paper."""

    def evaluate(self, data: Data) -> ClaimResult:
        outcome = self.judge(data)
        return ClaimResult(self.key, self.text, self.paper, outcome.ours, outcome.verdict, self.rule, outcome.reason, self.check)


@dataclass(frozen=True)
class ClaimResult:
    """One row of the "paper vs ours" table."""

    key: str
    text: str
    paper: str
    ours: str
    verdict: Verdict
    rule: str
    reason: str
    check: bool = False


# -- generic rules ---------------------------------------------------------------------------------


def _better(a: float, b: float, higher: bool) -> bool:
    return a > b if higher else a < b


def separated(a: Interval, b: Interval, higher: bool) -> bool:
    """a's interval lies entirely on the better side of b's (no overlap)."""
    return a.low > b.high if higher else a.high < b.low


def best(values: Mapping[str, Interval], target: str, higher: bool, what: str, digits: int = 3) -> Outcome:
    """`target` is best on `what`: reproduced if its interval is better than every other's (no overlap),
    partly if its mean is the best, else not reproduced."""
    mine = values[target]
    others = {k: v for k, v in values.items() if k != target}
    ours = f"{target} {mine.fmt(digits)}; " + ", ".join(f"{k} {v.mean:.{digits}g}" for k, v in others.items())
    overlapping = [k for k, v in others.items() if not separated(mine, v, higher)]
    if not overlapping:
        return Outcome(Verdict.REPRODUCED, ours)
    beaten_by = [k for k, v in others.items() if not _better(mine.mean, v.mean, higher)]
    if not beaten_by:
        return Outcome(
            Verdict.PARTLY, ours, f"{target} has the best mean {what}, but its interval overlaps {', '.join(overlapping)}"
        )
    return Outcome(
        Verdict.NOT_REPRODUCED, ours, f"{', '.join(beaten_by)} {'has' if len(beaten_by) == 1 else 'have'} a better mean {what}"
    )


def worst(values: Mapping[str, Interval], targets: Sequence[str], higher: bool, what: str, digits: int = 3) -> Outcome:
    """The `targets` are the worst on `what` (higher: larger is better): reproduced if each target's interval
    is worse than every non-target's (no overlap), partly if every target's mean is worse than every
    non-target's mean, else not reproduced."""
    rest = {k: v for k, v in values.items() if k not in targets}
    ours = (
        ", ".join(f"{k} {values[k].fmt(digits)}" for k in targets)
        + "; "
        + ", ".join(f"{k} {v.mean:.{digits}g}" for k, v in rest.items())
    )
    if all(separated(v, values[t], higher) for t in targets for v in rest.values()):
        return Outcome(Verdict.REPRODUCED, ours)
    if all(_better(v.mean, values[t].mean, higher) for t in targets for v in rest.values()):
        return Outcome(Verdict.PARTLY, ours, f"the means are worst but the intervals overlap on {what}")
    better = [t for t in targets if any(not _better(v.mean, values[t].mean, higher) for v in rest.values())]
    return Outcome(
        Verdict.NOT_REPRODUCED,
        ours,
        f"{', '.join(better)} {'is' if len(better) == 1 else 'are'} not worse than every other on {what}",
    )


def ordered(values: Mapping[str, Interval], order: Sequence[str], what: str, digits: int = 3) -> Outcome:
    """Means in ascending `order`: reproduced if every adjacent pair is in order with no interval overlap,
    partly if the means rise strictly along `order`, or do after swapping one adjacent pair, else not
    reproduced (equal means are not in order)."""

    def rising(seq: Sequence[str]) -> bool:
        return all(values[a].mean < values[b].mean for a, b in zip(seq, seq[1:], strict=False))

    ranked = sorted(order, key=lambda k: values[k].mean)
    ours = f"{ranked[0]} {values[ranked[0]].mean:.{digits}g}"
    for a, b in zip(ranked, ranked[1:], strict=False):
        ours += f" {'=' if values[a].mean == values[b].mean else '<'} {b} {values[b].mean:.{digits}g}"
    pairs = list(zip(order, order[1:], strict=False))
    if all(separated(values[a], values[b], higher=False) for a, b in pairs):
        return Outcome(Verdict.REPRODUCED, ours)
    if rising(order):
        overlap = [f"{a}/{b}" for a, b in pairs if not separated(values[a], values[b], higher=False)]
        return Outcome(Verdict.PARTLY, ours, f"{what}: means in the paper's order, intervals overlap for {', '.join(overlap)}")
    for i in range(len(order) - 1):
        swapped = [*order[:i], order[i + 1], order[i], *order[i + 2 :]]
        if rising(swapped):
            return Outcome(Verdict.PARTLY, ours, f"{what}: one adjacent pair swapped ({order[i]} and {order[i + 1]})")
    return Outcome(Verdict.NOT_REPRODUCED, ours, f"{what}: our order is {ours}")


def gain(value: Interval, paper: float, what: str, unit: str = "%") -> Outcome:
    """A gain the paper reports (e.g. a 6.98% reduction): reproduced if our interval lies above 0 and contains
    the paper's value or lies above it, partly if our mean gain is positive, else not reproduced."""
    ours = value.fmt(3, unit=unit)
    if value.low > 0 and (value.contains(paper) or value.low > paper):
        return Outcome(Verdict.REPRODUCED, ours)
    if value.mean > 0:
        if value.low <= 0:
            return Outcome(Verdict.PARTLY, ours, f"{what}: positive mean but the interval includes 0")
        return Outcome(Verdict.PARTLY, ours, f"{what}: a gain, but smaller than the paper's {paper:g}{unit}")
    return Outcome(Verdict.NOT_REPRODUCED, ours, f"{what}: no gain (mean {value.mean:.3g}{unit})")


def near(value: Interval, paper: float, close: float, loose: float, what: str, scale: float = 1.0, unit: str = "") -> Outcome:
    """A level the paper reports: reproduced if our interval contains the paper's value or our mean is within
    `close` of it, partly if within `loose`, else not reproduced (distances in the value's own units)."""
    ours = value.fmt(3, scale=scale, unit=unit)
    distance = abs(value.mean - paper)
    if value.contains(paper) or distance <= close:
        return Outcome(Verdict.REPRODUCED, ours)
    if distance <= loose:
        return Outcome(Verdict.PARTLY, ours, f"{what}: {distance * scale:.3g}{unit} from the paper's {paper * scale:g}{unit}")
    return Outcome(Verdict.NOT_REPRODUCED, ours, f"{what}: {distance * scale:.3g}{unit} from the paper's {paper * scale:g}{unit}")


def above(value: Interval, threshold: float, what: str, digits: int = 3) -> Outcome:
    """Reproduced if our interval lies above `threshold`, partly if our mean does, else not reproduced."""
    ours = value.fmt(digits)
    if value.low > threshold:
        return Outcome(Verdict.REPRODUCED, ours)
    if value.mean > threshold:
        return Outcome(Verdict.PARTLY, ours, f"{what}: the mean is above {threshold:g} but the interval reaches below it")
    return Outcome(Verdict.NOT_REPRODUCED, ours, f"{what}: the mean {value.mean:.{digits}g} is not above {threshold:g}")


def combine(outcomes: Sequence[Outcome], ours: str | None = None) -> Outcome:
    """All sub-claims together: the weakest verdict, with the reasons of those that fell short."""
    rank = {Verdict.REPRODUCED: 2, Verdict.PARTLY: 1, Verdict.NOT_REPRODUCED: 0}
    verdict = min((o.verdict for o in outcomes), key=rank.__getitem__)
    reasons = "; ".join(o.reason for o in outcomes if o.reason)
    return Outcome(verdict, ours if ours is not None else "; ".join(o.ours for o in outcomes), reasons)


def share(outcomes: Sequence[Outcome], ours: str, what: str) -> Outcome:
    """The same claim in several cases (every model count, every learner): reproduced if reproduced in every
    case, partly if at least partly in more than half of them, else not reproduced."""
    full = sum(o.verdict == Verdict.REPRODUCED for o in outcomes)
    some = sum(o.verdict != Verdict.NOT_REPRODUCED for o in outcomes)
    if full == len(outcomes):
        return Outcome(Verdict.REPRODUCED, ours)
    reasons = "; ".join(o.reason for o in outcomes if o.reason)
    if some * 2 > len(outcomes):
        return Outcome(Verdict.PARTLY, ours, f"{what}: reproduced in {full} of {len(outcomes)} cases ({reasons})")
    return Outcome(Verdict.NOT_REPRODUCED, ours, f"{what}: at least partly in only {some} of {len(outcomes)} cases ({reasons})")


def judge_all(claims: Sequence[Claim[Data]], data: Data) -> list[ClaimResult]:
    return [claim.evaluate(data) for claim in claims]
