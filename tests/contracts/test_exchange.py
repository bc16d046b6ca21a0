"""AIGCExchange (protocol v2): offer-backed generation locks, purchases of final products, credits,
equivocation proofs, its constructor, and every way a call reverts.

ESP staking (registerEsp, announceExit, withdrawStake) is in test_staking.py; contract parties that
re-enter or refuse ether are in test_reentrancy.py.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from chain_helpers import (
    FEE,
    HOUR,
    PARAMS,
    PRICE,
    STAKE,
    ZERO_ADDRESS,
    block_time,
    final_product,
    flip_bits,
    make_content,
    make_final,
    offer,
    open_generation,
    open_purchase,
    paid_generation,
    protocol,
    register,
    resign,
    reverts,
    stake,
)
from eth_account import Account
from eth_utils import keccak

from market.chain.artifacts import load_artifact
from market.chain.contracts import EspInfo, EspState, LockKind, LockState
from market.chain.deploy import create_address
from market.chain.hashlocks import hashlock_of, new_secret
from market.chain.offers import Offer, Purchase, SignedOffer, offer_id, purchase_id, sign_offer

UNKNOWN_ID = b"\x42" * 32
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

# A resale at 0.3 ETH + 7 wei: the royalty is 5% (500 bps) of it, rounded down, worked out by hand:
# 300_000_000_000_000_007 * 500 / 10_000 = 15_000_000_000_000_000.35 -> 15_000_000_000_000_000.
RESALE_PRICE = 300_000_000_000_000_007
RESALE_ROYALTY = 15_000_000_000_000_000
RESALE_PROCEEDS = 285_000_000_000_000_007


def unlocked_offer(market, actors) -> Offer:
    """A valid offer of the (staked) ESP to the producer that nobody locked."""
    return offer(market, actors.producer, actors.esp, make_content(f"unlocked {new_secret().hex()}")).offer


def pin_time(market, esp, ahead: int = 100) -> int:
    """Stake `esp` first, then make the next transaction run `ahead` seconds after the latest block."""
    stake(market, esp)
    start = market.chain.now() + ahead
    market.chain.set_next_block_timestamp(start)
    return start


def sold_to_buyer(market, actors) -> int:
    """A final product of the producer, sold to the buyer and approved by it for a resale."""
    token_id = final_product(market, actors.producer, actors.esp)
    lock, secret = open_purchase(market, actors.buyer, token_id)
    market.exchange.withdraw_purchase(actors.producer, lock.terms, secret)
    market.registry.approve(actors.buyer, market.exchange.address, token_id)
    return token_id


def revoked_copy(market, actors) -> int:
    """The attacker's near-copy of the producer's product, revoked by the producer's challenge."""
    original = make_content("original")
    original_id = register(market, actors.producer, actors.esp, original).token_id
    copy = make_content("copy", phash=flip_bits(original.phash, 3))
    copy_id = register(market, actors.attacker, actors.accomplice, copy).token_id
    assert market.registry.challenge(actors.producer, original_id, copy_id).upheld
    return copy_id


# What a later lock's producer is credited from the slashed ESP's stake: its fee plus the registration
# bond, 0.01 ETH + 0.001 ETH (at most half of what is left of the stake); as much again is forfeited.
COMPENSATION = 11_000_000_000_000_000


def equivocating_jobs(market, actors, content=None):
    """The ESP committed one content to the producer, then to the buyer; both locked (producer first)."""
    content = content or make_content("sold twice")
    first = offer(market, actors.producer, actors.esp, content)
    second = offer(market, actors.buyer, actors.esp, content)
    market.exchange.lock_generation(actors.producer, first.signed)
    market.exchange.lock_generation(actors.buyer, second.signed)
    return first, second


# -- generation locks ---------------------------------------------------------------------------


def test_a_generation_lock_is_stored_under_the_digest_of_the_offer(market, actors):
    lock, job = open_generation(market, actors.producer, actors.esp)
    expected = offer_id(job.offer, chain_id=market.chain.chain_id, exchange=market.exchange.address)
    assert lock.lock_id == expected == market.exchange.offer_id(job.offer)
    info = market.exchange.get_lock(lock.lock_id)
    assert (info.kind, info.state, info.seq) == (LockKind.GENERATION, LockState.LOCKED, lock.seq)
    assert info.locked_at == block_time(market, lock.tx)


def test_a_generation_lock_emits_every_term_of_the_offer(market, actors):
    lock, job = open_generation(market, actors.producer, actors.esp)
    args = lock.tx.event("GenerationLocked").args
    assert args["id"] == lock.lock_id
    assert args["seq"] == lock.seq
    assert Offer.from_event(args) == job.offer


def test_a_generation_lock_moves_the_fee_from_the_producer_into_the_exchange(market, actors):
    stake(market, actors.esp)
    producer_before = market.chain.balance(actors.producer.address)
    exchange_before = market.exchange.balance()
    lock, _ = open_generation(market, actors.producer, actors.esp)
    assert market.chain.balance(actors.producer.address) == producer_before - FEE - lock.tx.fee_wei
    assert market.exchange.balance() == exchange_before + FEE


def test_each_lock_takes_the_next_sequence_number(market, actors):
    first, _ = open_generation(market, actors.producer, actors.esp)
    second, _ = open_generation(market, actors.buyer, actors.esp)
    assert second.seq == first.seq + 1
    total = market.chain.call(market.exchange.contract.functions.totalLocks())
    assert total == second.seq


def test_the_generation_lock_view_reports_id_state_seq_and_lock_time(market, actors):
    job = offer(market, actors.producer, actors.esp, make_content("viewed"))
    before = market.exchange.generation_lock(job.offer)
    assert (before.lock_id, before.state, before.seq, before.locked_at) == (
        market.exchange.offer_id(job.offer),
        LockState.NONE,
        0,
        0,
    )
    lock = market.exchange.lock_generation(actors.producer, job.signed)
    after = market.exchange.generation_lock(job.offer)
    assert (after.lock_id, after.state, after.seq, after.locked_at) == (
        lock.lock_id,
        LockState.LOCKED,
        lock.seq,
        block_time(market, lock.tx),
    )


def test_the_offer_and_purchase_typehashes_are_the_documented_type_strings(market):
    functions = market.exchange.contract.functions
    assert bytes(market.chain.call(functions.OFFER_TYPEHASH())) == keccak(
        text="Offer(address esp,address producer,bytes32 hashlock,uint256 fee,uint64 timelock,uint64 expiry,"
        "uint256 nonce,bytes32 commitment)"
    )
    assert bytes(market.chain.call(functions.PURCHASE_TYPEHASH())) == keccak(
        text="Purchase(address buyer,address seller,uint256 tokenId,uint256 price,bytes32 hashlock,uint64 timelock)"
    )


def test_the_eip712_domain_is_aigc_exchange_version_2_on_this_chain(market):
    _, name, version, chain_id, verifying_contract, _, _ = market.chain.call(market.exchange.contract.functions.eip712Domain())
    assert (name, version, chain_id, verifying_contract) == ("AIGCExchange", "2", market.chain.chain_id, market.exchange.address)


def test_an_unknown_lock_id_reads_as_state_none_and_zeros(market):
    info = market.exchange.get_lock(UNKNOWN_ID)
    assert (info.kind, info.state, info.seq, info.locked_at) == (LockKind.GENERATION, LockState.NONE, 0, 0)


def test_an_offer_at_the_fee_floor_can_be_locked(market, actors):
    floor = market.exchange.fee_floor()
    lock, job = open_generation(market, actors.producer, actors.esp, fee=floor)
    assert job.offer.fee == floor == PARAMS.fee_floor
    assert market.exchange.get_lock(lock.lock_id).state is LockState.LOCKED


