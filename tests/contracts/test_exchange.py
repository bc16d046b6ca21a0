"""AIGCExchange: generation and purchase HTLCs, their payouts, and every way a call reverts."""

from __future__ import annotations

from contextlib import contextmanager

from chain_helpers import (
    FEE,
    HOUR,
    PRICE,
    flip_bits,
    make_content,
    open_generation,
    open_purchase,
    register,
    reverts,
)
from eth_utils import is_same_address

from market.chain.contracts import LockKind, LockState
from market.chain.hashlocks import hashlock_of, new_secret

ZERO_ADDRESS = "0x" + "00" * 20
UNKNOWN_ID = b"\x42" * 32


@contextmanager
def reverts_with_address(error, name, address, **params):
    """`reverts`, with the address argument `name` compared case-insensitively (see the test below)."""
    with reverts(error, **params) as info:
        yield info
    assert is_same_address(info.value.params[name], address), f"{error}.{name}: {info.value.params[name]}"


def timelock_of(market, lock) -> int:
    return market.exchange.get_lock(lock.lock_id).timelock


def listed_product(market, owner, esp, label="product"):
    """A product registered by `owner` (its producer) with the exchange approved for the token."""
    token_id = register(market, owner, esp, make_content(label)).token_id
    market.registry.approve(owner, market.exchange.address, token_id)
    return token_id


def revoked_duplicate(market, actors):
    """The attacker's near-copy of the producer's product, revoked by the producer's challenge."""
    original = make_content("original")
    original_id = register(market, actors.producer, actors.esp, original).token_id
    market.chain.advance_time(5)
    duplicate = make_content("duplicate", phash=flip_bits(original.phash, 3))
    duplicate_id = register(market, actors.attacker, actors.accomplice, duplicate).token_id
    return original_id, duplicate_id


# -- generation locks: success paths ------------------------------------------------------------


def test_lock_generation_records_the_lock(market, actors):
    key = new_secret()
    timelock = market.chain.now() + HOUR
    lock = market.exchange.lock_generation(actors.producer, actors.esp.address, hashlock_of(key), timelock, FEE)

    info = market.exchange.get_lock(lock.lock_id)
    assert info.sender == actors.producer.address
    assert info.receiver == actors.esp.address
    assert info.amount == FEE
    assert info.hashlock == hashlock_of(key)
    assert info.timelock == timelock
    assert info.token_id == 0
    assert info.kind is LockKind.GENERATION
    assert info.state is LockState.LOCKED


def test_lock_generation_emits_locked_with_its_arguments(market, actors):
    key = new_secret()
    timelock = market.chain.now() + HOUR
    lock = market.exchange.lock_generation(actors.producer, actors.esp.address, hashlock_of(key), timelock, FEE)

    args = lock.tx.event("Locked").args
    assert bytes(args["id"]) == lock.lock_id
    assert args["sender"] == actors.producer.address
    assert args["receiver"] == actors.esp.address
    assert args["amount"] == FEE
    assert bytes(args["hashlock"]) == hashlock_of(key)
    assert args["timelock"] == timelock
    assert args["kind"] == LockKind.GENERATION
    assert args["tokenId"] == 0


def test_lock_generation_moves_the_fee_from_the_producer_into_the_exchange(market, actors):
    producer_before = market.chain.balance(actors.producer.address)
    exchange_before = market.exchange.balance()
    lock, _ = open_generation(market, actors.producer, actors.esp)
    assert market.chain.balance(actors.producer.address) == producer_before - FEE - lock.tx.fee_wei
    assert market.exchange.balance() == exchange_before + FEE


def test_withdraw_with_the_key_pays_the_esp_exactly_the_fee(market, actors):
    lock, key = open_generation(market, actors.producer, actors.esp)
    esp_before = market.chain.balance(actors.esp.address)
    producer_before = market.chain.balance(actors.producer.address)
    exchange_before = market.exchange.balance()

    tx = market.exchange.withdraw(actors.esp, lock.lock_id, key)

    assert market.chain.balance(actors.esp.address) == esp_before + FEE - tx.fee_wei
    assert market.chain.balance(actors.producer.address) == producer_before
    assert market.exchange.balance() == exchange_before - FEE


def test_withdraw_marks_the_lock_withdrawn(market, actors):
    lock, key = open_generation(market, actors.producer, actors.esp)
    market.exchange.withdraw(actors.esp, lock.lock_id, key)
    info = market.exchange.get_lock(lock.lock_id)
    assert info.state is LockState.WITHDRAWN
    assert info.amount == FEE


