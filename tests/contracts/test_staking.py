"""AIGCExchange ESP staking: registerEsp, announceExit, withdrawStake, and what an ESP's state allows."""

from __future__ import annotations

import pytest
from chain_helpers import (
    FEE,
    PARAMS,
    STAKE,
    block_time,
    deploy_forwarder,
    make_content,
    offer,
    open_generation,
    reverts,
)

from market.chain.contracts import EspInfo, EspState, LockState

DELAY = PARAMS.unbonding_delay
COMPENSATION = FEE + PARAMS.registration_bond  # what the later producer of an equivocation is credited


def exiting(market, esp) -> int:
    """`esp` staked and announced its exit; returns when its stake becomes available."""
    market.exchange.register_esp(esp, STAKE)
    tx = market.exchange.announce_exit(esp)
    return block_time(market, tx) + DELAY


def slash(market, actors) -> None:
    """The ESP commits one content to the producer and to the buyer; the other account proves it."""
    content = make_content("sold twice")
    first = offer(market, actors.producer, actors.esp, content)
    second = offer(market, actors.buyer, actors.esp, content)
    market.exchange.lock_generation(actors.producer, first.signed)
    market.exchange.lock_generation(actors.buyer, second.signed)
    market.exchange.prove_equivocation(actors.other, first.offer, first.opening, second.offer, second.opening)


# -- registerEsp --------------------------------------------------------------------------------


def test_registering_with_the_minimum_stake_makes_the_esp_active(market, actors):
    assert market.exchange.esp_info(actors.esp.address) == EspInfo(EspState.NONE, 0, 0)
    exchange_before = market.exchange.balance()
    esp_before = market.chain.balance(actors.esp.address)

    tx = market.exchange.register_esp(actors.esp, STAKE)

    assert STAKE == PARAMS.min_stake == market.exchange.min_stake()
    assert market.exchange.esp_info(actors.esp.address) == EspInfo(EspState.ACTIVE, STAKE, 0)
    assert market.exchange.is_active_esp(actors.esp.address) is True
    assert tx.event("EspRegistered").args == {"esp": actors.esp.address, "stake": STAKE}
    assert market.exchange.balance() == exchange_before + STAKE
    assert market.chain.balance(actors.esp.address) == esp_before - STAKE - tx.fee_wei


def test_registering_with_more_than_the_minimum_keeps_the_whole_stake(market, actors):
    market.exchange.register_esp(actors.esp, 3 * STAKE + 1)
    assert market.exchange.esp_info(actors.esp.address).stake == 3 * STAKE + 1


@pytest.mark.parametrize("sent", [0, STAKE - 1])
def test_registering_with_too_small_a_stake_reverts(market, actors, sent):
    with reverts("AIGCExchangeStakeTooSmall", sent=sent, required=STAKE):
        market.exchange.register_esp(actors.esp, sent)
    assert market.exchange.esp_info(actors.esp.address).state is EspState.NONE


def test_registering_twice_reverts(market, actors):
    market.exchange.register_esp(actors.esp, STAKE)
    with reverts("AIGCExchangeEspRegistered", esp=actors.esp.address, state=EspState.ACTIVE):
        market.exchange.register_esp(actors.esp, STAKE)
    assert market.exchange.esp_info(actors.esp.address).stake == STAKE


def test_an_exiting_esp_cannot_register_again(market, actors):
    exiting(market, actors.esp)
    with reverts("AIGCExchangeEspRegistered", esp=actors.esp.address, state=EspState.EXITING):
        market.exchange.register_esp(actors.esp, STAKE)


def test_a_slashed_esp_cannot_register_again(market, actors):
    slash(market, actors)
    with reverts("AIGCExchangeEspRegistered", esp=actors.esp.address, state=EspState.SLASHED):
        market.exchange.register_esp(actors.esp, STAKE)


# -- announceExit -------------------------------------------------------------------------------


def test_announcing_exit_starts_the_unbonding_delay(market, actors):
    market.exchange.register_esp(actors.esp, STAKE)
    tx = market.exchange.announce_exit(actors.esp)
    available_at = block_time(market, tx) + DELAY
    assert market.exchange.esp_info(actors.esp.address) == EspInfo(EspState.EXITING, STAKE, available_at)
    assert market.exchange.is_active_esp(actors.esp.address) is False
    assert tx.event("EspExitAnnounced").args == {"esp": actors.esp.address, "availableAt": available_at}


def test_the_unbonding_delay_outlasts_the_longest_lock_and_the_challenge_window(market):
    assert market.exchange.unbonding_delay() >= market.exchange.max_timelock() + market.registry.challenge_window()


def test_announcing_exit_without_being_registered_reverts(market, actors):
    with reverts("AIGCExchangeEspNotActive", esp=actors.other.address):
        market.exchange.announce_exit(actors.other)


def test_announcing_exit_twice_reverts(market, actors):
    exiting(market, actors.esp)
    with reverts("AIGCExchangeEspNotActive", esp=actors.esp.address):
        market.exchange.announce_exit(actors.esp)


def test_a_slashed_esp_cannot_announce_its_exit(market, actors):
    slash(market, actors)
    with reverts("AIGCExchangeEspNotActive", esp=actors.esp.address):
        market.exchange.announce_exit(actors.esp)


def test_an_exiting_esps_offer_can_no_longer_be_locked(market, actors):
    job = offer(market, actors.producer, actors.esp, make_content("signed before the exit"))
    market.exchange.announce_exit(actors.esp)
    with reverts("AIGCExchangeEspNotActive", esp=actors.esp.address):
        market.exchange.lock_generation(actors.producer, job.signed)