def test_an_offer_can_be_locked_at_its_expiry(market, actors):
    job = offer(market, actors.producer, actors.esp, make_content("last second"))
    market.chain.set_next_block_timestamp(job.offer.expiry)
    lock = market.exchange.lock_generation(actors.producer, job.signed)
    assert block_time(market, lock.tx) == job.offer.expiry


def test_a_timelock_exactly_the_minimum_ahead_can_be_locked(market, actors):
    job = offer(market, actors.producer, actors.esp, make_content("shortest"))
    start = pin_time(market, actors.esp)
    signed = resign(market, actors.esp, job.offer, timelock=start + PARAMS.min_timelock)
    lock = market.exchange.lock_generation(actors.producer, signed)
    assert Offer.from_event(lock.tx.event("GenerationLocked").args).timelock == start + PARAMS.min_timelock


def test_a_timelock_exactly_the_maximum_ahead_can_be_locked(market, actors):
    job = offer(market, actors.producer, actors.esp, make_content("longest"))
    start = pin_time(market, actors.esp)
    signed = resign(market, actors.esp, job.offer, timelock=start + PARAMS.max_timelock)
    lock = market.exchange.lock_generation(actors.producer, signed)
    assert market.exchange.get_lock(lock.lock_id).state is LockState.LOCKED


# -- generation lock reverts --------------------------------------------------------------------


def test_locking_the_same_offer_twice_reverts_as_lock_exists(market, actors):
    lock, job = open_generation(market, actors.producer, actors.esp)
    with reverts("AIGCExchangeLockExists", id=lock.lock_id):
        market.exchange.lock_generation(actors.producer, job.signed)


def test_replaying_an_offer_after_its_lock_was_withdrawn_reverts_as_lock_exists(market, actors):
    job = paid_generation(market, actors.producer, actors.esp)
    with reverts("AIGCExchangeLockExists", id=market.exchange.offer_id(job.offer)):
        market.exchange.lock_generation(actors.producer, job.signed)


def test_locking_an_offer_made_to_another_producer_reverts(market, actors):
    job = offer(market, actors.producer, actors.esp, make_content("for the producer"))
    with reverts("AIGCExchangeOfferNotForCaller", producer=actors.producer.address, caller=actors.attacker.address):
        market.exchange.lock_generation(actors.attacker, job.signed)


def test_locking_an_offer_one_second_after_its_expiry_reverts(market, actors):
    job = offer(market, actors.producer, actors.esp, make_content("too late"))
    market.chain.set_next_block_timestamp(job.offer.expiry + 1)
    with reverts("AIGCExchangeOfferExpired", expiry=job.offer.expiry):
        market.exchange.lock_generation(actors.producer, job.signed)


@pytest.mark.parametrize("sent", [0, FEE - 1, FEE + 1])
def test_locking_with_a_value_other_than_the_fee_reverts(market, actors, sent):
    job = offer(market, actors.producer, actors.esp, make_content("fee"))
    with reverts("AIGCExchangeWrongFee", sent=sent, fee=FEE):
        market.exchange.lock_generation(actors.producer, job.signed, value=sent)


def test_locking_an_offer_below_the_fee_floor_reverts(market, actors):
    floor = PARAMS.fee_floor
    with reverts("AIGCExchangeFeeBelowFloor", fee=floor - 1, floor=floor):
        open_generation(market, actors.producer, actors.esp, fee=floor - 1)


def test_locking_an_offer_of_an_unstaked_esp_reverts(market, actors):
    content = make_content("unstaked")
    job = protocol(market).make_offer(actors.other, actors.producer.address, content.data, content.prompt_hash, phash=content.phash)
    assert market.exchange.esp_info(actors.other.address).state is EspState.NONE
    with reverts("AIGCExchangeEspNotActive", esp=actors.other.address):
        market.exchange.lock_generation(actors.producer, job.signed)


def test_locking_an_offer_signed_by_another_key_reverts(market, actors):
    job = offer(market, actors.producer, actors.esp, make_content("forged"))
    forged = sign_offer(actors.attacker, job.offer, chain_id=market.chain.chain_id, exchange=market.exchange.address)
    with reverts("AIGCExchangeInvalidOfferSignature", esp=actors.esp.address):
        market.exchange.lock_generation(actors.producer, forged)


def test_locking_an_offer_without_a_signature_reverts(market, actors):
    job = offer(market, actors.producer, actors.esp, make_content("unsigned"))
    with reverts("AIGCExchangeInvalidOfferSignature", esp=actors.esp.address):
        market.exchange.lock_generation(actors.producer, SignedOffer(job.offer, b""))


@pytest.mark.parametrize("field", ["fee", "timelock", "hashlock", "commitment", "nonce"])
def test_locking_an_offer_whose_terms_differ_from_the_signed_ones_reverts(market, actors, field):
    job = offer(market, actors.producer, actors.esp, make_content("tampered"))
    tampered = {
        "fee": {"fee": 2 * FEE},
        "timelock": {"timelock": job.offer.timelock + HOUR},
        "hashlock": {"hashlock": hashlock_of(new_secret())},
        "commitment": {"commitment": b"\x01" * 32},
        "nonce": {"nonce": job.offer.nonce + 1},
    }[field]
    changed = replace(job.offer, **tampered)
    with reverts("AIGCExchangeInvalidOfferSignature", esp=actors.esp.address):
        market.exchange.lock_generation(actors.producer, SignedOffer(changed, job.signed.signature))


def test_locking_an_offer_signed_for_another_chain_reverts(market, actors):
    job = offer(market, actors.producer, actors.esp, make_content("other chain"))
    elsewhere = sign_offer(actors.esp, job.offer, chain_id=market.chain.chain_id + 1, exchange=market.exchange.address)
    with reverts("AIGCExchangeInvalidOfferSignature", esp=actors.esp.address):
        market.exchange.lock_generation(actors.producer, elsewhere)


def test_locking_an_offer_with_a_high_s_malleated_signature_reverts(market, actors):
    job = offer(market, actors.producer, actors.esp, make_content("malleated"))
    signature = job.signed.signature
    r, s, v = signature[:32], int.from_bytes(signature[32:64], "big"), signature[64]
    malleated = r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v])
    # Valid for plain ecrecover, refused by OpenZeppelin's ECDSA (only low-s signatures).
    assert Account._recover_hash(market.exchange.offer_id(job.offer), signature=malleated) == actors.esp.address
    with reverts("AIGCExchangeInvalidOfferSignature", esp=actors.esp.address):
        market.exchange.lock_generation(actors.producer, SignedOffer(job.offer, malleated))


def test_an_esp_cannot_lock_its_own_offer_as_producer(market, actors):
    job = offer(market, actors.esp, actors.esp, make_content("self-dealing"))
    with reverts("AIGCExchangeInvalidReceiver", receiver=actors.esp.address):
        market.exchange.lock_generation(actors.esp, job.signed)


def test_an_offer_from_the_zero_address_reverts(market, actors):
    job = offer(market, actors.producer, actors.esp, make_content("nobody"))
    nobody = SignedOffer(replace(job.offer, esp=ZERO_ADDRESS), job.signed.signature)
    with reverts("AIGCExchangeInvalidReceiver", receiver=ZERO_ADDRESS):
        market.exchange.lock_generation(actors.producer, nobody)


def test_a_timelock_one_second_short_of_the_minimum_reverts(market, actors):
    job = offer(market, actors.producer, actors.esp, make_content("too soon"))
    start = pin_time(market, actors.esp)
    earliest = start + PARAMS.min_timelock
    signed = resign(market, actors.esp, job.offer, timelock=earliest - 1)
    with reverts("AIGCExchangeTimelockTooSoon", timelock=earliest - 1, earliest=earliest):
        market.exchange.lock_generation(actors.producer, signed)


