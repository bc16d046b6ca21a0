"""The lean type-2 signer produces exactly eth_account's bytes, and its RLP encoder exactly pyrlp's."""

from __future__ import annotations

from typing import Any

import pytest
import rlp
from eth_account import Account
from hypothesis import given
from hypothesis import strategies as st

from market.chain.transactions import encode_rlp, sign_dynamic_fee
from market.terms import ETHER

KEY = "0x" + "42" * 32
uint = st.integers(min_value=0, max_value=2**256 - 1)
address = st.binary(min_size=20, max_size=20).map(lambda b: Account.from_key(b"\x01" * 12 + b).address)


@given(
    chain_id=st.integers(min_value=1, max_value=2**64 - 1),
    nonce=st.integers(min_value=0, max_value=2**64 - 2),
    tip=uint,
    fee_cap=uint,
    gas=st.integers(min_value=21_000, max_value=2**63),
    to=st.one_of(st.none(), address),
    value=uint,
    data=st.binary(max_size=300),
)
def test_signed_bytes_and_hash_equal_eth_accounts(chain_id, nonce, tip, fee_cap, gas, to, value, data) -> None:
    account = Account.from_key(KEY)
    tx = {
        "chainId": chain_id,
        "nonce": nonce,
        "maxPriorityFeePerGas": tip,
        "maxFeePerGas": fee_cap,
        "gas": gas,
        "value": value,
        "data": "0x" + data.hex(),
    }
    if to is not None:
        tx["to"] = to
    expected = account.sign_transaction(tx)
    signed = sign_dynamic_fee(account, tx)
    assert signed.raw == bytes(expected.raw_transaction)
    assert signed.hash == bytes(expected.hash)


def test_a_transaction_without_data_signs_like_empty_data() -> None:
    account = Account.from_key(KEY)
    tx = {
        "chainId": 1,
        "nonce": 0,
        "maxPriorityFeePerGas": 1,
        "maxFeePerGas": 2,
        "gas": 21_000,
        "to": "0x000000000000000000000000000000000000dEaD",
        "value": 5,
    }
    assert sign_dynamic_fee(account, tx).raw == bytes(account.sign_transaction(tx).raw_transaction)


#: Byte strings around the RLP boundaries: one byte below 0x80 is its own encoding, 55 bytes is the longest short
#: string, 56 the shortest long one; 255/256 and 65535/65536 change the length of the length.
BOUNDARY_LENGTHS = (0, 1, 2, 54, 55, 56, 57, 255, 256, 1024, 65535, 65536)
#: The random search stays below 1 KiB a leaf (the 64 KiB boundaries are in the table below): fast enough for every run.
RANDOM_LENGTHS = (0, 1, 2, 54, 55, 56, 57, 255, 256, 1024)
leaves = st.one_of(
    st.integers(min_value=0, max_value=2**520),
    st.integers(min_value=0, max_value=300),
    st.binary(max_size=80),
    st.sampled_from(RANDOM_LENGTHS).flatmap(lambda n: st.binary(min_size=n, max_size=n)),
)
rlp_items = st.recursive(leaves, lambda children: st.lists(children, max_size=8), max_leaves=20)


@given(item=rlp_items)
def test_the_rlp_encoder_equals_pyrlp(item: Any) -> None:
    assert encode_rlp(item) == rlp.encode(item)


@pytest.mark.parametrize(
    "item",
    [
        b"",
        b"\x00",
        b"\x7f",
        b"\x80",
        b"\xff",
        0,
        1,
        127,
        128,
        255,
        256,
        2**64 - 1,
        2**256 - 1,
        [],
        [[]],
        [[], [[]], [[], [[]]]],
        *(b"\xab" * n for n in BOUNDARY_LENGTHS),
        [b"\xab" * 53],  # list payloads of 54, 55, 56 and 57 bytes
        [b"\xab" * 54],
        [b"\xab" * 55],
        [b"\xab" * 56],
        [b"\xab" * 300, [b"\xcd" * 70_000], 2**255],
        [1, 2**63, ETHER, 21_000, b"\xde\xad" * 10, 0, b"\x01" * 500, []],  # a transaction's shape
    ],
    ids=repr,
)
def test_the_rlp_encoder_equals_pyrlp_at_the_boundaries(item: Any) -> None:
    assert encode_rlp(item) == rlp.encode(item)


def test_negative_integers_are_refused_as_pyrlp_refuses_them() -> None:
    with pytest.raises(TypeError):  # no serialiser for it
        rlp.encode(-1)
    with pytest.raises(OverflowError):
        encode_rlp(-1)
