"""Write a simulation's summary.json, the config it ran (config.json), CSV time series and PNG plots."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from statistics import fmean

from market.simulation import SimulationResult


def write_report(result: SimulationResult, out: Path) -> list[Path]:
    """Write every file of the report into `out`; returns their paths.

    config.json holds every field of the run's `SimulationConfig` (also under "config" in
    summary.json): `aigc-market simulate --config out/config.json` runs it again.
    """
    out.mkdir(parents=True, exist_ok=True)
    summary_path = out / "summary.json"
    summary_path.write_text(json.dumps(result.summary, indent=2, default=str) + "\n")
    config_path = out / "config.json"
    config_path.write_text(json.dumps(result.summary["config"], indent=2, default=str) + "\n")
    paths = [summary_path, config_path, _write_timeseries(result, out / "timeseries.csv")]
    paths += _plot(result, out)
    return paths


def _write_timeseries(result: SimulationResult, path: Path) -> Path:
    esps = len(result.periods[0].workload)
    breakdown_keys = list(result.periods[0].breakdown)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "period",
                "tasks",
                "completed",
                "on_time",
                "refunded",
                "mean_latency_s",
                "mean_energy_j",
                *breakdown_keys,
                *(f"reputation_esp{i}" for i in range(esps)),
                *(f"workload_esp{i}" for i in range(esps)),
            ]
        )
        for r in result.periods:
            writer.writerow(
                [
                    r.period,
                    r.tasks,
                    r.completed,
                    r.on_time,
                    r.refunded,
                    fmean(r.latency_s),
                    fmean(r.energy_j),
                    *(r.breakdown[k] for k in breakdown_keys),
                    *r.reputation,
                    *r.workload,
                ]
            )
    return path


def _plot(result: SimulationResult, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    periods = [r.period for r in result.periods]
    labels = list(result.summary["workload"])
    written = []

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for i, label in enumerate(labels):
        ax.plot(periods, [r.reputation[i] for r in result.periods], label=label)
    ax.set(xlabel="period", ylabel="reputation (producer 0's view)", ylim=(0, 1), title="ESP reputation")
    ax.legend(fontsize=8)
    written.append(_save(fig, out / "reputation.png"))

    fig, ax = plt.subplots(figsize=(6, 3.5))
    bottom = [0.0] * len(periods)
    for i, label in enumerate(labels):
        counts = [r.workload[i] for r in result.periods]
        ax.bar(periods, counts, bottom=bottom, label=label, width=1.0)
        bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
    ax.set(xlabel="period", ylabel="tasks", title="Workload per ESP")
    ax.legend(fontsize=8)
    written.append(_save(fig, out / "workload.png"))

    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5))
    for key in ("T_up", "T_wait", "T_sw", "T_es", "T_down"):
        left.plot(periods, [r.breakdown[key] for r in result.periods], label=key)
    left.set(xlabel="period", ylabel="s", title="Latency breakdown (mean per task)")
    left.legend(fontsize=7)
    for key in ("E_up", "E_sw", "E_es"):
        right.plot(periods, [r.breakdown[key] for r in result.periods], label=key)
    right.set(xlabel="period", ylabel="J", title="Energy breakdown (mean per task)")
    right.legend(fontsize=7)
    written.append(_save(fig, out / "latency_energy.png"))

    gas = result.summary["gas_by_operation"]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    names = list(gas)
    ax.barh(names, [gas[n]["mean"] for n in names])
    ax.set(xlabel="gas (mean per call)", title="Gas by operation")
    ax.tick_params(axis="y", labelsize=7)
    written.append(_save(fig, out / "gas.png"))
    return written


def _save(fig, path: Path) -> Path:  # type: ignore[no-untyped-def]
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