def test_a_timelock_already_past_reverts(market, actors):
    job = offer(market, actors.producer, actors.esp, make_content("past"))
    start = pin_time(market, actors.esp)
    signed = resign(market, actors.esp, job.offer, timelock=start - 10)
    with reverts("AIGCExchangeTimelockTooSoon", timelock=start - 10, earliest=start + PARAMS.min_timelock):
        market.exchange.lock_generation(actors.producer, signed)


def test_a_timelock_one_second_beyond_the_maximum_reverts(market, actors):
    job = offer(market, actors.producer, actors.esp, make_content("too late"))
    start = pin_time(market, actors.esp)
    latest = start + PARAMS.max_timelock
    signed = resign(market, actors.esp, job.offer, timelock=latest + 1)
    with reverts("AIGCExchangeTimelockTooLate", timelock=latest + 1, latest=latest):
        market.exchange.lock_generation(actors.producer, signed)


def test_a_failed_lock_changes_nothing(market, actors):
    job = offer(market, actors.producer, actors.esp, make_content("refused"))
    total = market.chain.call(market.exchange.contract.functions.totalLocks())
    producer_before = market.chain.balance(actors.producer.address)
    exchange_before = market.exchange.balance()
    with reverts("AIGCExchangeWrongFee"):
        market.exchange.lock_generation(actors.producer, job.signed, value=FEE - 1)
    assert market.chain.call(market.exchange.contract.functions.totalLocks()) == total
    assert market.exchange.generation_lock(job.offer).state is LockState.NONE
    assert market.chain.balance(actors.producer.address) == producer_before
    assert market.exchange.balance() == exchange_before


# -- withdrawGeneration -------------------------------------------------------------------------


def test_withdrawing_with_the_key_pays_the_esp_exactly_the_fee(market, actors):
    lock, job = open_generation(market, actors.producer, actors.esp)
    esp_before = market.chain.balance(actors.esp.address)
    producer_before = market.chain.balance(actors.producer.address)
    exchange_before = market.exchange.balance()

    tx = market.exchange.withdraw_generation(actors.esp, job.offer, job.key)

    assert market.chain.balance(actors.esp.address) == esp_before + FEE - tx.fee_wei
    assert market.chain.balance(actors.producer.address) == producer_before
    assert market.exchange.balance() == exchange_before - FEE


def test_withdrawing_marks_the_lock_withdrawn_and_publishes_the_key(market, actors):
    lock, job = open_generation(market, actors.producer, actors.esp)
    tx = market.exchange.withdraw_generation(actors.esp, job.offer, job.key)
    assert tx.event("Withdrawn").args == {"id": lock.lock_id, "preimage": job.key}
    assert market.exchange.get_lock(lock.lock_id).state is LockState.WITHDRAWN


def test_the_producer_decrypts_the_content_with_the_key_read_from_the_withdrawal(market, actors):
    content = make_content("delivered")
    _, job = open_generation(market, actors.producer, actors.esp, content=content)
    tx = market.exchange.withdraw_generation(actors.esp, job.offer, job.key)
    key = protocol(market).revealed_key(tx)
    delivery = protocol(market).open_content(key, job.ciphertext, job.opening, job.offer, phash=content.phash)
    assert delivery.content == content.data


def test_withdrawing_one_second_before_the_timelock_succeeds(market, actors):
    lock, job = open_generation(market, actors.producer, actors.esp)
    market.chain.set_next_block_timestamp(job.offer.timelock - 1)
    market.exchange.withdraw_generation(actors.esp, job.offer, job.key)
    assert market.exchange.get_lock(lock.lock_id).state is LockState.WITHDRAWN


def test_withdrawing_exactly_at_the_timelock_reverts(market, actors):
    lock, job = open_generation(market, actors.producer, actors.esp)
    market.chain.set_next_block_timestamp(job.offer.timelock)
    with reverts("AIGCExchangeTimelockExpired", id=lock.lock_id, timelock=job.offer.timelock):
        market.exchange.withdraw_generation(actors.esp, job.offer, job.key)


def test_withdrawing_with_a_wrong_key_reverts(market, actors):
    lock, job = open_generation(market, actors.producer, actors.esp)
    with reverts("AIGCExchangeWrongPreimage", id=lock.lock_id):
        market.exchange.withdraw_generation(actors.esp, job.offer, new_secret())


@pytest.mark.parametrize("caller", ["producer", "attacker"])
def test_withdrawing_by_anyone_but_the_esp_reverts(market, actors, caller):
    lock, job = open_generation(market, actors.producer, actors.esp)
    account = getattr(actors, caller)
    with reverts("AIGCExchangeNotReceiver", id=lock.lock_id, caller=account.address):
        market.exchange.withdraw_generation(account, job.offer, job.key)


def test_naming_yourself_the_esp_of_a_locked_offer_finds_no_lock(market, actors):
    _, job = open_generation(market, actors.producer, actors.esp)
    hijacked = replace(job.offer, esp=actors.attacker.address)
    with reverts("AIGCExchangeUnknownLock", id=market.exchange.offer_id(hijacked)):
        market.exchange.withdraw_generation(actors.attacker, hijacked, job.key)


def test_withdrawing_an_offer_that_was_never_locked_reverts(market, actors):
    never = unlocked_offer(market, actors)
    with reverts("AIGCExchangeUnknownLock", id=market.exchange.offer_id(never)):
        market.exchange.withdraw_generation(actors.esp, never, new_secret())


def test_a_second_withdrawal_reverts_as_settled(market, actors):
    lock, job = open_generation(market, actors.producer, actors.esp)
    market.exchange.withdraw_generation(actors.esp, job.offer, job.key)
    with reverts("AIGCExchangeLockSettled", id=lock.lock_id, state=LockState.WITHDRAWN):
        market.exchange.withdraw_generation(actors.esp, job.offer, job.key)


def test_withdrawing_after_a_refund_reverts_as_settled(market, actors):
    lock, job = open_generation(market, actors.producer, actors.esp)
    market.chain.set_next_block_timestamp(job.offer.timelock)
    market.exchange.refund_generation(actors.producer, job.offer)
    with reverts("AIGCExchangeLockSettled", id=lock.lock_id, state=LockState.REFUNDED):
        market.exchange.withdraw_generation(actors.esp, job.offer, job.key)


def test_a_failed_withdrawal_changes_nothing(market, actors):
    lock, job = open_generation(market, actors.producer, actors.esp)
    before = market.exchange.get_lock(lock.lock_id)
    balances = [market.chain.balance(a.address) for a in (actors.producer, actors.esp)]
    exchange_before = market.exchange.balance()
    with reverts("AIGCExchangeWrongPreimage"):
        market.exchange.withdraw_generation(actors.esp, job.offer, new_secret())
    assert market.exchange.get_lock(lock.lock_id) == before
    assert before.state is LockState.LOCKED
    assert [market.chain.balance(a.address) for a in (actors.producer, actors.esp)] == balances
    assert market.exchange.balance() == exchange_before


# -- refundGeneration ---------------------------------------------------------------------------


def test_refunding_exactly_at_the_timelock_pays_the_producer_back(market, actors):
    lock, job = open_generation(market, actors.producer, actors.esp)
    market.chain.set_next_block_timestamp(job.offer.timelock)
    producer_before = market.chain.balance(actors.producer.address)
    esp_before = market.chain.balance(actors.esp.address)
    exchange_before = market.exchange.balance()

    tx = market.exchange.refund_generation(actors.producer, job.offer)

    assert market.chain.balance(actors.producer.address) == producer_before + FEE - tx.fee_wei
    assert market.chain.balance(actors.esp.address) == esp_before
    assert market.exchange.balance() == exchange_before - FEE


