"""AIGCRegistry: registration with the ESP's EIP-712 proof, challenges of near-duplicates, ERC-721/2981."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import pytest
from chain_helpers import PRICE, flip_bits, make_content, register, reverts, sign
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak

from market.chain.signing import GENERATION_TYPES, generation_domain, sign_generation

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
THRESHOLD = 10  # MarketParams.similarity_threshold of the test deployment


# -- helpers ----------------------------------------------------------------------------------------


def block_time(market, tx) -> int:
    return int(market.chain.w3.eth.get_block(tx.block_number)["timestamp"])


@contextmanager
def nothing_changes(market, *accounts) -> Iterator[None]:
    """The body must revert and leave registrations, products and balances exactly as they were."""
    registry = market.registry
    total = registry.total_registered()
    records = [registry.product(token_id) for token_id in range(1, total + 1)]
    addresses = [a.address for a in accounts] + [registry.address]
    balances = {a: market.chain.balance(a) for a in addresses}
    yield
    assert registry.total_registered() == total
    assert [registry.product(token_id) for token_id in range(1, total + 1)] == records
    assert {a: market.chain.balance(a) for a in addresses} == balances


def register_with(market, producer, esp_address, content, signature, **kwargs):
    return market.registry.register(
        producer,
        content_hash=content.content_hash,
        perceptual_hash=content.phash,
        prompt_hash=content.prompt_hash,
        esp=esp_address,
        signature=signature,
        **kwargs,
    )


def original_and_duplicate(market, actors, distance: int, label: str = "orig"):
    """The producer registers an original; 5 s later the attacker registers a copy `distance` bits away."""
    original = make_content(label)
    copy = make_content(label + "-copy", phash=flip_bits(original.phash, distance))
    first = register(market, actors.producer, actors.esp, original)
    market.chain.advance_time(5)
    second = register(market, actors.attacker, actors.esp, copy)
    return first.token_id, second.token_id


# -- registration -----------------------------------------------------------------------------------


def test_registration_mints_the_token_to_the_producer(market, actors):
    registered = register(market, actors.producer, actors.esp, make_content("a"))
    assert market.registry.owner_of(registered.token_id) == actors.producer.address


def test_registration_stores_the_product_record(market, actors):
    content = make_content("a")
    registered = register(market, actors.producer, actors.esp, content, uri="ipfs://bafy-a")
    record = market.registry.product(registered.token_id)
    assert record.producer == actors.producer.address
    assert record.esp == actors.esp.address
    assert record.content_hash == content.content_hash
    assert record.perceptual_hash == content.phash
    assert record.prompt_hash == content.prompt_hash
    assert record.registered_at == block_time(market, registered.tx)
    assert record.revoked is False
    assert record.uri == "ipfs://bafy-a"


def test_registration_maps_the_content_hash_to_the_token(market, actors):
    content = make_content("a")
    assert market.registry.token_of_content(content.content_hash) == 0
    registered = register(market, actors.producer, actors.esp, content)
    assert market.registry.token_of_content(content.content_hash) == registered.token_id


def test_registration_emits_product_registered(market, actors):
    content = make_content("a")
    registered = register(market, actors.producer, actors.esp, content)
    event = registered.tx.event("ProductRegistered")
    assert event.address == market.registry.address
    assert event.args == {
        "tokenId": registered.token_id,
        "producer": actors.producer.address,
        "esp": actors.esp.address,
        "contentHash": content.content_hash,
        "perceptualHash": content.phash,
    }


def test_registration_moves_exactly_the_bond_into_the_registry(market, actors):
    bond = market.registry.registration_bond()
    assert bond > 0
    producer_before = market.chain.balance(actors.producer.address)
    registry_before = market.registry.balance()
    esp_before = market.chain.balance(actors.esp.address)
    registered = register(market, actors.producer, actors.esp, make_content("a"))
    assert market.registry.balance() == registry_before + bond
    assert market.chain.balance(actors.esp.address) == esp_before
    assert market.chain.balance(actors.producer.address) == producer_before - bond - registered.tx.fee_wei


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
    assert royalties == [(actors.producer.address, price * 500 // 10_000) for price in prices]
    assert royalties[2:5] == [(actors.producer.address, 0), (actors.producer.address, 1), (actors.producer.address, 1)]


def test_royalty_stays_with_the_producer_after_the_token_is_sold(market, actors):
    registered = register(market, actors.producer, actors.esp, make_content("a"))
    market.registry.transfer(actors.producer, actors.buyer.address, registered.token_id)
    receiver, amount = market.registry.royalty_info(registered.token_id, PRICE)
    assert receiver == actors.producer.address
    assert amount == PRICE * 500 // 10_000


def test_generation_digest_matches_eth_account_eip712_hash(market, actors):
    content = make_content("a")
    message = {
        "producer": actors.producer.address,
        "contentHash": content.content_hash,
        "promptHash": content.prompt_hash,
        "perceptualHash": content.phash,
    }
    signable = encode_typed_data(
        domain_data=generation_domain(market.chain.chain_id, market.registry.address),
        message_types=GENERATION_TYPES,
        message_data=message,
    )
    expected = keccak(b"\x19" + signable.version + signable.header + signable.body)
    fn = market.registry.contract.functions.generationDigest(
        actors.producer.address, content.content_hash, content.prompt_hash, content.phash
    )
    assert bytes(market.chain.call(fn)) == expected


def test_generation_typehash_is_the_documented_type_string(market):
    fn = market.registry.contract.functions.GENERATION_TYPEHASH()
    expected = keccak(text="Generation(address producer,bytes32 contentHash,bytes32 promptHash,uint64 perceptualHash)")
    assert bytes(market.chain.call(fn)) == expected


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


# -- registration reverts ---------------------------------------------------------------------------


def test_registration_without_signature_reverts(market, actors):
    content = make_content("a")
    with (
        nothing_changes(market, actors.producer),
        reverts("AIGCRegistryInvalidSignature", esp=actors.esp.address),
    ):
        register_with(market, actors.producer, actors.esp.address, content, b"")


def test_registration_signed_by_another_key_than_the_esp_reverts(market, actors):
    content = make_content("a")
    forged = sign(market, actors.other, actors.producer.address, content)
    with (
        nothing_changes(market, actors.producer),
        reverts("AIGCRegistryInvalidSignature", esp=actors.esp.address),
    ):
        register_with(market, actors.producer, actors.esp.address, content, forged)


def test_signature_for_another_producer_cannot_be_replayed(market, actors):
    content = make_content("a")
    for_producer = sign(market, actors.esp, actors.producer.address, content)
    with (
        nothing_changes(market, actors.producer, actors.attacker),
        reverts("AIGCRegistryInvalidSignature", esp=actors.esp.address),
    ):
        register_with(market, actors.attacker, actors.esp.address, content, for_producer)
    assert market.registry.token_of_content(content.content_hash) == 0


@pytest.mark.parametrize("field", ["phash", "prompt_hash", "content_hash"])
def test_signature_over_different_fields_reverts(market, actors, field):
    signed = make_content("a")
    signature = sign(market, actors.esp, actors.producer.address, signed)
    tampered = {
        "phash": replace(signed, phash=signed.phash ^ 1),
        "prompt_hash": replace(signed, prompt_hash=make_content("b").prompt_hash),
        "content_hash": replace(signed, content_hash=make_content("b").content_hash),
    }[field]
    with (
        nothing_changes(market, actors.producer),
        reverts("AIGCRegistryInvalidSignature", esp=actors.esp.address),
    ):
        register_with(market, actors.producer, actors.esp.address, tampered, signature)


def test_high_s_malleated_signature_is_rejected(market, actors):
    content = make_content("a")
    signature = sign(market, actors.esp, actors.producer.address, content)
    r, s, v = signature[:32], int.from_bytes(signature[32:64], "big"), signature[64]
    assert v in (27, 28)
    malleated = r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v])
    # The malleated signature is mathematically valid for the same digest and key ...
    fn = market.registry.contract.functions.generationDigest(
        actors.producer.address, content.content_hash, content.prompt_hash, content.phash
    )
    digest = bytes(market.chain.call(fn))
    assert Account._recover_hash(digest, signature=malleated) == actors.esp.address
    # ... but the registry accepts only the canonical low-s form.
    with (
        nothing_changes(market, actors.producer),
        reverts("AIGCRegistryInvalidSignature", esp=actors.esp.address),
    ):
        register_with(market, actors.producer, actors.esp.address, content, malleated)


@pytest.mark.parametrize("wrong", ["chain_id", "verifying_contract"])
def test_signature_for_another_domain_reverts(market, actors, wrong):
    content = make_content("a")
    signature = sign_generation(
        actors.esp,
        chain_id=market.chain.chain_id + 1 if wrong == "chain_id" else market.chain.chain_id,
        registry=market.exchange.address if wrong == "verifying_contract" else market.registry.address,
        producer=actors.producer.address,
        content_hash=content.content_hash,
        prompt_hash=content.prompt_hash,
        perceptual_hash=content.phash,
    )
    with (
        nothing_changes(market, actors.producer),
        reverts("AIGCRegistryInvalidSignature", esp=actors.esp.address),
    ):
        register_with(market, actors.producer, actors.esp.address, content, signature)


def test_registering_the_same_content_again_reverts_even_for_another_producer(market, actors):
    content = make_content("a")
    first = register(market, actors.producer, actors.esp, content)
    with (
        nothing_changes(market, actors.producer, actors.other),
        reverts("AIGCRegistryDuplicateContent", contentHash=content.content_hash, tokenId=first.token_id),
    ):
        register(market, actors.other, actors.esp, content)


@pytest.mark.parametrize("delta", ["zero", "one_wei_short", "one_wei_over"])
def test_registration_with_the_wrong_bond_reverts(market, actors, delta):
    bond = market.registry.registration_bond()
    sent = {"zero": 0, "one_wei_short": bond - 1, "one_wei_over": bond + 1}[delta]
    content = make_content("a")
    signature = sign(market, actors.esp, actors.producer.address, content)
    with nothing_changes(market, actors.producer), reverts("AIGCRegistryWrongBond", sent=sent, required=bond):
        register_with(market, actors.producer, actors.esp.address, content, signature, bond=sent)


def test_registration_of_a_zero_content_hash_reverts(market, actors):
    content = replace(make_content("a"), content_hash=bytes(32))
    signature = sign(market, actors.esp, actors.producer.address, content)
    with nothing_changes(market, actors.producer), reverts("AIGCRegistryInvalidContentHash"):
        register_with(market, actors.producer, actors.esp.address, content, signature)


def test_registration_with_a_zero_esp_address_reverts(market, actors):
    content = make_content("a")
    signature = sign(market, actors.esp, actors.producer.address, content)
    with nothing_changes(market, actors.producer), reverts("AIGCRegistryInvalidEsp"):
        register_with(market, actors.producer, ZERO_ADDRESS, content, signature)


# -- challenges: upheld -----------------------------------------------------------------------------


@pytest.mark.parametrize("distance", [0, 3, THRESHOLD])
def test_upheld_challenge_revokes_the_duplicate(market, actors, distance):
    original_id, duplicate_id = original_and_duplicate(market, actors, distance)
    outcome = market.registry.challenge(actors.producer, original_id, duplicate_id)
    assert outcome.upheld is True
    assert outcome.distance == distance
    assert market.registry.is_revoked(duplicate_id) is True
    assert market.registry.is_revoked(original_id) is False
    assert market.registry.owner_of(original_id) == actors.producer.address
    with reverts("ERC721NonexistentToken", tokenId=duplicate_id):
        market.registry.owner_of(duplicate_id)


def test_upheld_challenge_keeps_the_revoked_record(market, actors):
    original_id, duplicate_id = original_and_duplicate(market, actors, 3)
    before = market.registry.product(duplicate_id)
    market.registry.challenge(actors.producer, original_id, duplicate_id)
    after = market.registry.product(duplicate_id)
    assert after.revoked is True
    assert after.producer == actors.attacker.address
    assert after.perceptual_hash == before.perceptual_hash
    assert after == replace(before, revoked=True)
    assert market.registry.token_of_content(before.content_hash) == duplicate_id
    assert market.registry.total_registered() == 2


@pytest.mark.parametrize("distance", [0, 3, THRESHOLD])
def test_upheld_challenge_pays_the_challenger_its_deposit_and_the_bond(market, actors, distance):
    original_id, duplicate_id = original_and_duplicate(market, actors, distance)
    bond = market.registry.registration_bond()
    challenger_before = market.chain.balance(actors.producer.address)
    accused_before = market.chain.balance(actors.attacker.address)
    registry_before = market.registry.balance()
    outcome = market.registry.challenge(actors.producer, original_id, duplicate_id)
    assert market.chain.balance(actors.producer.address) == challenger_before + bond - outcome.tx.fee_wei
    assert market.chain.balance(actors.attacker.address) == accused_before
    assert market.registry.balance() == registry_before - bond


@pytest.mark.parametrize("distance", [0, 3, THRESHOLD])
def test_upheld_challenge_emits_challenge_resolved_and_product_revoked(market, actors, distance):
    original_id, duplicate_id = original_and_duplicate(market, actors, distance)
    outcome = market.registry.challenge(actors.producer, original_id, duplicate_id)
    assert outcome.tx.event("ChallengeResolved").args == {
        "originalId": original_id,
        "duplicateId": duplicate_id,
        "challenger": actors.producer.address,
        "upheld": True,
        "distance": distance,
    }
    assert outcome.tx.event("ProductRevoked").args == {
        "tokenId": duplicate_id,
        "formerOwner": actors.attacker.address,
    }
    transfer = outcome.tx.event("Transfer").args
    assert transfer == {"from": actors.attacker.address, "to": ZERO_ADDRESS, "tokenId": duplicate_id}


def test_upheld_challenge_revokes_the_duplicate_in_the_hands_of_a_buyer(market, actors):
    original_id, duplicate_id = original_and_duplicate(market, actors, 2)
    market.registry.transfer(actors.attacker, actors.buyer.address, duplicate_id)
    outcome = market.registry.challenge(actors.producer, original_id, duplicate_id)
    assert outcome.upheld is True
    assert outcome.tx.event("ProductRevoked").args["formerOwner"] == actors.buyer.address


def test_upheld_challenge_with_a_larger_deposit_returns_the_whole_deposit(market, actors):
    original_id, duplicate_id = original_and_duplicate(market, actors, 1)
    bond = market.registry.registration_bond()
    deposit = 3 * market.registry.challenge_deposit() + 17
    before = market.chain.balance(actors.producer.address)
    outcome = market.registry.challenge(actors.producer, original_id, duplicate_id, deposit=deposit)
    assert outcome.upheld is True
    assert market.chain.balance(actors.producer.address) == before + bond - outcome.tx.fee_wei


def test_challenge_by_a_buyer_of_the_original_is_upheld(market, actors):
    original_id, duplicate_id = original_and_duplicate(market, actors, 4)
    market.registry.transfer(actors.producer, actors.buyer.address, original_id)
    bond = market.registry.registration_bond()
    before = market.chain.balance(actors.buyer.address)
    outcome = market.registry.challenge(actors.buyer, original_id, duplicate_id)
    assert outcome.upheld is True
    assert market.chain.balance(actors.buyer.address) == before + bond - outcome.tx.fee_wei


# -- challenges: rejected ---------------------------------------------------------------------------


def test_challenge_of_a_product_too_far_apart_is_rejected(market, actors):
    original_id, duplicate_id = original_and_duplicate(market, actors, THRESHOLD + 1)
    deposit = market.registry.challenge_deposit()
    challenger_before = market.chain.balance(actors.producer.address)
    accused_before = market.chain.balance(actors.attacker.address)
    registry_before = market.registry.balance()
    outcome = market.registry.challenge(actors.producer, original_id, duplicate_id)
    assert outcome.upheld is False
    assert outcome.distance == THRESHOLD + 1
    assert market.chain.balance(actors.producer.address) == challenger_before - deposit - outcome.tx.fee_wei
    assert market.chain.balance(actors.attacker.address) == accused_before + deposit
    assert market.registry.balance() == registry_before


def test_rejected_challenge_leaves_the_accused_product_live(market, actors):
    original_id, duplicate_id = original_and_duplicate(market, actors, THRESHOLD + 1)
    outcome = market.registry.challenge(actors.producer, original_id, duplicate_id)
    assert outcome.upheld is False
    assert market.registry.is_revoked(duplicate_id) is False
    assert market.registry.owner_of(duplicate_id) == actors.attacker.address
    assert market.registry.product(duplicate_id).revoked is False


def test_rejected_challenge_emits_challenge_resolved_without_revocation(market, actors):
    original_id, duplicate_id = original_and_duplicate(market, actors, THRESHOLD + 1)
    outcome = market.registry.challenge(actors.producer, original_id, duplicate_id)
    assert outcome.tx.event("ChallengeResolved").args == {
        "originalId": original_id,
        "duplicateId": duplicate_id,
        "challenger": actors.producer.address,
        "upheld": False,
        "distance": THRESHOLD + 1,
    }
    assert [e.name for e in outcome.tx.events] == ["ChallengeResolved"]


def test_challenge_claiming_the_later_registration_as_original_is_rejected(market, actors):
    earlier_id, later_id = original_and_duplicate(market, actors, 0)
    # The attacker owns the later copy and accuses the producer's earlier original of copying it.
    deposit = market.registry.challenge_deposit()
    attacker_before = market.chain.balance(actors.attacker.address)
    producer_before = market.chain.balance(actors.producer.address)
    outcome = market.registry.challenge(actors.attacker, later_id, earlier_id)
    assert outcome.upheld is False
    assert outcome.distance == 0
    assert market.registry.is_revoked(earlier_id) is False
    assert market.registry.owner_of(earlier_id) == actors.producer.address
    assert market.chain.balance(actors.attacker.address) == attacker_before - deposit - outcome.tx.fee_wei
    assert market.chain.balance(actors.producer.address) == producer_before + deposit


def test_challenge_between_products_registered_at_the_same_time_follows_registration_order(market, actors):
    if market.chain.backend != "rpc":
        pytest.skip("eth-tester cannot mine two blocks with the same timestamp; anvil runs this case")
    original = make_content("orig")
    copy = make_content("copy", phash=original.phash)
    stamp = market.chain.now() + 7
    market.chain.set_next_block_timestamp(stamp)
    first = register(market, actors.producer, actors.esp, original)
    market.chain.set_next_block_timestamp(stamp)
    second = register(market, actors.attacker, actors.esp, copy)
    assert market.registry.product(first.token_id).registered_at == stamp
    assert market.registry.product(second.token_id).registered_at == stamp
    outcome = market.registry.challenge(actors.producer, first.token_id, second.token_id)
    assert (outcome.upheld, outcome.distance) == (True, 0)
    assert market.registry.is_revoked(second.token_id) is True


def test_challenging_a_product_you_own_yourself_reverts(market, actors):
    original_id, duplicate_id = original_and_duplicate(market, actors, 3)
    market.registry.transfer(actors.attacker, actors.producer.address, duplicate_id)
    with reverts("AIGCRegistrySelfChallenge", tokenId=duplicate_id):
        market.registry.challenge(actors.producer, original_id, duplicate_id)
    assert market.registry.is_revoked(duplicate_id) is False


def test_royalty_info_of_an_unknown_token_is_zero(market):
    assert market.registry.royalty_info(999, 10**18) == ("0x0000000000000000000000000000000000000000", 0)


def test_rejected_challenge_with_a_larger_deposit_pays_the_whole_deposit_to_the_accused(market, actors):
    original_id, duplicate_id = original_and_duplicate(market, actors, 40)
    deposit = 5 * market.registry.challenge_deposit() + 3
    challenger_before = market.chain.balance(actors.producer.address)
    accused_before = market.chain.balance(actors.attacker.address)
    outcome = market.registry.challenge(actors.producer, original_id, duplicate_id, deposit=deposit)
    assert outcome.upheld is False
    assert market.chain.balance(actors.producer.address) == challenger_before - deposit - outcome.tx.fee_wei
    assert market.chain.balance(actors.attacker.address) == accused_before + deposit


def test_rejected_challenge_pays_the_current_owner_of_the_accused_product(market, actors):
    original_id, duplicate_id = original_and_duplicate(market, actors, THRESHOLD + 1)
    market.registry.transfer(actors.attacker, actors.buyer.address, duplicate_id)
    deposit = market.registry.challenge_deposit()
    buyer_before = market.chain.balance(actors.buyer.address)
    attacker_before = market.chain.balance(actors.attacker.address)
    market.registry.challenge(actors.producer, original_id, duplicate_id)
    assert market.chain.balance(actors.buyer.address) == buyer_before + deposit
    assert market.chain.balance(actors.attacker.address) == attacker_before


# -- challenge reverts ------------------------------------------------------------------------------


def test_challenge_with_too_small_a_deposit_reverts(market, actors):
    original_id, duplicate_id = original_and_duplicate(market, actors, 0)
    required = market.registry.challenge_deposit()
    with (
        nothing_changes(market, actors.producer, actors.attacker),
        reverts("AIGCRegistryDepositTooSmall", sent=required - 1, required=required),
    ):
        market.registry.challenge(actors.producer, original_id, duplicate_id, deposit=required - 1)
    assert market.registry.is_revoked(duplicate_id) is False


def test_challenge_by_someone_not_owning_the_original_reverts(market, actors):
    original_id, duplicate_id = original_and_duplicate(market, actors, 0)
    with (
        nothing_changes(market, actors.producer, actors.attacker, actors.other),
        reverts("AIGCRegistryNotOwner", tokenId=original_id, caller=actors.other.address),
    ):
        market.registry.challenge(actors.other, original_id, duplicate_id)
    assert market.registry.is_revoked(duplicate_id) is False


def test_challenge_by_the_producer_after_selling_the_original_reverts(market, actors):
    original_id, duplicate_id = original_and_duplicate(market, actors, 0)
    market.registry.transfer(actors.producer, actors.buyer.address, original_id)
    with (
        nothing_changes(market, actors.producer, actors.attacker, actors.buyer),
        reverts("AIGCRegistryNotOwner", tokenId=original_id, caller=actors.producer.address),
    ):
        market.registry.challenge(actors.producer, original_id, duplicate_id)


@pytest.mark.parametrize("unknown", [0, 999])
def test_challenge_with_an_unknown_original_reverts(market, actors, unknown):
    duplicate_id = register(market, actors.attacker, actors.esp, make_content("copy")).token_id
    with (
        nothing_changes(market, actors.producer, actors.attacker),
        reverts("AIGCRegistryUnknownProduct", tokenId=unknown),
    ):
        market.registry.challenge(actors.producer, unknown, duplicate_id)


@pytest.mark.parametrize("unknown", [0, 999])
def test_challenge_of_an_unknown_duplicate_reverts(market, actors, unknown):
    original_id = register(market, actors.producer, actors.esp, make_content("orig")).token_id
    with (
        nothing_changes(market, actors.producer),
        reverts("AIGCRegistryUnknownProduct", tokenId=unknown),
    ):
        market.registry.challenge(actors.producer, original_id, unknown)


def test_challenge_of_a_product_by_itself_reverts(market, actors):
    original_id = register(market, actors.producer, actors.esp, make_content("orig")).token_id
    with (
        nothing_changes(market, actors.producer),
        reverts("AIGCRegistrySameProduct", tokenId=original_id),
    ):
        market.registry.challenge(actors.producer, original_id, original_id)


def test_challenge_of_an_already_revoked_duplicate_reverts(market, actors):
    original_id, duplicate_id = original_and_duplicate(market, actors, 0)
    market.registry.challenge(actors.producer, original_id, duplicate_id)
    with (
        nothing_changes(market, actors.producer, actors.attacker),
        reverts("AIGCRegistryAlreadyRevoked", tokenId=duplicate_id),
    ):
        market.registry.challenge(actors.producer, original_id, duplicate_id)


def test_challenge_with_a_revoked_original_reverts_as_not_owner(market, actors):
    original_id, duplicate_id = original_and_duplicate(market, actors, 0)
    market.registry.challenge(actors.producer, original_id, duplicate_id)
    # The attacker's revoked copy is burned: it no longer owns it and cannot use it as an original.
    market.chain.advance_time(5)
    third = register(market, actors.other, actors.esp, make_content("third", phash=make_content("orig").phash))
    with (
        nothing_changes(market, actors.producer, actors.attacker, actors.other),
        reverts("AIGCRegistryNotOwner", tokenId=duplicate_id, caller=actors.attacker.address),
    ):
        market.registry.challenge(actors.attacker, duplicate_id, third.token_id)


# -- revoked tokens ---------------------------------------------------------------------------------


def test_revoked_token_cannot_be_transferred(market, actors):
    original_id, duplicate_id = original_and_duplicate(market, actors, 0)
    market.registry.challenge(actors.producer, original_id, duplicate_id)
    with (
        nothing_changes(market, actors.attacker, actors.buyer),
        reverts("ERC721NonexistentToken", tokenId=duplicate_id),
    ):
        market.registry.transfer(actors.attacker, actors.buyer.address, duplicate_id)
