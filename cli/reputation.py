"""`aigc-market reputation`: the lifecycle paper's reputation experiments (docs/reputation.md).

    aigc-market reputation trends   [--periods 100] [--seed 0] [--out DIR] [--json]
    aigc-market reputation workload [--periods 100] [--seed 0] [--out DIR] [--json]
    aigc-market reputation collusion [--fraction 0.2] [--seed 0] [--out DIR] [--json]

Each writes CSV and PNG files under --out; --json prints one JSON object as the last stdout line.
Bad option values raise typer.BadParameter (one line, exit code 2 through cli.errors).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from cli.console import console
from reproduce.report import figure
from reputation.experiments import STRATEGIES, CollusionConfig, LifecycleConfig, collusion, trends, workload

app = typer.Typer(help="Reputation (MWSL) experiments: trends, workload, collusion.", no_args_is_help=True)

PeriodsOption = Annotated[int, typer.Option(help="Simulated periods.")]
SeedOption = Annotated[int, typer.Option(help="Seed of the torch.Generator.")]
TasksOption = Annotated[int, typer.Option("--tasks", help="Tasks per producer per period.")]
TemperatureOption = Annotated[float, typer.Option(help="Softmax temperature of reputation-based selection.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the figures as one JSON object on the last line.")]


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise typer.BadParameter(message)


def _outdir(out: Path) -> Path:
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise typer.BadParameter(f"--out {out}: cannot create the directory ({exc.strerror})") from exc
    return out


def _plot(path: Path, draw: Callable[[Any], None]) -> None:
    with figure(path) as ax:
        draw(ax)


@app.command("trends")
def trends_command(
    periods: PeriodsOption = 100,
    seed: SeedOption = 0,
    switch: Annotated[int, typer.Option(help="Period from which ESP 0 delays every task.")] = 10,
    tasks: TasksOption = 10,
    temperature: TemperatureOption = 1.0,
    out: Annotated[Path, typer.Option(help="Directory for trends.csv and trends.png.")] = Path("out/reputation-trends"),
    as_json: JsonOption = False,
) -> None:
    """Experiment 1: ESP 0 serves best, then delays every task; its reputation falls while ESP 1 and 2 hold."""
    _check(periods >= 2, "--periods must be >= 2")
    _check(0 <= switch < periods, "--switch must be in [0, --periods)")
    _check(tasks >= 1, "--tasks must be >= 1")
    _check(temperature > 0, "--temperature must be positive")
    result = trends(
        LifecycleConfig(periods=periods, seed=seed, switch_period=switch, tasks_per_period=tasks, temperature=temperature)
    )
    rep = result.reputation  # [periods, E]
    n_e = rep.shape[1]
    out = _outdir(out)
    with (out / "trends.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["period", *(f"reputation_esp{j}" for j in range(n_e)), *(f"tasks_esp{j}" for j in range(n_e))])
        for t in range(periods):
            writer.writerow([t, *(f"{float(x):.6f}" for x in rep[t]), *(int(x) for x in result.load[t])])

    def draw(ax: Any) -> None:
        for j in range(n_e):
            ax.plot(range(periods), rep[:, j].tolist(), label=f"ESP {j}")
        ax.axvline(switch, color="grey", linestyle="--", linewidth=0.8, label="ESP 0 starts delaying")
        ax.set(xlabel="period", ylabel="reputation (seen by producer 0)", ylim=(0, 1), title="MWSL reputation trends")
        ax.legend()

    _plot(out / "trends.png", draw)
    before = rep[:switch].mean(0) if switch > 0 else rep[0]
    window = rep[switch : min(switch + 10, periods)]
    below = (window[:, 0] < window[:, 1:].min(1).values).nonzero()
    fell_after = int(below[0]) + 1 if below.numel() else None
    after = rep[switch : min(switch + 10, periods)].mean(0)
    table = Table("ESP", "mean before switch", "mean 10 periods after", "last period", "tasks")
    for j in range(n_e):
        table.add_row(
            str(j),
            f"{float(before[j]):.3f}",
            f"{float(after[j]):.3f}",
            f"{float(rep[-1, j]):.3f}",
            f"{int(result.load[:, j].sum()):,}",
        )
    console.print(table)
    console.print(
        f"ESP 0 falls below both others {fell_after} period(s) after the switch"
        if fell_after
        else "ESP 0 does not fall below both others within 10 periods",
        highlight=False,
    )
    console.print(f"wrote {out / 'trends.csv'} and {out / 'trends.png'}", highlight=False)
    if as_json:
        print(
            json.dumps(
                {
                    "experiment": "trends",
                    "seed": seed,
                    "periods": periods,
                    "switch_period": switch,
                    "tasks_per_period": tasks,
                    "reputation": {f"esp{j}": [round(float(x), 6) for x in rep[:, j]] for j in range(n_e)},
                    "tasks": {f"esp{j}": [int(x) for x in result.load[:, j]] for j in range(n_e)},
                    "fell_below_both_after_periods": fell_after,
                    "out": str(out),
                }
            )
        )


@app.command("workload")
def workload_command(
    periods: PeriodsOption = 100,
    seed: SeedOption = 0,
    tasks: TasksOption = 10,
    temperature: TemperatureOption = 1.0,
    strategies: Annotated[str, typer.Option(help="Comma-separated strategies: " + ", ".join(STRATEGIES))] = ",".join(STRATEGIES),
    out: Annotated[Path, typer.Option(help="Directory for workload.csv and workload.png.")] = Path("out/reputation-workload"),
    as_json: JsonOption = False,
) -> None:
    """Experiment 2: workload per ESP under each strategy after the random phase, Jain's index and latency."""
    _check(periods > 30, "--periods must be > 30 (the first 30 periods are random)")
    _check(tasks >= 1, "--tasks must be >= 1")
    _check(temperature > 0, "--temperature must be positive")
    names = tuple(s.strip() for s in strategies.split(",") if s.strip())
    unknown = [s for s in names if s not in STRATEGIES]
    _check(bool(names) and not unknown, f"--strategies: unknown {unknown}; choose from {', '.join(STRATEGIES)}")
    result = workload(LifecycleConfig(periods=periods, seed=seed, tasks_per_period=tasks, temperature=temperature), names)
    out = _outdir(out)
    n_e = len(result.config.positive_prob)
    with (out / "workload.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(
            ["strategy", *(f"tasks_esp{j}" for j in range(n_e)), "jain", "producer_jain", "latency_periods", "positive_rate"]
        )
        for name in names:
            writer.writerow(
                [
                    name,
                    *result.load[name],
                    f"{result.jain[name]:.6f}",
                    f"{result.producer_jain[name]:.6f}",
                    f"{result.latency[name]:.6f}",
                    f"{result.positive_rate[name]:.6f}",
                ]
            )

    def draw(ax: Any) -> None:
        width = 0.8 / n_e
        for j in range(n_e):
            ax.bar([i + j * width for i in range(len(names))], [result.load[n][j] for n in names], width, label=f"ESP {j}")
        ax.set_xticks(
            [i + width * (n_e - 1) / 2 for i in range(len(names))], [f"{n}\nJ={result.jain[n]:.2f}" for n in names], fontsize=7
        )
        ax.set(ylabel="tasks after the random phase", title="Workload per ESP and strategy")
        ax.legend()

    _plot(out / "workload.png", draw)
    table = Table("strategy", *(f"ESP {j}" for j in range(n_e)), "Jain", "per-producer Jain", "latency (periods)", "positive")
    for name in names:
        table.add_row(
            name,
            *(f"{x:,}" for x in result.load[name]),
            f"{result.jain[name]:.3f}",
            f"{result.producer_jain[name]:.3f}",
            f"{result.latency[name]:.2f}",
            f"{result.positive_rate[name]:.3f}",
        )
    console.print(table)
    console.print(f"wrote {out / 'workload.csv'} and {out / 'workload.png'}", highlight=False)
    if as_json:
        print(
            json.dumps(
                {
                    "experiment": "workload",
                    "seed": seed,
                    "periods": periods,
                    "tasks_per_period": tasks,
                    "workload": result.load,
                    "jain": result.jain,
                    "producer_jain": result.producer_jain,
                    "latency": result.latency,
                    "positive_rate": result.positive_rate,
                    "out": str(out),
                }
            )
        )