def test_refunding_marks_the_lock_refunded_and_emits_refunded(market, actors):
    lock, job = open_generation(market, actors.producer, actors.esp)
    market.chain.set_next_block_timestamp(job.offer.timelock + 30 * 24 * HOUR)
    tx = market.exchange.refund_generation(actors.producer, job.offer)
    assert tx.event("Refunded").args == {"id": lock.lock_id}
    assert market.exchange.get_lock(lock.lock_id).state is LockState.REFUNDED


def test_refunding_one_second_before_the_timelock_reverts(market, actors):
    lock, job = open_generation(market, actors.producer, actors.esp)
    market.chain.set_next_block_timestamp(job.offer.timelock - 1)
    with reverts("AIGCExchangeTimelockNotExpired", id=lock.lock_id, timelock=job.offer.timelock):
        market.exchange.refund_generation(actors.producer, job.offer)


def test_refunding_right_after_the_lock_reverts(market, actors):
    lock, job = open_generation(market, actors.producer, actors.esp)
    with reverts("AIGCExchangeTimelockNotExpired", id=lock.lock_id, timelock=job.offer.timelock):
        market.exchange.refund_generation(actors.producer, job.offer)


@pytest.mark.parametrize("caller", ["esp", "attacker"])
def test_refunding_by_anyone_but_the_producer_reverts(market, actors, caller):
    lock, job = open_generation(market, actors.producer, actors.esp)
    market.chain.set_next_block_timestamp(job.offer.timelock)
    account = getattr(actors, caller)
    with reverts("AIGCExchangeNotSender", id=lock.lock_id, caller=account.address):
        market.exchange.refund_generation(account, job.offer)


def test_refunding_an_offer_that_was_never_locked_reverts(market, actors):
    never = unlocked_offer(market, actors)
    with reverts("AIGCExchangeUnknownLock", id=market.exchange.offer_id(never)):
        market.exchange.refund_generation(actors.producer, never)


def test_refunding_after_a_withdrawal_reverts_as_settled(market, actors):
    lock, job = open_generation(market, actors.producer, actors.esp)
    market.exchange.withdraw_generation(actors.esp, job.offer, job.key)
    market.chain.set_next_block_timestamp(job.offer.timelock)
    with reverts("AIGCExchangeLockSettled", id=lock.lock_id, state=LockState.WITHDRAWN):
        market.exchange.refund_generation(actors.producer, job.offer)


def test_a_second_refund_reverts_as_settled(market, actors):
    lock, job = open_generation(market, actors.producer, actors.esp)
    market.chain.set_next_block_timestamp(job.offer.timelock)
    market.exchange.refund_generation(actors.producer, job.offer)
    with reverts("AIGCExchangeLockSettled", id=lock.lock_id, state=LockState.REFUNDED):
        market.exchange.refund_generation(actors.producer, job.offer)


# -- lockPurchase -------------------------------------------------------------------------------


def test_a_purchase_lock_is_stored_under_the_digest_of_its_terms(market, actors):
    token_id = final_product(market, actors.producer, actors.esp)
    lock, secret = open_purchase(market, actors.buyer, token_id)
    terms = lock.terms
    assert (terms.buyer, terms.seller, terms.token_id, terms.price, terms.hashlock) == (
        actors.buyer.address,
        actors.producer.address,
        token_id,
        PRICE,
        hashlock_of(secret),
    )
    expected = purchase_id(terms, chain_id=market.chain.chain_id, exchange=market.exchange.address)
    assert lock.lock_id == expected == market.exchange.purchase_id(terms)
    info = market.exchange.get_lock(lock.lock_id)
    assert (info.kind, info.state, info.locked_at) == (LockKind.PURCHASE, LockState.LOCKED, block_time(market, lock.tx))
    assert lock.tx.event("PurchaseLocked").args["seq"] == info.seq


def test_a_purchase_lock_moves_the_price_into_the_exchange(market, actors):
    token_id = final_product(market, actors.producer, actors.esp)
    buyer_before = market.chain.balance(actors.buyer.address)
    exchange_before = market.exchange.balance()
    lock, _ = open_purchase(market, actors.buyer, token_id)
    assert market.chain.balance(actors.buyer.address) == buyer_before - PRICE - lock.tx.fee_wei
    assert market.exchange.balance() == exchange_before + PRICE


def test_a_product_can_be_bought_from_the_moment_it_is_final(market, actors):
    token_id = register(market, actors.producer, actors.esp, make_content("fresh")).token_id
    final_at = market.registry.product(token_id).registered_at + PARAMS.challenge_window
    market.chain.set_next_block_timestamp(final_at)
    lock, _ = open_purchase(market, actors.buyer, token_id)
    assert block_time(market, lock.tx) == final_at


def test_buying_a_product_one_second_before_it_is_final_reverts(market, actors):
    token_id = register(market, actors.producer, actors.esp, make_content("fresh")).token_id
    final_at = market.registry.product(token_id).registered_at + PARAMS.challenge_window
    market.chain.set_next_block_timestamp(final_at - 1)
    with reverts("AIGCExchangeNotFinal", tokenId=token_id):
        open_purchase(market, actors.buyer, token_id)


def test_buying_a_product_right_after_its_registration_reverts(market, actors):
    token_id = register(market, actors.producer, actors.esp, make_content("fresh")).token_id
    with reverts("AIGCExchangeNotFinal", tokenId=token_id):
        open_purchase(market, actors.buyer, token_id)


def test_buying_without_ether_reverts(market, actors):
    token_id = final_product(market, actors.producer, actors.esp)
    with reverts("AIGCExchangeZeroAmount"):
        open_purchase(market, actors.buyer, token_id, price=0)


def test_buying_your_own_product_reverts(market, actors):
    token_id = final_product(market, actors.producer, actors.esp)
    with reverts("AIGCExchangeInvalidReceiver", receiver=actors.producer.address):
        open_purchase(market, actors.producer, token_id)


def test_buying_a_revoked_product_reverts(market, actors):
    copy_id = revoked_copy(market, actors)
    with reverts("AIGCExchangeTokenRevoked", tokenId=copy_id):
        open_purchase(market, actors.buyer, copy_id)


@pytest.mark.parametrize("token_id", [0, 999])
def test_buying_an_unknown_product_reverts_with_the_registry_error(market, actors, token_id):
    with reverts("AIGCRegistryUnknownProduct", tokenId=token_id) as info:
        open_purchase(market, actors.buyer, token_id)
    assert info.value.contract == "AIGCRegistry"


def test_locking_the_same_purchase_terms_twice_reverts_as_lock_exists(market, actors):
    token_id = final_product(market, actors.producer, actors.esp)
    lock, secret = open_purchase(market, actors.buyer, token_id)
    terms = lock.terms
    with reverts("AIGCExchangeLockExists", id=lock.lock_id):
        market.exchange.lock_purchase(actors.buyer, token_id, terms.hashlock, terms.timelock, terms.price)


def test_a_purchase_timelock_one_second_short_of_the_minimum_reverts(market, actors):
    token_id = final_product(market, actors.producer, actors.esp)
    start = market.chain.now() + 100
    market.chain.set_next_block_timestamp(start)
    earliest = start + PARAMS.min_timelock
    with reverts("AIGCExchangeTimelockTooSoon", timelock=earliest - 1, earliest=earliest):
        market.exchange.lock_purchase(actors.buyer, token_id, hashlock_of(new_secret()), earliest - 1, PRICE)


