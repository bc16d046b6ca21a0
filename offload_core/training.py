"""Shared training and evaluation loops for the learned offloading policies, on batched environments.

Streams. Every random stream of a run is derived from its seed by numpy's SeedSequence with its own
key, so no two streams share a seed: episode e of training draws its topologies (engine reset: the
positions, frequencies, warm caches) from `stream_seed(seed, TRAIN, e, TOPOLOGY)` and its tasks from
`stream_seed(seed, TRAIN, e, TASKS)`; evaluation uses the held-out pair `(seed, HELD_OUT, ...)`;
network initialisation, exploration and the random scheduler have keys of their own. Streams are
the same for every algorithm (learned or scheduler), so that differences come from the policy alone.

Budget. A run is `TrainSettings.updates` gradient updates; the learner says how many episodes earn
them (`plan`: MADDPG stores B transitions per step and makes B / transitions_per_update updates per
step once its buffer holds a batch; MAPPO makes epochs x minibatches per episode).

Reward per step (the convergence curve, `evaluate`'s "reward"): seed eq. 18 summed over the M
devices, averaged over environments and the episode's steps. The learners learn from the team
reward (eq. 18's sum, for every agent) unless their config says `reward="agent"`.

Fixed rules (`FIXED_RULES`, `best_fixed_rule`): the rules a learner must beat: every task's share
0.7 to its nearest server (the rest local), with or without downloading a missing model, Greedy
([Wang 2025]: the nearest server holding the model, else local) and all-local.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from enum import IntEnum, StrEnum
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from offload_core.compare import MetricSummary, confidence_interval
from offload_core.config import EdgeConfig, ModelSpec
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
METRICS = ("reward", "latency_s", "energy_j", "completion_rate", "quality")
PAPER_LEARNERS: tuple[Algorithm, ...] = VARIANTS
"""The learners of [Wang 2025]'s comparisons (Figs. 2-4): MADDPG-MATO, MADDPG-NoModel, SADDPG."""

DEFAULT_UPDATES = 2_000
"""Gradient updates of a default run: past the ~2,000 over which the critics' value scale settles (tau
0.01, gamma 0.95), and short enough for a sweep of 60 runs in tens of minutes on two cores."""
FULL_UPDATES = 20_000
"""Gradient updates of a run at the budget of the paper's comparisons (the references train 15k+)."""


class Stream(IntEnum):
    """Keys of the random streams derived from a run's seed (`stream_seed`)."""

    TRAIN = 0
    HELD_OUT = 1
    TOPOLOGY = 2
    TASKS = 3
    NETWORK = 4
    EXPLORE = 5
    SCHEDULER = 6


def stream_seed(seed: int, *key: int) -> int:
    """A 63-bit seed for the stream `key` of run `seed` (numpy SeedSequence: distinct keys, distinct
    streams). Raises ValueError for a negative seed."""
    if seed < 0:
        raise ValueError(f"seed must not be negative, got {seed}")
    words = np.random.SeedSequence([seed, *key]).generate_state(2, dtype=np.uint32)
    return (int(words[0]) << 31) ^ int(words[1])


def episode_streams(seed: int, episode: int) -> tuple[int, int]:
    """(topology seed, task seed) of training episode `episode` of run `seed`."""
    return stream_seed(seed, Stream.TRAIN, episode, Stream.TOPOLOGY), stream_seed(seed, Stream.TRAIN, episode, Stream.TASKS)


