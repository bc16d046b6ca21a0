"""The lifecycle paper's two experiments (docs/reputation.md, [Xu 2024, sec. V-D]) and a collusion
experiment beyond the paper.

Setup of the paper's experiments: 3 producers, 3 ESPs whose ratings are positive with probability
0.90 / 0.75 / 0.80, scores ~ N(40, 5); for the first 30 periods producers choose ESPs at random,
then by each strategy. Each producer submits `tasks_per_period` tasks per period; every task is
rated at the end of its period.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from reputation.baselines import BetaConfig, BetaReputation, MostFamiliar, PlainSL, PlainSLConfig, RandomSelection, RoundRobin
from reputation.fairness import jain_index
from reputation.mwsl import MWSL, MWSLConfig
from reputation.selection import Selector


@dataclass(frozen=True)
class LifecycleConfig:
    """Parameters of the trends and workload experiments."""

    positive_prob: tuple[float, ...] = (0.90, 0.75, 0.80)
    """Probability that a task served by each ESP is rated positive (one entry per ESP)."""
    n_producers: int = 3
    """Number of producers."""
    periods: int = 100
    """Number of simulated periods."""
    random_periods: int = 30
    """Periods at the start in which every producer picks ESPs uniformly at random."""
    tasks_per_period: int = 10
    """Tasks each producer submits per period (not given by the paper; 10 keeps the early ranking stable)."""
    score_mean: float = 40.0
    """Mean of the score given with each rating."""
    score_std: float = 5.0
    """Standard deviation of the score (clipped at 0)."""
    temperature: float = 1.0
    """Softmax temperature of the reputation-based strategies."""
    switch_period: int | None = None
    """From this period on, ESP `bad_esp` delays every task (all its ratings negative); None: never."""
    bad_esp: int = 0
    """The ESP that turns bad at `switch_period`."""
    capacity_factor: float = 1.25
    """Each ESP serves capacity_factor * (all tasks per period) / n_esps tasks per period (80% load if balanced)."""
    seed: int = 0
    """Seed of the torch.Generator that drives choices and ratings."""
    mwsl: MWSLConfig = field(default_factory=MWSLConfig)
    """Configuration of MWSL."""

    def __post_init__(self) -> None:
        if self.periods < 1 or self.random_periods < 0 or self.tasks_per_period < 1 or self.n_producers < 1:
            raise ValueError("periods, tasks_per_period and n_producers must be >= 1 and random_periods >= 0")
        if not all(0 <= p <= 1 for p in self.positive_prob) or len(self.positive_prob) < 1:
            raise ValueError(f"positive_prob must be probabilities, got {self.positive_prob!r}")
        if not 0 <= self.bad_esp < len(self.positive_prob):
            raise ValueError(f"bad_esp must index an ESP, got {self.bad_esp}")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be positive, got {self.temperature}")

    @property
    def n_esps(self) -> int:
        return len(self.positive_prob)


@dataclass(frozen=True)
class Run:
    """What one simulated strategy produced."""

    reputation: torch.Tensor
    """[periods, E] reputation of each ESP as seen by producer 0 at the end of each period."""
    load: torch.Tensor
    """[periods, E] tasks assigned to each ESP in each period."""
    producer_load: torch.Tensor
    """[P, E] tasks each producer assigned to each ESP after the random phase."""
    latency: torch.Tensor
    """[periods] mean latency (periods) of the tasks submitted in each period, from a fluid queue per ESP."""


def simulate(selector: Selector, cfg: LifecycleConfig, strategy: str | None = None) -> Run:
    """Run the lifecycle: random choices first, then `selector.select`; ratings follow each ESP's quality."""
    gen = torch.Generator().manual_seed(cfg.seed)
    n_p, n_e, k = cfg.n_producers, cfg.n_esps, cfg.tasks_per_period
    prob = torch.tensor(cfg.positive_prob, dtype=torch.float64)  # [E]
    rows = torch.arange(n_p).repeat_interleave(k)  # [P * K] producer of each task
    capacity = cfg.capacity_factor * n_p * k / n_e  # tasks per ESP per period
    backlog = torch.zeros(n_e, dtype=torch.float64)  # [E]
    reputation, load, latency = [], [], []
    producer_load = torch.zeros(n_p, n_e, dtype=torch.int64)  # [P, E]
    for t in range(cfg.periods):
        now = float(t)
        if t < cfg.random_periods:
            choice = torch.randint(n_e, (rows.numel(),), generator=gen)  # [P * K]
        else:
            chosen = selector.select(rows, now, strategy=strategy, temperature=cfg.temperature, generator=gen)  # [P * K]
            assert isinstance(chosen, torch.Tensor)  # a tensor of producers gives a tensor of ESPs
            choice = chosen
            producer_load.view(-1).index_add_(0, rows * n_e + choice, torch.ones_like(choice))
        positive = torch.rand(rows.numel(), generator=gen, dtype=torch.float64) < prob[choice]  # [P * K]
        if cfg.switch_period is not None and t >= cfg.switch_period:
            positive = positive & (choice != cfg.bad_esp)
        score = (cfg.score_mean + cfg.score_std * torch.randn(rows.numel(), generator=gen, dtype=torch.float64)).clamp_min(0)
        selector.observe(rows, choice, positive, now, score=score)
        arrivals = torch.bincount(choice, minlength=n_e).to(torch.float64)  # [E]
        wait = (backlog + (arrivals + 1) / 2) / capacity  # [E] mean latency of this period's tasks at each ESP
        latency.append((wait * arrivals).sum() / arrivals.sum())
        backlog = (backlog + arrivals - capacity).clamp_min(0)
        load.append(arrivals)
        reputation.append(selector.reputation(now)[0].to(torch.float64))
    return Run(
        reputation=torch.stack(reputation), load=torch.stack(load), producer_load=producer_load, latency=torch.stack(latency)
    )