def test_a_purchase_timelock_one_second_beyond_the_maximum_reverts(market, actors):
    token_id = final_product(market, actors.producer, actors.esp)
    start = market.chain.now() + 100
    market.chain.set_next_block_timestamp(start)
    latest = start + PARAMS.max_timelock
    with reverts("AIGCExchangeTimelockTooLate", timelock=latest + 1, latest=latest):
        market.exchange.lock_purchase(actors.buyer, token_id, hashlock_of(new_secret()), latest + 1, PRICE)


# -- withdrawPurchase ---------------------------------------------------------------------------


def test_claiming_a_sale_moves_the_token_to_the_buyer(market, actors):
    token_id = final_product(market, actors.producer, actors.esp)
    lock, secret = open_purchase(market, actors.buyer, token_id)
    tx = market.exchange.withdraw_purchase(actors.producer, lock.terms, secret)
    assert market.registry.owner_of(token_id) == actors.buyer.address
    assert market.exchange.get_lock(lock.lock_id).state is LockState.WITHDRAWN
    assert tx.event("Withdrawn").args == {"id": lock.lock_id, "preimage": secret}


def test_a_producer_selling_its_own_product_is_credited_the_whole_price(market, actors):
    token_id = final_product(market, actors.producer, actors.esp)
    lock, secret = open_purchase(market, actors.buyer, token_id)
    producer_before = market.chain.balance(actors.producer.address)
    exchange_before = market.exchange.balance()

    tx = market.exchange.withdraw_purchase(actors.producer, lock.terms, secret)

    assert market.exchange.credit_of(actors.producer.address) == PRICE
    credited = [e.args for e in tx.events if e.name == "Credited"]
    assert credited == [{"account": actors.producer.address, "amount": PRICE, "reason": b"proceeds".ljust(32, b"\0")}]
    # Nothing is paid out yet: the price moved from the lock to the seller's credit.
    assert market.chain.balance(actors.producer.address) == producer_before - tx.fee_wei
    assert market.exchange.balance() == exchange_before


def test_a_resale_credits_exactly_the_royalty_to_the_producer_and_the_rest_to_the_reseller(market, actors):
    token_id = sold_to_buyer(market, actors)
    producer_credit = market.exchange.credit_of(actors.producer.address)
    lock, secret = open_purchase(market, actors.other, token_id, price=RESALE_PRICE)
    assert lock.terms.seller == actors.buyer.address

    tx = market.exchange.withdraw_purchase(actors.buyer, lock.terms, secret)

    assert market.exchange.credit_of(actors.producer.address) == producer_credit + RESALE_ROYALTY
    assert market.exchange.credit_of(actors.buyer.address) == RESALE_PROCEEDS
    assert RESALE_PROCEEDS + RESALE_ROYALTY == RESALE_PRICE
    reasons = {e.args["reason"].rstrip(b"\0"): (e.args["account"], e.args["amount"]) for e in tx.events if e.name == "Credited"}
    assert reasons == {b"proceeds": (actors.buyer.address, RESALE_PROCEEDS), b"royalty": (actors.producer.address, RESALE_ROYALTY)}
    assert market.registry.owner_of(token_id) == actors.other.address


def test_approval_for_all_lets_the_seller_claim_a_sale(market, actors):
    token_id = register(market, actors.producer, actors.esp, make_content("approved for all")).token_id
    make_final(market, token_id)
    market.chain.transact(market.registry.contract.functions.setApprovalForAll(market.exchange.address, True), actors.producer)
    lock, secret = open_purchase(market, actors.buyer, token_id)
    market.exchange.withdraw_purchase(actors.producer, lock.terms, secret)
    assert market.registry.owner_of(token_id) == actors.buyer.address


def test_claiming_a_sale_one_second_before_the_timelock_succeeds(market, actors):
    token_id = final_product(market, actors.producer, actors.esp)
    lock, secret = open_purchase(market, actors.buyer, token_id)
    market.chain.set_next_block_timestamp(lock.terms.timelock - 1)
    market.exchange.withdraw_purchase(actors.producer, lock.terms, secret)
    assert market.registry.owner_of(token_id) == actors.buyer.address


def test_claiming_a_sale_exactly_at_the_timelock_reverts(market, actors):
    token_id = final_product(market, actors.producer, actors.esp)
    lock, secret = open_purchase(market, actors.buyer, token_id)
    market.chain.set_next_block_timestamp(lock.terms.timelock)
    with reverts("AIGCExchangeTimelockExpired", id=lock.lock_id, timelock=lock.terms.timelock):
        market.exchange.withdraw_purchase(actors.producer, lock.terms, secret)


def test_claiming_a_sale_with_a_wrong_secret_reverts(market, actors):
    token_id = final_product(market, actors.producer, actors.esp)
    lock, _ = open_purchase(market, actors.buyer, token_id)
    with reverts("AIGCExchangeWrongPreimage", id=lock.lock_id):
        market.exchange.withdraw_purchase(actors.producer, lock.terms, new_secret())


def test_claiming_a_sale_with_altered_terms_finds_no_lock(market, actors):
    token_id = final_product(market, actors.producer, actors.esp)
    lock, secret = open_purchase(market, actors.buyer, token_id)
    richer = replace(lock.terms, price=2 * PRICE)
    with reverts("AIGCExchangeUnknownLock", id=market.exchange.purchase_id(richer)):
        market.exchange.withdraw_purchase(actors.producer, richer, secret)


def test_claiming_a_sale_without_approving_the_exchange_reverts(market, actors):
    token_id = register(market, actors.producer, actors.esp, make_content("not approved")).token_id
    make_final(market, token_id)
    lock, secret = open_purchase(market, actors.buyer, token_id)
    with reverts("AIGCExchangeNotApproved", tokenId=token_id):
        market.exchange.withdraw_purchase(actors.producer, lock.terms, secret)
    assert market.registry.owner_of(token_id) == actors.producer.address


def test_claiming_a_sale_after_transferring_the_token_away_reverts(market, actors):
    token_id = final_product(market, actors.producer, actors.esp)
    lock, secret = open_purchase(market, actors.buyer, token_id)
    market.registry.transfer(actors.producer, actors.other.address, token_id)
    with reverts("AIGCExchangeSellerNotOwner", tokenId=token_id, seller=actors.producer.address):
        market.exchange.withdraw_purchase(actors.producer, lock.terms, secret)


def test_the_new_owner_cannot_claim_a_purchase_locked_for_the_previous_one(market, actors):
    token_id = final_product(market, actors.producer, actors.esp)
    lock, secret = open_purchase(market, actors.buyer, token_id)
    market.registry.transfer(actors.producer, actors.other.address, token_id)
    with reverts("AIGCExchangeNotReceiver", id=lock.lock_id, caller=actors.other.address):
        market.exchange.withdraw_purchase(actors.other, lock.terms, secret)


def test_a_second_claim_of_a_sale_reverts_as_settled(market, actors):
    token_id = final_product(market, actors.producer, actors.esp)
    lock, secret = open_purchase(market, actors.buyer, token_id)
    market.exchange.withdraw_purchase(actors.producer, lock.terms, secret)
    with reverts("AIGCExchangeLockSettled", id=lock.lock_id, state=LockState.WITHDRAWN):
        market.exchange.withdraw_purchase(actors.producer, lock.terms, secret)


# -- refundPurchase -----------------------------------------------------------------------------