def test_withdraw_emits_withdrawn_with_the_key(market, actors):
    lock, key = open_generation(market, actors.producer, actors.esp)
    tx = market.exchange.withdraw(actors.esp, lock.lock_id, key)
    args = tx.event("Withdrawn").args
    assert bytes(args["id"]) == lock.lock_id
    assert bytes(args["preimage"]) == key


def test_the_producer_reads_the_key_from_the_withdrawn_event_log(market, actors):
    lock, key = open_generation(market, actors.producer, actors.esp)
    other_lock, _ = open_generation(market, actors.producer, actors.esp)
    market.exchange.withdraw(actors.esp, lock.lock_id, key)

    logs = market.exchange.contract.events.Withdrawn().get_logs(
        from_block=lock.tx.block_number, argument_filters={"id": lock.lock_id}
    )
    assert [bytes(log["args"]["preimage"]) for log in logs] == [key]
    assert hashlock_of(bytes(logs[0]["args"]["preimage"])) == market.exchange.get_lock(lock.lock_id).hashlock
    assert market.exchange.get_lock(other_lock.lock_id).state is LockState.LOCKED


def test_refund_exactly_at_the_timelock_pays_the_producer_back(market, actors):
    lock, _ = open_generation(market, actors.producer, actors.esp)
    market.chain.set_next_block_timestamp(timelock_of(market, lock))
    before = market.chain.balance(actors.producer.address)
    exchange_before = market.exchange.balance()

    tx = market.exchange.refund(actors.producer, lock.lock_id)

    assert market.chain.balance(actors.producer.address) == before + FEE - tx.fee_wei
    assert market.exchange.balance() == exchange_before - FEE


def test_refund_long_after_the_timelock_pays_the_producer_back(market, actors):
    lock, _ = open_generation(market, actors.producer, actors.esp)
    market.chain.set_next_block_timestamp(timelock_of(market, lock) + 30 * 24 * HOUR)
    before = market.chain.balance(actors.producer.address)
    esp_before = market.chain.balance(actors.esp.address)

    tx = market.exchange.refund(actors.producer, lock.lock_id)

    assert market.chain.balance(actors.producer.address) == before + FEE - tx.fee_wei
    assert market.chain.balance(actors.esp.address) == esp_before


def test_refund_marks_the_lock_refunded_and_emits_refunded(market, actors):
    lock, _ = open_generation(market, actors.producer, actors.esp)
    market.chain.set_next_block_timestamp(timelock_of(market, lock))
    tx = market.exchange.refund(actors.producer, lock.lock_id)
    assert bytes(tx.event("Refunded").args["id"]) == lock.lock_id
    assert market.exchange.get_lock(lock.lock_id).state is LockState.REFUNDED


def test_two_identical_locks_get_different_ids(market, actors):
    hashlock = hashlock_of(new_secret())
    timelock = market.chain.now() + HOUR
    first = market.exchange.lock_generation(actors.producer, actors.esp.address, hashlock, timelock, FEE)
    second = market.exchange.lock_generation(actors.producer, actors.esp.address, hashlock, timelock, FEE)

    assert first.lock_id != second.lock_id
    assert market.exchange.get_lock(first.lock_id).state is LockState.LOCKED
    assert market.exchange.get_lock(second.lock_id).state is LockState.LOCKED


def test_get_lock_of_an_unknown_id_is_all_zero_with_state_none(market):
    info = market.exchange.get_lock(UNKNOWN_ID)
    assert info.state is LockState.NONE
    assert (info.sender, info.receiver, info.amount, info.timelock, info.token_id) == (
        ZERO_ADDRESS,
        ZERO_ADDRESS,
        0,
        0,
        0,
    )
    assert info.hashlock == b"\x00" * 32


# -- purchase locks: success paths --------------------------------------------------------------


def test_purchase_lock_is_for_the_owner_with_kind_purchase_and_the_token(market, actors):
    token_id = listed_product(market, actors.producer, actors.esp)
    lock, secret = open_purchase(market, actors.buyer, token_id)

    info = market.exchange.get_lock(lock.lock_id)
    assert info.sender == actors.buyer.address
    assert info.receiver == actors.producer.address
    assert info.amount == PRICE
    assert info.hashlock == hashlock_of(secret)
    assert info.token_id == token_id
    assert info.kind is LockKind.PURCHASE
    assert info.state is LockState.LOCKED
    args = lock.tx.event("Locked").args
    assert (args["kind"], args["tokenId"], args["receiver"]) == (LockKind.PURCHASE, token_id, actors.producer.address)


