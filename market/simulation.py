"""The marketplace simulation: producers, ESPs, consumers and attackers over many periods.

Each period every producer commissions one piece of content: the reputation module (or a baseline)
picks the ESP, the offloading core places (with the configured scheduler, on the chosen ESP's
servers) and costs all tasks of the period, and the chain settles each one (lock, reveal or refund,
register, rate). Consumers then buy final products, attackers try their attacks (near-duplicates that owners scan for and challenge,
and the v1 threat table's squatting A1, priority theft A2 and exit scam A5, which protocol v2
defeats: `docs/protocol.md`), and at the end of the period chain time moves past every timelock so
that unclaimed locks are refunded and owners reclaim the bonds of final products. At the end,
everyone withdraws its credits and the money and ownership invariants are checked.

`run_dynamics` runs the same market without the chain: the same choices, placements, costs and
ratings (hence the same reputations) for a config, in a fraction of the time; the benchmarks sweep
it (`benchmarks/demo_seeds.py`, docs/reputation.md).
"""

from __future__ import annotations

import json
import random
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from statistics import fmean
from typing import Any, overload

import torch

from market.actors import Attacker, Consumer, Esp, EspProfile, Producer
from market.chain.connection import Chain
from market.chain.deploy import deploy_market
from market.content import PERTURBATIONS, ContentStore
from market.fields import bounded, check_fields, config_from_mapping
from market.flows import (
    AttackTally,
    GenerationOutcome,
    MarketContext,
    Placement,
    TaskCost,
    TradeOutcome,
    choose_esps,
    cost_tasks,
    esp_servers,
    exit_scam,
    load_placement,
    observe_ratings,
    place_tasks,
    plagiarize,
    rated_positive,
    scan_and_challenge,
    select_esps,
    squat_pending_registration,
    steal_priority,
    try_challenge,
)
from market.invariants import check_market, snapshot_balances, tracked_addresses
from market.phases import (
    GenerationOrder,
    TradeOrder,
    claim_bonds,
    refund_and_rate_all,
    refund_trades,
    settle_generations,
    trade_round,
    withdraw_all_credits,
)
from market.protocol import Job
from market.terms import ETHER, MarketParams, MarketTerms
from offload_core.config import CACHING_POLICIES, EdgeConfig, preset
from offload_core.engine import EdgeEngine
from offload_core.names import CachingPolicy, PresetName
from reputation import (
    MWSL,
    BetaConfig,
    BetaReputation,
    MostFamiliar,
    MWSLConfig,
    PlainSL,
    PlainSLConfig,
    RandomSelection,
    Rating,
    RoundRobin,
)
from reputation.selection import Selection, SelectionStrategy, Selector

SLOW_FACTOR = 4.0
ATTACKS = ("near_duplicate", "squat_A1", "priority_theft_A2", "exit_scam_A5")
"""What an attacker tries in a period in which it attacks, drawn uniformly."""
MARKET_CACHING: tuple[str, ...] = tuple(p for p in CACHING_POLICIES if p != CachingPolicy.CLOUD)
"""The caching policies of the ESPs' servers (`cloud`, no edge caching, needs a cloud that executes
tasks, which the `mato` system has not)."""
MARKET_REPUTATION = MWSLConfig(z_negative=0.98, base_rate_from_record=True)
"""The MWSL parameters of the market (docs/reputation.md, "An unchosen cheater's reputation")."""


