"""Shared training and evaluation loops for the learned offloading policies, on batched environments.

Streams: episode e of a run with seed s uses topology seed `episode_seed(s, e)` and a task stream
seeded one above it, the same for every algorithm (learned or scheduler), so that differences come
from the policy alone. Evaluation uses held-out seeds (EVAL_OFFSET above the training seed).

Reward per step (the convergence curve): seed eq. 18 summed over the M devices, averaged over
environments and the episode's steps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

import torch

from offload_core.compare import MetricSummary, confidence_interval
from offload_core.config import EdgeConfig
from offload_core.engine import Action, EdgeEngine
from offload_core.maddpg import MADDPG, VARIANTS, MADDPGConfig
from offload_core.mappo import MAPPO, MAPPOConfig
from offload_core.names import Algorithm, CachingPolicy, SchedulerName, SweepAxis, parse, parse_among
from offload_core.observations import Decision, step_reward
from offload_core.result import StepResult
from offload_core.scenario import TaskBatch
from offload_core.schedulers import scheduler

LEARNED: tuple[Algorithm, ...] = (*VARIANTS, Algorithm.MAPPO)
"""The algorithms that train (`train`, `TrainSettings.algo`)."""
SCHEDULED: tuple[Algorithm, ...] = (Algorithm.RANDOM, Algorithm.GREEDY)
"""The rule-based references, each the scheduler of the same name."""
ALGORITHMS: tuple[Algorithm, ...] = LEARNED + SCHEDULED
EVAL_OFFSET = 10_000
METRICS = ("reward", "latency_s", "energy_j", "completion_rate", "quality")


def _at_least_one(settings: object, *names: str) -> None:
    for name in names:
        value = getattr(settings, name)
        if value < 1:
            raise ValueError(f"{name} must be at least 1, got {value}")


def _plain(fields: dict[str, Any]) -> dict[str, Any]:
    """Dataclass fields with names (StrEnum members) as plain strings, for checkpoints and rows."""
    return {key: value.value if isinstance(value, StrEnum) else value for key, value in fields.items()}


@dataclass(frozen=True)
class TrainSettings:
    """How long and on how many environments a policy trains (checked when built; errors name the field)."""

    algo: Algorithm = Algorithm.MADDPG_MATO
    """One of maddpg-mato, maddpg-nomodel, saddpg, mappo."""
    envs: int = 16
    """Batched environments B stepped together."""
    episodes: int = 40
    """Training episodes; each resets the topologies."""
    steps: int = 25
    """Steps per episode (each device generates one task per step)."""
    seed: int = 0
    """Seeds networks, exploration and the training streams."""
    policy: CachingPolicy = CachingPolicy.LFU
    """Caching policy of the edge servers."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "algo", parse_among(LEARNED, self.algo, "algo"))
        object.__setattr__(self, "policy", parse(CachingPolicy, self.policy, "policy"))
        self.validate()

    def validate(self) -> TrainSettings:
        """Return self, or raise ValueError naming the first field out of range (done when built)."""
        _at_least_one(self, "envs", "episodes", "steps")
        return self


@dataclass(frozen=True)
class EvalSettings:
    """How a policy is evaluated: on held-out streams (checked when built)."""

    envs: int = 32
    """Batched environments B."""
    steps: int = 25
    """Steps of the evaluation run."""
    seed: int = 0
    """Evaluation uses the held-out streams of this seed (EVAL_OFFSET above it)."""

    def __post_init__(self) -> None:
        _at_least_one(self, "envs", "steps")


