"""AIGCRegistry (protocol v2): registration from paid generation locks, priority by generation,
displacement, challenges within the window, finality, bonds, credits, ERC-721/2981, constructor.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import pytest
from chain_helpers import (
    ETHER,
    HOUR,
    PARAMS,
    PRICE,
    ZERO_ADDRESS,
    block_time,
    deploy_forwarder,
    flip_bits,
    make_content,
    make_final,
    offer,
    open_generation,
    paid_generation,
    register,
    resign,
    reverts,
)

from market.chain.artifacts import load_artifact
from market.chain.contracts import LockState

THRESHOLD = PARAMS.similarity_threshold
BOND = PARAMS.registration_bond
DEPOSIT = PARAMS.challenge_deposit
WINDOW = PARAMS.challenge_window


# -- helpers ----------------------------------------------------------------------------------------


@contextmanager
def nothing_changes(market, *accounts) -> Iterator[None]:
    """The body must revert and leave registrations, products, credits and balances as they were."""
    registry = market.registry
    total = registry.total_registered()
    records = [registry.product(token_id) for token_id in range(1, total + 1)]
    addresses = [a.address for a in accounts] + [registry.address]
    balances = {a: market.chain.balance(a) for a in addresses}
    credits = {a.address: registry.credit_of(a.address) for a in accounts}
    yield
    assert registry.total_registered() == total
    assert [registry.product(token_id) for token_id in range(1, total + 1)] == records
    assert {a: market.chain.balance(a) for a in addresses} == balances
    assert {a.address: registry.credit_of(a.address) for a in accounts} == credits


def original_and_copy(market, actors, distance: int, label: str = "orig") -> tuple[int, int]:
    """The producer registers an original; then the attacker a copy `distance` bits away (generated later)."""
    original = make_content(label)
    copy = make_content(label + "-copy", phash=flip_bits(original.phash, distance))
    first = register(market, actors.producer, actors.esp, original)
    second = register(market, actors.attacker, actors.accomplice, copy)
    return first.token_id, second.token_id


def race(market, actors, content):
    """One content generated twice, paid and not registered: the producer's lock first, the attacker's second."""
    early = paid_generation(market, actors.producer, actors.esp, content)
    late = paid_generation(market, actors.attacker, actors.accomplice, content)
    return early, late


def final_at(market, token_id: int) -> int:
    return market.registry.product(token_id).registered_at + WINDOW


def mine_at(market, actors, timestamp: int) -> None:
    """Mine a block stamped `timestamp`, so that views read the chain at that time."""
    market.chain.set_next_block_timestamp(timestamp)
    market.chain.send_ether(actors.other, actors.accomplice.address, 1)


def credit_reasons(tx) -> dict[bytes, tuple[str, int]]:
    return {e.args["reason"].rstrip(b"\0"): (e.args["account"], e.args["amount"]) for e in tx.events if e.name == "Credited"}


# -- registration -----------------------------------------------------------------------------------


def test_registration_mints_the_token_to_the_producer(market, actors):
    registered = register(market, actors.producer, actors.esp, make_content("a"))
    assert market.registry.owner_of(registered.token_id) == actors.producer.address


def test_registration_stores_the_product_record_with_its_generation(market, actors):
    content = make_content("a")
    job = paid_generation(market, actors.producer, actors.esp, content)
    lock = market.exchange.generation_lock(job.offer)
    registered = market.registry.register(actors.producer, job.offer, job.opening, "ipfs://bafy-a")
    record = market.registry.product(registered.token_id)
    assert (record.producer, record.esp) == (actors.producer.address, actors.esp.address)
    assert (record.content_hash, record.perceptual_hash, record.prompt_hash) == (
        content.content_hash,
        content.phash,
        content.prompt_hash,
    )
    assert record.registered_at == block_time(market, registered.tx)
    assert (record.generation_seq, record.generated_at) == (lock.seq, lock.locked_at)
    assert (record.revoked, record.bond_released, record.uri) == (False, False, "ipfs://bafy-a")


def test_registration_maps_the_content_hash_and_the_lock_to_the_token(market, actors):
    content = make_content("a")
    job = paid_generation(market, actors.producer, actors.esp, content)
    lock_id = market.exchange.offer_id(job.offer)
    assert market.registry.token_of_content(content.content_hash) == 0
    assert market.registry.token_of_lock(lock_id) == 0
    registered = market.registry.register(actors.producer, job.offer, job.opening)
    assert market.registry.token_of_content(content.content_hash) == registered.token_id
    assert market.registry.token_of_lock(lock_id) == registered.token_id


def test_registration_emits_product_registered(market, actors):
    content = make_content("a")
    job = paid_generation(market, actors.producer, actors.esp, content)
    lock = market.exchange.generation_lock(job.offer)
    registered = market.registry.register(actors.producer, job.offer, job.opening)
    event = registered.tx.event("ProductRegistered")
    assert event.address == market.registry.address
    assert event.args == {
        "tokenId": registered.token_id,
        "producer": actors.producer.address,
        "esp": actors.esp.address,
        "contentHash": content.content_hash,
        "perceptualHash": content.phash,
        "lockId": lock.lock_id,
        "generationSeq": lock.seq,
    }


def test_registration_moves_exactly_the_bond_into_the_registry(market, actors):
    job = paid_generation(market, actors.producer, actors.esp, make_content("a"))
    producer_before = market.chain.balance(actors.producer.address)
    registry_before = market.registry.balance()
    esp_before = market.chain.balance(actors.esp.address)
    registered = market.registry.register(actors.producer, job.offer, job.opening)
    assert market.registry.balance() == registry_before + BOND
    assert market.chain.balance(actors.esp.address) == esp_before
    assert market.chain.balance(actors.producer.address) == producer_before - BOND - registered.tx.fee_wei


def test_registration_long_after_the_generation_lock_expired_is_accepted(market, actors):
    job = paid_generation(market, actors.producer, actors.esp, make_content("late"))
    market.chain.set_next_block_timestamp(job.offer.timelock + 30 * 24 * HOUR)
    registered = market.registry.register(actors.producer, job.offer, job.opening)
    assert market.registry.owner_of(registered.token_id) == actors.producer.address


def test_token_ids_start_at_one_and_increase_by_one(market, actors):
    assert market.registry.total_registered() == 0
    ids = [register(market, actors.producer, actors.esp, make_content(f"c{i}")).token_id for i in range(3)]
    assert ids == [1, 2, 3]
    assert market.registry.total_registered() == 3


def test_token_has_the_erc721_name_and_symbol(market):
    functions = market.registry.contract.functions
    assert market.chain.call(functions.name()) == "AIGC Product"
    assert market.chain.call(functions.symbol()) == "AIGC"


INTERFACES = {
    "01ffc9a7": True,  # ERC-165
    "80ac58cd": True,  # ERC-721
    "5b5e139f": True,  # ERC-721 metadata
    "2a55205a": True,  # EIP-2981
    "780e9d63": False,  # ERC-721 enumerable: not implemented
    "ffffffff": False,  # must be false by ERC-165
}


def test_supports_interface_reports_erc721_and_eip2981(market):
    functions = market.registry.contract.functions
    reported = {i: market.chain.call(functions.supportsInterface(bytes.fromhex(i))) for i in INTERFACES}
    assert reported == INTERFACES


def test_royalty_info_pays_the_producer_bps_of_the_price(market, actors):
    registered = register(market, actors.producer, actors.esp, make_content("a"))
    assert market.registry.royalty_bps() == 500
    prices = [0, 1, 19, 20, 21, PRICE, 10**30 + 7]
    royalties = [market.registry.royalty_info(registered.token_id, price) for price in prices]
    # 5% rounded down, by hand: 0, 0, 0 (0.95), 1, 1 (1.05), 0.005 ETH, 5 * 10**28 (+ 0.35 dropped).
    expected = [0, 0, 0, 1, 1, 5 * 10**15, 5 * 10**28]
    assert royalties == [(actors.producer.address, amount) for amount in expected]


def test_royalty_stays_with_the_producer_after_the_token_is_sold(market, actors):
    registered = register(market, actors.producer, actors.esp, make_content("a"))
    market.registry.transfer(actors.producer, actors.buyer.address, registered.token_id)
    assert market.registry.royalty_info(registered.token_id, PRICE) == (actors.producer.address, 5 * 10**15)


def test_royalty_info_of_an_unknown_token_is_zero(market):
    assert market.registry.royalty_info(999, ETHER) == (ZERO_ADDRESS, 0)


HAMMING_CASES = [
    (0, 0, 0),
    (0, 2**64 - 1, 64),
    (2**64 - 1, 0, 64),
    (0x0123456789ABCDEF, 0x0123456789ABCDEF, 0),
    (0x0123456789ABCDEF, flip_bits(0x0123456789ABCDEF, 7), 7),
    (1 << 63, 1, 2),
    (0xAAAAAAAAAAAAAAAA, 0x5555555555555555, 64),
    (0xFF00FF00FF00FF00, 0, 32),
]


def test_hamming_distance_counts_the_differing_bits_of_known_pairs(market):
    measured = [(a, b, market.registry.hamming_distance(a, b)) for a, b, _ in HAMMING_CASES]
    assert measured == HAMMING_CASES


# -- finality ---------------------------------------------------------------------------------------


def test_a_product_is_not_final_one_second_before_its_window_closes(market, actors):
    token_id = register(market, actors.producer, actors.esp, make_content("a")).token_id
    mine_at(market, actors, final_at(market, token_id) - 1)
    assert market.registry.is_final(token_id) is False


def test_a_product_is_final_from_the_end_of_its_challenge_window(market, actors):
    token_id = register(market, actors.producer, actors.esp, make_content("a")).token_id
    mine_at(market, actors, final_at(market, token_id))
    assert market.registry.is_final(token_id) is True


def test_a_revoked_product_never_becomes_final(market, actors):
    original_id, copy_id = original_and_copy(market, actors, 2)
    market.registry.challenge(actors.producer, original_id, copy_id)
    mine_at(market, actors, final_at(market, copy_id) + HOUR)
    assert market.registry.is_final(copy_id) is False
    assert market.registry.is_final(original_id) is True


@pytest.mark.parametrize("view", ["is_final", "is_revoked", "product"])
def test_views_of_an_unknown_product_revert(market, view):
    with reverts("AIGCRegistryUnknownProduct", tokenId=7):
        getattr(market.registry, view)(7)


# -- registration reverts ---------------------------------------------------------------------------


def test_registering_an_offer_that_was_never_locked_reverts(market, actors):
    job = offer(market, actors.producer, actors.esp, make_content("never locked"))
    with (
        nothing_changes(market, actors.producer),
        reverts("AIGCRegistryUnknownGeneration", lockId=market.exchange.offer_id(job.offer)),
    ):
        market.registry.register(actors.producer, job.offer, job.opening)


def test_registering_an_offer_with_altered_terms_finds_no_generation(market, actors):
    job = paid_generation(market, actors.producer, actors.esp, make_content("altered"))
    cheaper = replace(job.offer, fee=job.offer.fee - 1)
    with reverts("AIGCRegistryUnknownGeneration", lockId=market.exchange.offer_id(cheaper)):
        market.registry.register(actors.producer, cheaper, job.opening)


def test_registering_a_generation_the_esp_has_not_been_paid_for_reverts(market, actors):
    lock, job = open_generation(market, actors.producer, actors.esp)
    with (
        nothing_changes(market, actors.producer),
        reverts("AIGCRegistryGenerationNotPaid", lockId=lock.lock_id, state=LockState.LOCKED),
    ):
        market.registry.register(actors.producer, job.offer, job.opening)


def test_registering_a_refunded_generation_reverts(market, actors):
    lock, job = open_generation(market, actors.producer, actors.esp)
    market.chain.set_next_block_timestamp(job.offer.timelock)
    market.exchange.refund_generation(actors.producer, job.offer)
    with (
        nothing_changes(market, actors.producer),
        reverts("AIGCRegistryGenerationNotPaid", lockId=lock.lock_id, state=LockState.REFUNDED),
    ):
        market.registry.register(actors.producer, job.offer, job.opening)


def test_registering_someone_elses_paid_generation_reverts(market, actors):
    job = paid_generation(market, actors.producer, actors.esp, make_content("not yours"))
    with (
        nothing_changes(market, actors.producer, actors.attacker),
        reverts("AIGCRegistryNotGenerationSender", lockId=market.exchange.offer_id(job.offer), caller=actors.attacker.address),
    ):
        market.registry.register(actors.attacker, job.offer, job.opening)


@pytest.mark.parametrize("field", ["content_hash", "perceptual_hash", "prompt_hash", "salt"])
def test_registering_content_other_than_the_committed_one_reverts(market, actors, field):
    job = paid_generation(market, actors.producer, actors.esp, make_content("committed"))
    other = make_content("other")
    changed = {
        "content_hash": other.content_hash,
        "perceptual_hash": job.opening.perceptual_hash ^ 1,
        "prompt_hash": other.prompt_hash,
        "salt": b"\x00" * 32,
    }[field]
    opening = replace(job.opening, **{field: changed})
    with (
        nothing_changes(market, actors.producer),
        reverts("AIGCRegistryCommitmentMismatch", lockId=market.exchange.offer_id(job.offer)),
    ):
        market.registry.register(actors.producer, job.offer, opening)


def test_registering_one_generation_twice_reverts(market, actors):
    job = paid_generation(market, actors.producer, actors.esp, make_content("once"))
    first = market.registry.register(actors.producer, job.offer, job.opening)
    with (
        nothing_changes(market, actors.producer),
        reverts("AIGCRegistryGenerationUsed", lockId=market.exchange.offer_id(job.offer), tokenId=first.token_id),
    ):
        market.registry.register(actors.producer, job.offer, job.opening)


@pytest.mark.parametrize("sent", [0, BOND - 1, BOND + 1])
def test_registration_with_the_wrong_bond_reverts(market, actors, sent):
    job = paid_generation(market, actors.producer, actors.esp, make_content("bond"))
    with nothing_changes(market, actors.producer), reverts("AIGCRegistryWrongBond", sent=sent, required=BOND):
        market.registry.register(actors.producer, job.offer, job.opening, bond=sent)


def test_registration_of_a_zero_content_hash_reverts(market, actors):
    job = offer(market, actors.producer, actors.esp, make_content("zero"))
    zero = replace(job.opening, content_hash=bytes(32))
    signed = resign(market, actors.esp, job.offer, commitment=zero.commitment())
    market.exchange.lock_generation(actors.producer, signed)
    market.exchange.withdraw_generation(actors.esp, signed.offer, job.key)
    with nothing_changes(market, actors.producer), reverts("AIGCRegistryInvalidContentHash"):
        market.registry.register(actors.producer, signed.offer, zero)


def test_registering_content_held_by_an_earlier_generation_reverts(market, actors):
    content = make_content("a")
    early, late = race(market, actors, content)
    first = market.registry.register(actors.producer, early.offer, early.opening)
    with (
        nothing_changes(market, actors.producer, actors.attacker),
        reverts("AIGCRegistryDuplicateContent", contentHash=content.content_hash, tokenId=first.token_id),
    ):
        market.registry.register(actors.attacker, late.offer, late.opening)


def test_registering_content_held_by_a_final_product_reverts_even_from_an_earlier_generation(market, actors):
    content = make_content("a")
    early, late = race(market, actors, content)
    holder = market.registry.register(actors.attacker, late.offer, late.opening)
    market.chain.set_next_block_timestamp(final_at(market, holder.token_id))
    with (
        nothing_changes(market, actors.producer, actors.attacker),
        reverts("AIGCRegistryDuplicateContent", contentHash=content.content_hash, tokenId=holder.token_id),
    ):
        market.registry.register(actors.producer, early.offer, early.opening)


# -- displacement -----------------------------------------------------------------------------------


def test_an_earlier_generation_displaces_a_later_generated_holder_that_is_not_final(market, actors):
    content = make_content("a")
    early, late = race(market, actors, content)
    holder = market.registry.register(actors.attacker, late.offer, late.opening)

    registered = market.registry.register(actors.producer, early.offer, early.opening)

    assert registered.tx.event("ProductDisplaced").args == {"displacedId": holder.token_id, "tokenId": registered.token_id}
    assert registered.tx.event("ProductRevoked").args == {"tokenId": holder.token_id, "formerOwner": actors.attacker.address}
    assert market.registry.is_revoked(holder.token_id) is True
    assert market.registry.owner_of(registered.token_id) == actors.producer.address
    assert market.registry.token_of_content(content.content_hash) == registered.token_id
    with reverts("ERC721NonexistentToken", tokenId=holder.token_id):
        market.registry.owner_of(holder.token_id)


def test_the_displaced_products_bond_is_credited_to_the_new_registrant(market, actors):
    early, late = race(market, actors, make_content("a"))
    market.registry.register(actors.attacker, late.offer, late.opening)
    registry_before = market.registry.balance()

    registered = market.registry.register(actors.producer, early.offer, early.opening)

    assert market.registry.credit_of(actors.producer.address) == BOND
    assert market.registry.credit_of(actors.attacker.address) == 0
    assert credit_reasons(registered.tx) == {b"displaced": (actors.producer.address, BOND)}
    assert market.registry.balance() == registry_before + BOND


def test_a_holder_one_second_before_final_is_still_displaced(market, actors):
    early, late = race(market, actors, make_content("a"))
    holder = market.registry.register(actors.attacker, late.offer, late.opening)
    market.chain.set_next_block_timestamp(final_at(market, holder.token_id) - 1)
    registered = market.registry.register(actors.producer, early.offer, early.opening)
    assert registered.tx.event("ProductDisplaced").args["displacedId"] == holder.token_id


def test_content_of_a_revoked_product_can_be_registered_again(market, actors):
    original = make_content("orig")
    copy = make_content("copy", phash=flip_bits(original.phash, 1))
    original_id = register(market, actors.producer, actors.esp, original).token_id
    copy_id = register(market, actors.attacker, actors.accomplice, copy).token_id
    market.registry.challenge(actors.producer, original_id, copy_id)

    again = register(market, actors.other, actors.esp, copy)

    assert market.registry.token_of_content(copy.content_hash) == again.token_id
    assert "ProductDisplaced" not in [e.name for e in again.tx.events]


# -- challenges: upheld -----------------------------------------------------------------------------


@pytest.mark.parametrize("distance", [0, 3, THRESHOLD])
def test_upheld_challenge_revokes_the_copy(market, actors, distance):
    original_id, copy_id = original_and_copy(market, actors, distance)
    outcome = market.registry.challenge(actors.producer, original_id, copy_id)
    assert (outcome.upheld, outcome.distance) == (True, distance)
    assert market.registry.is_revoked(copy_id) is True
    assert market.registry.is_revoked(original_id) is False
    assert market.registry.owner_of(original_id) == actors.producer.address
    with reverts("ERC721NonexistentToken", tokenId=copy_id):
        market.registry.owner_of(copy_id)


def test_upheld_challenge_keeps_the_revoked_record(market, actors):
    original_id, copy_id = original_and_copy(market, actors, 3)
    before = market.registry.product(copy_id)
    market.registry.challenge(actors.producer, original_id, copy_id)
    after = market.registry.product(copy_id)
    assert after == replace(before, revoked=True)
    assert market.registry.token_of_content(before.content_hash) == copy_id
    assert market.registry.total_registered() == 2


def test_upheld_challenge_credits_the_challenger_its_deposit_and_the_copys_bond(market, actors):
    original_id, copy_id = original_and_copy(market, actors, 3)
    challenger_before = market.chain.balance(actors.producer.address)
    registry_before = market.registry.balance()

    outcome = market.registry.challenge(actors.producer, original_id, copy_id)

    assert market.registry.credit_of(actors.producer.address) == DEPOSIT + BOND
    assert market.registry.credit_of(actors.attacker.address) == 0
    assert credit_reasons(outcome.tx) == {b"challenge upheld": (actors.producer.address, DEPOSIT + BOND)}
    assert market.chain.balance(actors.producer.address) == challenger_before - DEPOSIT - outcome.tx.fee_wei
    assert market.registry.balance() == registry_before + DEPOSIT


def test_upheld_challenge_emits_challenge_resolved_product_revoked_and_the_burn(market, actors):
    original_id, copy_id = original_and_copy(market, actors, 3)
    outcome = market.registry.challenge(actors.producer, original_id, copy_id)
    assert outcome.tx.event("ChallengeResolved").args == {
        "originalId": original_id,
        "duplicateId": copy_id,
        "challenger": actors.producer.address,
        "upheld": True,
        "distance": 3,
    }
    assert outcome.tx.event("ProductRevoked").args == {"tokenId": copy_id, "formerOwner": actors.attacker.address}
    assert outcome.tx.event("Transfer").args == {"from": actors.attacker.address, "to": ZERO_ADDRESS, "tokenId": copy_id}


def test_upheld_challenge_revokes_the_copy_in_the_hands_of_a_buyer(market, actors):
    original_id, copy_id = original_and_copy(market, actors, 2)
    market.registry.transfer(actors.attacker, actors.buyer.address, copy_id)
    outcome = market.registry.challenge(actors.producer, original_id, copy_id)
    assert outcome.upheld is True
    assert outcome.tx.event("ProductRevoked").args["formerOwner"] == actors.buyer.address


def test_upheld_challenge_with_a_larger_deposit_credits_the_whole_deposit_back(market, actors):
    original_id, copy_id = original_and_copy(market, actors, 1)
    deposit = 3 * DEPOSIT + 17
    outcome = market.registry.challenge(actors.producer, original_id, copy_id, deposit=deposit)
    assert outcome.upheld is True
    assert market.registry.credit_of(actors.producer.address) == deposit + BOND


def test_challenge_by_a_buyer_of_the_original_is_upheld(market, actors):
    original_id, copy_id = original_and_copy(market, actors, 4)
    market.registry.transfer(actors.producer, actors.buyer.address, original_id)
    outcome = market.registry.challenge(actors.buyer, original_id, copy_id)
    assert outcome.upheld is True
    assert market.registry.credit_of(actors.buyer.address) == DEPOSIT + BOND


def test_priority_follows_the_generation_lock_not_the_registration(market, actors):
    original = make_content("orig")
    copy = make_content("copy", phash=flip_bits(original.phash, 2))
    early = paid_generation(market, actors.producer, actors.esp, original)
    copy_id = register(market, actors.attacker, actors.accomplice, copy).token_id  # generated later, registered first
    original_id = market.registry.register(actors.producer, early.offer, early.opening).token_id
    assert original_id > copy_id

    outcome = market.registry.challenge(actors.producer, original_id, copy_id)

    assert outcome.upheld is True
    assert market.registry.is_revoked(copy_id) is True


# -- challenges: rejected ---------------------------------------------------------------------------


def test_challenge_of_a_product_too_far_apart_is_rejected_and_the_deposit_credited_to_the_accused(market, actors):
    original_id, copy_id = original_and_copy(market, actors, THRESHOLD + 1)
    registry_before = market.registry.balance()
    outcome = market.registry.challenge(actors.producer, original_id, copy_id)
    assert (outcome.upheld, outcome.distance) == (False, THRESHOLD + 1)
    assert market.registry.credit_of(actors.attacker.address) == DEPOSIT
    assert market.registry.credit_of(actors.producer.address) == 0
    assert market.registry.balance() == registry_before + DEPOSIT
    assert credit_reasons(outcome.tx) == {b"challenge rejected": (actors.attacker.address, DEPOSIT)}


def test_rejected_challenge_leaves_the_accused_product_live(market, actors):
    original_id, copy_id = original_and_copy(market, actors, THRESHOLD + 1)
    market.registry.challenge(actors.producer, original_id, copy_id)
    assert market.registry.is_revoked(copy_id) is False
    assert market.registry.owner_of(copy_id) == actors.attacker.address


def test_rejected_challenge_emits_challenge_resolved_and_the_credit_only(market, actors):
    original_id, copy_id = original_and_copy(market, actors, THRESHOLD + 1)
    outcome = market.registry.challenge(actors.producer, original_id, copy_id)
    assert outcome.tx.event("ChallengeResolved").args == {
        "originalId": original_id,
        "duplicateId": copy_id,
        "challenger": actors.producer.address,
        "upheld": False,
        "distance": THRESHOLD + 1,
    }
    assert [e.name for e in outcome.tx.events] == ["Credited", "ChallengeResolved"]


def test_challenge_claiming_the_later_generation_as_original_is_rejected(market, actors):
    earlier_id, later_id = original_and_copy(market, actors, 0)
    outcome = market.registry.challenge(actors.attacker, later_id, earlier_id)
    assert (outcome.upheld, outcome.distance) == (False, 0)
    assert market.registry.is_revoked(earlier_id) is False
    assert market.registry.credit_of(actors.producer.address) == DEPOSIT


def test_rejected_challenge_credits_the_current_owner_of_the_accused_product(market, actors):
    original_id, copy_id = original_and_copy(market, actors, 40)
    market.registry.transfer(actors.attacker, actors.buyer.address, copy_id)
    deposit = 5 * DEPOSIT + 3
    market.registry.challenge(actors.producer, original_id, copy_id, deposit=deposit)
    assert market.registry.credit_of(actors.buyer.address) == deposit
    assert market.registry.credit_of(actors.attacker.address) == 0


# -- challenge reverts ------------------------------------------------------------------------------


def test_challenge_with_too_small_a_deposit_reverts(market, actors):
    original_id, copy_id = original_and_copy(market, actors, 0)
    with (
        nothing_changes(market, actors.producer, actors.attacker),
        reverts("AIGCRegistryDepositTooSmall", sent=DEPOSIT - 1, required=DEPOSIT),
    ):
        market.registry.challenge(actors.producer, original_id, copy_id, deposit=DEPOSIT - 1)


def test_challenge_by_someone_not_owning_the_original_reverts(market, actors):
    original_id, copy_id = original_and_copy(market, actors, 0)
    with (
        nothing_changes(market, actors.producer, actors.attacker, actors.other),
        reverts("AIGCRegistryNotOwner", tokenId=original_id, caller=actors.other.address),
    ):
        market.registry.challenge(actors.other, original_id, copy_id)


def test_challenge_by_the_producer_after_selling_the_original_reverts(market, actors):
    original_id, copy_id = original_and_copy(market, actors, 0)
    market.registry.transfer(actors.producer, actors.buyer.address, original_id)
    with (
        nothing_changes(market, actors.producer, actors.attacker, actors.buyer),
        reverts("AIGCRegistryNotOwner", tokenId=original_id, caller=actors.producer.address),
    ):
        market.registry.challenge(actors.producer, original_id, copy_id)


@pytest.mark.parametrize("unknown", [0, 999])
def test_challenge_with_an_unknown_original_reverts(market, actors, unknown):
    copy_id = register(market, actors.attacker, actors.esp, make_content("copy")).token_id
    with nothing_changes(market, actors.producer), reverts("AIGCRegistryUnknownProduct", tokenId=unknown):
        market.registry.challenge(actors.producer, unknown, copy_id)


@pytest.mark.parametrize("unknown", [0, 999])
def test_challenge_of_an_unknown_copy_reverts(market, actors, unknown):
    original_id = register(market, actors.producer, actors.esp, make_content("orig")).token_id
    with nothing_changes(market, actors.producer), reverts("AIGCRegistryUnknownProduct", tokenId=unknown):
        market.registry.challenge(actors.producer, original_id, unknown)


def test_challenge_of_a_product_by_itself_reverts(market, actors):
    original_id = register(market, actors.producer, actors.esp, make_content("orig")).token_id
    with nothing_changes(market, actors.producer), reverts("AIGCRegistrySameProduct", tokenId=original_id):
        market.registry.challenge(actors.producer, original_id, original_id)


def test_challenge_of_an_already_revoked_copy_reverts(market, actors):
    original_id, copy_id = original_and_copy(market, actors, 0)
    market.registry.challenge(actors.producer, original_id, copy_id)
    with (
        nothing_changes(market, actors.producer, actors.attacker),
        reverts("AIGCRegistryAlreadyRevoked", tokenId=copy_id),
    ):
        market.registry.challenge(actors.producer, original_id, copy_id)


def test_challenge_with_a_revoked_original_reverts_as_not_owner(market, actors):
    original_id, copy_id = original_and_copy(market, actors, 0)
    market.registry.challenge(actors.producer, original_id, copy_id)
    third = register(market, actors.other, actors.esp, make_content("third", phash=make_content("orig").phash))
    with (
        nothing_changes(market, actors.producer, actors.attacker, actors.other),
        reverts("AIGCRegistryNotOwner", tokenId=copy_id, caller=actors.attacker.address),
    ):
        market.registry.challenge(actors.attacker, copy_id, third.token_id)


def test_challenging_a_product_you_own_yourself_reverts(market, actors):
    original_id, copy_id = original_and_copy(market, actors, 3)
    market.registry.transfer(actors.attacker, actors.producer.address, copy_id)
    with nothing_changes(market, actors.producer), reverts("AIGCRegistrySelfChallenge", tokenId=copy_id):
        market.registry.challenge(actors.producer, original_id, copy_id)


def test_challenge_when_the_copys_window_has_closed_reverts(market, actors):
    original_id, copy_id = original_and_copy(market, actors, 3)
    closed_at = final_at(market, copy_id)
    market.chain.set_next_block_timestamp(closed_at)
    with (
        nothing_changes(market, actors.producer, actors.attacker),
        reverts("AIGCRegistryChallengeWindowClosed", tokenId=copy_id, closedAt=closed_at),
    ):
        market.registry.challenge(actors.producer, original_id, copy_id)


def test_challenge_in_the_last_second_of_the_window_is_adjudicated(market, actors):
    original_id, copy_id = original_and_copy(market, actors, 3)
    market.chain.set_next_block_timestamp(final_at(market, copy_id) - 1)
    assert market.registry.challenge(actors.producer, original_id, copy_id).upheld is True


# -- revoked tokens ---------------------------------------------------------------------------------


def test_revoked_token_cannot_be_transferred(market, actors):
    original_id, copy_id = original_and_copy(market, actors, 0)
    market.registry.challenge(actors.producer, original_id, copy_id)
    with (
        nothing_changes(market, actors.attacker, actors.buyer),
        reverts("ERC721NonexistentToken", tokenId=copy_id),
    ):
        market.registry.transfer(actors.attacker, actors.buyer.address, copy_id)


def test_transferring_someone_elses_token_without_approval_reverts(market, actors):
    token_id = register(market, actors.producer, actors.esp, make_content("a")).token_id
    steal = market.registry.contract.functions.transferFrom(actors.producer.address, actors.other.address, token_id)
    with reverts("ERC721InsufficientApproval", operator=actors.other.address, tokenId=token_id):
        market.chain.transact(steal, actors.other)


def test_transferring_from_an_account_that_is_not_the_owner_reverts(market, actors):
    token_id = register(market, actors.producer, actors.esp, make_content("a")).token_id
    wrong_from = market.registry.contract.functions.transferFrom(actors.other.address, actors.buyer.address, token_id)
    with reverts("ERC721IncorrectOwner", sender=actors.other.address, tokenId=token_id, owner=actors.producer.address):
        market.chain.transact(wrong_from, actors.producer)


def test_transferring_a_token_to_the_zero_address_reverts(market, actors):
    token_id = register(market, actors.producer, actors.esp, make_content("a")).token_id
    with reverts("ERC721InvalidReceiver", receiver=ZERO_ADDRESS):
        market.registry.transfer(actors.producer, ZERO_ADDRESS, token_id)


def test_approving_someone_elses_token_reverts(market, actors):
    token_id = register(market, actors.producer, actors.esp, make_content("a")).token_id
    with reverts("ERC721InvalidApprover", approver=actors.other.address):
        market.registry.approve(actors.other, actors.other.address, token_id)


def test_approving_the_zero_address_as_operator_reverts(market, actors):
    approve_all = market.registry.contract.functions.setApprovalForAll(ZERO_ADDRESS, True)
    with reverts("ERC721InvalidOperator", operator=ZERO_ADDRESS):
        market.chain.transact(approve_all, actors.producer)


def test_the_balance_of_the_zero_address_reverts(market):
    with reverts("ERC721InvalidOwner", owner=ZERO_ADDRESS):
        market.chain.call(market.registry.contract.functions.balanceOf(ZERO_ADDRESS))


# -- bonds ------------------------------------------------------------------------------------------


def test_claiming_the_bond_of_a_final_product_credits_it_to_the_owner(market, actors):
    token_id = register(market, actors.producer, actors.esp, make_content("a")).token_id
    make_final(market, token_id)
    registry_before = market.registry.balance()

    tx = market.registry.claim_bond(actors.producer, token_id)

    assert market.registry.credit_of(actors.producer.address) == BOND
    assert market.registry.product(token_id).bond_released is True
    assert tx.event("BondReleased").args == {"tokenId": token_id, "owner": actors.producer.address, "amount": BOND}
    assert credit_reasons(tx) == {b"bond": (actors.producer.address, BOND)}
    assert market.registry.balance() == registry_before


def test_the_bond_goes_to_whoever_owns_the_product_when_it_is_claimed(market, actors):
    token_id = register(market, actors.producer, actors.esp, make_content("a")).token_id
    market.registry.transfer(actors.producer, actors.buyer.address, token_id)
    make_final(market, token_id)
    market.registry.claim_bond(actors.buyer, token_id)
    assert market.registry.credit_of(actors.buyer.address) == BOND
    assert market.registry.credit_of(actors.producer.address) == 0


def test_claiming_the_bond_one_second_before_the_product_is_final_reverts(market, actors):
    token_id = register(market, actors.producer, actors.esp, make_content("a")).token_id
    finality = final_at(market, token_id)
    market.chain.set_next_block_timestamp(finality - 1)
    with (
        nothing_changes(market, actors.producer),
        reverts("AIGCRegistryNotFinal", tokenId=token_id, finalAt=finality),
    ):
        market.registry.claim_bond(actors.producer, token_id)


def test_claiming_a_bond_twice_reverts(market, actors):
    token_id = register(market, actors.producer, actors.esp, make_content("a")).token_id
    make_final(market, token_id)
    market.registry.claim_bond(actors.producer, token_id)
    with nothing_changes(market, actors.producer), reverts("AIGCRegistryBondReleased", tokenId=token_id):
        market.registry.claim_bond(actors.producer, token_id)


def test_claiming_the_bond_of_someone_elses_product_reverts(market, actors):
    token_id = register(market, actors.producer, actors.esp, make_content("a")).token_id
    make_final(market, token_id)
    with (
        nothing_changes(market, actors.producer, actors.other),
        reverts("AIGCRegistryNotOwner", tokenId=token_id, caller=actors.other.address),
    ):
        market.registry.claim_bond(actors.other, token_id)


def test_claiming_the_bond_of_a_revoked_product_reverts(market, actors):
    original_id, copy_id = original_and_copy(market, actors, 1)
    market.registry.challenge(actors.producer, original_id, copy_id)
    market.chain.set_next_block_timestamp(final_at(market, copy_id))
    with reverts("AIGCRegistryNotOwner", tokenId=copy_id, caller=actors.attacker.address):
        market.registry.claim_bond(actors.attacker, copy_id)


def test_claiming_the_bond_of_an_unknown_product_reverts(market, actors):
    with reverts("AIGCRegistryUnknownProduct", tokenId=42):
        market.registry.claim_bond(actors.producer, 42)


# -- credits ----------------------------------------------------------------------------------------


def test_withdrawing_a_credit_pays_exactly_the_credit_and_clears_it(market, actors):
    original_id, copy_id = original_and_copy(market, actors, 2)
    market.registry.challenge(actors.producer, original_id, copy_id)
    before = market.chain.balance(actors.producer.address)
    registry_before = market.registry.balance()

    tx = market.registry.withdraw_credit(actors.producer)

    assert market.chain.balance(actors.producer.address) == before + DEPOSIT + BOND - tx.fee_wei
    assert market.registry.balance() == registry_before - DEPOSIT - BOND
    assert market.registry.credit_of(actors.producer.address) == 0
    assert tx.event("CreditWithdrawn").args == {"account": actors.producer.address, "amount": DEPOSIT + BOND}


def test_withdrawing_a_credit_without_one_reverts(market, actors):
    with reverts("AIGCRegistryNoCredit", account=actors.other.address):
        market.registry.withdraw_credit(actors.other)


def test_withdrawing_a_credit_twice_reverts(market, actors):
    token_id = register(market, actors.producer, actors.esp, make_content("a")).token_id
    make_final(market, token_id)
    market.registry.claim_bond(actors.producer, token_id)
    market.registry.withdraw_credit(actors.producer)
    with reverts("AIGCRegistryNoCredit", account=actors.producer.address):
        market.registry.withdraw_credit(actors.producer)


def test_a_credit_that_cannot_be_paid_out_stays_credited(market, actors):
    original_id, copy_id = original_and_copy(market, actors, THRESHOLD + 5)
    refuser = deploy_forwarder(market, actors.other)
    market.registry.transfer(actors.attacker, refuser.address, copy_id)
    market.registry.challenge(actors.producer, original_id, copy_id)  # rejected: the owner is credited
    assert market.registry.credit_of(refuser.address) == DEPOSIT
    with reverts("AIGCRegistryTransferFailed", to=refuser.address, amount=DEPOSIT):
        refuser.call(actors.other, market.registry.address, "withdrawCredit")
    assert market.registry.credit_of(refuser.address) == DEPOSIT


# -- constructor ------------------------------------------------------------------------------------


def deploy_registry(market, deployer, threshold=THRESHOLD, royalty_bps=PARAMS.royalty_bps, window=WINDOW, exchange=None):
    return market.chain.deploy(
        load_artifact("AIGCRegistry"),
        deployer,
        BOND,
        DEPOSIT,
        threshold,
        royalty_bps,
        window,
        market.exchange.address if exchange is None else exchange,
    )


def test_a_registry_deploys_with_the_largest_threshold_and_royalty(market, actors):
    contract, _ = deploy_registry(market, actors.other, threshold=64, royalty_bps=10_000)
    assert market.chain.call(contract.functions.similarityThreshold()) == 64
    assert market.chain.call(contract.functions.royaltyBps()) == 10_000


@pytest.mark.parametrize(
    "config",
    [
        {"threshold": 65},
        {"royalty_bps": 10_001},
        {"window": 0},
        {"exchange": ZERO_ADDRESS},
    ],
    ids=["threshold-above-64", "royalty-above-100-percent", "zero-challenge-window", "zero-exchange"],
)
def test_a_registry_with_an_invalid_config_cannot_be_deployed(market, actors, config):
    with reverts("AIGCRegistryInvalidConfig"):
        deploy_registry(market, actors.other, **config)


def test_the_deployed_registry_holds_the_test_parameters(market):
    registry = market.registry
    assert (
        registry.registration_bond(),
        registry.challenge_deposit(),
        registry.similarity_threshold(),
        registry.royalty_bps(),
        registry.challenge_window(),
    ) == (BOND, DEPOSIT, THRESHOLD, PARAMS.royalty_bps, WINDOW)
    assert market.chain.call(registry.contract.functions.exchange()) == market.exchange.address
