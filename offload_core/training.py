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
from pathlib import Path
from typing import Protocol

import torch

from offload_core.compare import MetricSummary, confidence_interval
from offload_core.config import EdgeConfig
from offload_core.engine import Action, EdgeEngine
from offload_core.maddpg import MADDPG, MADDPGConfig
from offload_core.mappo import MAPPO, MAPPOConfig
from offload_core.observations import Decision, step_reward
from offload_core.scenario import TaskBatch
from offload_core.schedulers import scheduler

LEARNED = ("maddpg-mato", "maddpg-nomodel", "saddpg", "mappo")
SCHEDULED = ("random", "greedy")
ALGORITHMS = LEARNED + SCHEDULED
EVAL_OFFSET = 10_000
METRICS = ("reward", "latency_s", "energy_j", "completion_rate", "quality")


@dataclass(frozen=True)
class TrainSettings:
    """How long and on how many environments a policy trains."""

    algo: str = "maddpg-mato"
    """One of maddpg-mato, maddpg-nomodel, saddpg, mappo."""
    envs: int = 16
    """Batched environments B stepped together."""
    episodes: int = 40
    """Training episodes; each resets the topologies."""
    steps: int = 25
    """Steps per episode (each device generates one task per step)."""
    seed: int = 0
    """Seeds networks, exploration and the training streams."""
    policy: str = "lfu"
    """Caching policy of the edge servers."""

    def validate(self) -> TrainSettings:
        if self.algo not in LEARNED:
            raise ValueError(f"algo must be one of {list(LEARNED)}, got {self.algo!r}")
        if min(self.envs, self.episodes, self.steps) < 1:
            raise ValueError("envs, episodes and steps must be at least 1")
        return self


class Learner(Protocol):
    def explore(self, engine: EdgeEngine, tasks: TaskBatch, generator: torch.Generator) -> Decision: ...
    def decide(self, engine: EdgeEngine, tasks: TaskBatch) -> tuple[Action, TaskBatch, torch.Tensor]: ...
    def record(self, decision: Decision, reward: torch.Tensor, out: dict[str, torch.Tensor], engine: EdgeEngine,
               next_tasks: TaskBatch, generator: torch.Generator) -> None: ...
    def end_episode(self, engine: EdgeEngine, tasks: TaskBatch, generator: torch.Generator) -> None: ...
    def state(self) -> dict: ...
    def load_state(self, state: dict) -> None: ...


@dataclass
class TrainResult:
    agent: Learner
    curve: list[dict[str, float]]
    """Per episode: episode, reward, latency_s, energy_j, completion_rate."""


def episode_seed(seed: int, episode: int) -> int:
    return seed * 100_003 + episode


def make_agent(algo: str, config: EdgeConfig, seed: int, device: str | torch.device = "cpu",
               hp: MADDPGConfig | MAPPOConfig | None = None) -> Learner:
    """A fresh learner for `algo` (hyperparameters default to the seed's)."""
    if algo == "mappo":
        return MAPPO(config, hp if isinstance(hp, MAPPOConfig) else MAPPOConfig(), seed, device)
    chosen = replace(hp, variant=algo) if isinstance(hp, MADDPGConfig) else MADDPGConfig(variant=algo)
    return MADDPG(config, chosen, seed, device)


def _episode_metrics(sums: dict[str, torch.Tensor], steps: int, devices: int) -> dict[str, torch.Tensor]:
    """Per-environment means from per-environment sums over steps and devices.  each [B]"""
    tasks = steps * devices
    return {"reward": sums["reward"] / steps, "latency_s": sums["T"] / tasks, "energy_j": sums["E"] / tasks,
            "completion_rate": sums["completed"] / tasks, "quality": sums["quality"] / tasks}


def _accumulate(sums: dict[str, torch.Tensor], out: dict[str, torch.Tensor], reward: torch.Tensor,
                quality: torch.Tensor) -> None:
    values = {"reward": reward, "T": out["T"], "E": out["E"], "completed": out["completed"], "quality": quality}
    for key, value in values.items():
        sums[key] = sums.get(key, 0) + value.to(torch.float64).sum(dim=1)


