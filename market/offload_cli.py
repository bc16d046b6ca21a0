"""`aigc-market offload ...`: compare caching policies or schedulers of the offloading core."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from offload_core.compare import compare, metric_names, variants
from offload_core.config import PRESETS, preset

app = typer.Typer(help="The batched offloading and caching core.", no_args_is_help=True)
console = Console()


def _plot(rows: dict, metrics: tuple[str, ...], out: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(rows)
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 3.6))
    for ax, metric in zip(axes, metrics, strict=True):
        means = [rows[label][metric].mean for label in labels]
        errors = [rows[label][metric].half_width for label in labels]
        ax.bar(range(len(labels)), means, yerr=errors, capsize=3, color="tab:blue")
        ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=8)
        ax.set_title(metric, fontsize=9)
    fig.suptitle(title)
    fig.tight_layout()
    path = out / "compare.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


@app.command("compare")
def compare_command(
    preset_name: Annotated[str, typer.Option("--preset", help=f"One of {', '.join(PRESETS)}.")] = "mato",
    envs: Annotated[int, typer.Option("--envs", min=1, help="Independent environments B.")] = 64,
    steps: Annotated[int | None, typer.Option("--steps", min=1, help="Steps per run (default: the preset's).")] = None,
    device: Annotated[str, typer.Option("--device", help="cpu or cuda.")] = "cpu",
    seed: Annotated[int, typer.Option("--seed")] = 0,
    out: Annotated[Path, typer.Option("--out", help="Directory for CSV and PNG.")] = Path("out/offload-compare"),
    as_json: Annotated[bool, typer.Option("--json", help="End with one JSON object of the means.")] = False,
) -> None:
    """Run every caching policy (lc) or scheduler (mato, asp) on the same task streams."""
    if preset_name not in PRESETS:
        raise typer.BadParameter(f"must be one of {', '.join(PRESETS)}, got {preset_name!r}", param_hint="--preset")
    if device not in ("cpu", "cuda"):
        raise typer.BadParameter(f"must be cpu or cuda, got {device!r}", param_hint="--device")
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise typer.BadParameter("cuda requested but no CUDA device is available", param_hint="--device")
    chosen = preset(preset_name)
    steps = steps or chosen.steps
    total = len(variants(chosen)) * steps
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(f"{preset_name}: {len(variants(chosen))} variants x {steps} steps x {envs} envs",
                                 total=total)
        rows = compare(chosen, envs, steps, seed, device, on_step=lambda: progress.advance(task))
    metrics = metric_names(chosen)
    table = Table("variant", *metrics, title=f"{preset_name}: means with 95% CI over {envs} environments")
    for label, row in rows.items():
        table.add_row(label, *(f"{row[m].mean:.4g} ± {row[m].half_width:.2g}" for m in metrics))
    console.print(table)

    out.mkdir(parents=True, exist_ok=True)
    with (out / "compare.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["variant", "metric", "mean", "ci95_half_width"])
        for label, row in rows.items():
            for metric in metrics:
                writer.writerow([label, metric, row[metric].mean, row[metric].half_width])
    png = _plot(rows, metrics, out, f"{preset_name} ({envs} envs, {steps} steps, seed {seed})")
    console.print(f"wrote {out / 'compare.csv'} and {png}", highlight=False)
    if as_json:
        print(json.dumps({"preset": preset_name, "envs": envs, "steps": steps, "seed": seed,
                          "rows": {label: {m: row[m].mean for m in metrics} for label, row in rows.items()},
                          "ci95": {label: {m: row[m].half_width for m in metrics} for label, row in rows.items()}}))
