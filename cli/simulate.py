"""`aigc-market simulate`: the marketplace simulation, its report and its invariants.

Every field of `market.simulation.SimulationConfig` is an option, with the field's default, bounds
and docstring (the dataclass is their one source); `--config FILE` reads the fields from a TOML file
(or a run's config.json) and the options given on the command line override it. The full config of
the run is written beside its results (config.json, and "config" in summary.json).

`--node anvil` runs the market on a real anvil node, the backend for large runs: the command starts
one on a free port of 127.0.0.1 when no `--rpc` is given and stops it at the end. On any JSON-RPC
node each phase of a period is settled pipelined (docs/scale.md); `--one-by-one` sends one
transaction at a time instead.
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import Progress
from rich.table import Table
from typer._click import exceptions as click  # Typer vendors click; its errors live here

from cli.console import console
from cli.errors import UserError
from cli.options import ConfigOption, KeyOption, RpcOption, config_values, connect, with_config_options
from market.chain.anvil import AnvilError, AnvilNode, free_port
from market.simulation import SimulationConfig

#: Ether of the funder of the anvil node `--node anvil` starts (its transactions are mined in the
#: order they were sent): the simulation gives each producer and consumer 1,000 ether.
ANVIL_BALANCE_ETHER = 10**9

#: Option names that differ from the field's (kept from before the options were derived).
OPTION_NAMES = {"esp_profiles": "--profiles"}


class Node(StrEnum):
    """The chain of a run when no --rpc is given."""

    EMBEDDED = "embedded"
    ANVIL = "anvil"


@with_config_options(SimulationConfig, OPTION_NAMES)
def simulate(
    ctx: typer.Context,
    config: ConfigOption = None,
    rpc: RpcOption = None,
    private_key: KeyOption = None,
    node: Annotated[
        Node,
        typer.Option(
            "--node",
            help="Without --rpc: a fresh embedded eth-tester chain, or an anvil node started (and stopped) by the command;"
            " anvil is the backend for large runs (docs/scale.md).",
        ),
    ] = Node.EMBEDDED,
    one_by_one: Annotated[
        bool, typer.Option("--one-by-one", help="On a JSON-RPC node, send one transaction at a time instead of pipelined phases.")
    ] = False,
    out: Annotated[Path, typer.Option(help="Directory of the report.")] = Path("out/simulation"),
    as_json: Annotated[bool, typer.Option("--json", help="Print summary.json as the last line.")] = False,
    **fields: Any,
) -> None:
    """Run the marketplace: producers, ESPs, consumers and attackers through the whole lifecycle."""

    from market.report import write_report
    from market.simulation import run_simulation

    try:
        run_config = SimulationConfig.from_mapping(config_values(SimulationConfig, ctx, fields, config))
    except (TypeError, ValueError) as exc:
        raise UserError(str(exc)) from exc
    periods = run_config.periods
    with ExitStack() as stack:
        if rpc is None and node is Node.ANVIL:
            try:
                started = stack.enter_context(AnvilNode(port=free_port(), order="fifo", balance_ether=ANVIL_BALANCE_ETHER))
            except AnvilError as exc:
                raise UserError(str(exc)) from exc
            rpc, where = started.url, f"anvil at {started.url}"
        else:
            where = rpc or "the embedded chain"
        chain = connect(rpc, private_key)
        chain.pipelined = chain.pipelined and not one_by_one
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task(f"simulating {periods} periods on {where}", total=periods)
            result = run_simulation(run_config, chain, out, on_period=lambda _: progress.advance(task))
    paths = write_report(result, out)
    summary = result.summary
    table = Table("metric", "value", title=f"simulation ({periods} periods, seed {run_config.seed}, {run_config.scheduler})")
    on_time, below = summary["honest_on_time_rate"], summary["cheater_below_honest"]
    table.add_row("honest ESPs' tasks on time", "-" if on_time is None else f"{on_time:.1%}")
    table.add_row("cheating ESP below every honest one", {None: "-", True: "yes", False: "[red]no[/red]"}[below])
    for key in (
        "tasks",
        "completed",
        "on_time",
        "refunded",
        "products",
        "trades",
        "challenges_upheld",
        "challenges_rejected",
        "plagiarism_detected_rate",
        "cheating_tasks_after_exploration",
        "mean_latency_s",
        "mean_energy_j",
    ):
        value = summary[key]
        table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    for name, counts in summary["attacks"].items():
        table.add_row(f"attack {name}", f"{counts['failed']} of {counts['attempts']} failed")
    for name, value in summary["reputation_final"].items():
        table.add_row(f"reputation {name}", f"{value:.3f}")
    for name, value in summary["workload"].items():
        table.add_row(f"workload {name}", str(value))
    for name, holds in summary["invariants"].items():
        table.add_row(f"invariant {name}", "[green]holds[/green]" if holds else "[red]FAILS[/red]")
    console.print(table)
    console.print(f"report: {out / 'summary.json'} (+ {len(paths) - 1} more files in {out})", highlight=False)
    if as_json:
        print(json.dumps(summary, default=str))
    if not all(summary["invariants"].values()):
        raise click.ClickException("an invariant failed (see the report)")