def test_claiming_a_purchase_moves_the_token_to_the_buyer(market, actors):
    token_id = listed_product(market, actors.producer, actors.esp)
    lock, secret = open_purchase(market, actors.buyer, token_id)
    market.exchange.withdraw(actors.producer, lock.lock_id, secret)
    assert market.registry.owner_of(token_id) == actors.buyer.address
    assert market.exchange.get_lock(lock.lock_id).state is LockState.WITHDRAWN


def test_a_producer_selling_its_own_product_gets_the_whole_price(market, actors):
    token_id = listed_product(market, actors.producer, actors.esp)
    lock, secret = open_purchase(market, actors.buyer, token_id)
    producer_before = market.chain.balance(actors.producer.address)
    buyer_before = market.chain.balance(actors.buyer.address)
    exchange_before = market.exchange.balance()

    tx = market.exchange.withdraw(actors.producer, lock.lock_id, secret)

    assert market.chain.balance(actors.producer.address) == producer_before + PRICE - tx.fee_wei
    assert market.chain.balance(actors.buyer.address) == buyer_before
    assert market.exchange.balance() == exchange_before - PRICE


def test_a_resale_pays_the_producer_exactly_the_royalty_and_the_reseller_the_rest(market, actors):
    token_id = listed_product(market, actors.producer, actors.esp)
    first, first_secret = open_purchase(market, actors.buyer, token_id)
    market.exchange.withdraw(actors.producer, first.lock_id, first_secret)
    market.registry.approve(actors.buyer, market.exchange.address, token_id)
    resale_price = 3 * PRICE + 7
    resale, secret = open_purchase(market, actors.other, token_id, price=resale_price)
    assert market.exchange.get_lock(resale.lock_id).receiver == actors.buyer.address
    producer_before = market.chain.balance(actors.producer.address)
    reseller_before = market.chain.balance(actors.buyer.address)

    tx = market.exchange.withdraw(actors.buyer, resale.lock_id, secret)

    royalty = resale_price * market.registry.royalty_bps() // 10_000
    assert royalty == resale_price * 500 // 10_000 > 0
    assert market.chain.balance(actors.producer.address) == producer_before + royalty
    assert market.chain.balance(actors.buyer.address) == reseller_before + resale_price - royalty - tx.fee_wei
    assert market.registry.owner_of(token_id) == actors.other.address


def test_approval_for_all_lets_the_seller_settle_a_purchase(market, actors):
    token_id = register(market, actors.producer, actors.esp, make_content("product")).token_id
    approve_all = market.registry.contract.functions.setApprovalForAll(market.exchange.address, True)
    market.chain.transact(approve_all, actors.producer)
    lock, secret = open_purchase(market, actors.buyer, token_id)
    before = market.chain.balance(actors.producer.address)

    tx = market.exchange.withdraw(actors.producer, lock.lock_id, secret)

    assert market.registry.owner_of(token_id) == actors.buyer.address
    assert market.chain.balance(actors.producer.address) == before + PRICE - tx.fee_wei


# -- withdraw reverts ---------------------------------------------------------------------------


def test_withdraw_with_a_wrong_preimage_reverts(market, actors):
    lock, _ = open_generation(market, actors.producer, actors.esp)
    with reverts("AIGCExchangeWrongPreimage", id=lock.lock_id):
        market.exchange.withdraw(actors.esp, lock.lock_id, new_secret())


def test_withdraw_exactly_at_the_timelock_reverts(market, actors):
    lock, key = open_generation(market, actors.producer, actors.esp)
    timelock = timelock_of(market, lock)
    market.chain.set_next_block_timestamp(timelock)
    with reverts("AIGCExchangeTimelockExpired", id=lock.lock_id, timelock=timelock):
        market.exchange.withdraw(actors.esp, lock.lock_id, key)


def test_withdraw_after_the_timelock_reverts(market, actors):
    lock, key = open_generation(market, actors.producer, actors.esp)
    timelock = timelock_of(market, lock)
    market.chain.set_next_block_timestamp(timelock + HOUR)
    with reverts("AIGCExchangeTimelockExpired", id=lock.lock_id, timelock=timelock):
        market.exchange.withdraw(actors.esp, lock.lock_id, key)


