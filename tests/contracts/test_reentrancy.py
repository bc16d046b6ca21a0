"""AIGCExchange against contract parties that re-enter from their receive hook, or refuse ether.

The attacker is contracts/test/ReentrantReceiver: an ERC-1271 ESP (it stakes through `registerEsp`
and accepts any signature bytes for a digest approved with `approveOffer`), or a producer (it locks
through `lockGeneration`). While a payout is in flight its `receive` calls the exchange again to
settle the same lock or withdraw the same credit. With `bubble == False` it swallows (and records)
the failed re-entry, so the outer payout goes through exactly once; with `bubble == True` it
re-raises, so the payout fails and the whole outer call reverts. `setRejectPayments` makes it
refuse ether altogether.
"""

from __future__ import annotations

import secrets
from dataclasses import replace

import pytest
from chain_helpers import (
    FEE,
    HOUR,
    PARAMS,
    PRICE,
    STAKE,
    deploy_forwarder,
    make_content,
    make_final,
    offer,
    open_purchase,
    reverts,
)

from market.chain.artifacts import load_artifact
from market.chain.contracts import LockState
from market.chain.hashlocks import hashlock_of, new_secret
from market.chain.offers import Offer, SignedOffer

GUARD_ERROR = "ReentrancyGuardReentrantCall"
COMPENSATION = FEE + PARAMS.registration_bond  # the later producer's credit when its ESP is slashed


def deploy_attacker(market, owner, bubble: bool):
    contract, _ = market.chain.deploy(load_artifact("ReentrantReceiver"), owner, market.exchange.address, bubble)
    return contract


def read(market, contract, name):
    return market.chain.call(getattr(contract.functions, name)())


def send(market, owner, fn, value: int = 0):
    return market.chain.transact(fn, owner, value=value)


def staked_attacker(market, owner, bubble: bool):
    """A ReentrantReceiver registered as an active ESP with the minimum stake (paid by `owner`)."""
    attacker = deploy_attacker(market, owner, bubble)
    send(market, owner, attacker.functions.registerEsp(), value=STAKE)
    assert market.exchange.is_active_esp(attacker.address)
    return attacker


def contract_offer(market, esp_contract, owner, producer: str) -> tuple[SignedOffer, bytes]:
    """An offer of the contract ESP to `producer`, approved through ERC-1271; returns it and the key."""
    key = new_secret()
    now = market.chain.now()
    terms = Offer(
        esp=esp_contract.address,
        producer=producer,
        hashlock=hashlock_of(key),
        fee=FEE,
        timelock=now + HOUR,
        expiry=now + 300,
        nonce=secrets.randbits(64),
        commitment=b"\x11" * 32,
    )
    send(market, owner, esp_contract.functions.approveOffer(market.exchange.offer_id(terms)))
    return SignedOffer(terms, b"ERC-1271: any bytes"), key


def locked_for_attacker(market, actors, bubble: bool):
    """A generation lock of the producer for the attacker contract as ESP; returns (attacker, offer, key)."""
    attacker = staked_attacker(market, actors.attacker, bubble)
    signed, key = contract_offer(market, attacker, actors.attacker, actors.producer.address)
    market.exchange.lock_generation(actors.producer, signed)
    return attacker, signed.offer, key


def attack_withdraw(market, owner, attacker, terms: Offer, key: bytes):
    return send(market, owner, attacker.functions.attackWithdraw(terms.as_tuple(), key))


def reentry_error(market, attacker) -> str | None:
    decoded = market.chain.errors.decode(bytes(read(market, attacker, "lastReentryError")))
    return decoded.error if decoded is not None else None


def slashed_to_attacker(market, actors, bubble: bool):
    """The attacker contract is the later producer of an equivocation: it is credited its compensation."""
    attacker = deploy_attacker(market, actors.attacker, bubble)
    content = make_content("sold twice")
    first = offer(market, actors.producer, actors.esp, content)
    second = offer(market, attacker.address, actors.esp, content)
    market.exchange.lock_generation(actors.producer, first.signed)
    send(market, actors.attacker, attacker.functions.lockGeneration(second.offer.as_tuple(), second.signed.signature), value=FEE)
    market.exchange.prove_equivocation(actors.other, first.offer, first.opening, second.offer, second.opening)
    assert market.exchange.credit_of(attacker.address) == COMPENSATION
    return attacker


# -- an ERC-1271 ESP ----------------------------------------------------------------------------


def test_a_contract_esp_offer_is_locked_once_the_contract_approved_it(market, actors):
    attacker = staked_attacker(market, actors.attacker, bubble=False)
    signed, _ = contract_offer(market, attacker, actors.attacker, actors.producer.address)
    lock = market.exchange.lock_generation(actors.producer, signed)
    assert market.exchange.get_lock(lock.lock_id).state is LockState.LOCKED


