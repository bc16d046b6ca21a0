"""Chains, deployed markets and funded actors for the tests.

Every contract test runs twice: on the embedded eth-tester chain and on a real anvil node that the
session starts on 127.0.0.1 and stops at the end. Each test runs inside a chain snapshot and, when
it ends, the `market` fixture checks the money invariants (ether conserved over all accounts and
contracts with gas included; the exchange holds exactly its open locks; the registry exactly the
bonds of live products) before reverting the snapshot: on failure paths too.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from eth_account.signers.local import LocalAccount
from hypothesis import settings

from market.chain.anvil import AnvilNode, free_port
from market.chain.connection import Chain
from market.chain.deploy import Market, deploy_market
from market.invariants import check_market, snapshot_balances, tracked_addresses
from market.terms import ETHER

BACKENDS = ("eth-tester", "anvil")

# Property tests explore the same examples on every run, so CI cannot turn red by chance; a new
# search is one `--hypothesis-seed` away.
settings.register_profile("deterministic", derandomize=True, deadline=None)
settings.load_profile("deterministic")


@pytest.fixture(scope="session")
def anvil_node() -> Iterator[AnvilNode]:
    """A real anvil node on a free port of 127.0.0.1, stopped when the session ends."""
    node = AnvilNode(port=free_port())
    node.start()
    yield node
    node.stop()


@pytest.fixture(scope="session", params=BACKENDS)
def deployed_market(request: pytest.FixtureRequest) -> Market:
    """The three contracts deployed once per backend for the whole session."""
    if request.param == "anvil":
        chain = Chain.connect(request.getfixturevalue("anvil_node").url)
    else:
        chain = Chain.embedded()
    market, _ = deploy_market(chain)
    return market


@pytest.fixture
def market(deployed_market: Market) -> Iterator[Market]:
    """The deployed market inside a snapshot; checks the money invariants when the test ends."""
    chain = deployed_market.chain
    snapshot = chain.snapshot()
    balances = snapshot_balances(chain, tracked_addresses(deployed_market))
    try:
        yield deployed_market
        failed = {name: r.detail for name, r in check_market(deployed_market, balances).items() if not r.holds}
        assert not failed, f"invariants failed after the scenario: {failed}"
    finally:
        chain.revert(snapshot)


@pytest.fixture
def chain(market: Market) -> Chain:
    return market.chain


@dataclass(frozen=True)
class Actors:
    """Funded accounts for one test."""

    producer: LocalAccount
    esp: LocalAccount
    buyer: LocalAccount
    other: LocalAccount
    attacker: LocalAccount
    accomplice: LocalAccount


@pytest.fixture
def actors(market: Market) -> Actors:
    chain = market.chain
    return Actors(
        producer=chain.new_account(100 * ETHER, "producer"),
        esp=chain.new_account(10 * ETHER, "esp"),
        buyer=chain.new_account(100 * ETHER, "buyer"),
        other=chain.new_account(10 * ETHER, "other"),
        attacker=chain.new_account(10 * ETHER, "attacker"),
        accomplice=chain.new_account(10 * ETHER, "accomplice"),
    )
