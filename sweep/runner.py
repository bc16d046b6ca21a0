"""Run a sweep's cells as Ray tasks or in a local process pool, streaming rows into one tidy table.

Each finished cell appends one JSON line to `results.jsonl` in the output folder (the record a
re-run reads: a cell whose hash is there with status "ok" is skipped), and the table is written
again from those lines: `results.csv`, and `results.parquet` when pyarrow is installed. One row per
cell and seed: its hash, kind, seed, status, every field of its full config (`config.NAME`, the
defaults included) and its figures.

Ray (`pip install 'aigc-market[ray]'`): `address=None` starts a local Ray in this process with
`workers` CPUs and no dashboard (or uses the session already started); "auto" or "ray://HOST:PORT"
joins a cluster. Without Ray, or with `pool=True`, a local process pool of `workers` processes
runs the same cells.
"""

from __future__ import annotations

import csv
import json
import os
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from sweep.cells import full_config, run_cell
from sweep.config import Cell, SweepConfig

RESULTS = "results.jsonl"


class RayMissingError(RuntimeError):
    """A Ray address was given but Ray is not installed."""


@dataclass(frozen=True)
class SweepRun:
    """What one call of `run_sweep` did."""

    cells: int
    skipped: int
    ran: int
    failed: int
    backend: str
    table: Path


def ray_available() -> bool:
    try:
        import ray  # noqa: F401
    except ImportError:
        return False
    return True


def cell_row(cell: Cell) -> dict[str, Any]:
    """Run `cell` and return its row: hash, kind, seed, status, full config and figures (a failure is a row too)."""
    row: dict[str, Any] = {"config_hash": cell.config_hash, "kind": cell.kind.value, "seed": cell.seed}
    row |= {f"config.{name}": value for name, value in full_config(cell).items()}
    try:
        row |= {"status": "ok", **run_cell(cell)}
    except Exception as exc:  # a failed cell is recorded, and tried again by the next run
        row |= {"status": "error", "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(limit=5)}
    return row


def done_hashes(out: Path) -> set[str]:
    """Hashes of the cells that finished without error in earlier runs into `out`."""
    return {row["config_hash"] for row in read_rows(out) if row.get("status") == "ok"}


def read_rows(out: Path) -> list[dict[str, Any]]:
    path = out / RESULTS
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut short by an interruption
            continue
    return rows


def run_sweep(
    config: SweepConfig,
    out: Path,
    address: str | None = None,
    workers: int = 2,
    pool: bool = False,
    on_row: Callable[[dict[str, Any]], None] | None = None,
) -> SweepRun:
    """Run every cell of `config` not done yet in `out`; `on_row` sees each row as it lands."""
    out.mkdir(parents=True, exist_ok=True)
    cells = config.cells()
    done = done_hashes(out)
    todo = [cell for cell in cells if cell.config_hash not in done]
    use_ray = not pool and (address is not None or ray_available())
    if use_ray and not ray_available():
        raise RayMissingError("--address needs Ray: pip install 'aigc-market[ray]'")
    backend = "ray" if use_ray else "process pool"
    failed = 0
    try:
        rows = _ray_rows(todo, address, workers) if use_ray else _pool_rows(todo, workers)
        with (out / RESULTS).open("a") as record:
            for row in rows:
                record.write(json.dumps(row, default=str) + "\n")
                record.flush()
                os.fsync(record.fileno())
                failed += row["status"] != "ok"
                if on_row is not None:
                    on_row(row)
    finally:
        write_table(out)
    return SweepRun(len(cells), len(cells) - len(todo), len(todo), failed, backend, out / "results.csv")


def _pool_rows(cells: list[Cell], workers: int) -> Iterator[dict[str, Any]]:
    if not cells:
        return
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as executor:
        pending: set[Future[dict[str, Any]]] = {executor.submit(cell_row, cell) for cell in cells}
        try:
            while pending:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    yield future.result()
        finally:
            for future in pending:
                future.cancel()


def _ray_rows(cells: list[Cell], address: str | None, workers: int) -> Iterator[dict[str, Any]]:
    import ray

    if not ray.is_initialized():
        if address is None:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)
    if not cells:
        return
    task = ray.remote(num_cpus=1)(cell_row)
    pending = [task.remote(cell) for cell in cells]
    try:
        while pending:
            finished, pending = ray.wait(pending, num_returns=1)
            for ref in finished:
                yield ray.get(ref)
    finally:
        for ref in pending:
            ray.cancel(ref, force=True)


def write_table(out: Path) -> Path:
    """`results.csv` (and `results.parquet` with pyarrow) from the recorded rows: the last row of each cell."""
    latest: dict[str, dict[str, Any]] = {}
    for row in read_rows(out):
        latest[row["config_hash"]] = row
    rows = [{k: v for k, v in row.items() if k != "traceback"} for row in latest.values()]
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    path = out / "results.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: json.dumps(v) if isinstance(v, list | dict) else v for k, v in row.items()})
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return path
    table = pa.Table.from_pylist([{c: None if row.get(c) is None else str(row[c]) for c in columns} for row in rows])
    pq.write_table(table, out / "results.parquet")
    return path