@dataclass(frozen=True)
class SimulationConfig:
    """One simulation run; defaults are what `make demo` runs.

    The one source of the run's settings: `aigc-market simulate` builds its options and the API its
    POST /simulations body from these fields (defaults, bounds and docstrings). A config checks
    itself when it is built: a bad value raises ValueError naming the field.
    """

    producers: int = bounded(3, ge=1)
    """Producers, each commissioning one generation per period (the devices of the `mato` system)."""
    esps: int = bounded(3, ge=1)
    """ESPs, each running `servers_per_esp` edge servers."""
    servers_per_esp: int = bounded(1, ge=1)
    """Edge servers of each ESP; a scheduler may split a task across its ESP's servers."""
    consumers: int = bounded(3, ge=0)
    """Consumers buying products."""
    attackers: int = bounded(1, ge=0)
    """Attackers registering near-duplicates."""
    periods: int = bounded(100, ge=1)
    """Simulated periods."""
    seed: int = 0
    """Seeds the offloading core, the selection and every random choice of the actors."""
    selection: Selection = Selection.SOFTMAX
    """ESP selection: softmax or argmax over MWSL reputation, or random, familiar, round-robin."""
    caching: str = bounded("lfu", choices=MARKET_CACHING)
    """Caching policy of the ESPs' servers."""
    scheduler: str = "edge"
    """How each task is placed on its ESP's servers: edge (whole on the nearest), greedy, least-loaded,
    parallel-split, or maddpg:PATH (a MADDPG checkpoint of `aigc-market offload train` on this system).

    A rule of the core sees only the chosen ESP's servers; a learned policy sees every server and may
    use only the chosen ESP's. Greedy and MADDPG may keep a share on the producer's device."""
    deadline_s: float = bounded(20.0, gt=0)
    """Deadline of every task, in s after its arrival: one task interval of the `mato` system (step_s),
    so that each piece of content is due before its producer commissions the next."""
    esp_profiles: tuple[EspProfile, ...] = (EspProfile.HONEST, EspProfile.HONEST, EspProfile.CHEATING)
    """Profile of each ESP, cycled when there are more ESPs than profiles."""
    purchase_probability: float = bounded(0.3, ge=0, le=1)
    """Chance that a consumer tries to buy a product in a period."""
    seller_absent_probability: float = bounded(0.1, ge=0, le=1)
    """Chance that a seller never claims a purchase (the buyer refunds)."""
    attack_probability: float = bounded(0.2, ge=0, le=1)
    """Chance that an attacker copies a product in a period."""
    temperature: float = bounded(0.1, gt=0)
    """Softmax temperature over reputations in [0, 1]: a reputation higher by g is e^(g / temperature) times likelier.

    At 0.1 a cheater 0.4 below the honest ESPs is ~50x less likely than each, and two honest ESPs 0.1
    apart are 2.7x apart, so both keep work (docs/reputation.md, "The market's defaults")."""
    random_periods: int = bounded(3, ge=0)
    """Periods of random selection before reputation is used: one per ESP, so that every ESP gets about
    one rating from each producer (each random period sends 1 / esps of the tasks to a cheater)."""
    period_s: int = 3600
    """Chain time per period, in seconds (more than the lock duration of the market terms)."""

    def __post_init__(self) -> None:
        check_fields(self)  # enum values given as strings become members; bounds are checked
        if self.period_s <= MarketTerms().lock_duration_s:
            raise ValueError(f"period_s must exceed the lock duration ({MarketTerms().lock_duration_s} s)")
        if not isinstance(self.scheduler, str):
            raise ValueError(f"scheduler must be a string, got {self.scheduler!r}")
        self.placement()  # an unknown scheduler, or a checkpoint that is missing or does not fit, is refused here

    def edge_config(self) -> EdgeConfig:
        """The market's system: the `mato` preset ([Wang 2025]) with one device per producer, the ESPs'
        servers and this config's deadline; every other value is the preset's."""
        return preset(
            PresetName.MATO,
            n_devices=self.producers,
            n_servers=self.esps * self.servers_per_esp,
            deadline_s=(self.deadline_s, self.deadline_s),
        ).config

    def placement(self) -> Placement:
        """The scheduler, loaded (a checkpoint is read and checked against `edge_config()`); ValueError if bad."""
        return load_placement(self.scheduler, self.edge_config())

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> SimulationConfig:
        """A config from a TOML table or a JSON object (e.g. the `config` of a run's summary.json)."""
        return config_from_mapping(cls, values)

    def to_json(self) -> dict[str, Any]:
        """Every field, as JSON values (enums as their strings, tuples as lists)."""
        values: dict[str, Any] = json.loads(json.dumps(asdict(self)))
        return values


