"""The lifecycle flows of the simulation, each a function usable on its own.

Every on-chain step goes through `market.protocol.Protocol` (`docs/protocol.md`); these functions
decide who does what and keep the simulation's books. generation: select an ESP by reputation,
place and cost the task on its server with the offloading core, the ESP makes its signed offer
(content encrypted and committed), the producer locks the fee with it, the ESP reveals the key (or
the producer refunds after the timelock), the producer decrypts, checks the content against the
commitment, registers and rates. trade: the buyer locks the price of a final product, the seller
claims (token moves, proceeds and royalty credited) or the buyer refunds. attacks: near-duplicates
(owners scan new registrations by pHash and challenge), and the attacks of the v1 threat table that
v2 defeats: squatting a pending registration (A1), priority theft by pHash (A2), the exit scam (A5).
"""

from __future__ import annotations

import hashlib
import random
import secrets
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from eth_account.signers.local import LocalAccount

from market.actors import Attacker, Esp, Producer
from market.chain.connection import TxResult
from market.chain.contracts import ChallengeOutcome, LockState
from market.chain.deploy import Market
from market.chain.errors import ContractRevert
from market.chain.hashlocks import hashlock_of, new_secret
from market.chain.offers import Offer, Opening, Purchase
from market.content import (
    ContentStore,
    DeterministicImageGenerator,
    Generator,
    Perturbation,
    hamming_distance,
    near_duplicate,
)
from market.protocol import ContentMismatch, Job, Protocol
from market.terms import MarketTerms
from offload_core.engine import Action, EdgeEngine
from reputation import Rating
from reputation.selection import Selector


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
    seeds: random.Random = field(default_factory=lambda: random.Random(0))
    """Draws each job's generation seed (secret to the ESP), so that runs with one seed repeat."""
    owners: dict[int, str] = field(default_factory=dict)
    """Current owner of every live product, kept from the ERC-721 Transfer events of our receipts."""
    phashes: dict[int, int] = field(default_factory=dict)
    """Perceptual hash of every registered product (revoked ones included)."""
    final_at: dict[int, int] = field(default_factory=dict)
    """Chain time from which each registered product is final (past its challenge window)."""
    generation_seq: dict[int, int] = field(default_factory=dict)
    """Priority of each registered product: the `seq` of its generation lock (smaller is earlier)."""
    protocol: Protocol = field(init=False)
    """The protocol's steps on `market`, booking the gas of every transaction here (honest parties)."""
    attacking: Protocol = field(init=False)
    """The same steps for the attackers' own Sybil ESPs, which keep no guard against selling copies."""

    def __post_init__(self) -> None:
        self.protocol = Protocol(self.market, self.terms, on_tx=self.record)
        self.attacking = Protocol(self.market, self.terms, on_tx=self.record)

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
                token_id = int(event.args["tokenId"])
                self.phashes[token_id] = int(event.args["perceptualHash"])
                self.generation_seq[token_id] = int(event.args["generationSeq"])
                self.final_at[token_id] = self.market.chain.now() + self.market.registry.challenge_window()
        return tx

    def live_products(self) -> list[int]:
        return sorted(self.owners)

    def final_products(self) -> list[int]:
        """Live products past their challenge window: the only ones the exchange sells."""
        now = self.market.chain.now()
        return [t for t in sorted(self.owners) if self.final_at[t] <= now]

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
    offer: Offer
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
    chosen = ctx.selector.select(
        torch.tensor([p.index for p in producers]),
        now,
        strategy=ctx.selection_strategy,
        temperature=ctx.temperature,
        generator=ctx.generator_rng,
    )
    assert isinstance(chosen, torch.Tensor)  # a tensor of producers gives a tensor of ESPs
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
    out = engine.step(tasks, Action(split, torch.ones((1, config.n_devices), dtype=torch.bool)))  # every term [1, M]
    terms = out.as_dict()
    costs = {}
    for producer in producers:
        m = producer.index
        breakdown = {key: float(value[0, m]) for key, value in terms.items()}  # flags as 0.0 or 1.0
        costs[m] = TaskCost(float(out.T[0, m]), float(out.E[0, m]), bool(out.completed[0, m]), float(out.quality[0, m]), breakdown)
    return costs


