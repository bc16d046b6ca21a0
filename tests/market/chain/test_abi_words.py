"""The one-word ABI layout by hand (`market.chain.abi_words`) equals eth_abi's, and hands everything else back.

eth_abi is the oracle: every expected value is eth_abi's own encoding or decoding of the same values.
"""

from __future__ import annotations

from typing import Any

import pytest
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_abi.exceptions import DecodingError
from eth_utils import to_checksum_address
from hypothesis import given
from hypothesis import strategies as st

from market.chain.abi_words import decode_words, encode_words, word_types

ADDRESS = st.binary(min_size=20, max_size=20).map(lambda b: to_checksum_address(b))
WIDTHS = (8, 64, 256)


def value_of(type_: str) -> st.SearchStrategy[Any]:
    if type_ == "address":
        return ADDRESS
    if type_ == "bool":
        return st.booleans()
    if type_ == "bytes32":
        return st.binary(min_size=32, max_size=32)
    bits = int(type_.removeprefix("u").removeprefix("int"))
    if type_.startswith("uint"):
        return st.integers(min_value=0, max_value=2**bits - 1)
    return st.integers(min_value=-(2 ** (bits - 1)), max_value=2 ** (bits - 1) - 1)


WORD_TYPES = ["address", "bool", "bytes32", *(f"uint{w}" for w in WIDTHS), *(f"int{w}" for w in WIDTHS)]
types_and_values = st.lists(st.sampled_from(WORD_TYPES), min_size=0, max_size=8).flatmap(
    lambda types: st.tuples(st.just(tuple(types)), st.tuples(*(value_of(t) for t in types)))
)


@given(types_and_values)
def test_words_encode_as_eth_abi_encodes_them(case: tuple[tuple[str, ...], tuple[Any, ...]]) -> None:
    types, values = case
    assert encode_words(types, values) == abi_encode(list(types), list(values))


@given(types_and_values)
def test_a_static_tuple_is_laid_out_in_place_as_eth_abi_does(case: tuple[tuple[str, ...], tuple[Any, ...]]) -> None:
    types, values = case
    if not types:
        return
    tuple_type = "(" + ",".join(types) + ")"
    assert encode_words((tuple_type, "uint256"), (values, 7)) == abi_encode([tuple_type, "uint256"], [values, 7])


@given(types_and_values)
def test_words_decode_as_eth_abi_decodes_them_with_addresses_checksummed(case: tuple[tuple[str, ...], tuple[Any, ...]]) -> None:
    types, values = case
    data = abi_encode(list(types), list(values))
    expected = [to_checksum_address(v) if t == "address" else v for t, v in zip(types, abi_decode(list(types), data), strict=True)]
    assert decode_words(types, data) == expected == list(values)


@pytest.mark.parametrize(
    ("types", "values"),
    [
        (("string",), ("a string is dynamic",)),
        (("bytes",), (b"so are bytes",)),
        (("uint256[]",), ([1, 2],)),
        (("bytes16",), (b"\x01" * 16,)),
        (("bytes32",), (b"\x01" * 31,)),  # eth_abi pads it on the right
        (("uint8",), (256,)),  # out of range: eth_abi refuses
        (("uint256",), (True,)),  # a bool for a uint: eth_abi's call
        (("bool",), (1,)),  # an int for a bool: eth_abi's call
        (("address",), (b"\x01" * 20,)),  # bytes for an address: eth_abi's call
        (("(uint256,(uint256,uint256))",), ((1, (2, 3)),)),  # a nested tuple
    ],
)
def test_anything_else_is_handed_back_to_eth_abi(types: tuple[str, ...], values: tuple[Any, ...]) -> None:
    assert encode_words(types, values) is None


@pytest.mark.parametrize(
    ("type_", "word"),
    [
        ("address", b"\x01" + bytes(11) + b"\x02" * 20),  # dirty padding
        ("bool", (2).to_bytes(32, "big")),
        ("uint8", (256).to_bytes(32, "big")),
        ("int8", (128).to_bytes(32, "big")),  # not sign-extended
    ],
)
def test_a_word_eth_abi_refuses_is_handed_back_and_eth_abi_refuses_it(type_: str, word: bytes) -> None:
    assert decode_words((type_,), word) is None
    with pytest.raises(DecodingError):
        abi_decode([type_], word)


def test_data_of_the_wrong_length_is_handed_back() -> None:
    assert decode_words(("uint256",), bytes(31)) is None
    assert decode_words(("uint256",), bytes(64)) is None


def test_word_types_open_a_static_tuple_and_refuse_the_rest() -> None:
    assert word_types(("(address,uint64)", "bytes32")) == ("address", "uint64", "bytes32")
    assert word_types(("uint7",)) is None and word_types(("uint12",)) is None and word_types(("uint264",)) is None
    assert word_types(("string",)) is None and word_types(("bytes31",)) is None
