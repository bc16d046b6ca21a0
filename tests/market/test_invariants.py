"""The invariant checks detect the violations they exist for (they can fail)."""

from __future__ import annotations

from chain_helpers import (
    ETHER,
    PRICE,
    STAKE,
    make_content,
    make_final,
    open_generation,
    open_purchase,
    protocol,
    register,
)

from market.invariants import (
    ether_conserved,
    exchange_solvent,
    nothing_sold_before_final,
    registry_bonds_backed,
    snapshot_balances,
    tracked_addresses,
)


def test_ether_leaving_the_tracked_accounts_is_reported_with_the_exact_amount(market):
    chain = market.chain
    snapshot = chain.snapshot()
    before = snapshot_balances(chain, tracked_addresses(market))
    chain.send_ether(chain.funder, "0x000000000000000000000000000000000000dEaD", 12345)
    conserved, discrepancy = ether_conserved(chain, before)
    chain.revert(snapshot)  # undo the leak before the fixture's own conservation check
    assert not conserved and discrepancy == -12345


def test_ether_moved_between_tracked_accounts_is_conserved(market, actors):
    chain = market.chain
    before = snapshot_balances(chain, tracked_addresses(market))
    chain.send_ether(actors.producer, actors.esp.address, ETHER)
    assert ether_conserved(chain, before) == (True, 0)


def test_exchange_solvency_counts_open_locks_and_stakes(market, actors):
    open_generation(market, actors.producer, actors.esp, fee=3 * ETHER)
    held = 3 * ETHER + STAKE  # the open lock and the ESP's stake (open_generation stakes it)
    assert exchange_solvent(market) == (True, held, held)


def test_exchange_solvency_counts_credits_until_they_are_withdrawn(market, actors):
    token = register(market, actors.producer, actors.esp, make_content("solvency"))
    make_final(market, token.token_id)
    protocol(market).sell(actors.producer, actors.buyer, token.token_id, PRICE)
    assert exchange_solvent(market) == (True, PRICE + STAKE, PRICE + STAKE)
    protocol(market).withdraw_credits(actors.producer)
    assert exchange_solvent(market) == (True, STAKE, STAKE)


def test_a_purchase_lock_on_a_product_inside_its_window_would_be_reported(market, actors):
    token = register(market, actors.producer, actors.esp, make_content("early"))
    assert nothing_sold_before_final(market) == (True, 0)
    make_final(market, token.token_id)
    open_purchase(market, actors.buyer, token.token_id)
    assert nothing_sold_before_final(market) == (True, 0)  # at the boundary it is final


def test_registry_holds_one_bond_per_live_unreleased_product(market, actors):
    token = register(market, actors.producer, actors.esp, make_content("bond"))
    bond = market.registry.registration_bond()
    assert registry_bonds_backed(market) == (True, bond, bond)
    make_final(market, token.token_id)
    protocol(market).claim_bond(actors.producer, token.token_id)
    assert registry_bonds_backed(market) == (True, bond, bond)  # released into the owner's credit
    protocol(market).withdraw_credits(actors.producer)
    assert registry_bonds_backed(market) == (True, 0, 0)