class _Without(Sequence[int]):
    """`tokens` without those at the positions `skip` and `picked`, as the list of the others would be, but not
    built: `random.choice` reads only its length and one item, and building the list for every buyer made the
    choice of purchases grow with buyers x final products."""

    def __init__(self, tokens: list[int], skip: list[int], picked: set[int]) -> None:
        self._tokens = tokens
        self._skipped = sorted(set(skip) | picked)

    def __len__(self) -> int:
        return len(self._tokens) - len(self._skipped)

    @overload
    def __getitem__(self, index: int) -> int: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[int]: ...
    def __getitem__(self, index: int | slice) -> int | Sequence[int]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if not 0 <= index < len(self):
            raise IndexError(index)
        position = index
        for skipped in self._skipped:  # ascending: each one at or before the position shifts it by one
            if skipped > position:
                break
            position += 1
        return self._tokens[position]

    def position(self, token: int) -> int:
        """Where `token` stands in `tokens` (they are sorted)."""
        return bisect_left(self._tokens, token)


def _record_front_run(
    tokens: dict[int, int],
    producer_index: int,
    steal: Callable[[MarketContext, Attacker, Job], int],
    ctx: MarketContext,
    attacker: Attacker,
    job: Job,
) -> None:
    """Run a front-running attack on producer `producer_index`'s pending registration; keep the attacker's token."""
    tokens[producer_index] = steal(ctx, attacker, job)


def make_selector(
    selection: Selection, producers: int, esps: int, mwsl: MWSLConfig = MARKET_REPUTATION
) -> tuple[Selector, SelectionStrategy | None]:
    """The selector of `selection` and the strategy over its scores (None: the selector's own rule)."""
    selection = Selection(selection)
    if selection.strategy is not None:
        return MWSL(mwsl, producers, esps), selection.strategy
    baselines: dict[Selection, Callable[[], Selector]] = {
        Selection.RANDOM: lambda: RandomSelection(producers, esps),
        Selection.FAMILIAR: lambda: MostFamiliar(producers, esps),
        Selection.ROUND_ROBIN: lambda: RoundRobin(producers, esps),
        Selection.BETA: lambda: BetaReputation(BetaConfig(), producers, esps),
        Selection.PLAIN_SL: lambda: PlainSL(PlainSLConfig(), producers, esps),
    }
    return baselines[selection](), None


def build_engine(config: SimulationConfig) -> EdgeEngine:
    """The ESPs' servers: the market's system (`SimulationConfig.edge_config`), reset with the run's seed;
    every server of a slow ESP runs at 1 / SLOW_FACTOR of its speed."""
    engine = EdgeEngine(config.edge_config(), 1, config.caching, dtype=torch.float64)
    engine.reset(config.seed)
    for index in range(config.esps):
        if config.esp_profiles[index % len(config.esp_profiles)] == EspProfile.SLOW:
            own = esp_servers(index, config.servers_per_esp, config.esps * config.servers_per_esp)
            engine.topology.server_freq[:, own] /= SLOW_FACTOR
    return engine


def market_figures(
    profiles: list[EspProfile], costs: list[tuple[int, TaskCost]], reputation: list[float]
) -> dict[str, float | bool | None]:
    """The demo's two claims, from every task's (ESP, cost) and the final reputations (producer 0's view).

    honest_on_time_rate: the share of honest ESPs' tasks that met their deadline (None without one);
    cheater_below_honest: every cheating ESP's final reputation is below every honest ESP's (None
    without a cheating and an honest ESP).
    """
    honest_tasks = [cost.completed for esp, cost in costs if profiles[esp] == EspProfile.HONEST]
    honest = [r for r, p in zip(reputation, profiles, strict=True) if p == EspProfile.HONEST]
    cheating = [r for r, p in zip(reputation, profiles, strict=True) if p == EspProfile.CHEATING]
    return {
        "honest_on_time_rate": sum(honest_tasks) / len(honest_tasks) if honest_tasks else None,
        "cheater_below_honest": max(cheating) < min(honest) if honest and cheating else None,
    }