def held_out_streams(seed: int) -> tuple[int, int]:
    """(topology seed, task seed) of the held-out evaluation of run `seed`."""
    return stream_seed(seed, Stream.HELD_OUT, 0, Stream.TOPOLOGY), stream_seed(seed, Stream.HELD_OUT, 0, Stream.TASKS)


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
    updates: int = DEFAULT_UPDATES
    """The budget: gradient updates of the run (FULL_UPDATES for the paper's comparisons)."""
    episodes: int | None = None
    """Training episodes (each resets the topologies); None: as many as earn `updates` (the learner's
    `plan`). Given, the run takes that many episodes and at most `updates` updates."""
    steps: int = 25
    """Steps per episode (each device generates one task per step)."""
    seed: int = 0
    """Seeds networks, exploration and the training streams (`stream_seed`)."""
    policy: CachingPolicy = CachingPolicy.LFU
    """Caching policy of the edge servers."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "algo", parse_among(LEARNED, self.algo, "algo"))
        object.__setattr__(self, "policy", parse(CachingPolicy, self.policy, "policy"))
        self.validate()

    def validate(self) -> TrainSettings:
        """Return self, or raise ValueError naming the first field out of range (done when built)."""
        _at_least_one(self, "envs", "updates", "steps")
        if self.episodes is not None:
            _at_least_one(self, "episodes")
        if self.seed < 0:
            raise ValueError(f"seed must not be negative, got {self.seed}")
        return self


@dataclass(frozen=True)
class EvalSettings:
    """How a policy is evaluated: on held-out streams (checked when built)."""

    envs: int = 32
    """Batched environments B."""
    steps: int = 25
    """Steps of the evaluation run."""
    seed: int = 0
    """Evaluation uses the held-out streams of this seed (`held_out_streams`)."""

    def __post_init__(self) -> None:
        _at_least_one(self, "envs", "steps")


@dataclass(frozen=True)
class SweepSettings:
    """What `sweep` runs at each point besides the TrainSettings of each run (checked when built)."""

    vary: SweepAxis = SweepAxis.MODELS
    """The number of models (Fig. 3) or of devices (Fig. 4)."""
    seeds: int = 5
    """Seeds per point: the confidence intervals are over seeds."""
    algos: tuple[Algorithm, ...] = ALGORITHMS
    """Algorithms trained (learned ones) or run (scheduled ones) at each point."""
    updates: int = DEFAULT_UPDATES
    """Gradient updates per training run (TrainSettings.updates; FULL_UPDATES for the paper's budget)."""
    episodes: int | None = None
    """Training episodes per run; None: as many as earn `updates`."""
    batch_size: int = MADDPGConfig.batch_size
    """MADDPG replay batch per run (seed: 1024)."""
    eval_envs: int = EvalSettings.envs
    """Environments of each run's evaluation."""
    eval_steps: int = EvalSettings.steps
    """Steps of each run's evaluation."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "vary", parse(SweepAxis, self.vary, "vary"))
        object.__setattr__(self, "algos", tuple(parse(Algorithm, algo, "algos") for algo in self.algos))
        if not self.algos:
            raise ValueError("algos must name at least one algorithm")
        _at_least_one(self, "seeds", "updates", "batch_size", "eval_envs", "eval_steps")
        if self.episodes is not None:
            _at_least_one(self, "episodes")


class Learner(Protocol):
    def plan(self, updates: int, envs: int, steps: int) -> int: ...
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


def make_agent(
    algo: Algorithm | str,
    config: EdgeConfig,
    seed: int,
    device: str | torch.device = "cpu",
    hp: MADDPGConfig | MAPPOConfig | None = None,
) -> Learner:
    """A fresh learner for `algo` whose networks are initialised from `seed` (hyperparameters default to
    the seed paper's; a MADDPGConfig's variant is set to `algo`)."""
    learned = parse_among(LEARNED, algo, "algo")
    if learned == Algorithm.MAPPO:
        return MAPPO(config, hp if isinstance(hp, MAPPOConfig) else MAPPOConfig(), seed, device)
    chosen = replace(hp, variant=learned) if isinstance(hp, MADDPGConfig) else MADDPGConfig(variant=learned)
    return MADDPG(config, chosen, seed, device)


def hp_for(algo: Algorithm | str, hp: MADDPGConfig | MAPPOConfig | None) -> MADDPGConfig | MAPPOConfig | None:
    """The hyperparameters `hp` if they are of `algo`'s kind, else None (its defaults)."""
    is_mappo = parse(Algorithm, algo, "algo") == Algorithm.MAPPO
    return hp if isinstance(hp, MAPPOConfig if is_mappo else MADDPGConfig) else None


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
    """Train `settings.algo` for `settings.updates` gradient updates on B batched environments;
    deterministic for a seed on a given device. The curve has one row per episode (the exploring
    policy's eq. 18 reward per step and the other METRICS, and `updates`: the updates made by its end)."""
    agent = make_agent(settings.algo, config, stream_seed(settings.seed, Stream.NETWORK), device, hp)
    explore = torch.Generator().manual_seed(stream_seed(settings.seed, Stream.EXPLORE))
    engine = EdgeEngine(config, settings.envs, settings.policy, device=device, dtype=torch.float32)
    episodes = agent.plan(settings.updates, settings.envs, settings.steps)
    if settings.episodes is not None:
        episodes = settings.episodes
    curve: list[dict[str, float]] = []
    for episode in range(episodes):
        topology_seed, task_seed = episode_streams(settings.seed, episode)
        engine.reset(topology_seed)
        stream = torch.Generator(device=engine.view.device).manual_seed(task_seed)
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
        row["updates"] = float(getattr(agent, "updates", 0))
        curve.append(row)
        if on_episode is not None:
            on_episode(row)
    return TrainResult(agent, curve)


Decide = Callable[[EdgeEngine, TaskBatch], tuple[Action, TaskBatch, torch.Tensor]]


def scheduler_policy(name: Algorithm | SchedulerName | str, seed: int) -> Decide:
    """A scheduler of `offload_core.schedulers` (Random, Greedy, ...) as a policy, with its own seeded
    generator for random draws."""
    place = scheduler(parse(SchedulerName, name, "algo"))
    generators: dict[torch.device, torch.Generator] = {}

    def decide(engine: EdgeEngine, tasks: TaskBatch) -> tuple[Action, TaskBatch, torch.Tensor]:
        device = engine.view.device
        if device not in generators:  # created on the engine's device at the first step
            generators[device] = torch.Generator(device=device).manual_seed(stream_seed(seed, Stream.SCHEDULER))
        return place(engine, tasks, generators[device], None), tasks, torch.ones_like(tasks.size)

    return decide


def nearest_share(ratio: float, download: bool = True) -> Decide:
    """Every task's share `ratio` to its nearest server, the rest local; a missing model is downloaded
    if `download`, else the part is a miss (forwarded or failed, as the preset says)."""

    def decide(engine: EdgeEngine, tasks: TaskBatch) -> tuple[Action, TaskBatch, torch.Tensor]:
        view = engine.view
        nearest = view.distance.argmin(dim=-1)  # [B, M]
        share = torch.full(nearest.shape, ratio, dtype=view.dtype, device=view.device)
        flags = torch.full(nearest.shape, download, dtype=torch.bool, device=view.device)
        return Action.target_ratio(nearest, share, view.config.n_servers, flags), tasks, torch.ones_like(tasks.size)

    return decide


FIXED_RULES: dict[str, Callable[[int], Decide]] = {
    "nearest-0.7": lambda seed: nearest_share(0.7),
    "nearest-0.7-no-download": lambda seed: nearest_share(0.7, download=False),
    "greedy": lambda seed: scheduler_policy(SchedulerName.GREEDY, seed),
    "local": lambda seed: scheduler_policy(SchedulerName.LOCAL, seed),
}
"""The fixed rules a learner must beat, each a policy factory of the run's seed."""


@torch.no_grad()
def rollout(
    config: EdgeConfig,
    decide: Decide,
    envs: int,
    steps: int,
    streams: tuple[int, int],
    policy: CachingPolicy | str = CachingPolicy.LFU,
    device: str | torch.device = "cpu",
) -> dict[str, torch.Tensor]:
    """Run a fixed policy for `steps` on the streams (topology seed, task seed); per-environment
    metrics, each [B]."""
    topology_seed, task_seed = streams
    engine = EdgeEngine(config, envs, policy, device=device, dtype=torch.float32)
    engine.reset(topology_seed)
    stream = torch.Generator(device=engine.view.device).manual_seed(task_seed)
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


def scheduler_curve(config: EdgeConfig, name: str, settings: TrainSettings, episodes: int | None = None) -> list[float]:
    """Reward per step of a scheduler or fixed rule (a FIXED_RULES name) on the first `episodes`
    (default settings.episodes) training episodes' streams: the curve's reference line."""
    count = episodes if episodes is not None else settings.episodes
    if count is None:
        raise ValueError("episodes: give the number of episodes (settings.episodes is None)")
    rewards = []
    for episode in range(count):
        decide = FIXED_RULES[name](settings.seed) if name in FIXED_RULES else scheduler_policy(name, settings.seed)
        per_env = rollout(config, decide, settings.envs, settings.steps, episode_streams(settings.seed, episode), settings.policy)
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
    per_env = rollout(config, policy_of(algo, agent, seed), envs, steps, held_out_streams(seed), policy, device)
    return {key: float(value.mean()) for key, value in per_env.items()}


def evaluate_rules(
    config: EdgeConfig,
    envs: int,
    steps: int,
    seed: int,
    policy: CachingPolicy | str = CachingPolicy.LFU,
    device: str | torch.device = "cpu",
) -> dict[str, dict[str, float]]:
    """Mean metrics of every fixed rule (FIXED_RULES) on the held-out streams of `seed`."""
    return {
        name: {
            key: float(value.mean())
            for key, value in rollout(config, make(seed), envs, steps, held_out_streams(seed), policy, device).items()
        }
        for name, make in FIXED_RULES.items()
    }


def best_fixed_rule(rules: dict[str, dict[str, float]]) -> tuple[str, float]:
    """(name, reward) of the rule with the highest reward among `evaluate_rules`' results."""
    name = max(rules, key=lambda rule: rules[rule]["reward"])
    return name, rules[name]["reward"]


# -- checkpoints ---------------------------------------------------------------------------------------

CHECKPOINT_FORMAT = 2
"""2: centralized critics read the global state (format 1 had M copies of the shared features)."""


def save_checkpoint(path: Path, agent: Learner, config: EdgeConfig, settings: TrainSettings) -> Path:
    """Write the agent with the config and settings that rebuild it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {"format": CHECKPOINT_FORMAT, "config": asdict(config), "settings": _plain(asdict(settings)), "agent": agent.state()}, path
    )
    return path


def load_checkpoint(path: Path, device: str | torch.device = "cpu") -> tuple[Learner, EdgeConfig, TrainSettings]:
    """Rebuild the agent saved by `save_checkpoint`; raises ValueError on a file that is not one."""
    try:
        blob = torch.load(path, map_location=device, weights_only=True)  # never unpickle code from a file
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as exc:
        raise ValueError(f"cannot read checkpoint {path}: {exc}") from exc
    if not isinstance(blob, dict) or "format" not in blob:
        raise ValueError(f"{path} is not an offload_core checkpoint")
    if blob["format"] != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is an offload_core checkpoint of format {blob['format']}; this version reads {CHECKPOINT_FORMAT}")
    config_fields: dict[str, Any] = {
        key: tuple(value) if isinstance(value, list) else value for key, value in blob["config"].items()
    }
    if config_fields.get("models") is not None:  # a preset that names its models ([Xu 2023, Table I])
        config_fields["models"] = tuple(ModelSpec(**spec) if isinstance(spec, dict) else spec for spec in config_fields["models"])
    try:
        config = EdgeConfig(**config_fields)
        settings = TrainSettings(**blob["settings"])
        hp_fields = blob["agent"]["hp"]
        if settings.algo == Algorithm.MAPPO:
            hp_fields = {key: tuple(value) if isinstance(value, list) else value for key, value in hp_fields.items()}
        hp: MADDPGConfig | MAPPOConfig = MAPPOConfig(**hp_fields) if settings.algo == Algorithm.MAPPO else MADDPGConfig(**hp_fields)
    except (TypeError, KeyError, ValueError) as exc:
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
    hp: MADDPGConfig | MAPPOConfig | None = None,
    on_run: Callable[[dict[str, float | str]], None] | None = None,
    mappo_hp: MAPPOConfig | None = None,
    rules: bool = False,
) -> list[dict[str, float | str]]:
    """Train and evaluate every algorithm at every value for seeds 0..seeds-1; one row per run.

    `hp` (a MADDPGConfig) applies to the MADDPG variants, `mappo_hp` to MAPPO. Every row has
    `first_reward` and `last_reward`: a learned run's first and last training episodes' reward per step
    (NaN for the others). With `rules`, each seed also has one row per fixed rule (algo "rule:NAME")
    on the same held-out streams."""
    axis = parse(SweepAxis, vary, "vary")
    rows: list[dict[str, float | str]] = []
    for value in values or SWEEP_VALUES[axis]:
        config = sweep_config(base, axis, value)
        for seed in range(seeds):
            for name in algos:
                algo = parse(Algorithm, name, "algos")
                agent = None
                extra = {"first_reward": math.nan, "last_reward": math.nan}
                if algo in LEARNED:
                    run_hp = (mappo_hp or hp_for(algo, hp)) if algo == Algorithm.MAPPO else hp_for(algo, hp)
                    result = train(config, replace(settings, algo=algo, seed=seed), device, run_hp)
                    agent = result.agent
                    extra = {"first_reward": result.curve[0]["reward"], "last_reward": result.curve[-1]["reward"]}
                metrics = evaluate(config, algo, agent, eval_envs, eval_steps, seed, settings.policy, device)
                row: dict[str, float | str] = {
                    "vary": axis.value,
                    "value": value,
                    "seed": seed,
                    "algo": algo.value,
                    **metrics,
                    **extra,
                }
                rows.append(row)
                if on_run is not None:
                    on_run(row)
            if rules:
                for rule, metrics in evaluate_rules(config, eval_envs, eval_steps, seed, settings.policy, device).items():
                    row = {"vary": axis.value, "value": value, "seed": seed, "algo": f"rule:{rule}", **metrics}
                    row.update({"first_reward": math.nan, "last_reward": math.nan})
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
