"""ReputationLedger (protocol v2): one rating per settled generation lock, by the producer who paid it,
named by the ESP's offer; counts per (producer, ESP)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import pytest
from chain_helpers import (
    FEE,
    block_time,
    final_product,
    make_content,
    offer,
    open_generation,
    open_purchase,
    paid_generation,
    reverts,
)

from market.chain.contracts import LockState, RatingStats
from market.chain.offers import Offer


def withdrawn_offer(market, producer, esp) -> Offer:
    """The offer of a generation lock from `producer` that `esp` has withdrawn with the key."""
    return paid_generation(market, producer, esp).offer


def refunded_offer(market, producer, esp) -> Offer:
    """The offer of a generation lock from `producer` that expired unclaimed and was refunded to it."""
    _, job = open_generation(market, producer, esp)
    market.chain.set_next_block_timestamp(job.offer.timelock)
    market.exchange.refund_generation(producer, job.offer)
    return job.offer


@contextmanager
def nothing_changes(market, subject: Offer, producer, esp) -> Iterator[None]:
    """The body must revert and leave the lock's rating and the pair's stats as they were."""
    ledger = market.ledger
    lock_id = market.exchange.offer_id(subject)
    rated = ledger.is_rated(lock_id)
    stats = ledger.stats(producer.address, esp.address)
    balance = market.chain.balance(producer.address)
    yield
    assert ledger.is_rated(lock_id) is rated
    assert ledger.stats(producer.address, esp.address) == stats
    assert market.chain.balance(producer.address) == balance


# -- ratings ----------------------------------------------------------------------------------------


def test_positive_rating_after_withdrawal_counts_a_positive(market, actors):
    subject = withdrawn_offer(market, actors.producer, actors.esp)
    assert market.ledger.stats(actors.producer.address, actors.esp.address) == RatingStats(0, 0, 0)
    tx = market.ledger.rate(actors.producer, subject, True, 90)
    assert market.ledger.stats(actors.producer.address, actors.esp.address) == RatingStats(
        positives=1, negatives=0, last_rated_at=block_time(market, tx)
    )


def test_rating_emits_rated_with_the_lock_and_its_fee(market, actors):
    subject = withdrawn_offer(market, actors.producer, actors.esp)
    tx = market.ledger.rate(actors.producer, subject, True, 65535)
    event = tx.event("Rated")
    assert event.address == market.ledger.address
    assert event.args == {
        "producer": actors.producer.address,
        "esp": actors.esp.address,
        "lockId": market.exchange.offer_id(subject),
        "positive": True,
        "score": 65535,
        "at": block_time(market, tx),
        "fee": FEE,
    }


def test_rating_marks_the_lock_rated(market, actors):
    subject = withdrawn_offer(market, actors.producer, actors.esp)
    lock_id = market.exchange.offer_id(subject)
    assert market.ledger.is_rated(lock_id) is False
    market.ledger.rate(actors.producer, subject, True, 1)
    assert market.ledger.is_rated(lock_id) is True


def test_rating_moves_no_ether(market, actors):
    subject = withdrawn_offer(market, actors.producer, actors.esp)
    producer_before = market.chain.balance(actors.producer.address)
    esp_before = market.chain.balance(actors.esp.address)
    tx = market.ledger.rate(actors.producer, subject, True, 1)
    assert market.chain.balance(actors.producer.address) == producer_before - tx.fee_wei
    assert market.chain.balance(actors.esp.address) == esp_before
    assert market.ledger.balance() == 0


def test_negative_rating_after_refund_counts_a_negative(market, actors):
    subject = refunded_offer(market, actors.producer, actors.esp)
    assert market.exchange.generation_lock(subject).state is LockState.REFUNDED
    tx = market.ledger.rate(actors.producer, subject, False, 0)
    assert market.ledger.stats(actors.producer.address, actors.esp.address) == RatingStats(
        positives=0, negatives=1, last_rated_at=block_time(market, tx)
    )
    assert tx.event("Rated").args["positive"] is False


def test_negative_rating_of_a_withdrawn_lock_counts_a_negative(market, actors):
    subject = withdrawn_offer(market, actors.producer, actors.esp)
    market.ledger.rate(actors.producer, subject, False, 10)
    stats = market.ledger.stats(actors.producer.address, actors.esp.address)
    assert (stats.positives, stats.negatives) == (0, 1)


def test_ratings_accumulate_and_keep_the_time_of_the_last(market, actors):
    first = withdrawn_offer(market, actors.producer, actors.esp)
    second = withdrawn_offer(market, actors.producer, actors.esp)
    third = refunded_offer(market, actors.producer, actors.esp)
    market.ledger.rate(actors.producer, first, True, 80)
    market.ledger.rate(actors.producer, second, True, 70)
    market.chain.advance_time(100)
    last = market.ledger.rate(actors.producer, third, False, 5)
    assert market.ledger.stats(actors.producer.address, actors.esp.address) == RatingStats(
        positives=2, negatives=1, last_rated_at=block_time(market, last)
    )


# -- rating reverts ---------------------------------------------------------------------------------


def test_rating_a_lock_twice_reverts(market, actors):
    subject = withdrawn_offer(market, actors.producer, actors.esp)
    market.ledger.rate(actors.producer, subject, True, 50)
    with (
        nothing_changes(market, subject, actors.producer, actors.esp),
        reverts("ReputationLedgerAlreadyRated", lockId=market.exchange.offer_id(subject)),
    ):
        market.ledger.rate(actors.producer, subject, False, 0)
    assert market.ledger.stats(actors.producer.address, actors.esp.address).positives == 1


def test_rating_a_refunded_lock_twice_reverts(market, actors):
    subject = refunded_offer(market, actors.producer, actors.esp)
    market.ledger.rate(actors.producer, subject, False, 0)
    with (
        nothing_changes(market, subject, actors.producer, actors.esp),
        reverts("ReputationLedgerAlreadyRated", lockId=market.exchange.offer_id(subject)),
    ):
        market.ledger.rate(actors.producer, subject, False, 0)


@pytest.mark.parametrize("rater", ["esp", "other"])
def test_rating_by_anyone_but_the_paying_producer_reverts(market, actors, rater):
    subject = withdrawn_offer(market, actors.producer, actors.esp)
    account = getattr(actors, rater)
    with (
        nothing_changes(market, subject, actors.producer, actors.esp),
        reverts("ReputationLedgerNotSender", lockId=market.exchange.offer_id(subject), caller=account.address),
    ):
        market.ledger.rate(account, subject, False, 0)
    assert market.ledger.stats(account.address, actors.esp.address) == RatingStats(0, 0, 0)


def test_rating_a_lock_still_open_reverts(market, actors):
    lock, job = open_generation(market, actors.producer, actors.esp)
    with (
        nothing_changes(market, job.offer, actors.producer, actors.esp),
        reverts("ReputationLedgerLockNotSettled", lockId=lock.lock_id),
    ):
        market.ledger.rate(actors.producer, job.offer, False, 0)


def test_rating_an_expired_but_unrefunded_lock_reverts(market, actors):
    lock, job = open_generation(market, actors.producer, actors.esp)
    market.chain.set_next_block_timestamp(job.offer.timelock + 1)
    with (
        nothing_changes(market, job.offer, actors.producer, actors.esp),
        reverts("ReputationLedgerLockNotSettled", lockId=lock.lock_id),
    ):
        market.ledger.rate(actors.producer, job.offer, False, 0)


def test_positive_rating_of_a_refunded_lock_reverts(market, actors):
    subject = refunded_offer(market, actors.producer, actors.esp)
    with (
        nothing_changes(market, subject, actors.producer, actors.esp),
        reverts("ReputationLedgerPositiveRatingOfRefund", lockId=market.exchange.offer_id(subject)),
    ):
        market.ledger.rate(actors.producer, subject, True, 100)


def test_rating_an_offer_that_was_never_locked_reverts(market, actors):
    never = offer(market, actors.producer, actors.esp, make_content("never locked")).offer
    with (
        nothing_changes(market, never, actors.producer, actors.esp),
        reverts("ReputationLedgerNotGenerationLock", lockId=market.exchange.offer_id(never)),
    ):
        market.ledger.rate(actors.producer, never, False, 0)


def test_rating_an_offer_with_altered_terms_finds_no_lock(market, actors):
    subject = withdrawn_offer(market, actors.producer, actors.esp)
    inflated = replace(subject, fee=100 * FEE)  # a rating weighted by a fee never paid
    with reverts("ReputationLedgerNotGenerationLock", lockId=market.exchange.offer_id(inflated)):
        market.ledger.rate(actors.producer, inflated, True, 100)


def test_rating_in_the_name_of_another_esp_finds_no_lock(market, actors):
    subject = withdrawn_offer(market, actors.producer, actors.esp)
    smeared = replace(subject, esp=actors.other.address)
    with reverts("ReputationLedgerNotGenerationLock", lockId=market.exchange.offer_id(smeared)):
        market.ledger.rate(actors.producer, smeared, False, 0)


def test_a_purchase_cannot_be_rated(market, actors):
    token_id = final_product(market, actors.producer, actors.esp)
    lock, secret = open_purchase(market, actors.buyer, token_id)
    market.exchange.withdraw_purchase(actors.producer, lock.terms, secret)
    # A purchase lock has no offer: the nearest a buyer can name is an offer with the purchase's terms.
    pretend = Offer(
        actors.producer.address,
        actors.buyer.address,
        lock.terms.hashlock,
        lock.terms.price,
        lock.terms.timelock,
        lock.terms.timelock,
        token_id,
        b"\x00" * 32,
    )
    with reverts("ReputationLedgerNotGenerationLock", lockId=market.exchange.offer_id(pretend)):
        market.ledger.rate(actors.buyer, pretend, False, 0)


# -- per-pair stats ---------------------------------------------------------------------------------


def test_ratings_of_another_esp_are_kept_apart(market, actors):
    market.ledger.rate(actors.producer, withdrawn_offer(market, actors.producer, actors.esp), True, 1)
    market.ledger.rate(actors.producer, refunded_offer(market, actors.producer, actors.other), False, 1)
    with_esp = market.ledger.stats(actors.producer.address, actors.esp.address)
    with_other = market.ledger.stats(actors.producer.address, actors.other.address)
    assert (with_esp.positives, with_esp.negatives) == (1, 0)
    assert (with_other.positives, with_other.negatives) == (0, 1)


def test_ratings_by_another_producer_are_kept_apart(market, actors):
    mine = market.ledger.rate(actors.producer, withdrawn_offer(market, actors.producer, actors.esp), True, 1)
    theirs = market.ledger.rate(actors.buyer, refunded_offer(market, actors.buyer, actors.esp), False, 1)
    stats = market.ledger.stats
    assert stats(actors.producer.address, actors.esp.address) == RatingStats(1, 0, block_time(market, mine))
    assert stats(actors.buyer.address, actors.esp.address) == RatingStats(0, 1, block_time(market, theirs))
    assert stats(actors.esp.address, actors.producer.address) == RatingStats(0, 0, 0)


def test_the_ledger_reads_the_markets_exchange(market):
    assert market.chain.call(market.ledger.contract.functions.exchange()) == market.exchange.address
