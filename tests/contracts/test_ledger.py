"""ReputationLedger: one rating per settled generation lock, by the producer who paid, per (producer, ESP)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from chain_helpers import HOUR, make_content, open_generation, open_purchase, register, reverts

from market.chain.contracts import LockState, RatingStats


class Addr(str):
    """An address that equals its checksummed and its lowercase spelling.

    `ContractRevert.params` carries addresses as eth_abi decodes them (lowercase hex) while events
    carry checksummed ones; revert parameters are compared through this.
    """

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and other.lower() == self.lower()

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = str.__hash__


def block_time(market, tx) -> int:
    return int(market.chain.w3.eth.get_block(tx.block_number)["timestamp"])


def withdrawn_lock(market, producer, esp) -> bytes:
    """A generation lock from `producer` that `esp` has withdrawn with the key."""
    lock, key = open_generation(market, producer, esp)
    market.exchange.withdraw(esp, lock.lock_id, key)
    return lock.lock_id


def refunded_lock(market, producer, esp) -> bytes:
    """A generation lock from `producer` that expired unclaimed and was refunded to it."""
    lock, _ = open_generation(market, producer, esp)
    market.chain.advance_time(HOUR)
    market.exchange.refund(producer, lock.lock_id)
    return lock.lock_id


@contextmanager
def nothing_changes(market, lock_id: bytes, producer, esp) -> Iterator[None]:
    """The body must revert and leave the lock's rating and the pair's stats as they were."""
    ledger = market.ledger
    rated = ledger.is_rated(lock_id)
    stats = ledger.stats(producer.address, esp.address)
    balance = market.chain.balance(producer.address)
    yield
    assert ledger.is_rated(lock_id) is rated
    assert ledger.stats(producer.address, esp.address) == stats
    assert market.chain.balance(producer.address) == balance


# -- ratings ----------------------------------------------------------------------------------------


def test_positive_rating_after_withdrawal_counts_a_positive(market, actors):
    lock_id = withdrawn_lock(market, actors.producer, actors.esp)
    assert market.ledger.stats(actors.producer.address, actors.esp.address) == RatingStats(0, 0, 0)
    tx = market.ledger.rate(actors.producer, lock_id, True, 90)
    assert market.ledger.stats(actors.producer.address, actors.esp.address) == RatingStats(
        positives=1, negatives=0, last_rated_at=block_time(market, tx)
    )


def test_rating_emits_rated(market, actors):
    lock_id = withdrawn_lock(market, actors.producer, actors.esp)
    tx = market.ledger.rate(actors.producer, lock_id, True, 65535)
    event = tx.event("Rated")
    assert event.address == market.ledger.address
    assert {**event.args, "lockId": bytes(event.args["lockId"])} == {
        "producer": actors.producer.address,
        "esp": actors.esp.address,
        "lockId": lock_id,
        "positive": True,
        "score": 65535,
        "at": block_time(market, tx),
    }


def test_rating_marks_the_lock_rated(market, actors):
    lock_id = withdrawn_lock(market, actors.producer, actors.esp)
    assert market.ledger.is_rated(lock_id) is False
    market.ledger.rate(actors.producer, lock_id, True, 1)
    assert market.ledger.is_rated(lock_id) is True


def test_rating_moves_no_ether(market, actors):
    lock_id = withdrawn_lock(market, actors.producer, actors.esp)
    producer_before = market.chain.balance(actors.producer.address)
    esp_before = market.chain.balance(actors.esp.address)
    tx = market.ledger.rate(actors.producer, lock_id, True, 1)
    assert market.chain.balance(actors.producer.address) == producer_before - tx.fee_wei
    assert market.chain.balance(actors.esp.address) == esp_before
    assert market.ledger.balance() == 0


def test_negative_rating_after_refund_counts_a_negative(market, actors):
    lock_id = refunded_lock(market, actors.producer, actors.esp)
    assert market.exchange.get_lock(lock_id).state is LockState.REFUNDED
    tx = market.ledger.rate(actors.producer, lock_id, False, 0)
    assert market.ledger.stats(actors.producer.address, actors.esp.address) == RatingStats(
        positives=0, negatives=1, last_rated_at=block_time(market, tx)
    )
    assert tx.event("Rated").args["positive"] is False
    assert market.ledger.is_rated(lock_id) is True


def test_negative_rating_of_a_withdrawn_lock_counts_a_negative(market, actors):
    lock_id = withdrawn_lock(market, actors.producer, actors.esp)
    market.ledger.rate(actors.producer, lock_id, False, 10)
    stats = market.ledger.stats(actors.producer.address, actors.esp.address)
    assert (stats.positives, stats.negatives) == (0, 1)


def test_ratings_accumulate_and_keep_the_time_of_the_last(market, actors):
    first = withdrawn_lock(market, actors.producer, actors.esp)
    second = withdrawn_lock(market, actors.producer, actors.esp)
    third = refunded_lock(market, actors.producer, actors.esp)
    market.ledger.rate(actors.producer, first, True, 80)
    market.ledger.rate(actors.producer, second, True, 70)
    market.chain.advance_time(100)
    last = market.ledger.rate(actors.producer, third, False, 5)
    assert market.ledger.stats(actors.producer.address, actors.esp.address) == RatingStats(
        positives=2, negatives=1, last_rated_at=block_time(market, last)
    )


# -- rating reverts ---------------------------------------------------------------------------------


def test_rating_a_lock_twice_reverts(market, actors):
    lock_id = withdrawn_lock(market, actors.producer, actors.esp)
    market.ledger.rate(actors.producer, lock_id, True, 50)
    with (
        nothing_changes(market, lock_id, actors.producer, actors.esp),
        reverts("ReputationLedgerAlreadyRated", lockId=lock_id),
    ):
        market.ledger.rate(actors.producer, lock_id, False, 0)
    assert market.ledger.stats(actors.producer.address, actors.esp.address).positives == 1


def test_rating_a_refunded_lock_twice_reverts(market, actors):
    lock_id = refunded_lock(market, actors.producer, actors.esp)
    market.ledger.rate(actors.producer, lock_id, False, 0)
    with (
        nothing_changes(market, lock_id, actors.producer, actors.esp),
        reverts("ReputationLedgerAlreadyRated", lockId=lock_id),
    ):
        market.ledger.rate(actors.producer, lock_id, False, 0)


@pytest.mark.parametrize("rater", ["esp", "other"])
def test_rating_by_anyone_but_the_paying_producer_reverts(market, actors, rater):
    lock_id = withdrawn_lock(market, actors.producer, actors.esp)
    account = getattr(actors, rater)
    with (
        nothing_changes(market, lock_id, actors.producer, actors.esp),
        reverts("ReputationLedgerNotSender", lockId=lock_id, caller=Addr(account.address)),
    ):
        market.ledger.rate(account, lock_id, False, 0)
    assert market.ledger.stats(account.address, actors.esp.address) == RatingStats(0, 0, 0)


def test_rating_a_lock_still_open_reverts(market, actors):
    lock, _ = open_generation(market, actors.producer, actors.esp)
    with (
        nothing_changes(market, lock.lock_id, actors.producer, actors.esp),
        reverts("ReputationLedgerLockNotSettled", lockId=lock.lock_id),
    ):
        market.ledger.rate(actors.producer, lock.lock_id, False, 0)


def test_rating_an_expired_but_unrefunded_lock_reverts(market, actors):
    lock, _ = open_generation(market, actors.producer, actors.esp)
    market.chain.advance_time(2 * HOUR)
    market.chain.send_ether(actors.other, actors.accomplice.address, 1)  # mine a block past the timelock
    with (
        nothing_changes(market, lock.lock_id, actors.producer, actors.esp),
        reverts("ReputationLedgerLockNotSettled", lockId=lock.lock_id),
    ):
        market.ledger.rate(actors.producer, lock.lock_id, False, 0)


def test_positive_rating_of_a_refunded_lock_reverts(market, actors):
    lock_id = refunded_lock(market, actors.producer, actors.esp)
    with (
        nothing_changes(market, lock_id, actors.producer, actors.esp),
        reverts("ReputationLedgerPositiveRatingOfRefund", lockId=lock_id),
    ):
        market.ledger.rate(actors.producer, lock_id, True, 100)


def test_rating_an_unknown_lock_reverts(market, actors):
    unknown = bytes.fromhex("ab" * 32)
    with (
        nothing_changes(market, unknown, actors.producer, actors.esp),
        reverts("ReputationLedgerNotGenerationLock", lockId=unknown),
    ):
        market.ledger.rate(actors.producer, unknown, False, 0)


def test_rating_a_withdrawn_purchase_lock_reverts(market, actors):
    token_id = register(market, actors.producer, actors.esp, make_content("a")).token_id
    market.registry.approve(actors.producer, market.exchange.address, token_id)
    lock, secret = open_purchase(market, actors.buyer, token_id)
    market.exchange.withdraw(actors.producer, lock.lock_id, secret)
    assert market.exchange.get_lock(lock.lock_id).state is LockState.WITHDRAWN
    with (
        nothing_changes(market, lock.lock_id, actors.buyer, actors.producer),
        reverts("ReputationLedgerNotGenerationLock", lockId=lock.lock_id),
    ):
        market.ledger.rate(actors.buyer, lock.lock_id, False, 0)


# -- per-pair stats ---------------------------------------------------------------------------------


def test_ratings_of_another_esp_are_kept_apart(market, actors):
    market.ledger.rate(actors.producer, withdrawn_lock(market, actors.producer, actors.esp), True, 1)
    market.ledger.rate(actors.producer, refunded_lock(market, actors.producer, actors.other), False, 1)
    with_esp = market.ledger.stats(actors.producer.address, actors.esp.address)
    with_other = market.ledger.stats(actors.producer.address, actors.other.address)
    assert (with_esp.positives, with_esp.negatives) == (1, 0)
    assert (with_other.positives, with_other.negatives) == (0, 1)


def test_ratings_by_another_producer_are_kept_apart(market, actors):
    mine = market.ledger.rate(actors.producer, withdrawn_lock(market, actors.producer, actors.esp), True, 1)
    market.chain.advance_time(50)
    theirs = market.ledger.rate(actors.buyer, refunded_lock(market, actors.buyer, actors.esp), False, 1)
    stats = market.ledger.stats
    assert stats(actors.producer.address, actors.esp.address) == RatingStats(1, 0, block_time(market, mine))
    assert stats(actors.buyer.address, actors.esp.address) == RatingStats(0, 1, block_time(market, theirs))
    assert stats(actors.esp.address, actors.producer.address) == RatingStats(0, 0, 0)