def settle_generation(
    ctx: MarketContext,
    producer: Producer,
    esp: Esp,
    prompt: str,
    cost: TaskCost,
    defer_refund: bool = False,
    before_register: Callable[[Job], None] | None = None,
) -> GenerationOutcome:
    """The on-chain part of a generation: offer, lock, reveal or refund, open, register, rate.

    With `defer_refund`, a lock that the ESP never claims is left for `refund_and_rate` (after the
    timelock); otherwise this function waits for the timelock itself. `before_register` runs after
    the reveal and before the producer's registration is sent (where a front-runner would act).
    """
    protocol, terms = ctx.protocol, ctx.terms
    content = ctx.generator.generate(prompt, seed=ctx.seeds.randbytes(32))  # the ESP's secret seed for this job
    prompt_hash = hashlib.sha256(prompt.encode()).digest()
    job = protocol.make_offer(esp.account, producer.address, content, prompt_hash)
    digest = ctx.store.put(job.ciphertext)  # the ciphertext the ESP hands over with its offer
    lock = protocol.lock(producer.account, job.signed)
    outcome = GenerationOutcome(
        producer, esp, lock.lock_id, job.offer, cost, delivered=False, on_time=False, positive=False, score=0
    )
    if esp.profile == "cheating":  # took the job, never reveals the key
        if not defer_refund:
            refund_and_rate(ctx, outcome)
        return outcome

    key = protocol.revealed_key(protocol.reveal(esp.account, job.offer, job.key))
    try:
        delivery = protocol.open_content(key, ctx.store.get(digest), job.opening, job.offer)
    except ContentMismatch:
        outcome.rating_tx = protocol.rate(producer.account, job.offer, False, 0)
        return outcome
    outcome.delivered = True
    outcome.on_time = cost.completed and esp.profile != "delaying"
    if before_register is not None:
        before_register(job)
    registered = protocol.register(producer.account, job.offer, delivery.opening, uri=f"sha256://{digest}")
    outcome.token_id = registered.token_id
    ctx.contents[registered.token_id] = delivery.content
    outcome.positive = outcome.on_time
    outcome.score = round(cost.quality * terms.score_scale) if outcome.positive else 0
    outcome.rating_tx = protocol.rate(producer.account, job.offer, outcome.positive, outcome.score)
    return outcome


def refund_and_rate(ctx: MarketContext, outcome: GenerationOutcome) -> GenerationOutcome:
    """After the timelock: the producer takes the fee back and rates the ESP negative."""
    ctx.protocol.refund(outcome.producer.account, outcome.offer, wait=True)
    outcome.refunded = True
    outcome.rating_tx = ctx.protocol.rate(outcome.producer.account, outcome.offer, False, 0)
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
    terms: Purchase
    completed: bool
    royalty: int = 0

    @property
    def price(self) -> int:
        return self.terms.price


def trade_flow(
    ctx: MarketContext,
    seller: LocalAccount,
    buyer: LocalAccount,
    token_id: int,
    price: int | None = None,
    seller_claims: bool = True,
) -> TradeOutcome:
    """The seller draws a secret and publishes sha256(secret); the buyer locks the price; the seller claims.

    The product must be final. If the seller never claims (`seller_claims=False`), the lock stays
    open for the buyer's refund after the timelock (`refund_trade`).
    """
    market, protocol = ctx.market, ctx.protocol
    secret = new_secret()
    opened = protocol.lock_purchase(buyer, token_id, hashlock_of(secret), price)
    outcome = TradeOutcome(token_id, opened.lock_id, opened.terms, completed=False)
    if seller_claims:
        producer, royalty = market.registry.royalty_info(token_id, opened.terms.price)
        protocol.claim_sale(seller, opened.terms, secret)
        outcome.completed = True
        outcome.royalty = 0 if producer == seller.address else royalty
    return outcome


def refund_trade(ctx: MarketContext, buyer: LocalAccount, outcome: TradeOutcome) -> None:
    """After the timelock (or at once if the token moved away): the buyer takes the price back."""
    if ctx.market.exchange.get_lock(outcome.lock_id).state is LockState.LOCKED:
        ctx.protocol.refund_purchase(buyer, outcome.terms, wait=True)


# -- attacks ----------------------------------------------------------------------------------------


def _sybil_generation(ctx: MarketContext, attacker: Attacker, content: bytes, prompt_hash: bytes, phash: int | None = None) -> Job:
    """The attacker pays its own staked accomplice ESP for an offer committing to `content` and withdraws it."""
    protocol = ctx.attacking
    job = protocol.make_offer(
        attacker.accomplice, attacker.address, content, prompt_hash, fee=ctx.market.exchange.fee_floor(), phash=phash
    )
    protocol.lock(attacker.account, job.signed)
    protocol.reveal(attacker.accomplice, job.offer, job.key)
    return job


def plagiarize(ctx: MarketContext, attacker: Attacker, victim_token_id: int, how: Perturbation, seed: int = 0) -> int | None:
    """The attacker registers a near-duplicate of a product, generated "by" its accomplice; returns its token.

    None when the copy's bytes are registered already (the registry would refuse them).
    """
    copy = near_duplicate(ctx.contents[victim_token_id], how, seed)
    job = _sybil_generation(ctx, attacker, copy, hashlib.sha256(f"copy of {victim_token_id}".encode()).digest())
    if ctx.market.registry.token_of_content(job.opening.content_hash):
        return None
    registered = ctx.attacking.register(
        attacker.account, job.offer, job.opening, uri="sha256://copy", operation="register (duplicate)"
    )
    ctx.contents[registered.token_id] = copy
    return registered.token_id