def test_withdraw_one_second_before_the_timelock_succeeds(market, actors):
    lock, key = open_generation(market, actors.producer, actors.esp)
    market.chain.set_next_block_timestamp(timelock_of(market, lock) - 1)
    before = market.chain.balance(actors.esp.address)
    tx = market.exchange.withdraw(actors.esp, lock.lock_id, key)
    assert market.chain.balance(actors.esp.address) == before + FEE - tx.fee_wei
    assert market.exchange.get_lock(lock.lock_id).state is LockState.WITHDRAWN


def test_withdraw_by_someone_other_than_the_receiver_reverts(market, actors):
    lock, key = open_generation(market, actors.producer, actors.esp)
    with reverts_with_address("AIGCExchangeNotReceiver", "caller", actors.attacker.address, id=lock.lock_id):
        market.exchange.withdraw(actors.attacker, lock.lock_id, key)


def test_withdraw_by_the_sender_reverts(market, actors):
    lock, key = open_generation(market, actors.producer, actors.esp)
    with reverts_with_address("AIGCExchangeNotReceiver", "caller", actors.producer.address, id=lock.lock_id):
        market.exchange.withdraw(actors.producer, lock.lock_id, key)


def test_withdraw_of_an_unknown_lock_reverts(market, actors):
    with reverts("AIGCExchangeUnknownLock", id=UNKNOWN_ID):
        market.exchange.withdraw(actors.esp, UNKNOWN_ID, new_secret())


def test_a_second_withdraw_reverts_as_settled(market, actors):
    lock, key = open_generation(market, actors.producer, actors.esp)
    market.exchange.withdraw(actors.esp, lock.lock_id, key)
    with reverts("AIGCExchangeLockSettled", id=lock.lock_id, state=LockState.WITHDRAWN):
        market.exchange.withdraw(actors.esp, lock.lock_id, key)


def test_withdraw_after_a_refund_reverts_as_settled(market, actors):
    lock, key = open_generation(market, actors.producer, actors.esp)
    market.chain.set_next_block_timestamp(timelock_of(market, lock))
    market.exchange.refund(actors.producer, lock.lock_id)
    with reverts("AIGCExchangeLockSettled", id=lock.lock_id, state=LockState.REFUNDED):
        market.exchange.withdraw(actors.esp, lock.lock_id, key)


def test_a_failed_withdraw_changes_nothing(market, actors):
    lock, _ = open_generation(market, actors.producer, actors.esp)
    before = market.exchange.get_lock(lock.lock_id)
    balances = [market.chain.balance(a.address) for a in (actors.producer, actors.esp)]
    exchange_before = market.exchange.balance()

    with reverts("AIGCExchangeWrongPreimage"):
        market.exchange.withdraw(actors.esp, lock.lock_id, new_secret())

    assert market.exchange.get_lock(lock.lock_id) == before
    assert before.state is LockState.LOCKED and before.amount == FEE
    assert [market.chain.balance(a.address) for a in (actors.producer, actors.esp)] == balances
    assert market.exchange.balance() == exchange_before


# -- refund reverts -----------------------------------------------------------------------------


def test_refund_right_after_the_lock_reverts(market, actors):
    lock, _ = open_generation(market, actors.producer, actors.esp)
    timelock = timelock_of(market, lock)
    with reverts("AIGCExchangeTimelockNotExpired", id=lock.lock_id, timelock=timelock):
        market.exchange.refund(actors.producer, lock.lock_id)


def test_refund_one_second_before_the_timelock_reverts(market, actors):
    lock, _ = open_generation(market, actors.producer, actors.esp)
    timelock = timelock_of(market, lock)
    market.chain.set_next_block_timestamp(timelock - 1)
    with reverts("AIGCExchangeTimelockNotExpired", id=lock.lock_id, timelock=timelock):
        market.exchange.refund(actors.producer, lock.lock_id)


def test_refund_by_someone_other_than_the_sender_reverts(market, actors):
    lock, _ = open_generation(market, actors.producer, actors.esp)
    market.chain.set_next_block_timestamp(timelock_of(market, lock))
    with reverts_with_address("AIGCExchangeNotSender", "caller", actors.attacker.address, id=lock.lock_id):
        market.exchange.refund(actors.attacker, lock.lock_id)


def test_refund_by_the_receiver_reverts(market, actors):
    lock, _ = open_generation(market, actors.producer, actors.esp)
    market.chain.set_next_block_timestamp(timelock_of(market, lock))
    with reverts_with_address("AIGCExchangeNotSender", "caller", actors.esp.address, id=lock.lock_id):
        market.exchange.refund(actors.esp, lock.lock_id)


