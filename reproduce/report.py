"""What a reproduction target returns (`TargetResult`) and how it is written: CSV, PNG and markdown.

Files written by `write(result, out)`:

- `runs.csv`: one row per (seed, variant[, point]) with every measured metric (the raw data);
- `summary.csv`: mean and 95% interval over seeds of every (group, variant, metric), with the paper's
  value where it gives one;
- `claims.csv`: the "paper vs ours" table: claim, paper, ours, verdict, rule, reason;
- `<target>.png`: the figure (matplotlib, Agg backend);
- `report.md`: the claims table and the summary in markdown (what docs/reproduction.md quotes).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reproduce.claims import ClaimResult, Interval

Row = dict[str, float | int | str]


@dataclass(frozen=True)
class SummaryRow:
    """One (group, variant, metric) over seeds; `group` is e.g. a sweep point ('models=3') or ''."""

    group: str
    variant: str
    metric: str
    interval: Interval
    paper: float | None = None


@dataclass
class TargetResult:
    """Everything one reproduction run produced."""

    name: str
    """The target, e.g. 'lc-table2'."""
    title: str
    """The paper's result it reproduces, e.g. '[Xu 2023] Table II'."""
    seeds: int
    budget: Mapping[str, Any]
    """The budget that ran (its level and every field), as plain values."""
    runs: list[Row]
    summary: list[SummaryRow]
    claims: list[ClaimResult]
    plot: Callable[[Path], None]
    """Draws the figure into the given PNG path."""
    settings: dict[str, Any] = field(default_factory=dict)
    """Configurations that ran (dataclasses or plain values), for the run's config.json."""
    elapsed_s: float = 0.0


def write_csv(path: Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    """Rows of dicts as CSV; the header is the union of the keys, in first-seen order."""
    header: list[str] = []
    for row in rows:
        header += [key for key in row if key not in header]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header)
        writer.writeheader()
        for row in rows:
            writer.writerow({key: _cell(value) for key, value in row.items()})
    return path


def _cell(value: Any) -> Any:
    return f"{value:.10g}" if isinstance(value, float) else value


def summary_rows(result: TargetResult) -> list[Row]:
    rows: list[Row] = []
    for row in result.summary:
        item: Row = {
            "group": row.group,
            "variant": row.variant,
            "metric": row.metric,
            "mean": row.interval.mean,
            "ci95_low": row.interval.low,
            "ci95_high": row.interval.high,
            "seeds": row.interval.n,
            "paper": "" if row.paper is None else row.paper,
        }
        rows.append(item)
    return rows


def claim_rows(result: TargetResult) -> list[Row]:
    return [
        {
            "claim": c.key,
            "kind": "check" if c.check else "paper",
            "text": c.text,
            "paper": c.paper,
            "ours": c.ours,
            "verdict": c.verdict.value,
            "rule": c.rule,
            "reason": c.reason,
        }
        for c in result.claims
    ]


def write(result: TargetResult, out: Path) -> list[Path]:
    """Write runs.csv, summary.csv, claims.csv, <target>.png and report.md into `out` (created)."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [
        write_csv(out / "runs.csv", result.runs),
        write_csv(out / "summary.csv", summary_rows(result)),
        write_csv(out / "claims.csv", claim_rows(result)),
    ]
    png = out / f"{result.name}.png"
    result.plot(png)
    paths.append(png)
    report = out / "report.md"
    report.write_text(markdown(result))
    paths.append(report)
    return paths


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def claims_markdown(result: TargetResult) -> str:
    lines = ["| claim | paper | ours (95% CI over seeds) | verdict | reason |", "|---|---|---|---|---|"]
    for c in result.claims:
        label = f"{'(check) ' if c.check else ''}{c.text}"
        lines.append(f"| {_md(label)} | {_md(c.paper)} | {_md(c.ours)} | **{c.verdict.value}** | {_md(c.reason) or '-'} |")
    return "\n".join(lines)


def rules_markdown(result: TargetResult) -> str:
    return "\n".join(f"- `{c.key}`: {_md(c.rule)}" for c in result.claims)


def summary_markdown(result: TargetResult, metrics: Sequence[str] | None = None) -> str:
    rows = [r for r in result.summary if metrics is None or r.metric in metrics]
    lines = ["| point | variant | metric | ours: mean [95% CI] | paper |", "|---|---|---|---|---|"]
    for r in rows:
        paper = "" if r.paper is None else f"{r.paper:g}"
        lines.append(f"| {r.group or '-'} | {r.variant} | {r.metric} | {r.interval.fmt(4)} | {paper} |")
    return "\n".join(lines)


def markdown(result: TargetResult) -> str:
    budget = ", ".join(f"{k}={v}" for k, v in result.budget.items())
    return (
        f"# {result.name}: {result.title}\n\n"
        f"Seeds: {result.seeds}; budget: {budget}; {result.elapsed_s:.0f} s.\n\n"
        f"{claims_markdown(result)}\n\nRules:\n\n{rules_markdown(result)}\n\n"
        f"## Summary\n\n{summary_markdown(result)}\n"
    )


# -- figures -----------------------------------------------------------------------------------------


@contextmanager
def figure(path: Path, ncols: int = 1, size: tuple[float, float] = (7, 4), dpi: int = 110) -> Iterator[Any]:
    """Yield the axes of a new figure (one, or a row of `ncols`), then save it to `path` and close it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, ncols, figsize=size)
    try:
        yield axes
        fig.tight_layout()
        fig.savefig(path, dpi=dpi)
    finally:
        plt.close(fig)


def line_with_band(ax: Any, xs: Sequence[float], intervals: Sequence[Interval], label: str, **style: Any) -> None:
    """The means as a line with the 95% intervals as a shaded band."""
    (line,) = ax.plot(list(xs), [i.mean for i in intervals], label=label, **style)
    ax.fill_between(list(xs), [i.low for i in intervals], [i.high for i in intervals], color=line.get_color(), alpha=0.2)


def errorbar_line(ax: Any, xs: Sequence[float], intervals: Sequence[Interval], label: str, **style: Any) -> None:
    """The means with 95% interval error bars, joined by a line."""
    means = [i.mean for i in intervals]
    errors = [[i.mean - i.low for i in intervals], [i.high - i.mean for i in intervals]]
    ax.errorbar(list(xs), means, yerr=errors, label=label, capsize=3, marker="o", markersize=3, **style)


def bars(
    ax: Any, labels: Sequence[str], intervals: Sequence[Interval], offset: float = 0.0, width: float = 0.8, **style: Any
) -> None:
    """Bars of the means with 95% interval error bars, at x = 0, 1, ... plus `offset`."""
    xs = [i + offset for i in range(len(labels))]
    errors = [[i.mean - i.low for i in intervals], [i.high - i.mean for i in intervals]]
    ax.bar(xs, [i.mean for i in intervals], width, yerr=errors, capsize=3, **style)