@dataclass(frozen=True)
class SweepSettings:
    """What `sweep` runs at each point besides the TrainSettings of each run (checked when built)."""

    vary: SweepAxis = SweepAxis.MODELS
    """The number of models (Fig. 3) or of devices (Fig. 4)."""
    seeds: int = 3
    """Seeds per point: the confidence intervals are over seeds."""
    algos: tuple[Algorithm, ...] = ALGORITHMS
    """Algorithms trained (learned ones) or run (scheduled ones) at each point."""
    episodes: int = 8
    """Training episodes per run: fewer than a single run's (TrainSettings.episodes), as a sweep trains many."""
    batch_size: int = 256
    """MADDPG replay batch per run: smaller than the seed's 1024 (MADDPGConfig.batch_size) for the short runs."""
    eval_envs: int = EvalSettings.envs
    """Environments of each run's evaluation."""
    eval_steps: int = EvalSettings.steps
    """Steps of each run's evaluation."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "vary", parse(SweepAxis, self.vary, "vary"))
        object.__setattr__(self, "algos", tuple(parse(Algorithm, algo, "algos") for algo in self.algos))
        if not self.algos:
            raise ValueError("algos must name at least one algorithm")
        _at_least_one(self, "seeds", "episodes", "batch_size", "eval_envs", "eval_steps")


class Learner(Protocol):
    def explore(self, engine: EdgeEngine, tasks: TaskBatch, generator: torch.Generator) -> Decision: ...
    def decide(self, engine: EdgeEngine, tasks: TaskBatch) -> tuple[Action, TaskBatch, torch.Tensor]: ...
    def record(
        self,
        decision: Decision,
        reward: torch.Tensor,
        out: StepResult,
        engine: EdgeEngine,
        next_tasks: TaskBatch,
        generator: torch.Generator,
    ) -> None: ...
    def end_episode(self, engine: EdgeEngine, tasks: TaskBatch, generator: torch.Generator) -> None: ...
    def state(self) -> dict[str, Any]: ...
    def load_state(self, state: dict[str, Any]) -> None: ...


@dataclass
class TrainResult:
    agent: Learner
    curve: list[dict[str, float]]
    """Per episode: episode, reward, latency_s, energy_j, completion_rate."""


def episode_seed(seed: int, episode: int) -> int:
    return seed * 100_003 + episode


def make_agent(
    algo: Algorithm | str,
    config: EdgeConfig,
    seed: int,
    device: str | torch.device = "cpu",
    hp: MADDPGConfig | MAPPOConfig | None = None,
) -> Learner:
    """A fresh learner for `algo` (hyperparameters default to the seed's)."""
    learned = parse_among(LEARNED, algo, "algo")
    if learned == Algorithm.MAPPO:
        return MAPPO(config, hp if isinstance(hp, MAPPOConfig) else MAPPOConfig(), seed, device)
    chosen = replace(hp, variant=learned) if isinstance(hp, MADDPGConfig) else MADDPGConfig(variant=learned)
    return MADDPG(config, chosen, seed, device)


def _episode_metrics(sums: dict[str, torch.Tensor], steps: int, devices: int) -> dict[str, torch.Tensor]:
    """Per-environment means from per-environment sums over steps and devices.  each [B]"""
    tasks = steps * devices
    return {
        "reward": sums["reward"] / steps,
        "latency_s": sums["T"] / tasks,
        "energy_j": sums["E"] / tasks,
        "completion_rate": sums["completed"] / tasks,
        "quality": sums["quality"] / tasks,
    }


def _accumulate(sums: dict[str, torch.Tensor], out: StepResult, reward: torch.Tensor, quality: torch.Tensor) -> None:
    """Add this step's per-environment sums over devices.  reward, quality: [B, M]; sums: each [B]"""
    values = {"reward": reward, "T": out.T, "E": out.E, "completed": out.completed, "quality": quality}
    for key, value in values.items():
        sums[key] = sums.get(key, 0) + value.to(torch.float64).sum(dim=1)


def train(
    config: EdgeConfig,
    settings: TrainSettings,
    device: str | torch.device = "cpu",
    hp: MADDPGConfig | MAPPOConfig | None = None,
    on_episode: Callable[[dict[str, float]], None] | None = None,
) -> TrainResult:
    """Train `settings.algo` on B batched environments; deterministic for a seed on a given device."""
    agent = make_agent(settings.algo, config, settings.seed, device, hp)
    explore = torch.Generator().manual_seed(settings.seed + 7)
    engine = EdgeEngine(config, settings.envs, settings.policy, device=device, dtype=torch.float32)
    curve: list[dict[str, float]] = []
    for episode in range(settings.episodes):
        seed = episode_seed(settings.seed, episode)
        engine.reset(seed)
        stream = torch.Generator(device=engine.view.device).manual_seed(seed + 1)
        tasks = engine.sample_tasks(stream)
        sums: dict[str, torch.Tensor] = {}
        for _ in range(settings.steps):
            decision = agent.explore(engine, tasks, explore)
            out = engine.step(decision.tasks, decision.action)
            reward = step_reward(config, out)
            _accumulate(sums, out, reward, out.quality * decision.quality_factor)
            next_tasks = engine.sample_tasks(stream)
            agent.record(decision, reward, out, engine, next_tasks, explore)
            tasks = next_tasks
        agent.end_episode(engine, tasks, explore)
        means = _episode_metrics(sums, settings.steps, config.n_devices)
        row = {"episode": float(episode), **{key: float(value.mean()) for key, value in means.items()}}
        curve.append(row)
        if on_episode is not None:
            on_episode(row)
    return TrainResult(agent, curve)


Decide = Callable[[EdgeEngine, TaskBatch], tuple[Action, TaskBatch, torch.Tensor]]


def scheduler_policy(name: Algorithm | str, seed: int) -> Decide:
    """Random or Greedy as a policy (its own seeded generator for random draws)."""
    place = scheduler(SchedulerName(parse_among(SCHEDULED, name, "algo").value))
    generators: dict[torch.device, torch.Generator] = {}

    def decide(engine: EdgeEngine, tasks: TaskBatch) -> tuple[Action, TaskBatch, torch.Tensor]:
        device = engine.view.device
        if device not in generators:  # created on the engine's device at the first step
            generators[device] = torch.Generator(device=device).manual_seed(seed + 2)
        return place(engine, tasks, generators[device], None), tasks, torch.ones_like(tasks.size)

    return decide


@torch.no_grad()
def rollout(
    config: EdgeConfig,
    decide: Decide,
    envs: int,
    steps: int,
    seed: int,
    policy: CachingPolicy | str = CachingPolicy.LFU,
    device: str | torch.device = "cpu",
) -> dict[str, torch.Tensor]:
    """Run a fixed policy for `steps` on streams of `seed`; per-environment metrics, each [B]."""
    engine = EdgeEngine(config, envs, policy, device=device, dtype=torch.float32)
    engine.reset(seed)
    stream = torch.Generator(device=engine.view.device).manual_seed(seed + 1)
    sums: dict[str, torch.Tensor] = {}
    for _ in range(steps):
        tasks = engine.sample_tasks(stream)
        action, run_tasks, quality_factor = decide(engine, tasks)
        out = engine.step(run_tasks, action)
        _accumulate(sums, out, step_reward(config, out), out.quality * quality_factor)
    return _episode_metrics(sums, steps, config.n_devices)


def policy_of(algo: Algorithm | str, agent: Learner | None, seed: int) -> Decide:
    """The evaluation policy of a learned agent (greedy, no exploration) or a scheduler."""
    if parse(Algorithm, algo, "algo") in SCHEDULED:
        return scheduler_policy(algo, seed)
    assert agent is not None
    return agent.decide


def scheduler_curve(config: EdgeConfig, name: Algorithm | str, settings: TrainSettings) -> list[float]:
    """Reward per step of a scheduler on the training episodes' streams (the curve's reference line)."""
    rewards = []
    for episode in range(settings.episodes):
        seed = episode_seed(settings.seed, episode)
        per_env = rollout(config, scheduler_policy(name, seed), settings.envs, settings.steps, seed, settings.policy)
        rewards.append(float(per_env["reward"].mean()))
    return rewards


def evaluate(
    config: EdgeConfig,
    algo: Algorithm | str,
    agent: Learner | None,
    envs: int,
    steps: int,
    seed: int,
    policy: CachingPolicy | str = CachingPolicy.LFU,
    device: str | torch.device = "cpu",
) -> dict[str, float]:
    """Mean metrics of a policy on the held-out streams of `seed`."""
    per_env = rollout(config, policy_of(algo, agent, seed), envs, steps, seed + EVAL_OFFSET, policy, device)
    return {key: float(value.mean()) for key, value in per_env.items()}


# -- checkpoints ---------------------------------------------------------------------------------------


def save_checkpoint(path: Path, agent: Learner, config: EdgeConfig, settings: TrainSettings) -> Path:
    """Write the agent with the config and settings that rebuild it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": 1, "config": asdict(config), "settings": _plain(asdict(settings)), "agent": agent.state()}, path)
    return path


def load_checkpoint(path: Path, device: str | torch.device = "cpu") -> tuple[Learner, EdgeConfig, TrainSettings]:
    """Rebuild the agent saved by `save_checkpoint`; raises ValueError on a file that is not one."""
    try:
        blob = torch.load(path, map_location=device, weights_only=False)
    except (OSError, RuntimeError, EOFError) as exc:
        raise ValueError(f"cannot read checkpoint {path}: {exc}") from exc
    if not isinstance(blob, dict) or blob.get("format") != 1:
        raise ValueError(f"{path} is not an offload_core checkpoint")
    config_fields: dict[str, Any] = {
        key: tuple(value) if isinstance(value, list) else value for key, value in blob["config"].items()
    }
    try:
        config = EdgeConfig(**config_fields)
        settings = TrainSettings(**blob["settings"])
        hp_fields = blob["agent"]["hp"]
        hp: MADDPGConfig | MAPPOConfig = MAPPOConfig(**hp_fields) if settings.algo == Algorithm.MAPPO else MADDPGConfig(**hp_fields)
    except (TypeError, KeyError) as exc:
        raise ValueError(f"{path} is not an offload_core checkpoint of this version: {exc}") from exc
    agent = make_agent(settings.algo, config, settings.seed, device, hp)
    agent.load_state(blob["agent"])
    return agent, config, settings


# -- sweeps ([Wang 2025, Figs. 3 and 4]) -------------------------------------------------------------------


SWEEP_VALUES: dict[SweepAxis, tuple[int, ...]] = {SweepAxis.MODELS: (3, 4, 5, 6), SweepAxis.EDS: (5, 10, 15, 20)}


def sweep_config(base: EdgeConfig, vary: SweepAxis | str, value: int) -> EdgeConfig:
    """`base` with the number of models (Fig. 3) or devices (Fig. 4) set to `value` (checked when built)."""
    if parse(SweepAxis, vary, "vary") == SweepAxis.MODELS:
        return replace(base, n_models=value)
    return replace(base, n_devices=value)


def sweep(
    base: EdgeConfig,
    vary: SweepAxis | str,
    settings: TrainSettings,
    seeds: int,
    algos: tuple[Algorithm | str, ...] = SweepSettings.algos,
    values: tuple[int, ...] | None = None,
    eval_envs: int = SweepSettings.eval_envs,
    eval_steps: int = SweepSettings.eval_steps,
    device: str | torch.device = "cpu",
    hp: MADDPGConfig | None = None,
    on_run: Callable[[dict[str, float | str]], None] | None = None,
) -> list[dict[str, float | str]]:
    """Train and evaluate every algorithm at every value for seeds 0..seeds-1; one row per run."""
    axis = parse(SweepAxis, vary, "vary")
    rows: list[dict[str, float | str]] = []
    for value in values or SWEEP_VALUES[axis]:
        config = sweep_config(base, axis, value)
        for seed in range(seeds):
            for name in algos:
                algo = parse(Algorithm, name, "algos")
                agent = None
                if algo in LEARNED:
                    run_hp = hp if algo != Algorithm.MAPPO else None
                    agent = train(config, replace(settings, algo=algo, seed=seed), device, run_hp).agent
                metrics = evaluate(config, algo, agent, eval_envs, eval_steps, seed, settings.policy, device)
                row: dict[str, float | str] = {"vary": axis.value, "value": value, "seed": seed, "algo": algo.value, **metrics}
                rows.append(row)
                if on_run is not None:
                    on_run(row)
    return rows


def sweep_summary(rows: list[dict[str, float | str]]) -> dict[tuple[int, str], dict[str, MetricSummary]]:
    """Mean and 95% CI over seeds per (value, algo)."""
    groups: dict[tuple[int, str], list[dict[str, float | str]]] = {}
    for row in rows:
        groups.setdefault((int(row["value"]), str(row["algo"])), []).append(row)
    return {
        key: {metric: confidence_interval(torch.tensor([float(r[metric]) for r in group])) for metric in METRICS}
        for key, group in groups.items()
    }
