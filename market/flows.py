"""The lifecycle flows, each a function usable on its own.

generation: select an ESP by reputation, place and cost the task on its server with the
offloading core, lock the fee under sha256(key), the ESP reveals the key (or the producer refunds
after the timelock), decrypt and check the content, register with the ESP's EIP-712 signature,
rate on chain. trade: approve, hashlock, lock the price, claim (token, price and royalty move in one
transaction) or refund. plagiarism: register a near-duplicate signed by an accomplice; owners scan
new registrations by pHash and challenge.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field

import torch
from eth_account.signers.local import LocalAccount

from market.actors import Attacker, Esp, Producer
from market.chain.connection import TxResult
from market.chain.contracts import ChallengeOutcome, LockState
from market.chain.deploy import Market
from market.chain.hashlocks import hashlock_of, new_secret
from market.chain.signing import sign_generation
from market.content import (
    ContentStore,
    DeterministicImageGenerator,
    Generator,
    Perturbation,
    content_hash,
    decrypt,
    encrypt,
    hamming_distance,
    near_duplicate,
    perceptual_hash,
)
from offload_core.engine import Action, EdgeEngine
from reputation import Rating
from reputation.selection import Selector

ETHER = 10**18


@dataclass(frozen=True)
class MarketTerms:
    """Prices and durations (wei, seconds) of the simulated market."""

    generation_fee: int = ETHER // 100
    """Fee a producer locks for one generation."""
    sale_price: int = ETHER // 20
    """Price a consumer pays for a product."""
    lock_duration_s: int = 600
    """Timelock of every HTLC, counted from the lock."""
    score_scale: int = 100
    """On-chain score = round(content quality x score_scale)."""


@dataclass
class MarketContext:
    """What every flow needs: the contracts, the offloading core, reputation and the content store."""

    market: Market
    engine: EdgeEngine
    selector: Selector
    store: ContentStore
    generator: Generator = field(default_factory=DeterministicImageGenerator)
    terms: MarketTerms = field(default_factory=MarketTerms)
    esps: list[Esp] = field(default_factory=list)
    gas: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    contents: dict[int, bytes] = field(default_factory=dict)
    """Plaintext of every registered product (public once its key is revealed on chain)."""
    selection_strategy: str | None = None
    temperature: float = 1.0
    """Softmax temperature of reputation-based selection."""
    generator_rng: torch.Generator = field(default_factory=lambda: torch.Generator().manual_seed(0))
    owners: dict[int, str] = field(default_factory=dict)
    """Current owner of every live product, kept from the ERC-721 Transfer events of our receipts."""
    phashes: dict[int, int] = field(default_factory=dict)
    """Perceptual hash of every registered product (revoked ones included)."""

    def record(self, operation: str, tx: TxResult) -> TxResult:
        """Book the gas of `tx` and follow the token transfers it made (mint, sale, burn)."""
        self.gas[operation].append(tx.gas_used)
        registry = self.market.registry.address
        for event in tx.events:
            if event.name == "Transfer" and event.address == registry:
                token_id, to = int(event.args["tokenId"]), str(event.args["to"])
                if int(to, 16) == 0:
                    self.owners.pop(token_id, None)
                else:
                    self.owners[token_id] = to
            elif event.name == "ProductRegistered":
                self.phashes[int(event.args["tokenId"])] = int(event.args["perceptualHash"])
        return tx

    def live_products(self) -> list[int]:
        return sorted(self.owners)

    def esp_by_address(self, address: str) -> Esp:
        return next(esp for esp in self.esps if esp.address == address)


@dataclass(frozen=True)
class TaskCost:
    """The offloading core's verdict on one task placed on an ESP's server."""

    latency_s: float
    energy_j: float
    completed: bool
    quality: float
    breakdown: dict[str, float]


@dataclass
class GenerationOutcome:
    producer: Producer
    esp: Esp
    lock_id: bytes
    cost: TaskCost
    delivered: bool
    """The ESP revealed the key and the content decrypted to what was promised."""
    on_time: bool
    positive: bool
    score: int
    token_id: int | None = None
    refunded: bool = False
    rating_tx: TxResult | None = None


# -- generation -------------------------------------------------------------------------------------


def select_esps(ctx: MarketContext, producers: list[Producer], now: float) -> list[Esp]:
    """One ESP per producer, chosen by the context's selector (reputation or a baseline)."""
    chosen = ctx.selector.select(torch.tensor([p.index for p in producers]), now, strategy=ctx.selection_strategy,
                                 temperature=ctx.temperature, generator=ctx.generator_rng)
    return [ctx.esps[int(i)] for i in chosen.tolist()]