def test_the_buyer_refunds_a_purchase_at_its_timelock(market, actors):
    token_id = final_product(market, actors.producer, actors.esp)
    lock, _ = open_purchase(market, actors.buyer, token_id)
    market.chain.set_next_block_timestamp(lock.terms.timelock)
    before = market.chain.balance(actors.buyer.address)
    exchange_before = market.exchange.balance()

    tx = market.exchange.refund_purchase(actors.buyer, lock.terms)

    assert market.chain.balance(actors.buyer.address) == before + PRICE - tx.fee_wei
    assert market.exchange.balance() == exchange_before - PRICE
    assert tx.event("Refunded").args == {"id": lock.lock_id}
    assert market.exchange.get_lock(lock.lock_id).state is LockState.REFUNDED
    assert market.registry.owner_of(token_id) == actors.producer.address


def test_refunding_a_deliverable_purchase_one_second_before_its_timelock_reverts(market, actors):
    token_id = final_product(market, actors.producer, actors.esp)
    lock, _ = open_purchase(market, actors.buyer, token_id)
    market.chain.set_next_block_timestamp(lock.terms.timelock - 1)
    with reverts("AIGCExchangeTimelockNotExpired", id=lock.lock_id, timelock=lock.terms.timelock):
        market.exchange.refund_purchase(actors.buyer, lock.terms)


def test_the_buyer_refunds_at_once_when_the_seller_transferred_the_token_away(market, actors):
    token_id = final_product(market, actors.producer, actors.esp)
    lock, _ = open_purchase(market, actors.buyer, token_id)
    market.registry.transfer(actors.producer, actors.other.address, token_id)
    before = market.chain.balance(actors.buyer.address)

    tx = market.exchange.refund_purchase(actors.buyer, lock.terms)

    assert block_time(market, tx) < lock.terms.timelock
    assert market.chain.balance(actors.buyer.address) == before + PRICE - tx.fee_wei
    assert market.exchange.get_lock(lock.lock_id).state is LockState.REFUNDED


def test_the_buyer_refunds_a_purchase_the_seller_never_approved(market, actors):
    token_id = register(market, actors.producer, actors.esp, make_content("never approved")).token_id
    make_final(market, token_id)
    lock, secret = open_purchase(market, actors.buyer, token_id)
    with reverts("AIGCExchangeNotApproved"):
        market.exchange.withdraw_purchase(actors.producer, lock.terms, secret)
    market.chain.set_next_block_timestamp(lock.terms.timelock)
    market.exchange.refund_purchase(actors.buyer, lock.terms)
    assert market.exchange.get_lock(lock.lock_id).state is LockState.REFUNDED


@pytest.mark.parametrize("caller", ["producer", "attacker"])
def test_refunding_a_purchase_by_anyone_but_the_buyer_reverts(market, actors, caller):
    token_id = final_product(market, actors.producer, actors.esp)
    lock, _ = open_purchase(market, actors.buyer, token_id)
    market.chain.set_next_block_timestamp(lock.terms.timelock)
    account = getattr(actors, caller)
    with reverts("AIGCExchangeNotSender", id=lock.lock_id, caller=account.address):
        market.exchange.refund_purchase(account, lock.terms)


def test_refunding_a_claimed_purchase_reverts_as_settled(market, actors):
    token_id = final_product(market, actors.producer, actors.esp)
    lock, secret = open_purchase(market, actors.buyer, token_id)
    market.exchange.withdraw_purchase(actors.producer, lock.terms, secret)
    market.chain.set_next_block_timestamp(lock.terms.timelock)
    with reverts("AIGCExchangeLockSettled", id=lock.lock_id, state=LockState.WITHDRAWN):
        market.exchange.refund_purchase(actors.buyer, lock.terms)


def test_refunding_a_purchase_that_was_never_locked_reverts(market, actors):
    token_id = final_product(market, actors.producer, actors.esp)
    terms = Purchase(
        actors.buyer.address, actors.producer.address, token_id, PRICE, hashlock_of(new_secret()), market.chain.now() + HOUR
    )
    with reverts("AIGCExchangeUnknownLock", id=market.exchange.purchase_id(terms)):
        market.exchange.refund_purchase(actors.buyer, terms)


# -- credits ------------------------------------------------------------------------------------


def test_withdrawing_a_credit_pays_exactly_the_credit_and_clears_it(market, actors):
    token_id = sold_to_buyer(market, actors)
    lock, secret = open_purchase(market, actors.other, token_id, price=RESALE_PRICE)
    market.exchange.withdraw_purchase(actors.buyer, lock.terms, secret)
    before = market.chain.balance(actors.buyer.address)
    exchange_before = market.exchange.balance()

    tx = market.exchange.withdraw_credit(actors.buyer)

    assert market.chain.balance(actors.buyer.address) == before + RESALE_PROCEEDS - tx.fee_wei
    assert market.exchange.balance() == exchange_before - RESALE_PROCEEDS
    assert market.exchange.credit_of(actors.buyer.address) == 0
    assert tx.event("CreditWithdrawn").args == {"account": actors.buyer.address, "amount": RESALE_PROCEEDS}


def test_credits_of_several_sales_add_up_and_are_withdrawn_at_once(market, actors):
    token_id = sold_to_buyer(market, actors)  # the producer's credit: PRICE
    lock, secret = open_purchase(market, actors.other, token_id, price=RESALE_PRICE)
    market.exchange.withdraw_purchase(actors.buyer, lock.terms, secret)
    assert market.exchange.credit_of(actors.producer.address) == PRICE + RESALE_ROYALTY
    before = market.chain.balance(actors.producer.address)
    tx = market.exchange.withdraw_credit(actors.producer)
    assert market.chain.balance(actors.producer.address) == before + PRICE + RESALE_ROYALTY - tx.fee_wei


def test_withdrawing_a_credit_without_one_reverts(market, actors):
    with reverts("AIGCExchangeNoCredit", account=actors.other.address):
        market.exchange.withdraw_credit(actors.other)


def test_withdrawing_a_credit_twice_reverts(market, actors):
    sold_to_buyer(market, actors)
    market.exchange.withdraw_credit(actors.producer)
    with reverts("AIGCExchangeNoCredit", account=actors.producer.address):
        market.exchange.withdraw_credit(actors.producer)


# -- proveEquivocation --------------------------------------------------------------------------


def test_proving_equivocation_slashes_the_esp_and_compensates_the_later_producer(market, actors):
    first, second = equivocating_jobs(market, actors)
    exchange_before = market.exchange.balance()

    tx = market.exchange.prove_equivocation(actors.other, first.offer, first.opening, second.offer, second.opening)

    assert market.exchange.esp_info(actors.esp.address) == EspInfo(EspState.SLASHED, STAKE - 2 * COMPENSATION, 0)
    assert market.exchange.credit_of(actors.buyer.address) == COMPENSATION
    assert market.exchange.total_forfeited() == COMPENSATION
    assert market.exchange.credit_of(actors.other.address) == 0
    assert market.exchange.credit_of(actors.producer.address) == 0
    assert market.exchange.balance() == exchange_before
    assert tx.event("EspSlashed").args == {
        "esp": actors.esp.address,
        "beneficiary": actors.buyer.address,
        "compensation": COMPENSATION,
        "earlierLock": market.exchange.offer_id(first.offer),
        "laterLock": market.exchange.offer_id(second.offer),
    }
    assert tx.event("Credited").args == {
        "account": actors.buyer.address,
        "amount": COMPENSATION,
        "reason": b"slash".ljust(32, b"\0"),
    }


def test_the_later_lock_is_compensated_in_whichever_order_the_proof_names_them(market, actors):
    first, second = equivocating_jobs(market, actors)
    market.exchange.prove_equivocation(actors.producer, second.offer, second.opening, first.offer, first.opening)
    assert market.exchange.credit_of(actors.buyer.address) == COMPENSATION
    assert market.exchange.credit_of(actors.producer.address) == 0


