"""`aigc-market reproduce`: the seed papers' results beside ours, with a verdict per claim.

Each target runs a paper's setting on the offloading core (`offload_core`) or the reputation core
(`reputation`) for several seeds, puts the paper's numbers beside ours with 95% intervals over seeds,
and judges every claim by the rule written next to it (`reproduce.claims`). The targets:

- `mato-convergence`, `mato-models`, `mato-eds`: [Wang 2025] Figs. 2-4 (`reproduce.mato`);
- `lc-table2`: [Xu 2023] Table II (`reproduce.lc`);
- `asp-baselines`: [Xu 2024] sec. V-A (`reproduce.asp`);
- `reputation-trends`, `reputation-workload`: [Xu 2024] sec. V-D, Figs. 14-15 (`reproduce.reputation`).

Imports `offload_core` and `reputation`, never `market`, `api` or `cli` (pyproject.toml, import-linter).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from reproduce import asp, lc, mato, reputation
from reproduce.report import TargetResult


class TargetName(StrEnum):
    MATO_CONVERGENCE = "mato-convergence"
    MATO_MODELS = "mato-models"
    MATO_EDS = "mato-eds"
    LC_TABLE2 = "lc-table2"
    ASP_BASELINES = "asp-baselines"
    REPUTATION_TRENDS = "reputation-trends"
    REPUTATION_WORKLOAD = "reputation-workload"


class Level(StrEnum):
    """How long a target runs."""

    TINY = "tiny"
    """Seconds: for the tests; its verdicts mean nothing."""
    DEFAULT = "default"
    """Minutes on a 2-core machine."""
    FULL = "full"
    """The paper's budget (`--full`)."""


Runner = Callable[[str, int, Callable[[str], None] | None, tuple[int, ...] | None], TargetResult]
SWEEPS: frozenset[TargetName] = frozenset({TargetName.MATO_MODELS, TargetName.MATO_EDS})
"""The targets whose sweep points `values` may choose."""


@dataclass(frozen=True)
class Target:
    name: TargetName
    title: str
    run: Runner
    """run(level, seeds, progress, values) -> TargetResult."""


TARGETS: dict[TargetName, Target] = {
    TargetName.MATO_CONVERGENCE: Target(
        TargetName.MATO_CONVERGENCE,
        "[Wang 2025] Fig. 2",
        lambda level, seeds, progress, _: mato.convergence(level, seeds, progress),
    ),
    TargetName.MATO_MODELS: Target(
        TargetName.MATO_MODELS,
        "[Wang 2025] Fig. 3",
        lambda level, seeds, progress, values: mato.models(level, seeds, progress, values=values),
    ),
    TargetName.MATO_EDS: Target(
        TargetName.MATO_EDS,
        "[Wang 2025] Fig. 4",
        lambda level, seeds, progress, values: mato.eds(level, seeds, progress, values=values),
    ),
    TargetName.LC_TABLE2: Target(
        TargetName.LC_TABLE2, "[Xu 2023] Table II", lambda level, seeds, progress, _: lc.table2(level, seeds, progress)
    ),
    TargetName.ASP_BASELINES: Target(
        TargetName.ASP_BASELINES, "[Xu 2024] sec. V-A", lambda level, seeds, progress, _: asp.baselines(level, seeds, progress)
    ),
    TargetName.REPUTATION_TRENDS: Target(
        TargetName.REPUTATION_TRENDS,
        "[Xu 2024] Fig. 14",
        lambda level, seeds, progress, _: reputation.reputation_trends(level, seeds, progress),
    ),
    TargetName.REPUTATION_WORKLOAD: Target(
        TargetName.REPUTATION_WORKLOAD,
        "[Xu 2024] Fig. 15",
        lambda level, seeds, progress, _: reputation.reputation_workload(level, seeds, progress),
    ),
}


def run(
    name: TargetName | str,
    level: Level | str = Level.DEFAULT,
    seeds: int = 5,
    progress: Callable[[str], None] | None = None,
    values: tuple[int, ...] | None = None,
) -> TargetResult:
    """Run target `name` at budget `level` for `seeds` seeds, a sweep at `values` (None: the paper's points);
    ValueError on a bad name, level, seed count or values."""
    try:
        target = TARGETS[TargetName(name)]
    except ValueError:
        raise ValueError(f"target must be one of {[t.value for t in TargetName]}, got {name!r}") from None
    try:
        chosen = Level(level)
    except ValueError:
        raise ValueError(f"level must be one of {[lv.value for lv in Level]}, got {level!r}") from None
    if seeds < 2:
        raise ValueError(f"seeds must be at least 2 (a confidence interval needs two), got {seeds}")
    if values is not None:
        if target.name not in SWEEPS:
            raise ValueError(f"values: only the sweeps ({', '.join(sorted(SWEEPS))}) have points to choose")
        if len(values) < 2 or len(set(values)) != len(values) or min(values) < 1 or list(values) != sorted(values):
            raise ValueError(f"values must be at least two distinct positive counts in increasing order, got {list(values)}")
    return target.run(chosen.value, seeds, progress, values)


__all__ = ["SWEEPS", "TARGETS", "Level", "Target", "TargetName", "TargetResult", "run"]
