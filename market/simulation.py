"""The marketplace simulation: producers, ESPs, consumers and attackers over many periods.

Each period every producer commissions one piece of content: the reputation module (or a baseline)
picks the ESP, the offloading core places and costs all tasks of the period on the ESPs' servers,
and the chain settles each one (lock, reveal or refund, register, rate). Consumers then buy
products, attackers register near-duplicates that owners scan for and challenge, and at the end of
the period chain time moves past every timelock so that unclaimed locks are refunded. At the end,
the money and ownership invariants are checked.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from statistics import fmean
from typing import Any

import torch

from market.actors import ESP_PROFILES, Attacker, Consumer, Esp, EspProfile, Producer
from market.chain.connection import Chain
from market.chain.deploy import deploy_market
from market.content import PERTURBATIONS, ContentStore
from market.flows import (
    ETHER,
    GenerationOutcome,
    MarketContext,
    MarketTerms,
    TradeOutcome,
    observe_ratings,
    place_tasks,
    plagiarize,
    refund_and_rate,
    refund_trade,
    scan_and_challenge,
    select_esps,
    settle_generation,
    trade_flow,
)
from market.invariants import check_market, snapshot_balances, tracked_addresses
from offload_core.config import CACHING_POLICIES, preset
from offload_core.engine import EdgeEngine
from reputation import MWSL, MostFamiliar, MWSLConfig, RandomSelection, RoundRobin
from reputation.selection import Selector

SELECTIONS = ("softmax", "argmax", "random", "familiar", "round-robin")
SLOW_FACTOR = 4.0


@dataclass(frozen=True)
class SimulationConfig:
    """One simulation run; defaults are what `make demo` runs."""

    producers: int = 3
    """Producers, each commissioning one generation per period."""
    esps: int = 3
    """ESPs, each running one edge server."""
    consumers: int = 3
    """Consumers buying products."""
    attackers: int = 1
    """Attackers registering near-duplicates."""
    periods: int = 100
    """Simulated periods."""
    seed: int = 0
    """Seeds the offloading core, the selection and every random choice of the actors."""
    selection: str = "softmax"
    """ESP selection: softmax or argmax over MWSL reputation, or random, familiar, round-robin."""
    caching: str = "lfu"
    """Caching policy of the ESPs' servers."""
    esp_profiles: tuple[EspProfile, ...] = ("honest", "honest", "cheating")
    """Profile of each ESP, cycled when there are more ESPs than profiles."""
    purchase_probability: float = 0.3
    """Chance that a consumer tries to buy a product in a period."""
    seller_absent_probability: float = 0.1
    """Chance that a seller never claims a purchase (the buyer refunds)."""
    attack_probability: float = 0.2
    """Chance that an attacker copies a product in a period."""
    temperature: float = 0.1
    """Softmax temperature over reputations in [0, 1]: at 1.0 the choice is almost uniform."""
    random_periods: int = 10
    """Periods of random selection before reputation is used (exploration, DESIGN section 5)."""
    period_s: int = 3600
    """Chain time per period, in seconds."""

    def validate(self) -> SimulationConfig:
        for name in ("producers", "esps", "periods"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("consumers", "attackers", "random_periods"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)}")
        if self.selection not in SELECTIONS:
            raise ValueError(f"selection must be one of {SELECTIONS}, got {self.selection!r}")
        if self.caching not in CACHING_POLICIES:
            raise ValueError(f"caching must be one of {CACHING_POLICIES}, got {self.caching!r}")
        if not self.esp_profiles or any(p not in ESP_PROFILES for p in self.esp_profiles):
            raise ValueError(f"esp_profiles must be taken from {ESP_PROFILES}, got {self.esp_profiles}")
        for name in ("purchase_probability", "seller_absent_probability", "attack_probability"):
            if not 0 <= getattr(self, name) <= 1:
                raise ValueError(f"{name} must lie in [0, 1], got {getattr(self, name)}")
        if not self.temperature > 0:
            raise ValueError(f"temperature must be positive, got {self.temperature}")
        if self.period_s <= MarketTerms().lock_duration_s:
            raise ValueError(f"period_s must exceed the lock duration ({MarketTerms().lock_duration_s} s)")
        return self


def make_selector(name: str, producers: int, esps: int) -> tuple[Selector, str | None]:
    if name in ("softmax", "argmax"):
        return MWSL(MWSLConfig(), producers, esps), name
    if name == "random":
        return RandomSelection(producers, esps), None
    if name == "familiar":
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