@app.command("collusion")
def collusion_command(
    fraction: Annotated[float, typer.Option(help="Share of producers that collude.")] = 0.2,
    producers: Annotated[int, typer.Option(help="Rating producers (a newcomer that never rates is added).")] = 10,
    periods: PeriodsOption = 50,
    seed: SeedOption = 0,
    out: Annotated[Path, typer.Option(help="Directory for collusion.csv.")] = Path("out/reputation-collusion"),
    as_json: JsonOption = False,
) -> None:
    """Colluders rate the honest ESP 0 negative and the cheating ESP 1 positive: does honest still outrank cheating?"""
    _check(0 <= fraction < 1, "--fraction must be in [0, 1)")
    _check(producers >= 2, "--producers must be >= 2")
    _check(periods >= 1, "--periods must be >= 1")
    result = collusion(CollusionConfig(colluder_fraction=fraction, n_producers=producers, periods=periods, seed=seed))
    out = _outdir(out)
    rows: list[dict[str, Any]] = []
    for name, o in result.outcomes.items():
        share = o.colluder_weight_share
        rows.append(
            {
                "method": name,
                "honest_T": o.honest_view[0],
                "cheating_T": o.honest_view[1],
                "honest_outranks_share": o.honest_outranks_share,
                "newcomer_honest_T": o.newcomer_view[0],
                "newcomer_cheating_T": o.newcomer_view[1],
                "colluder_weight_share_honest": share[0] if share else None,
                "colluder_weight_share_cheating": share[1] if share else None,
            }
        )
    with (out / "collusion.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    cfg = result.config
    table = Table(
        "method",
        "T honest",
        "T cheating",
        "honest outranks",
        "newcomer: honest / cheating",
        "colluders' weight share (honest / cheating)",
        title=f"{cfg.n_colluders} of {cfg.n_producers} producers collude (T seen by the honest producers)",
    )
    for r in rows:
        shares = (
            f"{r['colluder_weight_share_honest']:.3f} / {r['colluder_weight_share_cheating']:.3f}"
            if r["colluder_weight_share_honest"] is not None
            else "-"
        )
        table.add_row(
            str(r["method"]),
            f"{r['honest_T']:.3f}",
            f"{r['cheating_T']:.3f}",
            f"{r['honest_outranks_share']:.0%}",
            f"{r['newcomer_honest_T']:.3f} / {r['newcomer_cheating_T']:.3f}",
            shares,
        )
    console.print(table)
    for r in rows:
        verdict = "still outranks" if r["honest_outranks_share"] == 1.0 else f"outranks for {r['honest_outranks_share']:.0%} of"
        newcomer_margin = r["newcomer_honest_T"] - r["newcomer_cheating_T"]
        console.print(
            f"{r['method']}: the honest ESP {verdict} the cheating one (honest producers' view, margin "
            f"{r['honest_T'] - r['cheating_T']:+.3f}; newcomer margin {newcomer_margin:+.3f})",
            highlight=False,
        )
    console.print(f"wrote {out / 'collusion.csv'}", highlight=False)
    if as_json:
        print(
            json.dumps(
                {
                    "experiment": "collusion",
                    "config": {k: v for k, v in asdict(cfg).items() if k != "mwsl"},
                    "colluders": cfg.n_colluders,
                    "methods": rows,
                    "out": str(out),
                }
            )
        )