def place_tasks(ctx: MarketContext, producers: list[Producer], esps: list[Esp]) -> dict[int, TaskCost]:
    """One step of the offloading core: each producer's task whole on its ESP's server."""
    engine = ctx.engine
    config = engine.config
    tasks = engine.sample_tasks()
    split = torch.zeros((1, config.n_devices, config.n_servers + 2), dtype=engine.dtype)
    split[0, :, 0] = 1.0  # devices without a request this step run a (costed, ignored) local task
    for producer, esp in zip(producers, esps, strict=True):
        split[0, producer.index, 0] = 0.0
        split[0, producer.index, 1 + esp.index] = 1.0
    out = engine.step(tasks, Action(split, torch.ones((1, config.n_devices), dtype=torch.bool)))
    costs = {}
    for producer in producers:
        m = producer.index
        breakdown = {key: float(value[0, m]) for key, value in out.items()}
        costs[m] = TaskCost(breakdown["T"], breakdown["E"], bool(breakdown["completed"]), breakdown["quality"], breakdown)
    return costs


def settle_generation(ctx: MarketContext, producer: Producer, esp: Esp, prompt: str, cost: TaskCost,
                      defer_refund: bool = False) -> GenerationOutcome:
    """The on-chain part of a generation: lock, reveal or refund, decrypt, register, rate.

    With `defer_refund`, a lock that the ESP never claims is left for `refund_and_rate` (after the
    timelock); otherwise this function waits for the timelock itself.
    """
    chain, market, terms = ctx.market.chain, ctx.market, ctx.terms
    content = ctx.generator.generate(prompt)
    key = new_secret()
    digest = ctx.store.put(encrypt(key, content))  # the ciphertext the ESP hands over
    lock = market.exchange.lock_generation(producer.account, esp.address, hashlock_of(key),
                                           chain.now() + terms.lock_duration_s, terms.generation_fee)
    ctx.record("lockGeneration", lock.tx)
    outcome = GenerationOutcome(producer, esp, lock.lock_id, cost, delivered=False, on_time=False, positive=False,
                                score=0)
    if esp.profile == "cheating":
        if not defer_refund:
            refund_and_rate(ctx, outcome)
        return outcome

    claimed = ctx.record("withdraw (generation)", market.exchange.withdraw(esp.account, lock.lock_id, key))
    revealed = bytes(claimed.event("Withdrawn").args["preimage"])
    plaintext = decrypt(revealed, ctx.store.get(digest))
    outcome.delivered = content_hash(plaintext) == content_hash(content)
    outcome.on_time = cost.completed and esp.profile != "delaying"
    phash = perceptual_hash(plaintext)
    c_hash, p_hash = content_hash(plaintext), hashlib.sha256(prompt.encode()).digest()
    signature = sign_generation(esp.account, chain_id=chain.chain_id, registry=market.registry.address,
                                producer=producer.address, content_hash=c_hash, prompt_hash=p_hash, perceptual_hash=phash)
    registered = market.registry.register(producer.account, content_hash=c_hash, perceptual_hash=phash,
                                          prompt_hash=p_hash, esp=esp.address, signature=signature,
                                          uri=f"sha256://{digest}")
    ctx.record("register", registered.tx)
    outcome.token_id = registered.token_id
    ctx.contents[registered.token_id] = plaintext
    outcome.positive = outcome.delivered and outcome.on_time
    outcome.score = round(cost.quality * terms.score_scale) if outcome.positive else 0
    outcome.rating_tx = ctx.record("rate", market.ledger.rate(producer.account, lock.lock_id, outcome.positive,
                                                              outcome.score))
    return outcome


def refund_and_rate(ctx: MarketContext, outcome: GenerationOutcome) -> GenerationOutcome:
    """After the timelock: the producer takes the fee back and rates the ESP negative."""
    chain, market = ctx.market.chain, ctx.market
    timelock = market.exchange.get_lock(outcome.lock_id).timelock
    if chain.now() < timelock:
        chain.set_next_block_timestamp(timelock)
    ctx.record("refund", market.exchange.refund(outcome.producer.account, outcome.lock_id))
    outcome.refunded = True
    outcome.rating_tx = ctx.record("rate", market.ledger.rate(outcome.producer.account, outcome.lock_id, False, 0))
    return outcome


def observe_ratings(ctx: MarketContext, outcomes: list[GenerationOutcome], period: float) -> None:
    """Feed the on-chain `Rated` events of these outcomes to the reputation module."""
    records = []
    for outcome in outcomes:
        if outcome.rating_tx is None:
            continue
        rated = outcome.rating_tx.event("Rated").args
        esp = ctx.esp_by_address(rated["esp"])
        records.append(Rating(outcome.producer.index, esp.index, bool(rated["positive"]), period, float(rated["score"])))
    ctx.selector.observe_records(records)


