"""`aigc-market reproduce NAME`: a seed paper's result beside ours, with a verdict per claim (docs/reproduction.md).

    aigc-market reproduce lc-table2 [--seeds 5] [--full | --tiny] [--out DIR] [--threads 1] [--json]
    aigc-market reproduce mato-eds --values 5,20    (mato-models, mato-eds: a subset of the sweep's points)

Prints the "paper vs ours" table (95% intervals over seeds, a verdict per claim and the reason when it
is not "reproduced") and writes runs.csv, summary.csv, claims.csv, NAME.png, report.md and config.json
into --out (default out/reproduce/NAME). --json prints the verdicts as one JSON object on the last line.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cli.console import console
from cli.errors import UserError
from cli.run_config import write_run_config
from reproduce import SWEEPS, Level, TargetName, run
from reproduce.claims import Verdict
from reproduce.report import write

COLORS = {Verdict.REPRODUCED: "green", Verdict.PARTLY: "yellow", Verdict.NOT_REPRODUCED: "red"}


def _points(values: str | None, name: TargetName) -> tuple[int, ...] | None:
    """--values as a tuple of counts; UserError unless at least two increasing positive integers of a sweep."""
    if values is None:
        return None
    if name not in SWEEPS:
        raise UserError(f"--values applies to {' and '.join(sorted(SWEEPS))} only")
    try:
        points = tuple(int(item) for item in values.split(","))
    except ValueError:
        raise UserError(f"--values must be comma-separated integers, got {values!r}") from None
    if len(points) < 2 or min(points) < 1 or list(points) != sorted(set(points)):
        raise UserError(f"--values must be at least two distinct positive counts in increasing order, got {values!r}")
    return points


def reproduce(
    name: Annotated[TargetName, typer.Argument(help="The result to reproduce.", show_default=False)],
    seeds: Annotated[int, typer.Option("--seeds", help="Seeds (independent runs); the intervals are over them.")] = 5,
    full: Annotated[bool, typer.Option("--full", help="The paper's budget (hours for the mato targets).")] = False,
    tiny: Annotated[bool, typer.Option("--tiny", help="A smoke-test budget of seconds; its verdicts mean nothing.")] = False,
    out: Annotated[Path | None, typer.Option("--out", help="Directory of the results (default out/reproduce/NAME).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the verdicts as one JSON object on the last line.")] = False,
    values: Annotated[
        str | None,
        typer.Option("--values", help="mato-models, mato-eds: comma-separated sweep points (default: the paper's, 3-6 or 5-20)."),
    ] = None,
    threads: Annotated[
        int,
        typer.Option("--threads", help="torch CPU threads (1: the networks are small, more threads mostly wait on each other)."),
    ] = 1,
) -> None:
    """Run a seed paper's experiment at a budget of minutes (--full: the paper's) and judge each of its claims."""
    if seeds < 2:
        raise UserError(f"--seeds must be at least 2 (a confidence interval needs two), got {seeds}")
    if full and tiny:
        raise UserError("--full and --tiny exclude each other")
    if threads < 1:
        raise UserError(f"--threads must be at least 1, got {threads}")
    points = _points(values, name)
    level = Level.FULL if full else Level.TINY if tiny else Level.DEFAULT
    out = out if out is not None else Path("out/reproduce") / name.value
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--out {out}: cannot create the directory ({exc.strerror or exc})") from exc

    import torch

    torch.set_num_threads(threads)
    progress = Console(stderr=True)
    started = time.perf_counter()
    result = run(name, level, seeds, lambda line: progress.print(f"[dim]{name.value}: {line}[/dim]", highlight=False), points)
    paths = write(result, out)
    write_run_config(
        out,
        target=name.value,
        level=level.value,
        seeds=seeds,
        threads=threads,
        budget=dict(result.budget),
        settings=result.settings,
    )

    table = Table(
        "claim",
        "paper",
        "ours (95% CI over seeds)",
        "verdict",
        "reason",
        title=f"{name.value}: {result.title} - paper vs ours ({seeds} seeds, {level.value} budget)",
        show_lines=True,
    )
    for claim in result.claims:
        color = COLORS[claim.verdict]
        table.add_row(
            ("(check) " if claim.check else "") + claim.text,
            claim.paper,
            claim.ours,
            f"[{color}]{claim.verdict.value}[/{color}]",
            claim.reason or "-",
        )
    console.print(table)
    console.print(
        f"wrote {', '.join(p.name for p in paths)} and config.json to {out} ({time.perf_counter() - started:.0f} s)",
        highlight=False,
    )
    if as_json:
        verdicts = {
            c.key: {"verdict": c.verdict.value, "ours": c.ours, "paper": c.paper, "reason": c.reason} for c in result.claims
        }
        print(json.dumps({"target": name.value, "level": level.value, "seeds": seeds, "claims": verdicts, "out": str(out)}))