def test_refund_of_an_unknown_lock_reverts(market, actors):
    with reverts("AIGCExchangeUnknownLock", id=UNKNOWN_ID):
        market.exchange.refund(actors.producer, UNKNOWN_ID)


def test_refund_after_a_withdraw_reverts_as_settled(market, actors):
    lock, key = open_generation(market, actors.producer, actors.esp)
    market.exchange.withdraw(actors.esp, lock.lock_id, key)
    market.chain.set_next_block_timestamp(timelock_of(market, lock))
    with reverts("AIGCExchangeLockSettled", id=lock.lock_id, state=LockState.WITHDRAWN):
        market.exchange.refund(actors.producer, lock.lock_id)


def test_a_second_refund_reverts_as_settled(market, actors):
    lock, _ = open_generation(market, actors.producer, actors.esp)
    market.chain.set_next_block_timestamp(timelock_of(market, lock))
    market.exchange.refund(actors.producer, lock.lock_id)
    with reverts("AIGCExchangeLockSettled", id=lock.lock_id, state=LockState.REFUNDED):
        market.exchange.refund(actors.producer, lock.lock_id)


# -- lock reverts -------------------------------------------------------------------------------


def test_lock_with_zero_amount_reverts(market, actors):
    with reverts("AIGCExchangeZeroAmount"):
        open_generation(market, actors.producer, actors.esp, fee=0)


def test_lock_with_a_timelock_already_past_reverts(market, actors):
    start = market.chain.now() + 100
    market.chain.set_next_block_timestamp(start)
    hashlock = hashlock_of(new_secret())
    earliest = start + market.exchange.min_timelock()
    with reverts("AIGCExchangeTimelockTooSoon", timelock=start - 10, earliest=earliest):
        market.exchange.lock_generation(actors.producer, actors.esp.address, hashlock, start - 10, FEE)


def test_lock_with_a_timelock_one_second_short_of_the_minimum_reverts(market, actors):
    start = market.chain.now() + 100
    market.chain.set_next_block_timestamp(start)
    earliest = start + market.exchange.min_timelock()
    hashlock = hashlock_of(new_secret())
    with reverts("AIGCExchangeTimelockTooSoon", timelock=earliest - 1, earliest=earliest):
        market.exchange.lock_generation(actors.producer, actors.esp.address, hashlock, earliest - 1, FEE)


def test_lock_with_a_timelock_exactly_the_minimum_ahead_succeeds(market, actors):
    start = market.chain.now() + 100
    market.chain.set_next_block_timestamp(start)
    earliest = start + market.exchange.min_timelock()
    hashlock = hashlock_of(new_secret())
    lock = market.exchange.lock_generation(actors.producer, actors.esp.address, hashlock, earliest, FEE)
    assert market.exchange.get_lock(lock.lock_id).timelock == earliest


def test_lock_for_the_zero_address_reverts(market, actors):
    timelock = market.chain.now() + HOUR
    with reverts("AIGCExchangeInvalidReceiver", receiver=ZERO_ADDRESS):
        market.exchange.lock_generation(actors.producer, ZERO_ADDRESS, hashlock_of(new_secret()), timelock, FEE)


def test_lock_for_yourself_reverts(market, actors):
    with reverts_with_address("AIGCExchangeInvalidReceiver", "receiver", actors.producer.address):
        open_generation(market, actors.producer, actors.producer)


# -- purchase reverts ---------------------------------------------------------------------------


def test_buying_a_revoked_token_reverts(market, actors):
    original_id, duplicate_id = revoked_duplicate(market, actors)
    assert market.registry.challenge(actors.producer, original_id, duplicate_id).upheld
    with reverts("AIGCExchangeTokenRevoked", tokenId=duplicate_id):
        open_purchase(market, actors.buyer, duplicate_id)


def test_buying_an_unknown_token_reverts_with_the_registry_error(market, actors):
    unknown = market.registry.total_registered() + 1
    with reverts("AIGCRegistryUnknownProduct", tokenId=unknown) as info:
        open_purchase(market, actors.buyer, unknown)
    assert info.value.contract == "AIGCRegistry"


def test_buying_token_zero_reverts_with_the_registry_error(market, actors):
    with reverts("AIGCRegistryUnknownProduct", tokenId=0):
        open_purchase(market, actors.buyer, 0)


def test_buying_your_own_token_reverts(market, actors):
    token_id = listed_product(market, actors.producer, actors.esp)
    with reverts_with_address("AIGCExchangeInvalidReceiver", "receiver", actors.producer.address):
        open_purchase(market, actors.producer, token_id)