def run_simulation(config: SimulationConfig, chain: Chain, workdir: Path,
                   on_period: Callable[[int], None] | None = None) -> SimulationResult:
    """Deploy the contracts on `chain`, run `config.periods` periods and check the invariants."""
    config.validate()
    rng = random.Random(config.seed)
    market, _ = deploy_market(chain)
    funds = 1000 * ETHER
    producers = [Producer(i, chain.new_account(funds, "producer")) for i in range(config.producers)]
    esps = [Esp(i, chain.new_account(funds // 100, "esp"), config.esp_profiles[i % len(config.esp_profiles)])
            for i in range(config.esps)]
    consumers = [Consumer(i, chain.new_account(funds, "consumer")) for i in range(config.consumers)]
    attackers = [Attacker(i, chain.new_account(funds // 10, "attacker"), chain.new_account(0, "accomplice"))
                 for i in range(config.attackers)]
    before = snapshot_balances(chain, tracked_addresses(market))

    edge = preset("mato", n_devices=config.producers, n_servers=config.esps).config
    engine = EdgeEngine(edge, 1, config.caching, dtype=torch.float64)
    engine.reset(config.seed)
    for esp in esps:
        if esp.profile == "slow":
            engine.topology.server_freq[:, esp.index] /= SLOW_FACTOR
    selector, strategy = make_selector(config.selection, config.producers, config.esps)
    exploring = RandomSelection(config.producers, config.esps)
    ctx = MarketContext(market=market, engine=engine, selector=selector, store=ContentStore(workdir / "content"),
                        esps=esps, selection_strategy=strategy, temperature=config.temperature,
                        generator_rng=torch.Generator().manual_seed(config.seed))

    records: list[PeriodRecord] = []
    outcomes_all: list[GenerationOutcome] = []
    trades: list[TradeOutcome] = []
    sold_blocks: list[tuple[int, int]] = []  # (token, block of the sale)
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
        outcomes = [settle_generation(ctx, p, e, f"period {period} producer {p.index} seed {config.seed}",
                                      costs[p.index], defer_refund=True) for p, e in zip(producers, chosen, strict=True)]
        # Trading: consumers buy products from their current owners.
        open_trades: list[tuple[Consumer, TradeOutcome]] = []
        for consumer in consumers:
            if rng.random() >= config.purchase_probability:
                continue
            live = [t for t in ctx.live_products() if ctx.owners[t] != consumer.address]
            if not live:
                continue
            token_id = rng.choice(live)
            owner = ctx.owners[token_id]
            seller = next(a.account for a in [*producers, *consumers, *attackers] if a.address == owner)
            claims = rng.random() >= config.seller_absent_probability
            trade = trade_flow(ctx, seller, consumer.account, token_id, seller_claims=claims)
            trades.append(trade)
            if claims:
                sold_blocks.append((token_id, chain.w3.eth.block_number))
            else:
                open_trades.append((consumer, trade))
        # Plagiarism: attackers copy products; owners scan and challenge.
        owners = [a.account for a in [*producers, *consumers]]
        for attacker in attackers:
            victims = [t for t in ctx.live_products() if ctx.owners[t] != attacker.address and t not in duplicates]
            if not victims or rng.random() >= config.attack_probability:
                continue
            copy_id = plagiarize(ctx, attacker, rng.choice(victims), rng.choice(PERTURBATIONS), seed=rng.randrange(2**31))
            if copy_id is None:
                continue
            duplicates.append(copy_id)
            for verdict in scan_and_challenge(ctx, owners, copy_id):
                challenges_upheld += verdict.upheld
                challenges_rejected += not verdict.upheld
        # End of period: past every timelock, unclaimed locks are refunded and cheats rated negative.
        chain.set_next_block_timestamp(max(chain.now() + 1, period_start + ctx.terms.lock_duration_s + 1))
        for outcome in outcomes:
            if outcome.esp.profile == "cheating":
                refund_and_rate(ctx, outcome)
        for consumer, trade in open_trades:
            refund_trade(ctx, consumer.account, trade)
        observe_ratings(ctx, outcomes, float(period))
        outcomes_all.extend(outcomes)

        record.tasks = len(outcomes)
        record.completed = sum(o.positive for o in outcomes)
        record.refunded = sum(o.refunded for o in outcomes)
        record.latency_s = [o.cost.latency_s for o in outcomes]
        record.energy_j = [o.cost.energy_j for o in outcomes]
        record.breakdown = {k: fmean(o.cost.breakdown[k] for o in outcomes)
                            for k in ("T_up", "T_wait", "T_sw", "T_es", "T_down", "E_up", "E_sw", "E_es")}
        counts = Counter(o.esp.index for o in outcomes)
        record.workload = [counts.get(i, 0) for i in range(config.esps)]
        record.reputation = ctx.selector.reputation(float(period + 1))[0].tolist()
        records.append(record)
        if on_period is not None:
            on_period(period)

    revoked_blocks = {
        int(event.args["tokenId"]): event.block_number
        for event in chain.events(market.registry.contract, "ProductRevoked", market.deployment.block)
    }
    invariants = {name: result.holds for name, result in check_market(market, before).items()}
    invariants["no_revoked_product_sold_after_revocation"] = all(
        token not in revoked_blocks or block < revoked_blocks[token] for token, block in sold_blocks)
    workload_total = Counter(o.esp.index for o in outcomes_all)
    tasks = len(outcomes_all)
    summary: dict[str, Any] = {
        "config": asdict(config),
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
        "plagiarism_detected_rate": challenges_upheld / len(duplicates) if duplicates else None,
        "mean_latency_s": fmean(o.cost.latency_s for o in outcomes_all),
        "mean_energy_j": fmean(o.cost.energy_j for o in outcomes_all),
        "gas_by_operation": {op: {"calls": len(v), "mean": fmean(v), "total": sum(v)} for op, v in sorted(ctx.gas.items())},
        "reputation_final": {f"esp{e.index} ({e.profile})": records[-1].reputation[e.index] for e in esps},
        "workload": {f"esp{e.index} ({e.profile})": workload_total.get(e.index, 0) for e in esps},
        "invariants": invariants,
    }
    return SimulationResult(summary, records)
