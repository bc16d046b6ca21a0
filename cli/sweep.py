"""`aigc-market sweep --config sweep.toml`: a grid or random search of cells on Ray or in a process pool.

    aigc-market sweep --config sweep.toml [--address ray://HOST:PORT | auto] [--workers N] [--pool] [--out DIR]

The config's format is in `sweep/config.py` and docs/scale.md. Each finished cell lands at once in
DIR/results.jsonl and the table DIR/results.csv (+ results.parquet with pyarrow); a re-run into the
same DIR skips the cells already done. Without Ray installed (or with --pool) a local process pool
runs the cells. A bad config: one line on stderr, exit 2.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cli.console import console
from cli.errors import UserError
from sweep.config import SweepConfigError, read_sweep_config
from sweep.runner import RayMissingError, done_hashes, run_sweep


def sweep(
    config: Annotated[Path, typer.Option("--config", help="The sweep's TOML file (docs/scale.md).", dir_okay=False)],
    address: Annotated[
        str | None,
        typer.Option("--address", help="A Ray cluster (ray://HOST:PORT or auto); default: a local Ray started here, or a pool."),
    ] = None,
    workers: Annotated[int, typer.Option("--workers", min=1, help="CPUs of the local Ray, or processes of the pool.")] = max(
        1, (os.cpu_count() or 2) // 2
    ),
    pool: Annotated[bool, typer.Option("--pool", help="A local process pool even when Ray is installed.")] = False,
    out: Annotated[Path, typer.Option("--out", help="Folder of the table; a re-run into it skips finished cells.")] = Path(
        "out/sweep"
    ),
) -> None:
    """Run a grid or random search of simulate, offload compare, offload train or reproduce cells."""
    try:
        spec = read_sweep_config(config)
    except SweepConfigError as exc:
        raise UserError(str(exc)) from exc
    if pool and address is not None:
        raise UserError("--pool and --address exclude each other")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--out {out}: cannot create the directory ({exc.strerror or exc})") from exc
    cells = spec.cells()
    done = len({c.config_hash for c in cells} & done_hashes(out))
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(f"{spec.kind} cells", total=len(cells), completed=done)
        try:
            result = run_sweep(spec, out, address, workers, pool, on_row=lambda _: progress.advance(task))
        except RayMissingError as exc:
            raise UserError(str(exc)) from exc
    console.print(
        f"{result.ran} cells run ({result.failed} failed), {result.skipped} done before, on {result.backend}; "
        f"table: {result.table}",
        highlight=False,
    )
    if result.failed:
        raise typer.Exit(1)
