"""Time control, accounts and error surfacing of `Chain` on both backends."""

from __future__ import annotations

import pytest
from chain_helpers import ETHER

from market.chain.anvil import free_port
from market.chain.connection import Chain
from market.chain.errors import RpcUnreachableError


def test_advance_time_places_the_next_transaction_exactly_that_far_after_the_latest_block(chain):
    account = chain.new_account(ETHER)
    target = chain.advance_time(500)
    tx = chain.send_ether(account, chain.funder.address, 1)
    assert chain.w3.eth.get_block(tx.block_number)["timestamp"] == target


def test_time_travel_after_a_snapshot_revert_starts_from_the_latest_block(chain):
    snapshot = chain.snapshot()
    chain.advance_time(10_000)
    chain.send_ether(chain.funder, chain.funder.address, 0)
    chain.revert(snapshot)
    target = chain.advance_time(30)
    tx = chain.send_ether(chain.funder, chain.funder.address, 0)
    assert chain.w3.eth.get_block(tx.block_number)["timestamp"] == target


def test_time_only_moves_forward(chain):
    with pytest.raises(ValueError):
        chain.advance_time(0)


def test_new_accounts_are_funded_and_distinct(chain):
    first, second = chain.new_account(2 * ETHER), chain.new_account(0)
    assert chain.balance(first.address) == 2 * ETHER
    assert chain.balance(second.address) == 0
    assert first.address != second.address


def test_fees_paid_are_the_gas_of_each_receipt(chain):
    before = chain.fees_paid_wei
    tx = chain.send_ether(chain.funder, chain.funder.address, 1)
    assert tx.fee_wei > 0
    assert chain.fees_paid_wei - before == tx.fee_wei


def test_connecting_to_a_closed_port_raises_rpc_unreachable():
    with pytest.raises(RpcUnreachableError, match="no EVM JSON-RPC node answers"):
        Chain.connect(f"http://127.0.0.1:{free_port()}", timeout=2)
