"""The marketplace simulation: producers, ESPs, consumers and attackers over many periods.

Each period every producer commissions one piece of content: the reputation module (or a baseline)
picks the ESP, the offloading core places and costs all tasks of the period on the ESPs' servers,
and the chain settles each one (lock, reveal or refund, register, rate). Consumers then buy
final products, attackers try their attacks (near-duplicates that owners scan for and challenge,
and the v1 threat table's squatting A1, priority theft A2 and exit scam A5, which protocol v2
defeats: `docs/protocol.md`), and at the end of the period chain time moves past every timelock so
that unclaimed locks are refunded and owners reclaim the bonds of final products. At the end,
everyone withdraws its credits and the money and ownership invariants are checked.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from statistics import fmean
from typing import Any

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
    TradeOutcome,
    exit_scam,
    observe_ratings,
    place_tasks,
    plagiarize,
    refund_and_rate,
    refund_trade,
    scan_and_challenge,
    select_esps,
    settle_generation,
    squat_pending_registration,
    steal_priority,
    trade_flow,
    try_challenge,
)
from market.invariants import check_market, snapshot_balances, tracked_addresses
from market.protocol import Job
from market.terms import ETHER, MarketParams, MarketTerms
from offload_core.config import CACHING_POLICIES, preset
from offload_core.engine import EdgeEngine
from reputation import MWSL, MostFamiliar, MWSLConfig, RandomSelection, RoundRobin
from reputation.selection import Selection, SelectionStrategy, Selector

SLOW_FACTOR = 4.0
ATTACKS = ("near_duplicate", "squat_A1", "priority_theft_A2", "exit_scam_A5")
"""What an attacker tries in a period in which it attacks, drawn uniformly."""


@dataclass(frozen=True)
class SimulationConfig:
    """One simulation run; defaults are what `make demo` runs.

    The one source of the run's settings: `aigc-market simulate` builds its options and the API its
    POST /simulations body from these fields (defaults, bounds and docstrings). A config checks
    itself when it is built: a bad value raises ValueError naming the field.
    """

    producers: int = bounded(3, ge=1)
    """Producers, each commissioning one generation per period."""
    esps: int = bounded(3, ge=1)
    """ESPs, each running one edge server."""
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
    caching: str = bounded("lfu", choices=CACHING_POLICIES)
    """Caching policy of the ESPs' servers."""
    esp_profiles: tuple[EspProfile, ...] = (EspProfile.HONEST, EspProfile.HONEST, EspProfile.CHEATING)
    """Profile of each ESP, cycled when there are more ESPs than profiles."""
    purchase_probability: float = bounded(0.3, ge=0, le=1)
    """Chance that a consumer tries to buy a product in a period."""
    seller_absent_probability: float = bounded(0.1, ge=0, le=1)
    """Chance that a seller never claims a purchase (the buyer refunds)."""
    attack_probability: float = bounded(0.2, ge=0, le=1)
    """Chance that an attacker copies a product in a period."""
    temperature: float = bounded(0.1, gt=0)
    """Softmax temperature over reputations in [0, 1]: at 1.0 the choice is almost uniform."""
    random_periods: int = bounded(10, ge=0)
    """Periods of random selection before reputation is used (exploration, DESIGN section 5)."""
    period_s: int = 3600
    """Chain time per period, in seconds (more than the lock duration of the market terms)."""

    def __post_init__(self) -> None:
        check_fields(self)  # enum values given as strings become members; bounds are checked
        if self.period_s <= MarketTerms().lock_duration_s:
            raise ValueError(f"period_s must exceed the lock duration ({MarketTerms().lock_duration_s} s)")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> SimulationConfig:
        """A config from a TOML table or a JSON object (e.g. the `config` of a run's summary.json)."""
        return config_from_mapping(cls, values)

    def to_json(self) -> dict[str, Any]:
        """Every field, as JSON values (enums as their strings, tuples as lists)."""
        values: dict[str, Any] = json.loads(json.dumps(asdict(self)))
        return values


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


def make_selector(selection: Selection, producers: int, esps: int) -> tuple[Selector, SelectionStrategy | None]:
    """The selector of `selection` and the strategy over its scores (None for a baseline)."""
    selection = Selection(selection)
    if selection.strategy is not None:
        return MWSL(MWSLConfig(), producers, esps), selection.strategy
    if selection is Selection.RANDOM:
        return RandomSelection(producers, esps), None
    if selection is Selection.FAMILIAR:
        return MostFamiliar(producers, esps), None
    return RoundRobin(producers, esps), None