@dataclass
class PeriodRecord:
    period: int
    tasks: int = 0
    completed: int = 0
    """Tasks rated positive (delivered, the ESP's part on time)."""
    on_time: int = 0
    """Tasks delivered within their deadline (a cheating ESP's never are, whatever the core's cost)."""
    refunded: int = 0
    latency_s: list[float] = field(default_factory=list)
    energy_j: list[float] = field(default_factory=list)
    breakdown: dict[str, float] = field(default_factory=dict)
    workload: list[int] = field(default_factory=list)
    reputation: list[float] = field(default_factory=list)


@dataclass
class SimulationResult:
    summary: dict[str, Any]
    periods: list[PeriodRecord]


def run_simulation(
    config: SimulationConfig, chain: Chain, workdir: Path, on_period: Callable[[int], None] | None = None
) -> SimulationResult:
    """Deploy the contracts on `chain`, run `config.periods` periods and check the invariants.

    Chain time moves only where the market moves it (`Chain.time_held`), so that a run's results do
    not depend on how fast it went: the same seed gives the same summary sent one transaction at a
    time or pipelined (docs/scale.md).
    """
    with chain.time_held():
        return _run_simulation(config, chain, workdir, on_period)


def _run_simulation(
    config: SimulationConfig, chain: Chain, workdir: Path, on_period: Callable[[int], None] | None
) -> SimulationResult:
    rng = random.Random(config.seed)  # consumers' purchases
    attack_rng = random.Random(config.seed + 2)  # attackers' draws: which attacks, on whom (not the market's state)
    params, terms = MarketParams(), MarketTerms()
    terms.check_against(params)
    market, _ = deploy_market(chain, params=params)
    funds = 1000 * ETHER
    producers = [Producer(i, chain.new_account(label="producer")) for i in range(config.producers)]
    esps = [Esp(i, chain.new_account(label="esp"), config.esp_profiles[i % len(config.esp_profiles)]) for i in range(config.esps)]
    consumers = [Consumer(i, chain.new_account(label="consumer")) for i in range(config.consumers)]
    attackers = [
        Attacker(i, chain.new_account(label="attacker"), chain.new_account(label="accomplice")) for i in range(config.attackers)
    ]
    chain.fund(
        [(p.address, funds) for p in producers]
        + [(e.address, funds // 100) for e in esps]
        + [(c.address, funds) for c in consumers]
        + [(a.address, funds // 10) for a in attackers]
        + [(a.accomplice.address, funds // 100) for a in attackers]
    )
    before = snapshot_balances(chain, tracked_addresses(market))

    engine = build_engine(config)
    selector, strategy = make_selector(config.selection, config.producers, config.esps)
    exploring = RandomSelection(config.producers, config.esps)
    ctx = MarketContext(
        market=market,
        engine=engine,
        selector=selector,
        store=ContentStore(workdir / "content"),
        terms=terms,
        esps=esps,
        selection_strategy=strategy,
        temperature=config.temperature,
        placement=config.placement(),
        servers_per_esp=config.servers_per_esp,
        generator_rng=torch.Generator().manual_seed(config.seed),
        seeds=random.Random(config.seed + 1),
    )
    # Every ESP, the attackers' accomplices included, stakes before it can accept a job.
    staking = ctx.protocol.batch()
    stakes = [staking.stake(account) for account in [e.account for e in esps] + [a.accomplice for a in attackers]]
    staking.send()
    for stake in stakes:
        stake.value()
    everyone = {a.address: a.account for a in [*producers, *consumers, *attackers]}
    tally = AttackTally()
    bonds_claimed: set[int] = set()

    records: list[PeriodRecord] = []
    outcomes_all: list[GenerationOutcome] = []
    trades: list[TradeOutcome] = []
    duplicates: list[int] = []
    challenges_upheld = challenges_rejected = 0
    start = chain.now()
    for period in range(config.periods):
        period_start = start + period * config.period_s
        if chain.now() < period_start:
            chain.set_next_block_timestamp(period_start)
        record = PeriodRecord(period)
        # Generation: reputation (after the exploration periods) picks the ESPs, the core costs the tasks.
        choosing = ctx.selector if period >= config.random_periods else exploring
        ctx.selector, chosen_by = choosing, ctx.selector
        chosen = select_esps(ctx, producers, float(period))
        ctx.selector = chosen_by
        costs = place_tasks(ctx, producers, chosen)
        # A1/A2 front-run one producer's registration: the attacker acts on its pending transaction.
        front_runs: dict[int, tuple[Attacker, str]] = {}
        attacks: dict[int, str] = {}
        for attacker in attackers:
            if attack_rng.random() < config.attack_probability:
                attacks[attacker.index] = attack_rng.choice(ATTACKS)
                if attacks[attacker.index] in ("squat_A1", "priority_theft_A2"):
                    front_runs[attack_rng.randrange(len(producers))] = (attacker, attacks[attacker.index])
        front_run_tokens: dict[int, int] = {}
        hooks: dict[int, Callable[[Job], None]] = {}
        for producer_index, (attacker, attack) in front_runs.items():
            steal = steal_priority if attack == "priority_theft_A2" else squat_pending_registration
            hooks[producer_index] = partial(_record_front_run, front_run_tokens, producer_index, steal, ctx, attacker)
        orders = [
            GenerationOrder(p, e, f"period {period} producer {p.index} seed {config.seed}", costs[p.index])
            for p, e in zip(producers, chosen, strict=True)
        ]
        outcomes = settle_generations(ctx, orders, hooks)
        for producer_index, token in front_run_tokens.items():
            attacker, attack = front_runs[producer_index]
            victim = outcomes[producer_index]
            assert victim.token_id is not None
            if attack == "squat_A1":  # the victim's later registration displaced the squatter
                tally.count(
                    attack, failed=market.registry.is_revoked(token) and ctx.owners.get(victim.token_id) == victim.producer.address
                )
            else:  # the decoy's holder challenges the victim's product; then the victim challenges the decoy
                upheld = try_challenge(ctx, attacker.account, token, victim.token_id)
                tally.count(attack, failed=not upheld and ctx.owners.get(victim.token_id) == victim.producer.address)
                for verdict in scan_and_challenge(ctx, [victim.producer.account], token):
                    challenges_upheld += verdict.upheld
                    challenges_rejected += not verdict.upheld
        # Trading: consumers buy final products from their current owners, each product once a period.
        final_now = ctx.final_products()  # sorted
        picked: set[int] = set()  # the positions in final_now of the products bought this period
        held: dict[str, list[int]] = {}  # owner -> the positions of its tokens in final_now
        for position, token in enumerate(final_now):
            held.setdefault(ctx.owners[token], []).append(position)
        trade_orders: list[TradeOrder] = []
        for consumer in consumers:
            if rng.random() >= config.purchase_probability:
                continue
            final = _Without(final_now, held.get(consumer.address, []), picked)  # not its own, not picked
            if not final:
                continue
            token_id = rng.choice(final)
            picked.add(final.position(token_id))
            claims = rng.random() >= config.seller_absent_probability
            trade_orders.append(TradeOrder(everyone[ctx.owners[token_id]], consumer.account, token_id, claims))
        period_trades = trade_round(ctx, trade_orders)
        trades.extend(period_trades)
        open_trades = [(o.buyer, t) for o, t in zip(trade_orders, period_trades, strict=True) if not o.claims]
        # Plagiarism: attackers copy products (owners scan and challenge) or try the exit scam.
        owners = [a.account for a in [*producers, *consumers]]
        for attacker in attackers:
            attack = attacks.get(attacker.index, "")  # "": no attack this period
            victims = [t for t in ctx.live_products() if ctx.owners[t] != attacker.address and t not in duplicates]
            if attack == "exit_scam_A5" and victims and consumers:
                paid_off = exit_scam(
                    ctx,
                    attacker,
                    attack_rng.choice(consumers).account,
                    attack_rng.choice(victims),
                    attack_rng.choice(PERTURBATIONS),
                    seed=attack_rng.randrange(2**31),
                )
                tally.count(attack, failed=not paid_off)
            if attack != "near_duplicate" or not victims:
                continue
            copy_id = plagiarize(
                ctx, attacker, attack_rng.choice(victims), attack_rng.choice(PERTURBATIONS), seed=attack_rng.randrange(2**31)
            )
            if copy_id is None:
                continue
            duplicates.append(copy_id)
            verdicts = scan_and_challenge(ctx, owners, copy_id)
            tally.count(attack, failed=any(v.upheld for v in verdicts))
            for verdict in verdicts:
                challenges_upheld += verdict.upheld
                challenges_rejected += not verdict.upheld
        # End of period: past every timelock, unclaimed locks are refunded and cheats rated negative.
        chain.set_next_block_timestamp(max(chain.now() + 1, period_start + ctx.terms.lock_duration_s + 1))
        refund_and_rate_all(ctx, [o for o in outcomes if o.esp.profile == EspProfile.CHEATING])
        refund_trades(ctx, open_trades)
        # Owners reclaim the bonds of products that became final.
        bonding = [t for t in ctx.final_products() if t not in bonds_claimed]
        claim_bonds(ctx, everyone, bonding)
        bonds_claimed.update(bonding)
        observe_ratings(ctx, outcomes, float(period))
        outcomes_all.extend(outcomes)

        record.tasks = len(outcomes)
        record.completed = sum(o.positive for o in outcomes)
        record.on_time = sum(o.delivered and o.cost.completed for o in outcomes)
        record.refunded = sum(o.refunded for o in outcomes)
        record.latency_s = [o.cost.latency_s for o in outcomes]
        record.energy_j = [o.cost.energy_j for o in outcomes]
        record.breakdown = {
            k: fmean(o.cost.breakdown[k] for o in outcomes)
            for k in ("T_up", "T_wait", "T_sw", "T_es", "T_down", "E_up", "E_sw", "E_es")
        }
        counts = Counter(o.esp.index for o in outcomes)
        record.workload = [counts.get(i, 0) for i in range(config.esps)]
        record.reputation = ctx.selector.reputation(float(period + 1))[0].tolist()
        records.append(record)
        if on_period is not None:
            on_period(period)

    # Everyone withdraws what the registry and the exchange credited to it (pull payments).
    credits_withdrawn = withdraw_all_credits(
        ctx, [p.account for p in [*producers, *consumers, *attackers, *esps]] + [a.accomplice for a in attackers]
    )
    invariants = {name: result.holds for name, result in check_market(market, before).items()}
    workload_total = Counter(o.esp.index for o in outcomes_all)
    tasks = len(outcomes_all)
    profiles = [e.profile for e in esps]
    figures = market_figures(profiles, [(o.esp.index, o.cost) for o in outcomes_all], records[-1].reputation)
    explored = config.random_periods * config.producers
    summary: dict[str, Any] = {
        "config": config.to_json(),
        "backend": chain.backend,
        "chain_id": chain.chain_id,
        "contracts": market.deployment.contracts,
        "periods": config.periods,
        "tasks": tasks,
        "completed": sum(o.positive for o in outcomes_all),
        "on_time": sum(o.delivered and o.cost.completed for o in outcomes_all),
        **figures,
        "cheating_tasks_after_exploration": sum(o.esp.profile == EspProfile.CHEATING for o in outcomes_all[explored:]),
        "refunded": sum(o.refunded for o in outcomes_all),
        "products": market.registry.total_registered(),
        "trades": sum(t.completed for t in trades),
        "trades_refunded": sum(not t.completed for t in trades),
        "royalties_wei": sum(t.royalty for t in trades),
        "duplicates_registered": len(duplicates),
        "challenges_upheld": challenges_upheld,
        "challenges_rejected": challenges_rejected,
        "plagiarism_detected_rate": (
            tally.failed["near_duplicate"] / tally.attempts["near_duplicate"] if tally.attempts["near_duplicate"] else None
        ),
        "attacks": tally.summary(),
        "attacks_attempted": sum(tally.attempts.values()),
        "attacks_failed": sum(tally.failed.values()),
        "bonds_released": len(bonds_claimed),
        "credits_withdrawn_wei": credits_withdrawn,
        "mean_latency_s": fmean(o.cost.latency_s for o in outcomes_all),
        "mean_energy_j": fmean(o.cost.energy_j for o in outcomes_all),
        "gas_by_operation": {op: {"calls": len(v), "mean": fmean(v), "total": sum(v)} for op, v in sorted(ctx.gas.items())},
        "reputation_final": {f"esp{e.index} ({e.profile})": records[-1].reputation[e.index] for e in esps},
        "workload": {f"esp{e.index} ({e.profile})": workload_total.get(e.index, 0) for e in esps},
        "invariants": invariants,
    }
    return SimulationResult(summary, records)


# -- the market without the chain ------------------------------------------------------------------


@dataclass
class Dynamics:
    """What `run_dynamics` saw, per period (P producers, E ESPs)."""

    chosen: list[list[int]] = field(default_factory=list)
    """[periods][P] the ESP each producer chose."""
    costs: list[dict[int, TaskCost]] = field(default_factory=list)
    """[periods] producer -> the cost of its task."""
    positive: list[list[bool]] = field(default_factory=list)
    """[periods][P] the producer's rating of its ESP."""
    reputation: list[list[float]] = field(default_factory=list)
    """[periods][E] every ESP's reputation in producer 0's view at the end of the period."""
    profiles: list[tuple[EspProfile, ...]] = field(default_factory=list)
    """[periods][E] each ESP's profile in that period."""

    def figures(self) -> dict[str, float | bool | None]:
        """`market_figures` of the run (the profiles of the last period)."""
        tasks = [(esp, costs[m]) for chosen, costs in zip(self.chosen, self.costs, strict=True) for m, esp in enumerate(chosen)]
        return market_figures(list(self.profiles[-1]), tasks, self.reputation[-1])


def run_dynamics(
    config: SimulationConfig,
    profiles_at: Callable[[int], tuple[EspProfile, ...]] | None = None,
    selector: tuple[Selector, SelectionStrategy | None] | None = None,
) -> Dynamics:
    """The offloading and reputation side of `run_simulation` for `config`, without the chain.

    Each period the same selections (the same generator), placements and costs, and each producer
    rates its ESP as `settle_generation` does on chain (`flows.rated_positive`), so reputations and
    workloads equal those of `run_simulation` (tested). `profiles_at(period)` may change the ESPs'
    profiles during the run (honest, delaying or cheating: a slow server stays as it started), and
    `selector` replaces the config's selection (e.g. MWSL with other parameters).
    """
    engine = build_engine(config)
    chosen_by, strategy = selector if selector is not None else make_selector(config.selection, config.producers, config.esps)
    exploring = RandomSelection(config.producers, config.esps)
    placement = config.placement()
    generator = torch.Generator().manual_seed(config.seed)
    start = tuple(config.esp_profiles[i % len(config.esp_profiles)] for i in range(config.esps))
    producers = list(range(config.producers))
    run = Dynamics()
    for period in range(config.periods):
        profiles = profiles_at(period) if profiles_at is not None else start
        if any((p == EspProfile.SLOW) != (s == EspProfile.SLOW) for p, s in zip(profiles, start, strict=True)):
            raise ValueError("profiles_at: a slow ESP stays slow and no other becomes slow")
        choosing = chosen_by if period >= config.random_periods else exploring
        chosen = choose_esps(choosing, producers, float(period), strategy, config.temperature, generator)
        costs = cost_tasks(engine, placement, config.servers_per_esp, dict(enumerate(chosen)), generator)
        positive = [rated_positive(profiles[esp], costs[m]) for m, esp in enumerate(chosen)]
        chosen_by.observe_records(Rating(m, esp, positive[m], float(period)) for m, esp in enumerate(chosen))
        run.chosen.append(chosen)
        run.costs.append(costs)
        run.positive.append(positive)
        run.reputation.append(chosen_by.reputation(float(period + 1))[0].tolist())
        run.profiles.append(profiles)
    return run