def generation_flow(ctx: MarketContext, producer: Producer, prompt: str, period: float) -> GenerationOutcome:
    """The whole generation lifecycle for one producer: select, place and cost, settle, rate, observe."""
    (esp,) = select_esps(ctx, [producer], period)
    cost = place_tasks(ctx, [producer], [esp])[producer.index]
    outcome = settle_generation(ctx, producer, esp, prompt, cost)
    observe_ratings(ctx, [outcome], period)
    return outcome


# -- trade ------------------------------------------------------------------------------------------


@dataclass
class TradeOutcome:
    token_id: int
    lock_id: bytes
    price: int
    completed: bool
    royalty: int = 0


def trade_flow(ctx: MarketContext, seller: LocalAccount, buyer: LocalAccount, token_id: int, price: int | None = None,
               seller_claims: bool = True) -> TradeOutcome:
    """Seller approves and publishes sha256(secret); buyer locks the price; seller claims.

    If the seller never claims (`seller_claims=False`), the lock stays open for the buyer's refund
    after the timelock (`refund_trade`).
    """
    market, chain, terms = ctx.market, ctx.market.chain, ctx.terms
    price = terms.sale_price if price is None else price
    ctx.record("approve", market.registry.approve(seller, market.exchange.address, token_id))
    secret = new_secret()
    lock = market.exchange.lock_purchase(buyer, token_id, hashlock_of(secret), chain.now() + terms.lock_duration_s, price)
    ctx.record("lockPurchase", lock.tx)
    outcome = TradeOutcome(token_id, lock.lock_id, price, completed=False)
    if seller_claims:
        _, royalty = market.registry.royalty_info(token_id, price)
        producer = market.registry.product(token_id).producer
        ctx.record("withdraw (purchase)", market.exchange.withdraw(seller, lock.lock_id, secret))
        outcome.completed = True
        outcome.royalty = 0 if producer == seller.address else royalty
    return outcome


def refund_trade(ctx: MarketContext, buyer: LocalAccount, outcome: TradeOutcome) -> None:
    """After the timelock: the buyer takes the price back; the token never moved."""
    chain, exchange = ctx.market.chain, ctx.market.exchange
    timelock = exchange.get_lock(outcome.lock_id).timelock
    if chain.now() < timelock:
        chain.set_next_block_timestamp(timelock)
    if exchange.get_lock(outcome.lock_id).state is LockState.LOCKED:
        ctx.record("refund", exchange.refund(buyer, outcome.lock_id))


# -- plagiarism -------------------------------------------------------------------------------------


def plagiarize(ctx: MarketContext, attacker: Attacker, victim_token_id: int, how: Perturbation,
               seed: int = 0) -> int | None:
    """The attacker registers a near-duplicate of a product, signed by its accomplice; returns its token.

    None when the copy's bytes are registered already (the registry would refuse them).
    """
    market, chain = ctx.market, ctx.market.chain
    copy = near_duplicate(ctx.contents[victim_token_id], how, seed)
    c_hash, phash = content_hash(copy), perceptual_hash(copy)
    if market.registry.token_of_content(c_hash):
        return None
    p_hash = hashlib.sha256(f"copy of {victim_token_id}".encode()).digest()
    signature = sign_generation(attacker.accomplice, chain_id=chain.chain_id, registry=market.registry.address,
                                producer=attacker.address, content_hash=c_hash, prompt_hash=p_hash, perceptual_hash=phash)
    registered = market.registry.register(attacker.account, content_hash=c_hash, perceptual_hash=phash,
                                          prompt_hash=p_hash, esp=attacker.accomplice.address, signature=signature,
                                          uri="sha256://copy")
    ctx.record("register (duplicate)", registered.tx)
    ctx.contents[registered.token_id] = copy
    return registered.token_id


def scan_and_challenge(ctx: MarketContext, owners: list[LocalAccount], new_token_id: int) -> list[ChallengeOutcome]:
    """Every owner compares a new registration's pHash with the products it owns and challenges copies."""
    registry = ctx.market.registry
    new_phash, accused = ctx.phashes[new_token_id], ctx.owners[new_token_id]
    threshold = registry.similarity_threshold()
    outcomes = []
    for owner in owners:
        if owner.address == accused:
            continue
        for token_id in sorted(t for t, holder in ctx.owners.items() if holder == owner.address and t < new_token_id):
            if hamming_distance(ctx.phashes[token_id], new_phash) <= threshold:
                outcome = registry.challenge(owner, token_id, new_token_id)
                ctx.record("challenge (upheld)" if outcome.upheld else "challenge (rejected)", outcome.tx)
                outcomes.append(outcome)
                if outcome.upheld:
                    return outcomes
    return outcomes