@dataclass
class PeriodRecord:
    period: int
    tasks: int = 0
    completed: int = 0
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
    """Deploy the contracts on `chain`, run `config.periods` periods and check the invariants."""
    rng = random.Random(config.seed)
    params, terms = MarketParams(), MarketTerms()
    terms.check_against(params)
    market, _ = deploy_market(chain, params=params)
    funds = 1000 * ETHER
    producers = [Producer(i, chain.new_account(funds, "producer")) for i in range(config.producers)]
    esps = [
        Esp(i, chain.new_account(funds // 100, "esp"), config.esp_profiles[i % len(config.esp_profiles)])
        for i in range(config.esps)
    ]
    consumers = [Consumer(i, chain.new_account(funds, "consumer")) for i in range(config.consumers)]
    attackers = [
        Attacker(i, chain.new_account(funds // 10, "attacker"), chain.new_account(funds // 100, "accomplice"))
        for i in range(config.attackers)
    ]
    before = snapshot_balances(chain, tracked_addresses(market))

    edge = preset("mato", n_devices=config.producers, n_servers=config.esps).config
    engine = EdgeEngine(edge, 1, config.caching, dtype=torch.float64)
    engine.reset(config.seed)
    for esp in esps:
        if esp.profile == EspProfile.SLOW:
            engine.topology.server_freq[:, esp.index] /= SLOW_FACTOR
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
        generator_rng=torch.Generator().manual_seed(config.seed),
        seeds=random.Random(config.seed + 1),
    )
    # Every ESP, the attackers' accomplices included, stakes before it can accept a job.
    for account in [e.account for e in esps] + [a.accomplice for a in attackers]:
        ctx.protocol.stake(account)
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
            if rng.random() < config.attack_probability:
                attacks[attacker.index] = rng.choice(ATTACKS)
                if attacks[attacker.index] in ("squat_A1", "priority_theft_A2"):
                    front_runs[rng.randrange(len(producers))] = (attacker, attacks[attacker.index])
        front_run_tokens: dict[int, int] = {}
        hooks: dict[int, Callable[[Job], None]] = {}
        for producer_index, (attacker, attack) in front_runs.items():
            steal = steal_priority if attack == "priority_theft_A2" else squat_pending_registration
            hooks[producer_index] = partial(_record_front_run, front_run_tokens, producer_index, steal, ctx, attacker)
        outcomes = [
            settle_generation(
                ctx,
                p,
                e,
                f"period {period} producer {p.index} seed {config.seed}",
                costs[p.index],
                defer_refund=True,
                before_register=hooks.get(p.index),
            )
            for p, e in zip(producers, chosen, strict=True)
        ]
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
        # Trading: consumers buy final products from their current owners.
        open_trades: list[tuple[Consumer, TradeOutcome]] = []
        for consumer in consumers:
            if rng.random() >= config.purchase_probability:
                continue
            final = [t for t in ctx.final_products() if ctx.owners[t] != consumer.address]
            if not final:
                continue
            token_id = rng.choice(final)
            owner = ctx.owners[token_id]
            seller = next(a.account for a in [*producers, *consumers, *attackers] if a.address == owner)
            claims = rng.random() >= config.seller_absent_probability
            trade = trade_flow(ctx, seller, consumer.account, token_id, seller_claims=claims)
            trades.append(trade)
            if not claims:
                open_trades.append((consumer, trade))
        # Plagiarism: attackers copy products (owners scan and challenge) or try the exit scam.
        owners = [a.account for a in [*producers, *consumers]]
        for attacker in attackers:
            attack = attacks.get(attacker.index, "")  # "": no attack this period
            victims = [t for t in ctx.live_products() if ctx.owners[t] != attacker.address and t not in duplicates]
            if attack == "exit_scam_A5" and victims and consumers:
                paid_off = exit_scam(
                    ctx,
                    attacker,
                    rng.choice(consumers).account,
                    rng.choice(victims),
                    rng.choice(PERTURBATIONS),
                    seed=rng.randrange(2**31),
                )
                tally.count(attack, failed=not paid_off)
            if attack != "near_duplicate" or not victims:
                continue
            copy_id = plagiarize(ctx, attacker, rng.choice(victims), rng.choice(PERTURBATIONS), seed=rng.randrange(2**31))
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
        for outcome in outcomes:
            if outcome.esp.profile == EspProfile.CHEATING:
                refund_and_rate(ctx, outcome)
        for consumer, trade in open_trades:
            refund_trade(ctx, consumer.account, trade)
        # Owners reclaim the bonds of products that became final.
        everyone = {a.address: a.account for a in [*producers, *consumers, *attackers]}
        for token_id in ctx.final_products():
            if token_id not in bonds_claimed:
                ctx.protocol.claim_bond(everyone[ctx.owners[token_id]], token_id)
                bonds_claimed.add(token_id)
        observe_ratings(ctx, outcomes, float(period))
        outcomes_all.extend(outcomes)

        record.tasks = len(outcomes)
        record.completed = sum(o.positive for o in outcomes)
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
    credits_withdrawn = sum(
        ctx.protocol.withdraw_credits(account)
        for account in [p.account for p in [*producers, *consumers, *attackers, *esps]] + [a.accomplice for a in attackers]
    )
    invariants = {name: result.holds for name, result in check_market(market, before).items()}
    workload_total = Counter(o.esp.index for o in outcomes_all)
    tasks = len(outcomes_all)
    summary: dict[str, Any] = {
        "config": config.to_json(),
        "backend": chain.backend,
        "chain_id": chain.chain_id,
        "contracts": market.deployment.contracts,
        "periods": config.periods,
        "tasks": tasks,
        "completed": sum(o.positive for o in outcomes_all),
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
