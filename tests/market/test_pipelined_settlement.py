"""Pipelined settlement on anvil (issue 20, item 1): the same results as one transaction at a time.

Each test starts its own anvil nodes on 127.0.0.1 (transactions mined in the order sent, as
`aigc-market simulate --node anvil` starts them) and stops them when it ends.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from market.chain.anvil import AnvilNode, free_port
from market.chain.connection import Call, Chain, TxResult
from market.chain.deploy import deploy_market
from market.chain.errors import ContractRevert
from market.chain.rpc import METHOD_NOT_FOUND, RpcError
from market.simulation import SimulationConfig, run_simulation
from market.terms import ETHER

pytestmark = pytest.mark.anvil

#: Six periods with a cheating ESP (refunds), attacks on most periods (their challenges revert or are
#: rejected) and purchases of which some sellers never claim (the buyers refund).
SHORT = SimulationConfig(
    periods=6, random_periods=2, attack_probability=0.8, purchase_probability=0.6, seller_absent_probability=0.5, seed=5
)


@pytest.fixture
def two_nodes() -> Iterator[tuple[str, str]]:
    """Two fresh anvil nodes: one for each way of sending."""
    with ExitStack() as stack:
        nodes = [stack.enter_context(AnvilNode(port=free_port(), order="fifo")) for _ in range(2)]
        yield nodes[0].url, nodes[1].url


def test_pipelined_and_one_by_one_settlement_give_the_same_summary_for_the_same_seed(tmp_path: Path, two_nodes):
    one_url, pipelined_url = two_nodes
    one = run_simulation(SHORT, Chain.connect(one_url, pipelined=False), tmp_path / "one").summary
    pipelined = run_simulation(SHORT, Chain.connect(pipelined_url, pipelined=True), tmp_path / "pipelined").summary
    # The run must exercise what could differ: refunds, failed attacks, rejected challenges, open trades.
    assert one["refunded"] > 0 and one["attacks_attempted"] > 0 and one["trades_refunded"] > 0
    # Gas is the one figure that may differ: calldata costs 4 gas a zero byte and 16 a non-zero one, and
    # every run draws fresh keys, offer nonces and secrets. The count of each operation may not.
    gas = "gas_by_operation"
    assert {op: v["calls"] for op, v in one[gas].items()} == {op: v["calls"] for op, v in pipelined[gas].items()}
    assert {k: v for k, v in one.items() if k != gas} == {k: v for k, v in pipelined.items() if k != gas}


def test_a_phase_returns_each_revert_decoded_in_its_place_and_the_reverting_step_costs_nothing(two_nodes):
    outcomes = {}
    for url, pipelined in zip(two_nodes, (False, True), strict=True):
        chain = Chain.connect(url, pipelined=pipelined)
        market, _ = deploy_market(chain)
        payer, payee = chain.new_account(ETHER, "payer"), chain.new_account(0, "payee")
        before = chain.balance(payer.address)
        # Token 7 was never registered: AIGCRegistry._requireKnown reverts AIGCRegistryUnknownProduct(7).
        phase = [
            (Call(payee.address, value=1), payer),
            (market.registry.call_of("claimBond", 7), payer),
            (Call(payee.address, value=2), payer),
        ]
        outcomes[pipelined] = result = chain.send_many(phase)
        first, revert, last = result
        assert isinstance(first, TxResult) and isinstance(last, TxResult)
        assert (
            isinstance(revert, ContractRevert) and revert.error == "AIGCRegistryUnknownProduct" and revert.params == {"tokenId": 7}
        )
        # Two transfers (3 wei) and their fees: the reverted step was never sent.
        assert before - chain.balance(payer.address) == 3 + first.fee_wei + last.fee_wei
        assert chain.balance(payee.address) == 3
    assert [type(o) for o in outcomes[False]] == [type(o) for o in outcomes[True]]


def test_a_pipelined_phase_mines_many_transactions_in_a_few_blocks_and_one_by_one_one_block_each(two_nodes):
    heads = {}
    for url, pipelined in zip(two_nodes, (False, True), strict=True):
        chain = Chain.connect(url, pipelined=pipelined)
        senders = [chain.new_account(ETHER, "sender") for _ in range(5)]
        start = chain.head()
        outcomes = chain.send_many([(Call(senders[(i + 1) % 5].address, value=1), senders[i % 5]) for i in range(40)])
        assert all(isinstance(o, TxResult) for o in outcomes)
        heads[pipelined] = chain.head() - start
        # Each sender's transactions ran in the order queued: its nonces increase with the phase.
        blocks = [o.block_number for o in outcomes if isinstance(o, TxResult)]
        assert blocks == sorted(blocks)
    # 40 transfers of 21,000 gas (a limit of 42,000 each with the phase's margin of 2) fill 1.7 M of a 30 M block.
    assert heads == {False: 40, True: 1}


def test_a_node_without_access_lists_gets_estimates_and_the_same_outcomes(two_nodes, monkeypatch):
    """The trial runs use eth_createAccessList; a node that lacks it answers 'method not found' and the phase
    falls back to eth_estimateGas: the same reverts in the same places, the same transfers."""
    chain = Chain.connect(two_nodes[0], pipelined=True)
    market, _ = deploy_market(chain)
    asked: list[str] = []
    real_batch = chain.rpc.batch

    def batch_without_access_lists(calls):
        asked.extend(method for method, _ in calls)
        answers = real_batch([call for call in calls if call[0] != "eth_createAccessList"])
        refusals = iter(RpcError("eth_createAccessList", METHOD_NOT_FOUND, "the method does not exist") for _ in calls)
        refused = [next(refusals) if method == "eth_createAccessList" else None for method, _ in calls]
        kept = iter(answers)
        return [refusal if refusal is not None else next(kept) for refusal in refused]

    monkeypatch.setattr(chain.rpc, "batch", batch_without_access_lists)
    payer, payee = chain.new_account(ETHER, "payer"), chain.new_account(0, "payee")
    phase = [
        (Call(payee.address, value=1), payer),
        (market.registry.call_of("claimBond", 7), payer),
        (Call(payee.address, value=2), payer),
    ]
    first, revert, last = chain.send_many(phase)
    assert "eth_createAccessList" in asked and "eth_estimateGas" in asked
    assert isinstance(first, TxResult) and isinstance(last, TxResult)
    assert isinstance(revert, ContractRevert) and revert.error == "AIGCRegistryUnknownProduct"
    assert chain.balance(payee.address) == 3
    # Asked once: the next phase goes straight to the estimates.
    asked.clear()
    chain.send_many([(Call(payee.address, value=1), payer), (Call(payee.address, value=1), payer)])
    assert "eth_createAccessList" not in asked and "eth_estimateGas" in asked


def test_a_trial_answered_with_an_error_field_is_estimated_so_its_revert_comes_back_decoded(two_nodes, monkeypatch):
    """geth answers a reverting eth_createAccessList with a result that holds an `error` field, not with a JSON-RPC
    error: the phase must not send that transaction, and the revert must still name its custom error."""
    chain = Chain.connect(two_nodes[0], pipelined=True)
    market, _ = deploy_market(chain)
    real_batch = chain.rpc.batch

    def batch_like_geth(calls):
        answers = real_batch(calls)
        return [
            {"accessList": [], "gasUsed": "0x5208", "error": "execution reverted"}
            if method == "eth_createAccessList" and isinstance(answer, RpcError)
            else answer
            for (method, _), answer in zip(calls, answers, strict=True)
        ]

    monkeypatch.setattr(chain.rpc, "batch", batch_like_geth)
    payer, payee = chain.new_account(ETHER, "payer"), chain.new_account(0, "payee")
    before = chain.balance(payer.address)
    first, revert, last = chain.send_many(
        [
            (Call(payee.address, value=1), payer),
            (market.registry.call_of("claimBond", 7), payer),
            (Call(payee.address, value=2), payer),
        ]
    )
    assert isinstance(revert, ContractRevert) and revert.error == "AIGCRegistryUnknownProduct"
    assert isinstance(first, TxResult) and isinstance(last, TxResult)
    assert before - chain.balance(payer.address) == 3 + first.fee_wei + last.fee_wei  # the revert was never sent