def scan_and_challenge(ctx: MarketContext, owners: list[LocalAccount], new_token_id: int) -> list[ChallengeOutcome]:
    """Every owner compares a new registration's pHash with the products it owns and challenges copies.

    Only products generated earlier than the new one can win (priority is the generation lock's
    order, not registration order); each owner tries its earliest-generated match first.
    """
    registry = ctx.market.registry
    new_phash, accused, new_seq = ctx.phashes[new_token_id], ctx.owners[new_token_id], ctx.generation_seq[new_token_id]
    threshold = registry.similarity_threshold()
    outcomes = []
    for owner in owners:
        if owner.address == accused:
            continue
        mine = [t for t, holder in ctx.owners.items() if holder == owner.address and ctx.generation_seq[t] < new_seq]
        for token_id in sorted(mine, key=ctx.generation_seq.__getitem__):
            if hamming_distance(ctx.phashes[token_id], new_phash) <= threshold:
                outcome = ctx.protocol.challenge(owner, token_id, new_token_id)
                outcomes.append(outcome)
                if outcome.upheld:
                    return outcomes
    return outcomes


@dataclass
class AttackTally:
    """How often each attack was tried and how often it failed (the attacker gained nothing)."""

    attempts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    failed: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def count(self, attack: str, failed: bool) -> None:
        self.attempts[attack] += 1
        self.failed[attack] += failed

    def summary(self) -> dict[str, dict[str, int]]:
        return {name: {"attempts": self.attempts[name], "failed": self.failed[name]} for name in sorted(self.attempts)}


def squat_pending_registration(ctx: MarketContext, attacker: Attacker, job: Job) -> int:
    """A1: seeing the victim's pending registration (its opening), the attacker registers the same content first.

    Returns the squatter's token. The victim's registration, sent next, displaces it (the earlier
    generation lock wins), so the squatter loses its token and its bond.
    """
    opening = job.opening
    # The squatter cannot reuse the victim's offer (it is not its producer): its own ESP commits to the
    # victim's content hash and pHash under a fresh salt, and the squatter pays that ESP.
    copied = Opening.of(opening.content_hash, opening.perceptual_hash, opening.prompt_hash)
    key = new_secret()
    signed = ctx.attacking.commit_offer(
        attacker.accomplice, attacker.address, copied, hashlock_of(key), fee=ctx.market.exchange.fee_floor()
    )
    ctx.attacking.lock(attacker.account, signed)
    ctx.attacking.reveal(attacker.accomplice, signed.offer, key)
    return ctx.attacking.register(
        attacker.account, signed.offer, copied, uri="sha256://squat", operation="register (squat)"
    ).token_id


def steal_priority(ctx: MarketContext, attacker: Attacker, job: Job) -> int:
    """A2, first half: from the victim's pending registration the attacker takes only the pHash and registers
    other bytes with it first; returns its token, from which it challenges the victim's product later."""
    decoy = secrets.token_bytes(64)
    decoy_job = _sybil_generation(ctx, attacker, decoy, job.opening.prompt_hash, phash=job.opening.perceptual_hash)
    return ctx.attacking.register(
        attacker.account, decoy_job.offer, decoy_job.opening, uri="sha256://decoy", operation="register (decoy)"
    ).token_id


def try_challenge(ctx: MarketContext, challenger: LocalAccount, original_id: int, duplicate_id: int) -> bool:
    """Whether an attacker's challenge was upheld (a refused or rejected challenge gains it nothing)."""
    try:
        return ctx.protocol.challenge(challenger, original_id, duplicate_id).upheld
    except ContractRevert:
        return False


def exit_scam(
    ctx: MarketContext, attacker: Attacker, buyer: LocalAccount, victim_token_id: int, how: Perturbation, seed: int = 0
) -> bool:
    """A5: own an original O, register a near-copy D, sell D, then challenge D with O. Returns whether it paid off.

    v2: D cannot be sold before it is final, and a final D can no longer be challenged; the buyer keeps D.
    """
    protocol, chain = ctx.attacking, ctx.market.chain
    base = near_duplicate(ctx.contents[victim_token_id], how, seed)
    original_job = _sybil_generation(ctx, attacker, base, hashlib.sha256(b"original").digest())
    if ctx.market.registry.token_of_content(original_job.opening.content_hash):
        return False
    original = protocol.register(
        attacker.account, original_job.offer, original_job.opening, operation="register (scam original)"
    ).token_id
    ctx.contents[original] = base
    copy = near_duplicate(base, how, seed + 1)
    copy_job = _sybil_generation(ctx, attacker, copy, hashlib.sha256(b"copy").digest())
    if ctx.market.registry.token_of_content(copy_job.opening.content_hash):
        return False
    duplicate = protocol.register(attacker.account, copy_job.offer, copy_job.opening, operation="register (scam copy)").token_id
    ctx.contents[duplicate] = copy
    try:  # sell D at once, inside its challenge window: refused
        trade_flow(ctx, attacker.account, buyer, duplicate)
        sold_early = True
    except ContractRevert:
        sold_early = False
    if not sold_early:
        chain.set_next_block_timestamp(max(chain.now() + 1, ctx.final_at[duplicate]))
        trade_flow(ctx, attacker.account, buyer, duplicate)
    upheld = try_challenge(ctx, attacker.account, original, duplicate)
    return upheld and ctx.owners.get(duplicate) != buyer.address
