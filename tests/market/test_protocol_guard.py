"""The guard of `market.protocol.Protocol`: an honest ESP never signs an offer it could be slashed for.

`AIGCExchange.proveEquivocation` slashes the ESP of the later of two locks to different producers
whose content is a duplicate (the same content hash, or pHashes within the registry's similarity
threshold). `Protocol.commit_offer` (and `make_offer`, which calls it) therefore refuses, with
`DuplicateCommitment` and before anything is signed, to commit content, or a near-copy, that it
committed to another producer before. The same content to the same producer is allowed (that pair
is no equivocation), and so is content whose pHash is farther away than the threshold.

Hole 5 of the review: an attacker asks an honest ESP, from two producer keys, for one prompt; the
market's deterministic generator draws the same image twice; without the guard the ESP commits it
twice and the attacker proves equivocation. `test_an_honest_esp_refuses_the_second_of_two_producers_asking_it_one_prompt`.

Open (fails on purpose): the guard looks only at the commitments of the signing ESP, although one
`Protocol` object signs for every server-side ESP (`api/main.py`, `market/flows.py`) and the contract
slashes a copy sold by ANY later ESP:
`test_one_protocol_refuses_to_commit_through_a_second_esp_content_its_first_esp_committed_to_another_producer`.

Each test runs on both backends (the guard reads the threshold from the deployed registry).
"""

from __future__ import annotations

import hashlib

import pytest
from chain_helpers import FEE, PARAMS, STAKE, flip_bits, make_content, protocol, stake

from market.chain.contracts import EspInfo, EspState
from market.content import DeterministicImageGenerator
from market.protocol import DuplicateCommitment, Protocol

THRESHOLD = PARAMS.similarity_threshold


def _commit(honest: Protocol, esp, producer, label: str, phash: int | None = None):
    """`esp`'s signed offer to `producer` for the stand-in content `label` (pHash `phash` if given)."""
    content = make_content(label, phash)
    return honest.make_offer(esp, producer.address, content.data, content.prompt_hash, phash=content.phash)


def test_an_honest_esp_refuses_the_second_of_two_producers_asking_it_one_prompt(market, actors):
    esp, asker1, asker2 = actors.esp, actors.attacker, actors.accomplice
    stake(market, esp)
    honest = protocol(market)
    prompt = "a red fox at dawn"
    prompt_hash = hashlib.sha256(prompt.encode()).digest()
    first = honest.make_offer(esp, asker1.address, DeterministicImageGenerator().generate(prompt), prompt_hash, fee=FEE)
    honest.lock(asker1, first.signed)
    honest.reveal(esp, first.offer, first.key)

    with pytest.raises(DuplicateCommitment):
        honest.make_offer(esp, asker2.address, DeterministicImageGenerator().generate(prompt), prompt_hash, fee=FEE)

    assert market.exchange.esp_info(esp.address) == EspInfo(EspState.ACTIVE, STAKE, 0)


def test_an_honest_esp_refuses_a_near_copy_at_the_similarity_threshold_for_another_producer(market, actors):
    honest = protocol(market)
    _commit(honest, actors.esp, actors.producer, "original", phash=0)
    with pytest.raises(DuplicateCommitment):
        _commit(honest, actors.esp, actors.buyer, "near copy", phash=flip_bits(0, THRESHOLD))


def test_an_honest_esp_commits_content_one_bit_beyond_the_similarity_threshold_to_another_producer(market, actors):
    honest = protocol(market)
    _commit(honest, actors.esp, actors.producer, "original", phash=0)
    job = _commit(honest, actors.esp, actors.buyer, "not a copy", phash=flip_bits(0, THRESHOLD + 1))
    assert job.offer.producer == actors.buyer.address


def test_an_honest_esp_commits_content_with_a_far_away_phash_to_another_producer(market, actors):
    honest = protocol(market)
    _commit(honest, actors.esp, actors.producer, "original", phash=0)
    job = _commit(honest, actors.esp, actors.buyer, "other", phash=(1 << 64) - 1)
    assert job.offer.producer == actors.buyer.address


def test_an_honest_esp_commits_the_same_content_again_to_the_same_producer(market, actors):
    honest = protocol(market)
    first = _commit(honest, actors.esp, actors.producer, "one image")
    again = _commit(honest, actors.esp, actors.producer, "one image")
    assert again.opening.content_hash == first.opening.content_hash
    assert again.offer != first.offer


def test_the_guard_refuses_before_the_esp_signs_anything(market, actors):
    honest = protocol(market)
    _commit(honest, actors.esp, actors.producer, "one image")
    signed = []
    honest.sign = lambda esp, offer: signed.append(offer)  # type: ignore[method-assign]

    with pytest.raises(DuplicateCommitment):
        _commit(honest, actors.esp, actors.buyer, "one image")

    assert signed == []


def test_a_refused_commitment_is_not_recorded(market, actors):
    honest = protocol(market)
    _commit(honest, actors.esp, actors.producer, "one image")
    with pytest.raises(DuplicateCommitment):
        _commit(honest, actors.esp, actors.buyer, "one image")
    assert [c.producer for c in honest.commitments[actors.esp.address]] == [actors.producer.address]


def test_one_protocol_refuses_to_commit_through_a_second_esp_content_its_first_esp_committed_to_another_producer(market, actors):
    """The API and the simulation sign for all their ESPs through one `Protocol` object, and a copy sold by
    any later ESP is slashed (`proveEquivocation`): the guard checks every ESP's commitments."""
    honest = protocol(market)
    _commit(honest, actors.esp, actors.producer, "one prompt's image")
    with pytest.raises(DuplicateCommitment):
        _commit(honest, actors.other, actors.buyer, "one prompt's image")
