"""`aigc-market simulate`: the marketplace simulation, its report and its invariants."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress
from rich.table import Table
from typer._click import exceptions as click  # Typer vendors click; its errors live here

from cli.console import console
from cli.errors import UserError
from cli.options import KeyOption, RpcOption, connect


def simulate(
    producers: Annotated[int, typer.Option(min=1, help="Producers.")] = 3,
    esps: Annotated[int, typer.Option(min=1, help="ESPs (profiles honest, honest, cheating, cycled).")] = 3,
    consumers: Annotated[int, typer.Option(min=0, help="Consumers.")] = 3,
    attackers: Annotated[int, typer.Option(min=0, help="Attackers.")] = 1,
    periods: Annotated[int, typer.Option(min=1, help="Simulated periods.")] = 100,
    seed: Annotated[int, typer.Option(help="Seed of every random choice.")] = 0,
    rpc: RpcOption = None,
    private_key: KeyOption = None,
    out: Annotated[Path, typer.Option(help="Directory of the report.")] = Path("out/simulation"),
    selection: Annotated[str, typer.Option(help="softmax, argmax, random, familiar or round-robin.")] = "softmax",
    caching: Annotated[str, typer.Option(help="lc, lfu, lru, fifo, random or cloud.")] = "lfu",
    profiles: Annotated[str, typer.Option(help="Comma-separated ESP profiles (honest, slow, delaying, cheating).")]
    = "honest,honest,cheating",
    as_json: Annotated[bool, typer.Option("--json", help="Print summary.json as the last line.")] = False,
) -> None:
    """Run the marketplace: producers, ESPs, consumers and attackers through the whole lifecycle."""

    from market.report import write_report
    from market.simulation import SimulationConfig, run_simulation

    try:
        config = SimulationConfig(
            producers=producers, esps=esps, consumers=consumers, attackers=attackers, periods=periods, seed=seed,
            selection=selection, caching=caching, esp_profiles=tuple(p.strip() for p in profiles.split(",")),  # type: ignore[arg-type]
        ).validate()
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    chain = connect(rpc, private_key)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(f"simulating {periods} periods on {rpc or 'the embedded chain'}", total=periods)
        result = run_simulation(config, chain, out, on_period=lambda _: progress.advance(task))
    paths = write_report(result, out)
    summary = result.summary
    table = Table("metric", "value", title=f"simulation ({periods} periods, seed {seed})")
    for key in ("tasks", "completed", "refunded", "products", "trades", "challenges_upheld", "challenges_rejected",
                "plagiarism_detected_rate", "mean_latency_s", "mean_energy_j"):
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