@dataclass(frozen=True)
class TrendsResult:
    """Reputation of each ESP as seen by producer 0, per period, under MWSL with softmax selection."""

    config: LifecycleConfig
    """The configuration that ran."""
    reputation: torch.Tensor
    """[periods, E]."""
    load: torch.Tensor
    """[periods, E] tasks per ESP per period."""


def trends(cfg: LifecycleConfig | None = None) -> TrendsResult:
    """Experiment 1: ESP `bad_esp` serves best, then delays every task from `switch_period` on."""
    cfg = cfg or LifecycleConfig(switch_period=10)
    if cfg.switch_period is None:
        raise ValueError("trends needs a switch_period")
    run = simulate(MWSL(cfg.mwsl, cfg.n_producers, cfg.n_esps), cfg, "softmax")
    return TrendsResult(config=cfg, reputation=run.reputation, load=run.load)


STRATEGIES: dict[str, tuple[Callable[[LifecycleConfig], Selector], str | None]] = {
    "mwsl": (lambda c: MWSL(c.mwsl, c.n_producers, c.n_esps), "softmax"),
    "plain-sl": (lambda c: PlainSL(PlainSLConfig(), c.n_producers, c.n_esps), "softmax"),
    "beta": (lambda c: BetaReputation(BetaConfig(z=c.mwsl.z, period=c.mwsl.period), c.n_producers, c.n_esps), "softmax"),
    "most-familiar": (lambda c: MostFamiliar(c.n_producers, c.n_esps, scope="own"), "argmax"),
    "most-familiar-global": (lambda c: MostFamiliar(c.n_producers, c.n_esps, scope="global"), "argmax"),
    "random": (lambda c: RandomSelection(c.n_producers, c.n_esps), None),
    "round-robin": (lambda c: RoundRobin(c.n_producers, c.n_esps), None),
}
"""Strategy name -> (selector factory, selection strategy)."""


@dataclass(frozen=True)
class WorkloadResult:
    """Workload per ESP for each strategy after the random phase, with Jain's index and latency."""

    config: LifecycleConfig
    """The configuration that ran."""
    load: dict[str, list[int]]
    """Strategy -> tasks per ESP after the random phase."""
    jain: dict[str, float]
    """Strategy -> Jain's index of `load` (1 = even, 1/E = all on one ESP)."""
    producer_jain: dict[str, float]
    """Strategy -> mean over producers of Jain's index of each producer's own spread over ESPs."""
    latency: dict[str, float]
    """Strategy -> mean latency (periods) of the tasks after the random phase."""
    positive_rate: dict[str, float]
    """Strategy -> expected share of positive ratings of the tasks after the random phase."""


def workload(cfg: LifecycleConfig | None = None, strategies: tuple[str, ...] = tuple(STRATEGIES)) -> WorkloadResult:
    """Experiment 2: the same setup (no switch) under each strategy, from the same seed."""
    cfg = cfg or LifecycleConfig()
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown:
        raise ValueError(f"strategies: unknown {unknown}; known: {sorted(STRATEGIES)}")
    prob = torch.tensor(cfg.positive_prob, dtype=torch.float64)
    load, jain, producer_jain, latency, quality = {}, {}, {}, {}, {}
    for name in strategies:
        factory, strategy = STRATEGIES[name]
        run = simulate(factory(cfg), cfg, strategy)
        after = run.load[cfg.random_periods :].sum(0)  # [E]
        load[name] = [int(x) for x in after]
        jain[name] = float(jain_index(after))
        producer_jain[name] = float(jain_index(run.producer_load).mean())
        latency[name] = float(run.latency[cfg.random_periods :].mean())
        quality[name] = float((after * prob).sum() / after.sum().clamp_min(1))
    return WorkloadResult(config=cfg, load=load, jain=jain, producer_jain=producer_jain, latency=latency, positive_rate=quality)