def test_claiming_a_purchase_without_the_sellers_approval_reverts(market, actors):
    token_id = register(market, actors.producer, actors.esp, make_content("product")).token_id
    lock, secret = open_purchase(market, actors.buyer, token_id)
    with reverts("AIGCExchangeNotApproved", tokenId=token_id):
        market.exchange.withdraw(actors.producer, lock.lock_id, secret)
    assert market.registry.owner_of(token_id) == actors.producer.address


def test_the_buyer_refunds_a_purchase_the_seller_could_not_claim_without_approval(market, actors):
    token_id = register(market, actors.producer, actors.esp, make_content("product")).token_id
    lock, secret = open_purchase(market, actors.buyer, token_id)
    with reverts("AIGCExchangeNotApproved"):
        market.exchange.withdraw(actors.producer, lock.lock_id, secret)
    market.chain.set_next_block_timestamp(timelock_of(market, lock))
    before = market.chain.balance(actors.buyer.address)

    tx = market.exchange.refund(actors.buyer, lock.lock_id)

    assert market.chain.balance(actors.buyer.address) == before + PRICE - tx.fee_wei
    assert market.exchange.get_lock(lock.lock_id).state is LockState.REFUNDED
    assert market.registry.owner_of(token_id) == actors.producer.address


def test_claiming_after_the_seller_transferred_the_token_away_reverts(market, actors):
    token_id = listed_product(market, actors.producer, actors.esp)
    lock, secret = open_purchase(market, actors.buyer, token_id)
    market.registry.transfer(actors.producer, actors.other.address, token_id)
    with reverts_with_address("AIGCExchangeSellerNotOwner", "seller", actors.producer.address, tokenId=token_id):
        market.exchange.withdraw(actors.producer, lock.lock_id, secret)


def test_the_new_owner_cannot_claim_a_purchase_locked_for_the_previous_one(market, actors):
    token_id = listed_product(market, actors.producer, actors.esp)
    lock, secret = open_purchase(market, actors.buyer, token_id)
    market.registry.transfer(actors.producer, actors.other.address, token_id)
    with reverts_with_address("AIGCExchangeNotReceiver", "caller", actors.other.address, id=lock.lock_id):
        market.exchange.withdraw(actors.other, lock.lock_id, secret)


def test_claiming_a_purchase_whose_token_was_revoked_after_the_lock_reverts(market, actors):
    original_id, duplicate_id = revoked_duplicate(market, actors)
    market.registry.approve(actors.attacker, market.exchange.address, duplicate_id)
    lock, secret = open_purchase(market, actors.buyer, duplicate_id)
    assert market.registry.challenge(actors.producer, original_id, duplicate_id).upheld
    with reverts("AIGCExchangeTokenRevoked", tokenId=duplicate_id):
        market.exchange.withdraw(actors.attacker, lock.lock_id, secret)


def test_the_buyer_refunds_a_purchase_whose_token_was_revoked_after_the_lock(market, actors):
    original_id, duplicate_id = revoked_duplicate(market, actors)
    market.registry.approve(actors.attacker, market.exchange.address, duplicate_id)
    lock, secret = open_purchase(market, actors.buyer, duplicate_id)
    market.registry.challenge(actors.producer, original_id, duplicate_id)
    with reverts("AIGCExchangeTokenRevoked"):
        market.exchange.withdraw(actors.attacker, lock.lock_id, secret)
    market.chain.set_next_block_timestamp(timelock_of(market, lock))
    before = market.chain.balance(actors.buyer.address)

    tx = market.exchange.refund(actors.buyer, lock.lock_id)

    assert market.chain.balance(actors.buyer.address) == before + PRICE - tx.fee_wei
    assert market.exchange.get_lock(lock.lock_id).state is LockState.REFUNDED


# -- the Python layer ---------------------------------------------------------------------------


def test_a_decoded_revert_names_addresses_as_checksummed_like_the_rest_of_web3(market, actors):
    """Events, getLock and LocalAccount.address are checksummed; ContractRevert.params should be too.

    Fails today: ErrorDecoder.decode passes eth_abi's lowercase hex through, so
    `reverts("AIGCExchangeNotReceiver", caller=account.address)` can never match.
    """
    lock, key = open_generation(market, actors.producer, actors.esp)
    with reverts("AIGCExchangeNotReceiver") as info:
        market.exchange.withdraw(actors.attacker, lock.lock_id, key)
    assert info.value.params["caller"] == actors.attacker.address
