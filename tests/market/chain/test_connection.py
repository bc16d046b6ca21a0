"""`Chain` on both backends: the interface each implements, time control, accounts, views, snapshots, errors.

The `chain` fixture runs every test here on the embedded eth-tester chain and on anvil: one shared
behaviour test per method, for both backends.
"""

from __future__ import annotations

import inspect

import pytest
from chain_helpers import ETHER, FEE, open_generation, reverts

from market.chain.anvil import free_port
from market.chain.calldata import CalldataEncoder
from market.chain.connection import Chain
from market.chain.embedded import EmbeddedChain
from market.chain.errors import RpcUnreachableError
from market.chain.node import RpcChain

#: What callers use of a chain: every backend has all of it, with the same signatures.
PUBLIC = (
    "embedded",
    "connect",
    "new_account",
    "nonce",
    "code",
    "balance",
    "send_ether",
    "contract",
    "deploy",
    "call",
    "call_raw",
    "transact",
    "send_call",
    "logs",
    "events",
    "head",
    "now",
    "block_timestamp",
    "set_next_block_timestamp",
    "advance_time",
    "snapshot",
    "revert",
)


def test_each_backend_is_a_chain_with_the_whole_interface(chain):
    assert isinstance(chain, Chain)
    assert isinstance(chain, {"eth-tester": EmbeddedChain, "rpc": RpcChain}[chain.backend])
    for name in PUBLIC:
        assert inspect.signature(getattr(type(chain), name)) == inspect.signature(getattr(Chain, name)), name
    assert chain.funder in chain.accounts and chain.chain_id > 0 and chain.errors is not None
    assert isinstance(chain.fees_paid_wei, int) and isinstance(chain.last_block, int) and chain.deployed


def test_the_interface_alone_cannot_be_built_and_each_backend_implements_every_abstract_method():
    assert Chain.__abstractmethods__ >= {"head", "balance", "logs", "_send", "_set_next_timestamp", "_take_snapshot", "_revert_to"}
    with pytest.raises(TypeError):
        Chain(None, None)  # type: ignore[abstract, arg-type]
    for backend in (EmbeddedChain, RpcChain):
        assert not backend.__abstractmethods__, backend


def test_the_constructors_build_the_backends(anvil_node):
    assert isinstance(Chain.embedded(), EmbeddedChain) and Chain.embedded().backend == "eth-tester"
    node = Chain.connect(anvil_node.url)
    assert isinstance(node, RpcChain) and node.backend == "rpc" and node.chain_id == anvil_node.chain_id


def test_views_of_blocks_and_code(chain, market):
    tx = chain.send_ether(chain.funder, chain.funder.address, 1)
    assert chain.head() >= tx.block_number == chain.last_block
    assert chain.block_timestamp(tx.block_number) <= chain.now()
    assert len(chain.code(market.exchange.address)) > 0 and chain.code(chain.funder.address) == b""


def test_call_raw_returns_the_result_and_decodes_a_revert(chain, market, actors):
    exchange = market.exchange
    data = CalldataEncoder(exchange.contract.abi).encode("minStake")
    assert int.from_bytes(chain.call_raw(exchange.address, data), "big") == exchange.min_stake()
    _, job = open_generation(market, actors.producer, actors.esp, fee=FEE)
    wrong = CalldataEncoder(exchange.contract.abi).encode("withdrawGeneration", job.offer.as_tuple(), b"\x00" * 32)
    with reverts("AIGCExchangeWrongPreimage"):
        chain.call_raw(exchange.address, wrong, sender=actors.esp.address)


def test_events_of_the_connections_transactions_come_back_decoded_in_logs(chain, market, actors):
    opened, _ = open_generation(market, actors.producer, actors.esp, fee=FEE)
    locked = [
        e
        for e in chain.logs([market.exchange.address], opened.tx.block_number, opened.tx.block_number)
        if e.name == "GenerationLocked"
    ]
    assert [e.args["id"] for e in locked] == [opened.lock_id]
    assert opened.lock_id in [e.args["id"] for e in chain.events(market.exchange.contract, "GenerationLocked")]


def test_a_revert_to_a_snapshot_undoes_the_books_too(chain):
    fees, accounts, head = chain.fees_paid_wei, len(chain.accounts), chain.head()
    snapshot = chain.snapshot()
    account = chain.new_account(ETHER)
    assert chain.balance(account.address) == ETHER and chain.fees_paid_wei > fees
    chain.revert(snapshot)
    assert chain.fees_paid_wei == fees and len(chain.accounts) == accounts and chain.head() == head
    assert chain.balance(account.address) == 0


def test_advance_time_places_the_next_transaction_exactly_that_far_after_the_latest_block(chain):
    account = chain.new_account(ETHER)
    target = chain.advance_time(500)
    tx = chain.send_ether(account, chain.funder.address, 1)
    assert chain.block_timestamp(tx.block_number) == target


def test_time_travel_after_a_snapshot_revert_starts_from_the_latest_block(chain):
    snapshot = chain.snapshot()
    chain.advance_time(10_000)
    chain.send_ether(chain.funder, chain.funder.address, 0)
    chain.revert(snapshot)
    target = chain.advance_time(30)
    tx = chain.send_ether(chain.funder, chain.funder.address, 0)
    assert chain.block_timestamp(tx.block_number) == target


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