@dataclass(frozen=True)
class CollusionConfig:
    """A share of producers rate an honest ESP negative and a cheating ESP positive, whatever happened."""

    positive_prob: tuple[float, ...] = (0.90, 0.40, 0.80)
    """Probability of a positive (honest) rating per ESP: ESP `honest` serves well, ESP `cheating` badly."""
    honest: int = 0
    """The honest ESP the colluders smear."""
    cheating: int = 1
    """The cheating ESP the colluders praise."""
    n_producers: int = 10
    """Producers that rate (honest and colluding); one more producer, the newcomer, never rates."""
    colluder_fraction: float = 0.2
    """Share of the rating producers that collude (the first round(fraction * n_producers) of them)."""
    periods: int = 50
    """Simulated periods; every producer picks ESPs at random throughout (colluders only the two targets)."""
    tasks_per_period: int = 3
    """Tasks each producer submits per period."""
    seed: int = 0
    """Seed of the torch.Generator."""
    mwsl: MWSLConfig = field(default_factory=MWSLConfig)
    """Configuration of MWSL."""

    def __post_init__(self) -> None:
        if not 0 <= self.colluder_fraction < 1:
            raise ValueError(f"colluder_fraction must be in [0, 1), got {self.colluder_fraction}")
        if self.honest == self.cheating or not (
            0 <= self.honest < len(self.positive_prob) and 0 <= self.cheating < len(self.positive_prob)
        ):
            raise ValueError("honest and cheating must be two different ESP indices")

    @property
    def n_colluders(self) -> int:
        return round(self.colluder_fraction * self.n_producers)


@dataclass(frozen=True)
class MethodOutcome:
    """How one reputation method ranks the honest and the cheating ESP under collusion."""

    honest_view: tuple[float, float]
    """(T honest ESP, T cheating ESP), mean over the honest producers."""
    honest_outranks_share: float
    """Share of honest producers for whom the honest ESP's reputation is above the cheating one's."""
    newcomer_view: tuple[float, float]
    """(T honest ESP, T cheating ESP) for a producer without evidence of its own."""
    colluder_weight_share: tuple[float, float] | None
    """Share of the recommendation weight that the colluders hold for (honest, cheating) ESP, as the
    newcomer sees it; None for methods without recommendation weights."""


@dataclass(frozen=True)
class CollusionResult:
    """Outcome per method ("mwsl", "plain-sl", "beta")."""

    config: CollusionConfig
    """The configuration that ran."""
    outcomes: dict[str, MethodOutcome]
    """Method -> outcome."""


def collusion(cfg: CollusionConfig | None = None) -> CollusionResult:
    """All methods see the same ratings; report how each ranks the honest vs the cheating ESP."""
    cfg = cfg or CollusionConfig()
    n_p, n_e, k, n_c = cfg.n_producers, len(cfg.positive_prob), cfg.tasks_per_period, cfg.n_colluders
    newcomer = n_p  # index of the producer that never rates
    methods: dict[str, Selector] = {
        "mwsl": MWSL(cfg.mwsl, n_p + 1, n_e),
        "plain-sl": PlainSL(PlainSLConfig(), n_p + 1, n_e),
        "beta": BetaReputation(BetaConfig(z=cfg.mwsl.z, period=cfg.mwsl.period), n_p + 1, n_e),
    }
    gen = torch.Generator().manual_seed(cfg.seed)
    prob = torch.tensor(cfg.positive_prob, dtype=torch.float64)  # [E]
    rows = torch.arange(n_p).repeat_interleave(k)  # [P * K]
    colluding = rows < n_c  # [P * K]
    targets = torch.tensor([cfg.honest, cfg.cheating])
    for t in range(cfg.periods):
        choice = torch.randint(n_e, (rows.numel(),), generator=gen)  # [P * K]
        choice = torch.where(colluding, targets[torch.randint(2, (rows.numel(),), generator=gen)], choice)
        positive = torch.rand(rows.numel(), generator=gen, dtype=torch.float64) < prob[choice]  # [P * K]
        positive = torch.where(colluding, choice == cfg.cheating, positive)
        for selector in methods.values():
            selector.observe(rows, choice, positive, float(t))
    now = float(cfg.periods - 1)
    honest_rows = torch.arange(n_c, n_p)
    outcomes = {}
    for name, selector in methods.items():
        rep = selector.reputation(now)  # [P + 1, E]
        mine = rep[honest_rows]  # [H, E]
        share = None
        if isinstance(selector, MWSL | PlainSL):
            w = selector.recommendation_weights(now) if isinstance(selector, MWSL) else (selector.evidence.count > 0).double()
            col = w.sum(0).clamp_min(1e-300)  # [E]
            share = (float(w[:n_c, cfg.honest].sum() / col[cfg.honest]), float(w[:n_c, cfg.cheating].sum() / col[cfg.cheating]))
        outcomes[name] = MethodOutcome(
            honest_view=(float(mine[:, cfg.honest].mean()), float(mine[:, cfg.cheating].mean())),
            honest_outranks_share=float((mine[:, cfg.honest] > mine[:, cfg.cheating]).double().mean()),
            newcomer_view=(float(rep[newcomer, cfg.honest]), float(rep[newcomer, cfg.cheating])),
            colluder_weight_share=share,
        )
    return CollusionResult(config=cfg, outcomes=outcomes)
