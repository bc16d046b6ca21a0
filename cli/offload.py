"""`aigc-market offload ...`: compare caching policies or schedulers of the offloading core; train,
evaluate and sweep its learned schedulers."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cli.console import console
from cli.devices import checked_device
from cli.run_config import write_run_config
from offload_core.compare import CompareSettings, MetricSummary, compare, metric_names, variants
from offload_core.config import DEFAULT_PRESET, EdgeConfig, preset
from offload_core.maddpg import MADDPGConfig
from offload_core.mappo import MAPPOConfig
from offload_core.names import Algorithm, PresetName, SweepAxis
from offload_core.observations import Reward
from offload_core.training import (
    FIXED_RULES,
    FULL_UPDATES,
    LEARNED,
    METRICS,
    SCHEDULED,
    SWEEP_VALUES,
    EvalSettings,
    SweepSettings,
    TrainSettings,
    best_fixed_rule,
    evaluate,
    evaluate_rules,
    load_checkpoint,
    save_checkpoint,
    scheduler_curve,
    sweep,
    sweep_summary,
    train,
)
from reproduce.report import figure

# Choices come from the StrEnums of offload_core.names, defaults from the settings dataclasses
# (CompareSettings, TrainSettings, MADDPGConfig, EvalSettings, SweepSettings): each is written once.

app = typer.Typer(help="The batched offloading and caching core.", no_args_is_help=True)

PresetOption = Annotated[PresetName, typer.Option("--preset", help="The preset: its system and what it compares.")]
UpdatesOption = Annotated[int, typer.Option("--updates", min=1, help="Gradient updates per training run (the budget).")]
FullOption = Annotated[bool, typer.Option("--full", help=f"The paper's budget: {FULL_UPDATES:,} updates per run.")]
RewardOption = Annotated[
    Reward | None,
    typer.Option(
        "--reward",
        help="team: eq. 18's sum over devices / M; team-sum: the sum; agent: each its own (default: team, agent for saddpg).",
    ),
]
ShareActorOption = Annotated[
    bool,
    typer.Option("--share-actor", help="MADDPG variants: one actor network for every device (ours; docs/learners.md)."),
]


def _plot(rows: dict[str, dict[str, MetricSummary]], metrics: tuple[str, ...], out: Path, title: str) -> Path:
    labels = list(rows)
    path = out / "compare.png"
    with figure(path, ncols=len(metrics), size=(3.2 * len(metrics), 3.6), dpi=110) as axes:
        for ax, metric in zip(axes, metrics, strict=True):
            means = [rows[label][metric].mean for label in labels]
            errors = [rows[label][metric].half_width for label in labels]
            ax.bar(range(len(labels)), means, yerr=errors, capsize=3, color="tab:blue")
            ax.set_xticks(range(len(labels)), labels, rotation=60, ha="right", fontsize=8)
            ax.set_title(metric, fontsize=9)
        axes[0].figure.suptitle(title)
    return path


@app.command("compare")
def compare_command(
    preset_name: PresetOption = CompareSettings.preset,
    envs: Annotated[int, typer.Option("--envs", min=1, help="Independent environments B.")] = CompareSettings.envs,
    steps: Annotated[int | None, typer.Option("--steps", min=1, help="Steps per run (default: the preset's).")] = (
        CompareSettings.steps
    ),
    device: Annotated[str, typer.Option("--device", help="cpu or cuda.")] = "cpu",
    seed: Annotated[int, typer.Option("--seed")] = CompareSettings.seed,
    out: Annotated[Path, typer.Option("--out", help="Directory for CSV and PNG.")] = Path("out/offload-compare"),
    as_json: Annotated[bool, typer.Option("--json", help="End with one JSON object of the means.")] = False,
) -> None:
    """Run every caching policy (lc) or scheduler (mato, asp) on the same task streams."""
    checked_device(device)
    chosen = preset(preset_name)
    steps = steps or chosen.steps
    total = len(variants(chosen)) * steps
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(f"{preset_name}: {len(variants(chosen))} variants x {steps} steps x {envs} envs", total=total)
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
    write_run_config(out, preset=preset_name, edge=chosen.config, envs=envs, steps=steps, seed=seed, device=device)
    console.print(f"wrote {out / 'compare.csv'}, {png} and {out / 'config.json'}", highlight=False)
    if as_json:
        print(
            json.dumps(
                {
                    "preset": preset_name.value,
                    "envs": envs,
                    "steps": steps,
                    "seed": seed,
                    "rows": {label: {m: row[m].mean for m in metrics} for label, row in rows.items()},
                    "ci95": {label: {m: row[m].half_width for m in metrics} for label, row in rows.items()},
                }
            )
        )


# -- learned schedulers ---------------------------------------------------------------------------


def _config(preset_name: PresetName, eds: int | None, models: int | None) -> EdgeConfig:
    overrides = {key: value for key, value in (("n_devices", eds), ("n_models", models)) if value is not None}
    try:
        return preset(preset_name, **overrides).config
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def _plot_curve(curve: list[dict[str, float]], references: dict[str, list[float]], path: Path, title: str) -> None:
    with figure(path, size=(6, 3.8), dpi=110) as ax:
        episodes = [row["episode"] for row in curve]
        ax.plot(episodes, [row["reward"] for row in curve], label="trained policy (exploring)")
        for name, rewards in references.items():
            ax.plot(episodes, rewards, linestyle="--", label=name)
        ax.set_xlabel("episode")
        ax.set_ylabel("reward per step (sum over EDs)")
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=8)


@app.command("train")
def train_command(
    algo: Annotated[Algorithm, typer.Option("--algo", help=f"A learned one: {', '.join(LEARNED)}.")] = TrainSettings.algo,
    preset_name: PresetOption = DEFAULT_PRESET,
    eds: Annotated[int | None, typer.Option("--eds", min=1, help="End devices M (default: the preset's).")] = None,
    models: Annotated[int | None, typer.Option("--models", min=1, help="Generative models I.")] = None,
    updates: UpdatesOption = TrainSettings.updates,
    full: FullOption = False,
    episodes: Annotated[
        int | None, typer.Option("--episodes", min=1, help="Training episodes (default: as many as earn the updates).")
    ] = TrainSettings.episodes,
    steps: Annotated[int, typer.Option("--steps", min=1, help="Steps per episode.")] = TrainSettings.steps,
    envs: Annotated[int, typer.Option("--envs", min=1, help="Batched environments B.")] = TrainSettings.envs,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="MADDPG replay batch (seed: 1024).")] = (
        MADDPGConfig.batch_size
    ),
    reward: RewardOption = MADDPGConfig.reward,
    share_actor: ShareActorOption = MADDPGConfig.share_actor,
    seed: Annotated[int, typer.Option("--seed", min=0)] = TrainSettings.seed,
    device: Annotated[str, typer.Option("--device", help="cpu or cuda.")] = "cpu",
    out: Annotated[Path, typer.Option("--out", help="Directory for CSV, PNG and checkpoint.")] = Path("out/offload-train"),
    as_json: Annotated[bool, typer.Option("--json", help="End with one JSON object.")] = False,
) -> None:
    """Train a learned offloading policy for a budget of gradient updates; writes curve.csv, curve.png and
    checkpoint.pt (seed Fig. 2), with Random and the fixed rules on the same streams as references."""
    if algo not in LEARNED:
        raise typer.BadParameter(f"must be one of {', '.join(LEARNED)}, got {algo.value!r}", param_hint="--algo")
    device = checked_device(device)
    config = _config(preset_name, eds, models)
    settings = TrainSettings(
        algo=algo, envs=envs, updates=FULL_UPDATES if full else updates, episodes=episodes, steps=steps, seed=seed
    )
    hp: MADDPGConfig | MAPPOConfig = (
        MADDPGConfig(variant=algo, batch_size=batch_size, reward=reward, share_actor=share_actor)
        if algo != Algorithm.MAPPO
        else MAPPOConfig(reward=reward or Reward.TEAM)
    )
    with _progress() as progress:
        task = progress.add_task(f"{algo} on {preset_name}, {settings.updates:,} updates", total=None, status="")

        def show(row: dict[str, float]) -> None:
            progress.update(
                task, status=f"episode {int(row['episode'])}, {int(row['updates'])} updates, reward {row['reward']:.3f}"
            )

        result = train(config, settings, device, hp, on_episode=show)
    names = [Algorithm.RANDOM.value, *FIXED_RULES]
    count = len(result.curve)
    references = {name: scheduler_curve(config, name, settings, count) for name in names} if device == "cpu" else {}
    out.mkdir(parents=True, exist_ok=True)
    with (out / "curve.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["episode", "updates", *METRICS, *(f"{name}_reward" for name in references)])
        for index, row in enumerate(result.curve):
            writer.writerow(
                [
                    int(row["episode"]),
                    int(row["updates"]),
                    *(row[m] for m in METRICS),
                    *(refs[index] for refs in references.values()),
                ]
            )
    _plot_curve(
        result.curve,
        references,
        out / "curve.png",
        f"{algo}, {preset_name}, M={config.n_devices}, I={config.n_models}, B={envs}, seed {seed}",
    )
    checkpoint = save_checkpoint(out / "checkpoint.pt", result.agent, config, settings)
    write_run_config(out, preset=preset_name, edge=config, training=settings, maddpg=hp, device=device)
    first, last = result.curve[0]["reward"], result.curve[-1]["reward"]
    console.print(
        f"reward per step: first episode {first:.3f}, last {last:.3f} after {int(result.curve[-1]['updates']):,} updates "
        f"in {count} episodes; wrote {out / 'curve.csv'}, {out / 'curve.png'} and {checkpoint}",
        highlight=False,
    )
    if as_json:
        print(
            json.dumps(
                {
                    "algo": algo.value,
                    "updates": settings.updates,
                    "episodes": count,
                    "first_reward": first,
                    "last_reward": last,
                    "curve": result.curve,
                    "references": references,
                    "checkpoint": str(checkpoint),
                }
            )
        )


@app.command("evaluate")
def evaluate_command(
    checkpoint: Annotated[Path, typer.Option("--checkpoint", help="checkpoint.pt written by train.")],
    envs: Annotated[int, typer.Option("--envs", min=1)] = EvalSettings.envs,
    steps: Annotated[int, typer.Option("--steps", min=1)] = EvalSettings.steps,
    seed: Annotated[int, typer.Option("--seed", help="Held-out streams of this seed.")] = EvalSettings.seed,
    device: Annotated[str, typer.Option("--device", help="cpu or cuda.")] = "cpu",
    as_json: Annotated[bool, typer.Option("--json", help="End with one JSON object.")] = False,
) -> None:
    """Evaluate a checkpoint against Random, Greedy and the fixed rules on the same held-out streams."""
    device = checked_device(device)
    if not checkpoint.is_file():
        raise typer.BadParameter(f"no such file: {checkpoint}", param_hint="--checkpoint")
    try:
        agent, config, settings = load_checkpoint(checkpoint, device)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--checkpoint") from exc
    rows = {settings.algo.value: evaluate(config, settings.algo, agent, envs, steps, seed, settings.policy, device)}
    for reference in SCHEDULED:
        rows[reference.value] = evaluate(config, reference, None, envs, steps, seed, settings.policy, "cpu")
    rules = evaluate_rules(config, envs, steps, seed, settings.policy, "cpu")
    for name, metrics in rules.items():
        rows.setdefault(name, metrics)
    best, best_reward = best_fixed_rule(rules)
    for name, metrics in rows.items():
        console.print(f"{name:>24}: " + ", ".join(f"{key} {value:.4g}" for key, value in metrics.items()), highlight=False)
    learned = rows[settings.algo.value]["reward"]
    verdict = "above" if learned > best_reward else "not above"
    console.print(
        f"{settings.algo.value} reward {learned:.4g}: {verdict} the best fixed rule ({best}, {best_reward:.4g})", highlight=False
    )
    if as_json:
        print(
            json.dumps(
                {
                    "checkpoint": str(checkpoint),
                    "envs": envs,
                    "steps": steps,
                    "seed": seed,
                    "rows": rows,
                    "best_rule": best,
                    "above_best_rule": learned > best_reward,
                }
            )
        )


def learner_verdicts(
    rows: list[dict[str, float | str]], summary: dict[tuple[int, str], dict[str, MetricSummary]]
) -> list[dict[str, float | str | bool | int]]:
    """Per point and learned algorithm: its held-out reward (mean, CI over seeds) against the best fixed
    rule's mean there, and its last training episode's reward against its first at every seed."""
    verdicts: list[dict[str, float | str | bool | int]] = []
    for (value, algo), metrics in sorted(summary.items()):
        best = _best_rule(summary, value)
        if algo.startswith("rule:") or algo not in LEARNED or best is None:
            continue
        runs = [row for row in rows if int(row["value"]) == value and row["algo"] == algo]
        above_first = sum(float(row["reward"]) > float(row["first_reward"]) for row in runs)
        verdicts.append(
            {
                "value": value,
                "algo": algo,
                "reward": metrics["reward"].mean,
                "reward_ci95": metrics["reward"].half_width,
                "best_rule": best[1].removeprefix("rule:"),
                "best_rule_reward": summary[best]["reward"].mean,
                "above_best_rule": metrics["reward"].mean > summary[best]["reward"].mean,
                "first_reward": sum(float(row["first_reward"]) for row in runs) / len(runs),
                "seeds": len(runs),
                "seeds_above_first": above_first,
                "above_first_episode": above_first == len(runs),
            }
        )
    return verdicts


def _best_rule(summary: dict[tuple[int, str], dict[str, MetricSummary]], value: int) -> tuple[int, str] | None:
    """The (value, "rule:NAME") key of the fixed rule with the highest mean reward at `value`, if any."""
    keys = [key for key in summary if key[0] == value and key[1].startswith("rule:")]
    return max(keys, key=lambda key: summary[key]["reward"].mean) if keys else None


def _plot_sweep(
    summary: dict[tuple[int, str], dict[str, MetricSummary]], vary: SweepAxis, algos: list[Algorithm], path: Path, title: str
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = ("reward", "latency_s", "energy_j", "completion_rate", "quality")
    values = sorted({value for value, _ in summary})
    fig, axes = plt.subplots(1, len(shown), figsize=(4 * len(shown), 3.6))
    for ax, metric in zip(axes, shown, strict=True):
        for algo in algos:
            means = [summary[(v, algo)][metric].mean for v in values]
            errors = [summary[(v, algo)][metric].half_width for v in values]
            ax.errorbar(values, means, yerr=errors, marker="o", capsize=3, label=algo)
        best = [_best_rule(summary, v) for v in values]
        if values and all(key is not None for key in best):
            shown_best = [summary[key][metric].mean for key in best if key is not None]
            ax.plot(values, shown_best, linestyle="--", color="gray", label="best fixed rule")
        ax.set_xlabel("models" if vary == SweepAxis.MODELS else "EDs")
        ax.set_title(metric, fontsize=9)
    axes[0].legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


@app.command("sweep")
def sweep_command(
    vary: Annotated[SweepAxis, typer.Option("--vary", help="models (Fig. 3: 3-6) or eds (Fig. 4: 5-20).")] = (SweepSettings.vary),
    seeds: Annotated[int, typer.Option("--seeds", min=1, help="Seeds per point (CIs over seeds).")] = SweepSettings.seeds,
    algos: Annotated[str, typer.Option("--algos", help="Comma-separated subset.")] = ",".join(SweepSettings.algos),
    preset_name: PresetOption = DEFAULT_PRESET,
    updates: UpdatesOption = SweepSettings.updates,
    full: FullOption = False,
    episodes: Annotated[
        int | None, typer.Option("--episodes", min=1, help="Training episodes per run (default: as many as earn the updates).")
    ] = SweepSettings.episodes,
    steps: Annotated[int, typer.Option("--steps", min=1)] = TrainSettings.steps,
    envs: Annotated[int, typer.Option("--envs", min=1)] = TrainSettings.envs,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="MADDPG replay batch (seed: 1024).")] = (
        SweepSettings.batch_size
    ),
    reward: RewardOption = MADDPGConfig.reward,
    share_actor: ShareActorOption = MADDPGConfig.share_actor,
    values: Annotated[
        str | None, typer.Option("--values", help="Comma-separated points (default: the figure's, e.g. 3,4,5,6 models).")
    ] = None,
    eval_envs: Annotated[int, typer.Option("--eval-envs", min=1)] = SweepSettings.eval_envs,
    device: Annotated[str, typer.Option("--device", help="cpu or cuda.")] = "cpu",
    out: Annotated[Path, typer.Option("--out")] = Path("out/offload-sweep"),
    as_json: Annotated[bool, typer.Option("--json", help="End with one JSON object.")] = False,
) -> None:
    """Train every algorithm per point and seed; latency, energy, completion with 95% CIs (seed Figs. 3-4),
    beside the fixed rules (rule:NAME rows) on the same held-out streams."""
    names = [a.strip() for a in algos.split(",") if a.strip()]
    unknown = [name for name in names if name not in set(Algorithm)]
    if unknown or not names:
        raise typer.BadParameter(f"unknown {unknown}; choose from {', '.join(Algorithm)}", param_hint="--algos")
    chosen = [Algorithm(name) for name in names]
    try:
        points = tuple(int(v) for v in values.split(",") if v.strip()) if values else SWEEP_VALUES[vary]
    except ValueError:
        raise typer.BadParameter(f"must be whole numbers separated by commas, got {values!r}", param_hint="--values") from None
    if not points or min(points) < 1:
        raise typer.BadParameter(f"must be positive whole numbers, got {values!r}", param_hint="--values")
    device = checked_device(device)
    base = _config(preset_name, None, None)
    plan = SweepSettings(
        vary=vary,
        seeds=seeds,
        algos=tuple(chosen),
        updates=FULL_UPDATES if full else updates,
        episodes=episodes,
        batch_size=batch_size,
        eval_envs=eval_envs,
    )
    settings = TrainSettings(envs=envs, updates=plan.updates, episodes=plan.episodes, steps=steps)
    total = len(points) * seeds * (len(chosen) + len(FIXED_RULES))
    out.mkdir(parents=True, exist_ok=True)
    partial = out / f"sweep_{vary}_runs.csv"
    partial.unlink(missing_ok=True)
    write_run_config(out, preset=preset_name, edge=base, sweep=plan, training=settings, device=device)
    with _progress() as progress:
        task = progress.add_task(f"sweep {vary}", total=total, status="")

        def show(row: dict[str, float | str]) -> None:
            progress.update(task, advance=1, status=f"{row['algo']} {vary}={row['value']} reward {row['reward']:.3f}")
            new_file = not partial.exists()
            with partial.open("a", newline="") as handle:  # one row per finished run, as they come
                writer = csv.DictWriter(handle, fieldnames=list(row))
                if new_file:
                    writer.writeheader()
                writer.writerow(row)

        rows = sweep(
            base,
            plan.vary,
            settings,
            plan.seeds,
            plan.algos,
            values=points,
            eval_envs=plan.eval_envs,
            eval_steps=plan.eval_steps,
            device=device,
            hp=MADDPGConfig(batch_size=plan.batch_size, reward=reward, share_actor=share_actor),
            on_run=show,
            mappo_hp=MAPPOConfig(reward=reward or Reward.TEAM),
            rules=True,
        )
    summary = sweep_summary(rows)
    with (out / f"sweep_{vary}.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["vary", "value", "algo", *(f"{m}{s}" for m in METRICS for s in ("", "_ci95"))])
        for (value, algo), metrics in sorted(summary.items()):
            writer.writerow([vary, value, algo, *(x for m in METRICS for x in (metrics[m].mean, metrics[m].half_width))])
    png = out / f"sweep_{vary}.png"
    _plot_sweep(
        summary,
        vary,
        chosen,
        png,
        f"{preset_name}: vary {vary}, {seeds} seeds, {plan.updates:,} updates x {envs} envs, 95% CI over seeds",
    )
    for (value, algo), metrics in sorted(summary.items()):
        console.print(
            f"{vary}={value:>2} {algo:>14}: "
            + ", ".join(f"{m} {metrics[m].mean:.4g}±{metrics[m].half_width:.2g}" for m in METRICS),
            highlight=False,
        )
    verdicts = learner_verdicts(rows, summary)
    for verdict in verdicts:
        console.print(
            f"{vary}={verdict['value']:>2} {verdict['algo']:>14}: reward {verdict['reward']:.4g}±{verdict['reward_ci95']:.2g} vs "
            f"best fixed rule {verdict['best_rule']} {verdict['best_rule_reward']:.4g} "
            f"({'above' if verdict['above_best_rule'] else 'NOT above'}); first training episode "
            f"{verdict['first_reward']:.4g} ({'above' if verdict['above_first_episode'] else 'NOT above'} it at every seed: "
            f"{verdict['seeds_above_first']}/{verdict['seeds']})",
            highlight=False,
        )
    console.print(f"wrote {out / f'sweep_{vary}.csv'}, {out / f'sweep_{vary}_runs.csv'} and {png}", highlight=False)
    if as_json:
        print(
            json.dumps(
                {
                    "vary": vary.value,
                    "seeds": seeds,
                    "updates": plan.updates,
                    "episodes": episodes,
                    "steps": steps,
                    "envs": envs,
                    "rows": {
                        f"{value}/{algo}": {m: metrics[m].mean for m in METRICS}
                        for (value, algo), metrics in sorted(summary.items())
                    },
                    "ci95": {
                        f"{value}/{algo}": {m: metrics[m].half_width for m in METRICS}
                        for (value, algo), metrics in sorted(summary.items())
                    },
                    "verdicts": verdicts,
                }
            )
        )
