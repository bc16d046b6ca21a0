"""Views read together (`contracts.read_views`) and a contract's events filtered by the node: the same answers
as one view at a time and as every log filtered here, on both backends (docs/scale.md)."""

from __future__ import annotations

import dataclasses
import random

import pytest
from chain_helpers import final_product, make_content, open_purchase, register

from market.chain.connection import Chain
from market.chain.contracts import read_views
from market.chain.errors import ContractRevert
from market.protocol import Protocol
from market.simulation import _Without
from market.terms import ETHER


def test_views_read_together_equal_the_views_read_one_by_one_and_a_revert_stays_in_its_place(market, actors):
    registry, exchange = market.registry, market.exchange
    token = register(market, actors.producer, actors.esp, make_content("batched views")).token_id
    lock, _ = open_purchase(market, actors.buyer, final_product(market, actors.other, actors.esp, "for sale"))
    unknown = token + 100  # never registered: ownerOf reverts ERC721NonexistentToken
    accounts = [actors.producer.address, actors.esp.address, actors.buyer.address]

    assert registry.products([token]) == [registry.product(token)]
    assert registry.owners_of([token, unknown]) == [registry.owner_of(token), None]
    assert registry.are_revoked([token]) == [registry.is_revoked(token)]
    assert registry.royalty_infos([(token, ETHER)]) == [registry.royalty_info(token, ETHER)]
    assert registry.credits_of(accounts) == [registry.credit_of(a) for a in accounts]
    assert exchange.credits_of(accounts) == [exchange.credit_of(a) for a in accounts]
    assert exchange.get_locks([lock.lock_id]) == [exchange.get_lock(lock.lock_id)]
    assert exchange.esp_infos([actors.esp.address]) == [exchange.esp_info(actors.esp.address)]
    assert read_views(market.chain, []) == []

    views = [(registry, "ownerOf", (token,)), (registry, "ownerOf", (unknown,)), (registry, "totalRegistered", ())]
    owner, revert, total = read_views(market.chain, views, errors=True)
    assert owner == registry.owner_of(token) and total == registry.total_registered()
    assert isinstance(revert, ContractRevert) and revert.error == "ERC721NonexistentToken"
    with pytest.raises(ContractRevert):
        read_views(market.chain, views)


def test_a_batch_approves_each_sale_that_needs_it_as_one_step_at_a_time_would(market, actors):
    approved = final_product(market, actors.producer, actors.esp, "approved")  # the exchange may move it already
    bare = register(market, actors.other, actors.esp, make_content("not approved")).token_id
    protocol = Protocol(market)
    batch = protocol.batch()
    first, _ = open_purchase(market, actors.buyer, approved)
    # approve_sale decides from the chain; approve_sales must decide the same for every sale at once.
    unapproved = dataclasses.replace(first.terms, token_id=bare, seller=actors.other.address)
    sales = [(actors.producer, first.terms), (actors.other, first.terms), (actors.other, unapproved)]
    one_by_one = [protocol.batch().approve_sale(seller, terms) is not None for seller, terms in sales]
    together = [slot is not None for slot in batch.approve_sales(sales)]
    assert together == one_by_one == [False, False, True]
    batch.send()


def test_the_node_filters_a_contracts_events_by_topic_and_returns_what_every_log_filtered_here_would(market, actors):
    register(market, actors.producer, actors.esp, make_content("events"))
    chain = market.chain
    for contract, name in ((market.registry.contract, "ProductRegistered"), (market.exchange.contract, "GenerationLocked")):
        every = [e for e in chain.logs([str(contract.address)], 0, chain.head()) if e.name == name]
        assert chain.events(contract, name) == Chain.events(chain, contract, name) == every and every
    assert chain.events(market.registry.contract, "NoSuchEvent") == []


def test_the_purchase_draw_without_a_list_draws_what_the_filtered_list_would():
    for trial in range(500):
        draw = random.Random(trial)
        tokens = sorted(draw.sample(range(1, 500), draw.randrange(0, 60)))
        owners = {token: draw.choice("abcd") for token in tokens}
        held: dict[str, list[int]] = {}
        for position, token in enumerate(tokens):
            held.setdefault(owners[token], []).append(position)
        picked_tokens: set[int] = set()
        picked_positions: set[int] = set()
        listed, viewed = random.Random(trial), random.Random(trial)
        for buyer in "abcdeabcde":
            expected = [t for t in tokens if owners[t] != buyer and t not in picked_tokens]
            view = _Without(tokens, held.get(buyer, []), picked_positions)
            assert list(view) == expected and len(view) == len(expected)
            if not expected:
                continue
            token = listed.choice(expected)
            assert viewed.choice(view) == token
            picked_tokens.add(token)
            picked_positions.add(view.position(token))
