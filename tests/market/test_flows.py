"""Each lifecycle flow alone, happy and failure paths, on eth-tester and anvil.

The `market` fixture (tests/conftest.py) checks ether conservation and the other money
invariants after every test.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from chain_helpers import ETHER

from market.actors import Attacker, Esp, Producer
from market.chain.contracts import LockState
from market.content import ContentStore, content_hash, hamming_distance
from market.flows import (
    MarketContext,
    generation_flow,
    plagiarize,
    refund_trade,
    scan_and_challenge,
    trade_flow,
)
from offload_core.config import preset
from offload_core.engine import EdgeEngine
from reputation import MWSL, MWSLConfig


@pytest.fixture
def ctx(market, tmp_path: Path) -> MarketContext:
    chain = market.chain
    engine = EdgeEngine(preset("mato", n_devices=2, n_servers=2).config, 1, "lfu", dtype=torch.float64)
    engine.reset(0)
    esps = [Esp(0, chain.new_account(ETHER, "esp"), "honest"), Esp(1, chain.new_account(ETHER, "esp"), "cheating")]
    return MarketContext(market=market, engine=engine, selector=MWSL(MWSLConfig(), 2, 2),
                         store=ContentStore(tmp_path / "content"), esps=esps, selection_strategy="argmax")


@pytest.fixture
def producer(ctx) -> Producer:
    return Producer(0, ctx.market.chain.new_account(10 * ETHER, "producer"))


def only(ctx: MarketContext, esp_index: int) -> None:
    """Make reputation pick ESP `esp_index` (argmax over a mask-free MWSL with one rating)."""
    ctx.selector.observe(0, esp_index, True, 0.0)


def test_generation_with_an_honest_esp_registers_the_decrypted_content_and_rates_positive(ctx, producer):
    only(ctx, 0)
    outcome = generation_flow(ctx, producer, "a lighthouse at dawn", period=1.0)
    assert outcome.esp.profile == "honest" and outcome.delivered and not outcome.refunded
    record = ctx.market.registry.product(outcome.token_id)
    assert record.producer == producer.address and record.esp == ctx.esps[0].address
    assert record.content_hash == content_hash(ctx.contents[outcome.token_id])
    assert ctx.market.exchange.get_lock(outcome.lock_id).state is LockState.WITHDRAWN
    stats = ctx.market.ledger.stats(producer.address, ctx.esps[0].address)
    assert (stats.positives, stats.negatives) == (int(outcome.positive), int(not outcome.positive))
    assert outcome.positive == (outcome.cost.completed and outcome.delivered)


def test_a_cheating_esp_ends_in_a_refund_and_a_negative_rating(ctx, producer):
    only(ctx, 1)
    before = ctx.market.chain.balance(producer.address)
    outcome = generation_flow(ctx, producer, "a red bicycle", period=1.0)
    assert outcome.esp.profile == "cheating"
    assert outcome.refunded and outcome.token_id is None and not outcome.positive
    assert ctx.market.exchange.get_lock(outcome.lock_id).state is LockState.REFUNDED
    stats = ctx.market.ledger.stats(producer.address, ctx.esps[1].address)
    assert (stats.positives, stats.negatives) == (0, 1)
    spent = before - ctx.market.chain.balance(producer.address)
    assert 0 < spent < ctx.terms.generation_fee  # only gas: the fee itself came back
    reputation = ctx.selector.reputation(2.0)[0]
    assert reputation[1] < MWSLConfig().base_rate


@pytest.fixture
def product(ctx, producer) -> int:
    only(ctx, 0)
    return generation_flow(ctx, producer, "a quiet harbour", period=1.0).token_id


def test_a_trade_moves_token_and_price_together(ctx, producer, product):
    buyer = ctx.market.chain.new_account(10 * ETHER, "buyer")
    seller_before = ctx.market.chain.balance(producer.address)
    outcome = trade_flow(ctx, producer.account, buyer, product)
    assert outcome.completed and ctx.market.registry.owner_of(product) == buyer.address
    gas_paid = ctx.market.chain.balance(producer.address) - seller_before - outcome.price
    assert gas_paid < 0  # the seller received the price and paid only gas
    assert ctx.owners[product] == buyer.address


def test_a_resale_pays_the_producer_its_royalty(ctx, producer, product):
    chain = ctx.market.chain
    first, second = chain.new_account(10 * ETHER, "buyer"), chain.new_account(10 * ETHER, "buyer")
    trade_flow(ctx, producer.account, first, product)
    before = chain.balance(producer.address)
    resale = trade_flow(ctx, first, second, product, price=ETHER)
    assert resale.royalty == ETHER * ctx.market.registry.royalty_bps() // 10_000
    assert chain.balance(producer.address) == before + resale.royalty


def test_a_buyer_refunds_after_the_timelock_and_keeps_nothing_of_the_token(ctx, producer, product):
    buyer = ctx.market.chain.new_account(10 * ETHER, "buyer")
    outcome = trade_flow(ctx, producer.account, buyer, product, seller_claims=False)
    assert not outcome.completed
    refund_trade(ctx, buyer, outcome)
    assert ctx.market.exchange.get_lock(outcome.lock_id).state is LockState.REFUNDED
    assert ctx.market.registry.owner_of(product) == producer.address


@pytest.fixture
def attacker(ctx) -> Attacker:
    chain = ctx.market.chain
    return Attacker(0, chain.new_account(ETHER, "attacker"), chain.new_account(0, "accomplice"))


@pytest.mark.parametrize("how", ["crop", "noise", "brightness"])
def test_a_near_duplicate_is_caught_and_revoked(ctx, producer, product, attacker, how):
    copy_id = plagiarize(ctx, attacker, product, how, seed=1)
    assert copy_id is not None
    assert hamming_distance(ctx.phashes[product], ctx.phashes[copy_id]) <= 10
    verdicts = scan_and_challenge(ctx, [producer.account], copy_id)
    assert [v.upheld for v in verdicts] == [True]
    assert ctx.market.registry.is_revoked(copy_id) and copy_id not in ctx.owners


def test_a_challenge_against_a_genuinely_different_product_is_rejected_and_pays_the_accused(ctx, producer, product):
    other = Producer(1, ctx.market.chain.new_account(10 * ETHER, "producer"))
    only(ctx, 0)
    different = generation_flow(ctx, other, "a snowy mountain village", period=2.0).token_id
    assert hamming_distance(ctx.phashes[product], ctx.phashes[different]) > 10
    assert scan_and_challenge(ctx, [producer.account], different) == []  # the scan does not even try
    deposit = ctx.market.registry.challenge_deposit()
    before = ctx.market.chain.balance(other.address)
    verdict = ctx.market.registry.challenge(producer.account, product, different)
    assert not verdict.upheld
    assert ctx.market.chain.balance(other.address) == before + deposit
    assert not ctx.market.registry.is_revoked(different)