def test_the_later_producer_withdraws_its_compensation(market, actors):
    first, second = equivocating_jobs(market, actors)
    market.exchange.prove_equivocation(actors.other, first.offer, first.opening, second.offer, second.opening)
    before = market.chain.balance(actors.buyer.address)
    tx = market.exchange.withdraw_credit(actors.buyer)
    assert market.chain.balance(actors.buyer.address) == before + COMPENSATION - tx.fee_wei


def test_equivocation_of_settled_locks_can_still_be_proven(market, actors):
    first, second = equivocating_jobs(market, actors)
    market.exchange.withdraw_generation(actors.esp, first.offer, first.key)
    market.exchange.withdraw_generation(actors.esp, second.offer, second.key)
    market.exchange.prove_equivocation(actors.other, first.offer, first.opening, second.offer, second.opening)
    assert market.exchange.esp_info(actors.esp.address).state is EspState.SLASHED


def test_a_slashed_esps_offers_can_no_longer_be_locked(market, actors):
    first, second = equivocating_jobs(market, actors)
    pending = offer(market, actors.other, actors.esp, make_content("after the slash"))
    market.exchange.prove_equivocation(actors.other, first.offer, first.opening, second.offer, second.opening)
    with reverts("AIGCExchangeEspNotActive", esp=actors.esp.address):
        market.exchange.lock_generation(actors.other, pending.signed)


def test_proving_the_same_equivocation_twice_reverts_as_already_compensated(market, actors):
    first, second = equivocating_jobs(market, actors)
    market.exchange.prove_equivocation(actors.other, first.offer, first.opening, second.offer, second.opening)
    with reverts("AIGCExchangeAlreadyCompensated", laterLock=market.exchange.offer_id(second.offer)):
        market.exchange.prove_equivocation(actors.other, second.offer, second.opening, first.offer, first.opening)
    assert market.exchange.credit_of(actors.buyer.address) == COMPENSATION


def test_each_later_lock_is_compensated_from_what_is_left_of_the_stake(market, actors):
    content = make_content("sold three times")
    first, second = equivocating_jobs(market, actors, content)
    third = offer(market, actors.other, actors.esp, content)
    market.exchange.lock_generation(actors.other, third.signed)
    market.exchange.prove_equivocation(actors.attacker, first.offer, first.opening, second.offer, second.opening)

    market.exchange.prove_equivocation(actors.attacker, first.offer, first.opening, third.offer, third.opening)

    assert market.exchange.credit_of(actors.other.address) == COMPENSATION
    assert market.exchange.esp_info(actors.esp.address).stake == STAKE - 4 * COMPENSATION
    assert market.exchange.total_forfeited() == 2 * COMPENSATION


def test_compensation_is_capped_at_half_the_remaining_stake_and_as_much_is_forfeited(market, actors):
    content = make_content("an expensive copy")
    first = offer(market, actors.producer, actors.esp, content)
    second = offer(market, actors.buyer, actors.esp, content, fee=STAKE)
    market.exchange.lock_generation(actors.producer, first.signed)
    market.exchange.lock_generation(actors.buyer, second.signed)

    tx = market.exchange.prove_equivocation(actors.other, first.offer, first.opening, second.offer, second.opening)

    assert tx.event("EspSlashed").args["compensation"] == STAKE // 2
    assert market.exchange.credit_of(actors.buyer.address) == STAKE // 2
    assert market.exchange.total_forfeited() == STAKE // 2
    assert market.exchange.esp_info(actors.esp.address) == EspInfo(EspState.SLASHED, 0, 0)


def test_a_stake_spent_on_compensation_leaves_nothing_to_slash(market, actors):
    content = make_content("an expensive copy")
    first = offer(market, actors.producer, actors.esp, content)
    second = offer(market, actors.buyer, actors.esp, content, fee=STAKE)
    third = offer(market, actors.other, actors.esp, content)
    for producer, job in ((actors.producer, first), (actors.buyer, second), (actors.other, third)):
        market.exchange.lock_generation(producer, job.signed)
    market.exchange.prove_equivocation(actors.attacker, first.offer, first.opening, second.offer, second.opening)
    with reverts("AIGCExchangeNothingToSlash", esp=actors.esp.address):
        market.exchange.prove_equivocation(actors.attacker, first.offer, first.opening, third.offer, third.opening)


def test_one_content_sold_by_two_esps_slashes_the_esp_of_the_later_lock(market, actors):
    content = make_content("sold by two ESPs")
    stake(market, actors.other)
    a = offer(market, actors.producer, actors.esp, content)
    b = offer(market, actors.buyer, actors.other, content)
    market.exchange.lock_generation(actors.producer, a.signed)
    market.exchange.lock_generation(actors.buyer, b.signed)

    tx = market.exchange.prove_equivocation(actors.attacker, b.offer, b.opening, a.offer, a.opening)

    assert tx.event("EspSlashed").args["esp"] == actors.other.address
    assert market.exchange.esp_info(actors.other.address) == EspInfo(EspState.SLASHED, STAKE - 2 * COMPENSATION, 0)
    assert market.exchange.esp_info(actors.esp.address) == EspInfo(EspState.ACTIVE, STAKE, 0)
    assert market.exchange.credit_of(actors.buyer.address) == COMPENSATION


@pytest.mark.parametrize("distance", [1, PARAMS.similarity_threshold])
def test_a_near_copy_of_its_own_earlier_work_slashes_the_esp(market, actors, distance):
    original = make_content("own work")
    near = make_content("own work, retouched", phash=flip_bits(original.phash, distance))
    a = offer(market, actors.producer, actors.esp, original)
    b = offer(market, actors.buyer, actors.esp, near)
    market.exchange.lock_generation(actors.producer, a.signed)
    market.exchange.lock_generation(actors.buyer, b.signed)
    market.exchange.prove_equivocation(actors.other, a.offer, a.opening, b.offer, b.opening)
    assert market.exchange.credit_of(actors.buyer.address) == COMPENSATION


def test_a_variant_just_beyond_the_similarity_threshold_is_not_equivocation(market, actors):
    original = make_content("own work")
    variant = make_content("own work, redone", phash=flip_bits(original.phash, PARAMS.similarity_threshold + 1))
    a = offer(market, actors.producer, actors.esp, original)
    b = offer(market, actors.buyer, actors.esp, variant)
    market.exchange.lock_generation(actors.producer, a.signed)
    market.exchange.lock_generation(actors.buyer, b.signed)
    with reverts("AIGCExchangeNotEquivocation"):
        market.exchange.prove_equivocation(actors.other, a.offer, a.opening, b.offer, b.opening)


def test_a_near_copy_of_another_esps_earlier_work_slashes_the_later_esp(market, actors):
    original = make_content("one ESP's work")
    near = make_content("another ESP's copy", phash=flip_bits(original.phash, PARAMS.similarity_threshold))
    a = offer(market, actors.producer, actors.esp, original)
    b = offer(market, actors.buyer, actors.other, near)
    market.exchange.lock_generation(actors.producer, a.signed)
    market.exchange.lock_generation(actors.buyer, b.signed)
    tx = market.exchange.prove_equivocation(actors.attacker, a.offer, a.opening, b.offer, b.opening)
    assert tx.event("EspSlashed").args["esp"] == actors.other.address
    assert market.exchange.esp_info(actors.esp.address).state is EspState.ACTIVE


