"""AIGCExchange against a lock party that re-enters withdraw/refund from its receive hook.

The attacker is contracts/test/ReentrantReceiver. With `bubble == False` it swallows (and records)
its failed re-entry, so the outer payout goes through exactly once; with `bubble == True` it
re-raises, so the exchange's payout fails and the whole outer call reverts.
"""

from __future__ import annotations

from chain_helpers import FEE, HOUR, reverts
from eth_utils import is_same_address

from market.chain.artifacts import load_artifact
from market.chain.contracts import LockState
from market.chain.hashlocks import hashlock_of, new_secret


def deploy_attacker(market, owner, bubble):
    contract, _ = market.chain.deploy(load_artifact("ReentrantReceiver"), owner, market.exchange.address, bubble)
    return contract


def read(market, contract, name):
    return market.chain.call(getattr(contract.functions, name)())


def generation_lock_for(market, producer, receiver_address):
    key = new_secret()
    timelock = market.chain.now() + HOUR
    lock = market.exchange.lock_generation(producer, receiver_address, hashlock_of(key), timelock, FEE)
    return lock.lock_id, key, timelock


def attack_withdraw(market, attacker, owner, lock_id, key):
    return market.chain.transact(attacker.functions.attackWithdraw(lock_id, key), owner)


def test_a_reentrant_esp_is_paid_exactly_once(market, actors):
    attacker = deploy_attacker(market, actors.attacker, bubble=False)
    lock_id, key, _ = generation_lock_for(market, actors.producer, attacker.address)
    exchange_before = market.exchange.balance()

    attack_withdraw(market, attacker, actors.attacker, lock_id, key)

    assert market.chain.balance(attacker.address) == FEE
    assert market.exchange.balance() == exchange_before - FEE
    assert read(market, attacker, "payments") == 1
    assert read(market, attacker, "reentryAttempts") == 1
    assert read(market, attacker, "reentrySuccesses") == 0


def test_a_reentrant_withdraw_is_stopped_by_the_reentrancy_guard(market, actors):
    attacker = deploy_attacker(market, actors.attacker, bubble=False)
    lock_id, key, _ = generation_lock_for(market, actors.producer, attacker.address)

    tx = attack_withdraw(market, attacker, actors.attacker, lock_id, key)

    error = market.chain.errors.decode(bytes(read(market, attacker, "lastReentryError")))
    assert error is not None and error.error == "ReentrancyGuardReentrantCall"
    assert tx.event("ReentryTried").args["success"] is False
    assert len([e for e in tx.events if e.name == "Withdrawn"]) == 1


def test_a_lock_withdrawn_by_a_reentrant_esp_is_withdrawn_once(market, actors):
    attacker = deploy_attacker(market, actors.attacker, bubble=False)
    lock_id, key, _ = generation_lock_for(market, actors.producer, attacker.address)
    attack_withdraw(market, attacker, actors.attacker, lock_id, key)
    assert market.exchange.get_lock(lock_id).state is LockState.WITHDRAWN


def test_a_reentrant_esp_that_bubbles_the_guard_error_reverts_the_whole_withdraw(market, actors):
    attacker = deploy_attacker(market, actors.attacker, bubble=True)
    lock_id, key, _ = generation_lock_for(market, actors.producer, attacker.address)
    owner_before = market.chain.balance(actors.attacker.address)

    # The guard's ReentrancyGuardReentrantCall reaches the exchange as a failed ether transfer.
    with reverts("AIGCExchangeTransferFailed", amount=FEE) as info:
        attack_withdraw(market, attacker, actors.attacker, lock_id, key)

    assert is_same_address(info.value.params["to"], attacker.address)
    assert market.exchange.get_lock(lock_id).state is LockState.LOCKED
    assert market.chain.balance(attacker.address) == 0
    assert market.chain.balance(actors.attacker.address) == owner_before
    assert read(market, attacker, "payments") == 0


def test_the_producer_refunds_a_lock_whose_reentrant_esp_reverted_its_withdraw(market, actors):
    attacker = deploy_attacker(market, actors.attacker, bubble=True)
    lock_id, key, timelock = generation_lock_for(market, actors.producer, attacker.address)
    with reverts("AIGCExchangeTransferFailed"):
        attack_withdraw(market, attacker, actors.attacker, lock_id, key)
    market.chain.set_next_block_timestamp(timelock)
    before = market.chain.balance(actors.producer.address)

    tx = market.exchange.refund(actors.producer, lock_id)

    assert market.chain.balance(actors.producer.address) == before + FEE - tx.fee_wei
    assert market.exchange.get_lock(lock_id).state is LockState.REFUNDED
    assert market.chain.balance(attacker.address) == 0


def test_a_reentrant_sender_is_refunded_exactly_once(market, actors):
    attacker = deploy_attacker(market, actors.attacker, bubble=False)
    timelock = market.chain.now() + HOUR
    lock_fn = attacker.functions.lockGeneration(actors.esp.address, hashlock_of(new_secret()), timelock)
    opened = market.chain.transact(lock_fn, actors.attacker, value=FEE)
    lock_id = bytes(opened.event("Locked").args["id"])
    assert is_same_address(market.exchange.get_lock(lock_id).sender, attacker.address)
    assert market.chain.balance(attacker.address) == 0
    market.chain.set_next_block_timestamp(timelock)
    exchange_before = market.exchange.balance()

    tx = market.chain.transact(attacker.functions.attackRefund(lock_id), actors.attacker)

    assert market.chain.balance(attacker.address) == FEE
    assert market.exchange.balance() == exchange_before - FEE
    assert market.exchange.get_lock(lock_id).state is LockState.REFUNDED
    assert read(market, attacker, "payments") == 1
    assert read(market, attacker, "reentryAttempts") == 1
    assert read(market, attacker, "reentrySuccesses") == 0
    error = market.chain.errors.decode(bytes(read(market, attacker, "lastReentryError")))
    assert error is not None and error.error == "ReentrancyGuardReentrantCall"
    assert len([e for e in tx.events if e.name == "Refunded"]) == 1
