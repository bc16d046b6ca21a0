"""A period's flows for many parties at once, phase by phase, so that each phase is one `Batch`.

`market/flows.py` runs one generation or one trade at a time; the simulation runs a whole period's
worth of them here, in phases whose transactions do not depend on one another: every producer's
lock, then every ESP's reveal, then every registration, then every rating; every buyer's purchase
lock, then the sellers' approvals, then their claims; the refunds; the bond claims; the credit
withdrawals. Each phase is one `market.protocol.Batch`, which a JSON-RPC node settles pipelined and
any other chain one transaction at a time, with the same results (docs/scale.md). What each party
decides and checks is what `market/flows.py` decides and checks for one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from eth_account.signers.local import LocalAccount

from market.actors import Esp, EspProfile, Producer
from market.chain.connection import TxResult
from market.chain.contracts import LockState
from market.chain.hashlocks import hashlock_of, new_secret
from market.flows import GenerationOutcome, MarketContext, TaskCost, TradeOutcome
from market.protocol import ContentMismatch, Delivery, DuplicateCommitment, Job, Slot

__all__ = [
    "GenerationOrder",
    "TradeOrder",
    "claim_bonds",
    "refund_and_rate_all",
    "refund_trades",
    "settle_generations",
    "trade_round",
    "withdraw_all_credits",
]


GENERATION_TRIES = 10
"""How many seeds an ESP tries for one job before it gives up (see `_offer`)."""


@dataclass(frozen=True)
class GenerationOrder:
    """One producer's job of the period: its chosen ESP, its prompt and the core's cost of its task."""

    producer: Producer
    esp: Esp
    prompt: str
    cost: TaskCost


@dataclass(frozen=True)
class TradeOrder:
    """One purchase of the period: the buyer locks the price of `token_id`; the seller claims if `claims`."""

    seller: LocalAccount
    buyer: LocalAccount
    token_id: int
    claims: bool = True


def settle_generations(
    ctx: MarketContext, orders: list[GenerationOrder], before_register: Mapping[int, Callable[[Job], None]] | None = None
) -> list[GenerationOutcome]:
    """`flows.settle_generation` (with `defer_refund`) for every order of a period, phase by phase.

    Offers (off chain), then the locks, the reveals (a cheating ESP's lock is left for
    `refund_and_rate_all`), the producers' checks (off chain), the registrations and the ratings. The
    hook `before_register[producer index]` runs after every reveal and before the registrations (where
    a front-runner would act on that producer's pending registration).
    """
    protocol, terms = ctx.protocol, ctx.terms
    jobs: list[Job] = []
    digests: list[str] = []
    now = ctx.market.chain.now()  # every offer counts from it: nothing is sent before the locks
    for order in orders:
        job = _offer(ctx, order, now=now)
        digests.append(ctx.store.put(job.ciphertext))  # the ciphertext the ESP hands over with its offer
        jobs.append(job)
    batch = protocol.batch()
    locks = [batch.lock(order.producer.account, job.signed) for order, job in zip(orders, jobs, strict=True)]
    batch.send()
    outcomes = [
        GenerationOutcome(
            o.producer, o.esp, lock.value().lock_id, job.offer, o.cost, delivered=False, on_time=False, positive=False, score=0
        )
        for o, job, lock in zip(orders, jobs, locks, strict=True)
    ]
    revealing = [i for i, order in enumerate(orders) if order.esp.profile != EspProfile.CHEATING]  # a cheater never reveals
    reveals = {i: batch.reveal(orders[i].esp.account, jobs[i].offer, jobs[i].key) for i in revealing}
    batch.send()
    deliveries: dict[int, Delivery] = {}
    ratings: dict[int, Slot[TxResult]] = {}
    for i, reveal in reveals.items():
        job = jobs[i]
        key = protocol.revealed_key(reveal.value())
        try:
            deliveries[i] = protocol.open_content(key, ctx.store.get(digests[i]), job.opening, job.offer)
        except ContentMismatch:
            ratings[i] = batch.rate(orders[i].producer.account, job.offer, False, 0)
    hooks = before_register or {}
    for i in deliveries:
        hook = hooks.get(orders[i].producer.index)
        if hook is not None:
            hook(jobs[i])
    registrations = {
        i: batch.register(orders[i].producer.account, jobs[i].offer, delivery.opening, uri=f"sha256://{digests[i]}")
        for i, delivery in deliveries.items()
    }
    batch.send()
    for i, delivery in deliveries.items():
        outcome, cost = outcomes[i], orders[i].cost
        outcome.delivered = True
        outcome.on_time = cost.esp_on_time and outcome.esp.profile != EspProfile.DELAYING
        outcome.token_id = registrations[i].value().token_id
        ctx.contents[outcome.token_id] = delivery.content
        outcome.positive = outcome.on_time
        outcome.score = round(cost.quality * terms.score_scale) if outcome.positive else 0
        ratings[i] = batch.rate(outcome.producer.account, outcome.offer, outcome.positive, outcome.score)
    batch.send()
    for i, rating in ratings.items():
        outcomes[i].rating_tx = rating.value()
    return outcomes


def _offer(ctx: MarketContext, order: GenerationOrder, tries: int = GENERATION_TRIES, now: int | None = None) -> Job:
    """The ESP generates the content with a fresh secret seed and makes its offer; it generates again, with
    the next seed, when its guard finds the content a near-copy of content committed to another producer
    (pHashes of random images meet within the threshold by chance once a market has thousands). `now`:
    the chain time (read from the chain when not given)."""
    prompt_hash = hashlib.sha256(order.prompt.encode()).digest()
    for attempt in range(tries):
        content = ctx.generator.generate(order.prompt, seed=ctx.seeds.randbytes(32))  # the ESP's secret seed for this job
        try:
            return ctx.protocol.make_offer(order.esp.account, order.producer.address, content, prompt_hash, now=now)
        except DuplicateCommitment:
            if attempt == tries - 1:
                raise
    raise AssertionError("unreachable")


def refund_and_rate_all(ctx: MarketContext, outcomes: list[GenerationOutcome]) -> None:
    """`flows.refund_and_rate` for every outcome: chain time moves to the latest timelock, then the refunds, then the ratings."""
    if not outcomes:
        return
    chain = ctx.market.chain
    latest = max(outcome.offer.timelock for outcome in outcomes)
    if chain.now() < latest:
        chain.set_next_block_timestamp(latest)
    batch = ctx.protocol.batch()
    refunds = [batch.refund(o.producer.account, o.offer) for o in outcomes]
    batch.send()
    for outcome, refund in zip(outcomes, refunds, strict=True):
        refund.value()
        outcome.refunded = True
    ratings = [batch.rate(o.producer.account, o.offer, False, 0) for o in outcomes]
    batch.send()
    for outcome, rating in zip(outcomes, ratings, strict=True):
        outcome.rating_tx = rating.value()


def trade_round(ctx: MarketContext, orders: list[TradeOrder]) -> list[TradeOutcome]:
    """`flows.trade_flow` for every order (distinct tokens): the purchase locks, the approvals, the claims.

    Every lock's timelock is the lock duration after the chain time at the start of the round.
    """
    market, protocol = ctx.market, ctx.protocol
    secrets = [new_secret() for _ in orders]
    timelock = market.chain.now() + ctx.terms.lock_duration_s
    batch = protocol.batch()
    locks = [
        batch.lock_purchase(o.buyer, o.token_id, hashlock_of(secret), timelock, ctx.terms.sale_price)
        for o, secret in zip(orders, secrets, strict=True)
    ]
    batch.send()
    outcomes = []
    for order, lock in zip(orders, locks, strict=True):
        opened = lock.value()
        outcomes.append(TradeOutcome(order.token_id, opened.lock_id, opened.terms, completed=False))
    claiming = [i for i, order in enumerate(orders) if order.claims]
    infos = market.registry.royalty_infos([(orders[i].token_id, outcomes[i].terms.price) for i in claiming])
    royalties = dict(zip(claiming, infos, strict=True))
    approvals = batch.approve_sales([(orders[i].seller, outcomes[i].terms) for i in claiming])
    batch.send()
    for approval in approvals:
        if approval is not None:
            approval.value()
    claims = {i: batch.withdraw_purchase(orders[i].seller, outcomes[i].terms, secrets[i]) for i in claiming}
    batch.send()
    for i, claim in claims.items():
        claim.value()
        producer, royalty = royalties[i]
        outcomes[i].completed = True
        outcomes[i].royalty = 0 if producer == orders[i].seller.address else royalty
    return outcomes


def refund_trades(ctx: MarketContext, open_trades: list[tuple[LocalAccount, TradeOutcome]]) -> None:
    """`flows.refund_trade` for every open trade: chain time moves past the latest timelock, then the refunds."""
    exchange, chain = ctx.market.exchange, ctx.market.chain
    locks = exchange.get_locks([trade.lock_id for _, trade in open_trades])
    locked = [(buyer, trade) for (buyer, trade), lock in zip(open_trades, locks, strict=True) if lock.state is LockState.LOCKED]
    if not locked:
        return
    latest = max(trade.terms.timelock for _, trade in locked)
    if chain.now() < latest:
        chain.set_next_block_timestamp(latest)
    batch = ctx.protocol.batch()
    refunds = [batch.refund_purchase(buyer, trade.terms) for buyer, trade in locked]
    batch.send()
    for refund in refunds:
        refund.value()


def claim_bonds(ctx: MarketContext, owners: Mapping[str, LocalAccount], token_ids: list[int]) -> None:
    """Every token's owner reclaims its registration bond (the tokens must be final)."""
    batch = ctx.protocol.batch()
    claims = [batch.claim_bond(owners[ctx.owners[token_id]], token_id) for token_id in token_ids]
    batch.send()
    for claim in claims:
        claim.value()


def withdraw_all_credits(ctx: MarketContext, accounts: list[LocalAccount]) -> int:
    """`Protocol.withdraw_credits` for every account in one phase; returns the wei withdrawn in all."""
    batch = ctx.protocol.batch()
    queued = batch.withdraw_credits_of(accounts)
    batch.send()
    return sum(credit for credit, slot in queued if slot.value() is not None)