def test_a_contract_esp_offer_it_did_not_approve_is_refused(market, actors):
    attacker = staked_attacker(market, actors.attacker, bubble=False)
    signed, _ = contract_offer(market, attacker, actors.attacker, actors.producer.address)
    unapproved = replace(signed.offer, nonce=signed.offer.nonce + 1)
    with reverts("AIGCExchangeInvalidOfferSignature", esp=attacker.address):
        market.exchange.lock_generation(actors.producer, SignedOffer(unapproved, signed.signature))


# -- withdrawGeneration -------------------------------------------------------------------------


def test_a_reentrant_esp_is_paid_exactly_once(market, actors):
    attacker, terms, key = locked_for_attacker(market, actors, bubble=False)
    exchange_before = market.exchange.balance()

    attack_withdraw(market, actors.attacker, attacker, terms, key)

    assert market.chain.balance(attacker.address) == FEE
    assert market.exchange.balance() == exchange_before - FEE
    assert read(market, attacker, "payments") == 1
    assert read(market, attacker, "reentryAttempts") == 1
    assert read(market, attacker, "reentrySuccesses") == 0


def test_a_reentrant_withdrawal_is_stopped_by_the_reentrancy_guard(market, actors):
    attacker, terms, key = locked_for_attacker(market, actors, bubble=False)
    tx = attack_withdraw(market, actors.attacker, attacker, terms, key)
    assert reentry_error(market, attacker) == GUARD_ERROR
    assert tx.event("ReentryTried").args["success"] is False
    assert len([e for e in tx.events if e.name == "Withdrawn"]) == 1
    assert market.exchange.generation_lock(terms).state is LockState.WITHDRAWN


def test_a_reentrant_esp_that_bubbles_the_guard_error_reverts_the_whole_withdrawal(market, actors):
    attacker, terms, key = locked_for_attacker(market, actors, bubble=True)
    owner_before = market.chain.balance(actors.attacker.address)

    # The guard's error makes the ESP's receive revert: the exchange sees a failed ether transfer.
    with reverts("AIGCExchangeTransferFailed", to=attacker.address, amount=FEE):
        attack_withdraw(market, actors.attacker, attacker, terms, key)

    assert market.exchange.generation_lock(terms).state is LockState.LOCKED
    assert market.chain.balance(attacker.address) == 0
    assert market.chain.balance(actors.attacker.address) == owner_before
    assert read(market, attacker, "payments") == 0


def test_the_producer_refunds_a_lock_whose_reentrant_esp_reverted_its_withdrawal(market, actors):
    attacker, terms, key = locked_for_attacker(market, actors, bubble=True)
    with reverts("AIGCExchangeTransferFailed"):
        attack_withdraw(market, actors.attacker, attacker, terms, key)
    market.chain.set_next_block_timestamp(terms.timelock)
    before = market.chain.balance(actors.producer.address)

    tx = market.exchange.refund_generation(actors.producer, terms)

    assert market.chain.balance(actors.producer.address) == before + FEE - tx.fee_wei
    assert market.exchange.generation_lock(terms).state is LockState.REFUNDED
    assert market.chain.balance(attacker.address) == 0


def test_an_esp_that_refuses_ether_cannot_withdraw_until_it_accepts_it(market, actors):
    attacker, terms, key = locked_for_attacker(market, actors, bubble=False)
    send(market, actors.attacker, attacker.functions.setRejectPayments(True))
    with reverts("AIGCExchangeTransferFailed", to=attacker.address, amount=FEE):
        attack_withdraw(market, actors.attacker, attacker, terms, key)
    assert market.exchange.generation_lock(terms).state is LockState.LOCKED

    send(market, actors.attacker, attacker.functions.setRejectPayments(False))
    attack_withdraw(market, actors.attacker, attacker, terms, key)

    assert market.chain.balance(attacker.address) == FEE
    assert read(market, attacker, "payments") == 1


# -- refundGeneration ---------------------------------------------------------------------------