@pytest.mark.parametrize("wrong", ["first", "second"])
def test_an_opening_that_does_not_open_the_commitment_reverts(market, actors, wrong):
    first, second = equivocating_jobs(market, actors)
    opening_a, opening_b = first.opening, second.opening
    if wrong == "first":
        opening_a = replace(opening_a, salt=new_secret())
    else:
        opening_b = replace(opening_b, salt=new_secret())
    bad_offer = first.offer if wrong == "first" else second.offer
    with reverts("AIGCExchangeOpeningMismatch", id=market.exchange.offer_id(bad_offer)):
        market.exchange.prove_equivocation(actors.other, first.offer, opening_a, second.offer, opening_b)


def test_two_jobs_for_the_same_producer_are_not_equivocation(market, actors):
    content = make_content("twice for one producer")
    a = offer(market, actors.producer, actors.esp, content)
    b = offer(market, actors.producer, actors.esp, content)
    market.exchange.lock_generation(actors.producer, a.signed)
    market.exchange.lock_generation(actors.producer, b.signed)
    with reverts("AIGCExchangeNotEquivocation"):
        market.exchange.prove_equivocation(actors.other, a.offer, a.opening, b.offer, b.opening)


def test_equivocation_with_an_offer_never_locked_reverts(market, actors):
    content = make_content("only one locked")
    a = offer(market, actors.producer, actors.esp, content)
    b = offer(market, actors.buyer, actors.esp, content)
    market.exchange.lock_generation(actors.producer, a.signed)
    with reverts("AIGCExchangeUnknownLock", id=market.exchange.offer_id(b.offer)):
        market.exchange.prove_equivocation(actors.other, a.offer, a.opening, b.offer, b.opening)


def staged_self_slash(market, actors):
    """The ESP has two producer keys of its own (accomplice, attacker) lock one content, the later one
    with a fee as large as the stake; the ESP takes both fees back and the later key proves the pair."""
    content = make_content("staged pair")
    first = offer(market, actors.accomplice, actors.esp, content, fee=PARAMS.fee_floor)
    second = offer(market, actors.attacker, actors.esp, content, fee=STAKE)
    market.exchange.lock_generation(actors.accomplice, first.signed)
    market.exchange.lock_generation(actors.attacker, second.signed)
    market.exchange.withdraw_generation(actors.esp, first.offer, first.key)
    market.exchange.withdraw_generation(actors.esp, second.offer, second.key)
    market.exchange.prove_equivocation(actors.attacker, first.offer, first.opening, second.offer, second.opening)
    market.exchange.withdraw_credit(actors.attacker)


def test_an_esp_slashing_itself_through_its_own_producer_keys_loses_at_least_what_it_recovers(market, actors):
    stake(market, actors.esp)
    group = (actors.esp, actors.accomplice, actors.attacker)
    worth_before = sum(market.chain.balance(a.address) for a in group)
    fees_before = market.chain.fees_paid_wei

    staged_self_slash(market, actors)

    gas = market.chain.fees_paid_wei - fees_before
    recovered = sum(market.chain.balance(a.address) for a in group) + gas - worth_before
    lost = STAKE - recovered
    assert market.exchange.esp_info(actors.esp.address) == EspInfo(EspState.SLASHED, 0, 0)
    assert recovered == STAKE // 2 == market.exchange.total_forfeited()
    assert lost >= recovered


def test_a_victim_who_proves_after_the_esps_stake_sized_self_slash_finds_nothing_to_slash(market, actors):
    """The residual risk of docs/protocol.md (row E): the ESP picks the fee that sizes the compensation,
    so a staged self-proof priced at its stake empties it; the price was half the stake, forfeited."""
    content = make_content("sold to a victim")
    victim_job = offer(market, actors.producer, actors.esp, content)
    earlier = offer(market, actors.other, actors.esp, content, fee=PARAMS.fee_floor)
    market.exchange.lock_generation(actors.other, earlier.signed)
    market.exchange.lock_generation(actors.producer, victim_job.signed)
    staged_self_slash(market, actors)

    with reverts("AIGCExchangeNothingToSlash", esp=actors.esp.address):
        market.exchange.prove_equivocation(actors.producer, earlier.offer, earlier.opening, victim_job.offer, victim_job.opening)
    assert market.exchange.total_forfeited() == STAKE // 2


# -- constructor --------------------------------------------------------------------------------

EXCHANGE_CONFIG = {
    "min_timelock": PARAMS.min_timelock,
    "max_timelock": PARAMS.max_timelock,
    "fee_floor": PARAMS.fee_floor,
    "min_stake": PARAMS.min_stake,
    "unbonding_delay": PARAMS.unbonding_delay,
}


def deploy_registry(market, deployer, exchange: str):
    """A registry with the test parameters that names `exchange` as its exchange."""
    contract, _ = market.chain.deploy(
        load_artifact("AIGCRegistry"),
        deployer,
        PARAMS.registration_bond,
        PARAMS.challenge_deposit,
        PARAMS.similarity_threshold,
        PARAMS.royalty_bps,
        PARAMS.challenge_window,
        exchange,
    )
    return contract


def deploy_exchange(market, deployer, registry: str, **config):
    values = {**EXCHANGE_CONFIG, **config}
    return market.chain.deploy(
        load_artifact("AIGCExchange"),
        deployer,
        registry,
        values["min_timelock"],
        values["max_timelock"],
        values["fee_floor"],
        values["min_stake"],
        values["unbonding_delay"],
    )


def registry_for_next_exchange(market, deployer):
    """A registry naming the exchange that `deployer`'s next deployment will create, and that address."""
    nonce = market.chain.nonce(deployer.address)
    registry = deploy_registry(market, deployer, create_address(deployer.address, nonce + 1))
    return registry, create_address(deployer.address, nonce + 1)


def test_an_exchange_deploys_with_the_shortest_allowed_unbonding_delay(market, actors):
    registry, predicted = registry_for_next_exchange(market, actors.other)
    shortest = PARAMS.max_timelock + PARAMS.challenge_window
    exchange, _ = deploy_exchange(market, actors.other, registry.address, unbonding_delay=shortest)
    assert exchange.address == predicted
    assert market.chain.call(exchange.functions.unbondingDelay()) == shortest
    assert market.chain.call(exchange.functions.registry()) == registry.address


@pytest.mark.parametrize(
    "config",
    [
        {"min_timelock": 0},
        {"max_timelock": PARAMS.min_timelock - 1},
        {"fee_floor": 0},
        {"min_stake": 0},
        {"min_stake": 2**128},
        {"unbonding_delay": PARAMS.max_timelock + PARAMS.challenge_window - 1},
    ],
    ids=[
        "zero-min-timelock",
        "max-below-min",
        "zero-fee-floor",
        "zero-min-stake",
        "stake-above-uint128",
        "unbonding-shorter-than-timelock-plus-window",
    ],
)
def test_an_exchange_with_an_invalid_config_cannot_be_deployed(market, actors, config):
    registry, _ = registry_for_next_exchange(market, actors.other)
    with reverts("AIGCExchangeInvalidConfig"):
        deploy_exchange(market, actors.other, registry.address, **config)


def test_an_exchange_whose_registry_names_another_exchange_cannot_be_deployed(market, actors):
    registry = deploy_registry(market, actors.other, market.exchange.address)
    expected = create_address(actors.other.address, market.chain.nonce(actors.other.address))
    with reverts("AIGCExchangeRegistryMismatch", expected=expected):
        deploy_exchange(market, actors.other, registry.address)


def test_the_deployed_exchange_holds_the_test_parameters(market):
    exchange = market.exchange
    assert (
        exchange.min_timelock(),
        exchange.max_timelock(),
        exchange.fee_floor(),
        exchange.min_stake(),
        exchange.unbonding_delay(),
    ) == tuple(EXCHANGE_CONFIG.values())
    assert market.chain.call(exchange.contract.functions.registry()) == market.registry.address
