"""Each lifecycle flow alone, happy and failure paths, on eth-tester and anvil.

The `market` fixture (tests/conftest.py) checks ether conservation and the other money
invariants after every test.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from chain_helpers import ETHER

from market.actors import Attacker, Esp, EspProfile, Producer
from market.chain.contracts import LockState
from market.chain.errors import ContractRevert
from market.content import ContentStore, content_hash, hamming_distance
from market.flows import (
    MarketContext,
    exit_scam,
    generation_flow,
    plagiarize,
    refund_trade,
    scan_and_challenge,
    settle_generation,
    squat_pending_registration,
    steal_priority,
    trade_flow,
    try_challenge,
)
from offload_core.config import preset
from offload_core.engine import EdgeEngine
from reputation import MWSL, MWSLConfig, SelectionStrategy


@pytest.fixture
def ctx(market, tmp_path: Path) -> MarketContext:
    chain = market.chain
    engine = EdgeEngine(preset("mato", n_devices=2, n_servers=2).config, 1, "lfu", dtype=torch.float64)
    engine.reset(0)
    esps = [
        Esp(0, chain.new_account(ETHER, "esp"), EspProfile.HONEST),
        Esp(1, chain.new_account(ETHER, "esp"), EspProfile.CHEATING),
    ]
    ctx = MarketContext(
        market=market,
        engine=engine,
        selector=MWSL(MWSLConfig(), 2, 2),
        store=ContentStore(tmp_path / "content"),
        esps=esps,
        selection_strategy=SelectionStrategy.ARGMAX,
    )
    for esp in esps:
        ctx.protocol.stake(esp.account)
    return ctx


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
def fresh_product(ctx, producer) -> int:
    only(ctx, 0)
    return generation_flow(ctx, producer, "a quiet harbour", period=1.0).token_id


def make_final(ctx: MarketContext, token_id: int) -> None:
    chain = ctx.market.chain
    chain.set_next_block_timestamp(max(chain.now() + 1, ctx.final_at[token_id]))


@pytest.fixture
def product(ctx, fresh_product) -> int:
    make_final(ctx, fresh_product)
    return fresh_product


def test_a_fresh_product_is_not_for_sale_until_final(ctx, producer, fresh_product):
    assert fresh_product not in ctx.final_products()
    buyer = ctx.market.chain.new_account(10 * ETHER, "buyer")
    with pytest.raises(ContractRevert) as refused:
        trade_flow(ctx, producer.account, buyer, fresh_product)
    assert refused.value.error == "AIGCExchangeNotFinal"


def test_a_trade_moves_the_token_and_credits_the_price(ctx, producer, product):
    buyer = ctx.market.chain.new_account(10 * ETHER, "buyer")
    outcome = trade_flow(ctx, producer.account, buyer, product)
    assert outcome.completed and ctx.market.registry.owner_of(product) == buyer.address
    assert ctx.market.exchange.credit_of(producer.address) == outcome.price  # the producer sells: no royalty
    assert ctx.owners[product] == buyer.address


def test_a_resale_credits_the_producer_its_royalty(ctx, producer, product):
    chain = ctx.market.chain
    first, second = chain.new_account(10 * ETHER, "buyer"), chain.new_account(10 * ETHER, "buyer")
    trade_flow(ctx, producer.account, first, product)
    before = ctx.market.exchange.credit_of(producer.address)
    resale = trade_flow(ctx, first, second, product, price=ETHER)
    assert resale.royalty == ETHER * 500 // 10_000  # 5% (MarketParams.royalty_bps = 500)
    assert ctx.market.exchange.credit_of(producer.address) == before + resale.royalty
    assert ctx.market.exchange.credit_of(first.address) == ETHER - resale.royalty


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
    attacker = Attacker(0, chain.new_account(10 * ETHER, "attacker"), chain.new_account(ETHER, "accomplice"))
    ctx.protocol.stake(attacker.accomplice)
    return attacker


@pytest.mark.parametrize("how", ["crop", "noise", "brightness"])
def test_a_near_duplicate_is_caught_and_revoked(ctx, producer, fresh_product, attacker, how):
    product = fresh_product
    copy_id = plagiarize(ctx, attacker, product, how, seed=1)
    assert copy_id is not None
    assert hamming_distance(ctx.phashes[product], ctx.phashes[copy_id]) <= 10
    verdicts = scan_and_challenge(ctx, [producer.account], copy_id)
    assert [v.upheld for v in verdicts] == [True]
    assert ctx.market.registry.is_revoked(copy_id) and copy_id not in ctx.owners


def test_a_challenge_against_a_genuinely_different_product_is_rejected_and_credits_the_accused(ctx, producer, fresh_product):
    product = fresh_product
    other = Producer(1, ctx.market.chain.new_account(10 * ETHER, "producer"))
    only(ctx, 0)
    different = generation_flow(ctx, other, "a snowy mountain village", period=2.0).token_id
    assert hamming_distance(ctx.phashes[product], ctx.phashes[different]) > 10
    assert scan_and_challenge(ctx, [producer.account], different) == []  # the scan does not even try
    deposit = ctx.market.registry.challenge_deposit()
    verdict = ctx.market.registry.challenge(producer.account, product, different)
    assert not verdict.upheld
    assert ctx.market.registry.credit_of(other.address) == deposit
    assert not ctx.market.registry.is_revoked(different)


def settle_with_front_runner(ctx, producer, front_run):
    """An honest generation whose registration the attacker front-runs with `front_run(job) -> token`."""
    only(ctx, 0)
    tokens = []
    cost = next(iter(ctx_costs(ctx, producer).values()))
    outcome = settle_generation(
        ctx, producer, ctx.esps[0], "a windmill at dusk", cost, before_register=lambda job: tokens.append(front_run(job))
    )
    return outcome, tokens[0]


def ctx_costs(ctx, producer):
    from market.flows import place_tasks

    return place_tasks(ctx, [producer], [ctx.esps[0]])


def test_a_squatter_who_registers_a_pending_content_hash_first_is_displaced_and_loses_its_bond(ctx, producer, attacker):
    outcome, squat = settle_with_front_runner(ctx, producer, lambda job: squat_pending_registration(ctx, attacker, job))
    registry = ctx.market.registry
    assert registry.is_revoked(squat) and squat not in ctx.owners
    assert registry.owner_of(outcome.token_id) == producer.address
    assert registry.token_of_content(registry.product(outcome.token_id).content_hash) == outcome.token_id
    # The squatter's bond went to the producer it tried to rob; the squatter has no credit.
    assert registry.credit_of(producer.address) == registry.registration_bond()
    assert registry.credit_of(attacker.address) == 0


def test_a_priority_thief_with_the_victims_phash_loses_its_challenge_and_then_its_decoy(ctx, producer, attacker):
    outcome, decoy = settle_with_front_runner(ctx, producer, lambda job: steal_priority(ctx, attacker, job))
    assert not try_challenge(ctx, attacker.account, decoy, outcome.token_id)
    assert ctx.market.registry.credit_of(producer.address) == ctx.market.registry.challenge_deposit()
    verdicts = scan_and_challenge(ctx, [producer.account], decoy)
    assert [v.upheld for v in verdicts] == [True]
    assert ctx.market.registry.owner_of(outcome.token_id) == producer.address


def test_an_exit_scam_leaves_the_buyer_with_the_copy_and_the_scammer_without_a_verdict(ctx, producer, fresh_product, attacker):
    buyer = ctx.market.chain.new_account(10 * ETHER, "buyer")
    assert exit_scam(ctx, attacker, buyer, fresh_product, "noise", seed=3) is False
    sold = [t for t, holder in ctx.owners.items() if holder == buyer.address]
    assert len(sold) == 1 and not ctx.market.registry.is_revoked(sold[0])
    assert ctx.market.registry.is_final(sold[0])