def test_a_reentrant_producer_is_refunded_exactly_once(market, actors):
    attacker = deploy_attacker(market, actors.attacker, bubble=False)
    job = offer(market, attacker.address, actors.esp, make_content("refund me twice"))
    send(market, actors.attacker, attacker.functions.lockGeneration(job.offer.as_tuple(), job.signed.signature), value=FEE)
    assert market.exchange.generation_lock(job.offer).state is LockState.LOCKED
    assert market.chain.balance(attacker.address) == 0
    market.chain.set_next_block_timestamp(job.offer.timelock)
    exchange_before = market.exchange.balance()

    tx = send(market, actors.attacker, attacker.functions.attackRefund(job.offer.as_tuple()))

    assert market.chain.balance(attacker.address) == FEE
    assert market.exchange.balance() == exchange_before - FEE
    assert market.exchange.generation_lock(job.offer).state is LockState.REFUNDED
    assert (
        read(market, attacker, "payments"),
        read(market, attacker, "reentryAttempts"),
        read(market, attacker, "reentrySuccesses"),
    ) == (1, 1, 0)
    assert reentry_error(market, attacker) == GUARD_ERROR
    assert len([e for e in tx.events if e.name == "Refunded"]) == 1


def test_a_reentrant_producer_that_bubbles_keeps_its_lock_open(market, actors):
    attacker = deploy_attacker(market, actors.attacker, bubble=True)
    job = offer(market, attacker.address, actors.esp, make_content("refund me twice"))
    send(market, actors.attacker, attacker.functions.lockGeneration(job.offer.as_tuple(), job.signed.signature), value=FEE)
    market.chain.set_next_block_timestamp(job.offer.timelock)
    with reverts("AIGCExchangeTransferFailed", to=attacker.address, amount=FEE):
        send(market, actors.attacker, attacker.functions.attackRefund(job.offer.as_tuple()))
    assert market.exchange.generation_lock(job.offer).state is LockState.LOCKED


# -- withdrawCredit -----------------------------------------------------------------------------


def test_a_reentrant_credit_holder_is_paid_its_credit_exactly_once(market, actors):
    attacker = slashed_to_attacker(market, actors, bubble=False)
    exchange_before = market.exchange.balance()

    tx = send(market, actors.attacker, attacker.functions.attackWithdrawCredit())

    assert market.chain.balance(attacker.address) == COMPENSATION
    assert market.exchange.balance() == exchange_before - COMPENSATION
    assert market.exchange.credit_of(attacker.address) == 0
    assert (
        read(market, attacker, "payments"),
        read(market, attacker, "reentryAttempts"),
        read(market, attacker, "reentrySuccesses"),
    ) == (1, 1, 0)
    assert reentry_error(market, attacker) == GUARD_ERROR
    assert len([e for e in tx.events if e.name == "CreditWithdrawn"]) == 1


def test_a_reentrant_credit_holder_that_bubbles_keeps_its_credit(market, actors):
    attacker = slashed_to_attacker(market, actors, bubble=True)
    with reverts("AIGCExchangeTransferFailed", to=attacker.address, amount=COMPENSATION):
        send(market, actors.attacker, attacker.functions.attackWithdrawCredit())
    assert market.exchange.credit_of(attacker.address) == COMPENSATION
    assert market.chain.balance(attacker.address) == 0


# -- payees that refuse ether -------------------------------------------------------------------


@pytest.fixture
def refusing_producer_product(market, actors):
    """A final product whose producer (royalty receiver) is a contract that refuses ether, sold to the buyer."""
    refuser = deploy_forwarder(market, actors.other)
    content = make_content("royalties to a wall")
    job = offer(market, refuser.address, actors.esp, content)
    exchange, registry = market.exchange.address, market.registry.address
    refuser.call(actors.other, exchange, "lockGeneration", job.offer.as_tuple(), job.signed.signature, value=FEE)
    market.exchange.withdraw_generation(actors.esp, job.offer, job.key)
    registered = refuser.call(
        actors.other,
        registry,
        "register",
        job.offer.as_tuple(),
        job.opening.as_tuple(),
        "",
        value=market.registry.registration_bond(),
    )
    token_id = registered.event("ProductRegistered").args["tokenId"]
    make_final(market, token_id)
    refuser.call(actors.other, registry, "transferFrom", refuser.address, actors.buyer.address, token_id)
    market.registry.approve(actors.buyer, market.exchange.address, token_id)
    return refuser, token_id


def test_a_royalty_receiver_that_refuses_ether_cannot_block_a_resale(market, actors, refusing_producer_product):
    refuser, token_id = refusing_producer_product
    lock, secret = open_purchase(market, actors.other, token_id, price=PRICE)

    market.exchange.withdraw_purchase(actors.buyer, lock.terms, secret)

    royalty = PRICE * 500 // 10_000  # 0.005 ETH
    assert royalty == 5 * 10**15
    assert market.registry.owner_of(token_id) == actors.other.address
    assert market.exchange.credit_of(refuser.address) == royalty
    assert market.exchange.credit_of(actors.buyer.address) == PRICE - royalty
    assert market.chain.balance(refuser.address) == 0
