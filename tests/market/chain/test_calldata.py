"""Calldata from the cached selectors equals web3's encoding of the same call."""

from __future__ import annotations

import pytest
from web3 import Web3

from market.chain.artifacts import load_artifact
from market.chain.calldata import CalldataEncoder

ESP = "0x000000000000000000000000000000000000dEaD"
PRODUCER = "0x000000000000000000000000000000000000bEEF"
OFFER = (ESP, PRODUCER, b"\x03" * 32, 10**16, 1_700_000_600, 1_700_000_300, 2**64 - 1, b"\x09" * 32)
OPENING = (b"\x01" * 32, 2**64 - 1, b"\x02" * 32, b"\x0a" * 32)
PURCHASE = (PRODUCER, ESP, 5, 10**17, b"\x04" * 32, 1_700_000_000)
CALLS = {
    "AIGCRegistry": [
        ("register", (OFFER, OPENING, "ipfs://x")),
        ("challenge", (1, 2)),
        ("claimBond", (3,)),
        ("withdrawCredit", ()),
        ("approve", (ESP, 7)),
        ("transferFrom", (ESP, ESP, 3)),
    ],
    "AIGCExchange": [
        ("registerEsp", ()),
        ("lockGeneration", (OFFER, b"\x1b" * 65)),
        ("withdrawGeneration", (OFFER, b"\x06" * 32)),
        ("refundGeneration", (OFFER,)),
        ("lockPurchase", (5, b"\x04" * 32, 1_700_000_000)),
        ("withdrawPurchase", (PURCHASE, b"\x05" * 32)),
        ("refundPurchase", (PURCHASE,)),
        ("proveEquivocation", (OFFER, OPENING, OFFER, OPENING)),
        ("withdrawCredit", ()),
    ],
    "ReputationLedger": [("rate", (OFFER, True, 4))],
}


@pytest.mark.parametrize(("contract", "function", "args"), [(c, f, a) for c, calls in CALLS.items() for f, a in calls])
def test_calldata_equals_web3s_encoding(contract: str, function: str, args: tuple[object, ...]) -> None:
    abi = load_artifact(contract).abi
    web3_contract = Web3().eth.contract(address=ESP, abi=abi)
    assert CalldataEncoder(abi).encode(function, *args) == web3_contract.encode_abi(function, args=list(args))


def test_an_unknown_function_is_refused_by_name() -> None:
    with pytest.raises(KeyError, match="nonexistent is not in the ABI"):
        CalldataEncoder(load_artifact("AIGCRegistry").abi).encode("nonexistent")


def test_an_overloaded_function_is_refused() -> None:
    abi = [
        {"type": "function", "name": "f", "inputs": [{"name": "a", "type": "uint256"}], "outputs": []},
        {"type": "function", "name": "f", "inputs": [{"name": "a", "type": "bytes32"}], "outputs": []},
    ]
    with pytest.raises(KeyError, match="f is overloaded"):
        CalldataEncoder(abi).encode("f", 1)


def test_a_wrong_number_of_arguments_is_refused() -> None:
    with pytest.raises(TypeError, match="challenge takes 2 arguments, 1 given"):
        CalldataEncoder(load_artifact("AIGCRegistry").abi).encode("challenge", 1)
