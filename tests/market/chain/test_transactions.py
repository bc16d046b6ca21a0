"""The lean type-2 signer produces exactly eth_account's bytes."""

from __future__ import annotations

from eth_account import Account
from hypothesis import given
from hypothesis import strategies as st

from market.chain.transactions import sign_dynamic_fee

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