def train(config: EdgeConfig, settings: TrainSettings, device: str | torch.device = "cpu",
          hp: MADDPGConfig | MAPPOConfig | None = None,
          on_episode: Callable[[dict[str, float]], None] | None = None) -> TrainResult:
    """Train `settings.algo` on B batched environments; deterministic for a seed on a given device."""
    settings.validate()
    agent = make_agent(settings.algo, config, settings.seed, device, hp)
    explore = torch.Generator().manual_seed(settings.seed + 7)
    engine = EdgeEngine(config, settings.envs, settings.policy, device=device, dtype=torch.float32)
    curve: list[dict[str, float]] = []
    for episode in range(settings.episodes):
        seed = episode_seed(settings.seed, episode)
        engine.reset(seed)
        stream = torch.Generator(device=engine.device).manual_seed(seed + 1)
        tasks = engine.sample_tasks(stream)
        sums: dict[str, torch.Tensor] = {}
        for _ in range(settings.steps):
            decision = agent.explore(engine, tasks, explore)
            out = engine.step(decision.tasks, decision.action)
            reward = step_reward(config, out)
            _accumulate(sums, out, reward, out["quality"] * decision.quality_factor)
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


def scheduler_policy(name: str, seed: int) -> Decide:
    """Random or Greedy as a policy (its own seeded generator for random draws)."""
    place = scheduler({"random": "random", "greedy": "greedy"}[name])
    generators: dict[torch.device, torch.Generator] = {}

    def decide(engine: EdgeEngine, tasks: TaskBatch) -> tuple[Action, TaskBatch, torch.Tensor]:
        if engine.device not in generators:  # created on the engine's device at the first step
            generators[engine.device] = torch.Generator(device=engine.device).manual_seed(seed + 2)
        return place(engine, tasks, generators[engine.device], None), tasks, torch.ones_like(tasks.size)

    return decide