def test_an_exiting_esp_still_withdraws_the_fee_of_a_job_locked_before_its_exit(market, actors):
    lock, job = open_generation(market, actors.producer, actors.esp)
    market.exchange.announce_exit(actors.esp)
    before = market.chain.balance(actors.esp.address)
    tx = market.exchange.withdraw_generation(actors.esp, job.offer, job.key)
    assert market.chain.balance(actors.esp.address) == before + FEE - tx.fee_wei
    assert market.exchange.get_lock(lock.lock_id).state is LockState.WITHDRAWN


def test_an_exiting_esp_is_slashed_for_equivocation_during_the_unbonding_delay(market, actors):
    content = make_content("sold twice")
    first = offer(market, actors.producer, actors.esp, content)
    second = offer(market, actors.buyer, actors.esp, content)
    market.exchange.lock_generation(actors.producer, first.signed)
    market.exchange.lock_generation(actors.buyer, second.signed)
    market.exchange.announce_exit(actors.esp)
    market.chain.advance_time(DELAY - 10)
    market.exchange.prove_equivocation(actors.other, first.offer, first.opening, second.offer, second.opening)
    assert market.exchange.esp_info(actors.esp.address) == EspInfo(EspState.SLASHED, STAKE - 2 * COMPENSATION, 0)
    assert market.exchange.credit_of(actors.buyer.address) == COMPENSATION


def test_a_slashed_esp_cannot_withdraw_what_is_left_of_its_stake(market, actors):
    slash(market, actors)
    market.chain.advance_time(DELAY + 1)
    with reverts("AIGCExchangeEspNotExiting", esp=actors.esp.address):
        market.exchange.withdraw_stake(actors.esp)
    assert market.exchange.esp_info(actors.esp.address).stake == STAKE - 2 * COMPENSATION


# -- withdrawStake ------------------------------------------------------------------------------


def test_withdrawing_the_stake_when_the_delay_ends_pays_it_back_and_unregisters(market, actors):
    available_at = exiting(market, actors.esp)
    market.chain.set_next_block_timestamp(available_at)
    before = market.chain.balance(actors.esp.address)
    exchange_before = market.exchange.balance()

    tx = market.exchange.withdraw_stake(actors.esp)

    assert market.chain.balance(actors.esp.address) == before + STAKE - tx.fee_wei
    assert market.exchange.balance() == exchange_before - STAKE
    assert market.exchange.esp_info(actors.esp.address) == EspInfo(EspState.NONE, 0, 0)
    assert tx.event("StakeWithdrawn").args == {"esp": actors.esp.address, "stake": STAKE}


def test_withdrawing_the_stake_one_second_before_the_delay_ends_reverts(market, actors):
    available_at = exiting(market, actors.esp)
    market.chain.set_next_block_timestamp(available_at - 1)
    with reverts("AIGCExchangeUnbonding", esp=actors.esp.address, availableAt=available_at):
        market.exchange.withdraw_stake(actors.esp)


def test_withdrawing_the_stake_right_after_announcing_exit_reverts(market, actors):
    available_at = exiting(market, actors.esp)
    with reverts("AIGCExchangeUnbonding", esp=actors.esp.address, availableAt=available_at):
        market.exchange.withdraw_stake(actors.esp)


def test_withdrawing_the_stake_without_announcing_exit_reverts(market, actors):
    market.exchange.register_esp(actors.esp, STAKE)
    market.chain.advance_time(DELAY + 1)
    with reverts("AIGCExchangeEspNotExiting", esp=actors.esp.address):
        market.exchange.withdraw_stake(actors.esp)


def test_withdrawing_a_stake_never_registered_reverts(market, actors):
    with reverts("AIGCExchangeEspNotExiting", esp=actors.other.address):
        market.exchange.withdraw_stake(actors.other)


def test_withdrawing_the_stake_twice_reverts(market, actors):
    available_at = exiting(market, actors.esp)
    market.chain.set_next_block_timestamp(available_at)
    market.exchange.withdraw_stake(actors.esp)
    with reverts("AIGCExchangeEspNotExiting", esp=actors.esp.address):
        market.exchange.withdraw_stake(actors.esp)


def test_a_stake_that_cannot_be_paid_out_stays_in_the_exchange(market, actors):
    refuser = deploy_forwarder(market, actors.other)
    exchange = market.exchange.address
    refuser.call(actors.other, exchange, "registerEsp", value=STAKE)
    refuser.call(actors.other, exchange, "announceExit")
    available_at = market.exchange.esp_info(refuser.address).available_at
    market.chain.set_next_block_timestamp(available_at)
    with reverts("AIGCExchangeTransferFailed", to=refuser.address, amount=STAKE):
        refuser.call(actors.other, exchange, "withdrawStake")
    assert market.exchange.esp_info(refuser.address) == EspInfo(EspState.EXITING, STAKE, available_at)


def test_an_esp_registers_again_after_withdrawing_its_stake(market, actors):
    available_at = exiting(market, actors.esp)
    market.chain.set_next_block_timestamp(available_at)
    market.exchange.withdraw_stake(actors.esp)

    market.exchange.register_esp(actors.esp, 2 * STAKE)

    assert market.exchange.esp_info(actors.esp.address) == EspInfo(EspState.ACTIVE, 2 * STAKE, 0)
    lock, _ = open_generation(market, actors.producer, actors.esp)
    assert market.exchange.get_lock(lock.lock_id).state is LockState.LOCKED