@torch.no_grad()
def rollout(config: EdgeConfig, decide: Decide, envs: int, steps: int, seed: int, policy: str = "lfu",
            device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """Run a fixed policy for `steps` on streams of `seed`; per-environment metrics, each [B]."""
    engine = EdgeEngine(config, envs, policy, device=device, dtype=torch.float32)
    engine.reset(seed)
    stream = torch.Generator(device=engine.device).manual_seed(seed + 1)
    sums: dict[str, torch.Tensor] = {}
    for _ in range(steps):
        tasks = engine.sample_tasks(stream)
        action, run_tasks, quality_factor = decide(engine, tasks)
        out = engine.step(run_tasks, action)
        _accumulate(sums, out, step_reward(config, out), out["quality"] * quality_factor)
    return _episode_metrics(sums, steps, config.n_devices)


def policy_of(algo: str, agent: Learner | None, seed: int) -> Decide:
    """The evaluation policy of a learned agent (greedy, no exploration) or a scheduler."""
    if algo in SCHEDULED:
        return scheduler_policy(algo, seed)
    assert agent is not None
    return agent.decide


def scheduler_curve(config: EdgeConfig, name: str, settings: TrainSettings) -> list[float]:
    """Reward per step of a scheduler on the training episodes' streams (the curve's reference line)."""
    rewards = []
    for episode in range(settings.episodes):
        seed = episode_seed(settings.seed, episode)
        per_env = rollout(config, scheduler_policy(name, seed), settings.envs, settings.steps, seed, settings.policy)
        rewards.append(float(per_env["reward"].mean()))
    return rewards


def evaluate(config: EdgeConfig, algo: str, agent: Learner | None, envs: int, steps: int, seed: int,
             policy: str = "lfu", device: str | torch.device = "cpu") -> dict[str, float]:
    """Mean metrics of a policy on the held-out streams of `seed`."""
    per_env = rollout(config, policy_of(algo, agent, seed), envs, steps, seed + EVAL_OFFSET, policy, device)
    return {key: float(value.mean()) for key, value in per_env.items()}


# -- checkpoints ---------------------------------------------------------------------------------------


def save_checkpoint(path: Path, agent: Learner, config: EdgeConfig, settings: TrainSettings) -> Path:
    """Write the agent with the config and settings that rebuild it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": 1, "config": asdict(config), "settings": asdict(settings), "agent": agent.state()}, path)
    return path


def load_checkpoint(path: Path, device: str | torch.device = "cpu") -> tuple[Learner, EdgeConfig, TrainSettings]:
    """Rebuild the agent saved by `save_checkpoint`; raises ValueError on a file that is not one."""
    try:
        blob = torch.load(path, map_location=device, weights_only=False)
    except (OSError, RuntimeError, EOFError) as exc:
        raise ValueError(f"cannot read checkpoint {path}: {exc}") from exc
    if not isinstance(blob, dict) or blob.get("format") != 1:
        raise ValueError(f"{path} is not an offload_core checkpoint")
    config_fields = {key: tuple(value) if isinstance(value, list) else value for key, value in blob["config"].items()}
    config = EdgeConfig(**config_fields)
    settings = TrainSettings(**blob["settings"])
    hp_fields = blob["agent"]["hp"]
    hp: MADDPGConfig | MAPPOConfig = MAPPOConfig(**hp_fields) if settings.algo == "mappo" else MADDPGConfig(**hp_fields)
    agent = make_agent(settings.algo, config, settings.seed, device, hp)
    agent.load_state(blob["agent"])
    return agent, config, settings


# -- sweeps ([Wang 2025, Figs. 3 and 4]) -------------------------------------------------------------------


SWEEP_VALUES = {"models": (3, 4, 5, 6), "eds": (5, 10, 15, 20)}


def sweep_config(base: EdgeConfig, vary: str, value: int) -> EdgeConfig:
    """`base` with the number of models (Fig. 3) or devices (Fig. 4) set to `value`."""
    if vary not in SWEEP_VALUES:
        raise ValueError(f"vary must be one of {list(SWEEP_VALUES)}, got {vary!r}")
    return replace(base, **{"n_models" if vary == "models" else "n_devices": value}).validate()


def sweep(base: EdgeConfig, vary: str, settings: TrainSettings, seeds: int, algos: tuple[str, ...] = ALGORITHMS,
          values: tuple[int, ...] | None = None, eval_envs: int = 32, eval_steps: int = 25,
          device: str | torch.device = "cpu", hp: MADDPGConfig | None = None,
          on_run: Callable[[dict[str, float | str]], None] | None = None) -> list[dict[str, float | str]]:
    """Train and evaluate every algorithm at every value for seeds 0..seeds-1; one row per run."""
    rows: list[dict[str, float | str]] = []
    for value in values or SWEEP_VALUES[vary]:
        config = sweep_config(base, vary, value)
        for seed in range(seeds):
            for algo in algos:
                agent = None
                if algo in LEARNED:
                    run_hp = hp if algo != "mappo" else None
                    agent = train(config, replace(settings, algo=algo, seed=seed), device, run_hp).agent
                metrics = evaluate(config, algo, agent, eval_envs, eval_steps, seed, settings.policy, device)
                row: dict[str, float | str] = {"vary": vary, "value": value, "seed": seed, "algo": algo, **metrics}
                rows.append(row)
                if on_run is not None:
                    on_run(row)
    return rows


def sweep_summary(rows: list[dict[str, float | str]]) -> dict[tuple[int, str], dict[str, MetricSummary]]:
    """Mean and 95% CI over seeds per (value, algo)."""
    groups: dict[tuple[int, str], list[dict[str, float | str]]] = {}
    for row in rows:
        groups.setdefault((int(row["value"]), str(row["algo"])), []).append(row)
    return {key: {metric: confidence_interval(torch.tensor([float(r[metric]) for r in group])) for metric in METRICS}
            for key, group in groups.items()}
