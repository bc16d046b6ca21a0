"""ABI encoding and decoding of the static one-word types (address, bool, bytes32, uintN, intN) by hand.

eth_abi builds and validates through a generic codec on every call: ~0.1-0.2 ms per call or event, which
in a large simulation was about a fifth of the Python time of a transaction (calldata, event data,
EIP-712 structs; docs/scale.md). Most of what this project encodes and decodes is a flat run of 32-byte
words, which is laid out or read here directly. Anything else (a dynamic type, a value of an unusual
Python type, data of the wrong length, a word whose padding eth_abi would refuse) returns None, and the
caller hands it to eth_abi: what eth_abi accepts, pads or refuses stays exactly the same.
`tests/market/chain/test_abi_words.py` checks both directions against eth_abi.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from eth_abi import encode as abi_encode
from eth_utils import to_checksum_address

_WORD = re.compile(r"(address|bool|bytes32|u?int(\d*))")
_ZERO_PAD = bytes(12)


@lru_cache(maxsize=1024)
def word_types(types: tuple[str, ...]) -> tuple[str, ...] | None:
    """`types` as a flat run of one-word types, a static tuple type `(a,b,...)` opened in place; None when any
    type is not one word (dynamic, an array, a bytesN other than bytes32, a nested tuple)."""
    flat: list[str] = []
    for type_ in types:
        parts = type_[1:-1].split(",") if type_.startswith("(") and type_.endswith(")") else [type_]
        for part in parts:
            match = _WORD.fullmatch(part)
            if match is None or (match.group(2) and (int(match.group(2)) % 8 or not 8 <= int(match.group(2)) <= 256)):
                return None
            flat.append(part)
    return tuple(flat)


def _flat_values(types: Sequence[str], values: Sequence[Any]) -> list[Any] | None:
    flat: list[Any] = []
    for type_, value in zip(types, values, strict=True):
        if type_.startswith("("):
            if not isinstance(value, tuple | list) or len(value) != type_.count(",") + 1:
                return None
            flat.extend(value)
        else:
            flat.append(value)
    return flat


@lru_cache(maxsize=4096)
def address_word(address: str) -> bytes:
    """An address as its ABI word, checked and laid out by eth_abi (the same few addresses recur, call after call)."""
    return abi_encode(["address"], [address])


def _bits(type_: str) -> int:
    """The width of a uintN or intN ("uint" and "int" are 256)."""
    digits = type_.removeprefix("u").removeprefix("int")
    return int(digits) if digits else 256


def encode_words(types: tuple[str, ...], values: Sequence[Any]) -> bytes | None:
    """eth_abi's encoding of `values` as `types` when all are one-word types with values of the usual Python types
    (int in range, bool, a 32-byte bytes, an address string); None otherwise."""
    flat_types = word_types(types)
    if flat_types is None or len(values) != len(types):
        return None
    flat = _flat_values(types, values)
    if flat is None or len(flat) != len(flat_types):
        return None
    words: list[bytes] = []
    for type_, value in zip(flat_types, flat, strict=True):
        if type_ == "address" and isinstance(value, str):
            words.append(address_word(value))
        elif type_ == "bytes32" and type(value) is bytes and len(value) == 32:
            words.append(value)
        elif type_ == "bool" and type(value) is bool:
            words.append(int(value).to_bytes(32, "big"))
        elif type_.startswith("uint") and type(value) is int and 0 <= value < 1 << _bits(type_):
            words.append(value.to_bytes(32, "big"))
        elif type_.startswith("int") and type(value) is int and -(1 << (_bits(type_) - 1)) <= value < 1 << (_bits(type_) - 1):
            words.append(value.to_bytes(32, "big", signed=True))
        else:
            return None
    return b"".join(words)


@lru_cache(maxsize=65536)
def checksum(address: str) -> str:
    """EIP-55 form of `address`, each worked out once (a keccak each: the few contracts and accounts of a market
    recur in every log, view and receipt)."""
    return to_checksum_address(address)


def decode_words(types: tuple[str, ...], data: bytes) -> list[Any] | None:
    """eth_abi's decoding of `data` as the one-word `types` (no tuple types): addresses checksummed, bytes32 as
    bytes; None when a type is not one word, the data is not exactly one word each, or a word's padding is not
    what eth_abi accepts."""
    if word_types(types) != types or len(data) != 32 * len(types):
        return None
    values: list[Any] = []
    for index, type_ in enumerate(types):
        word = data[32 * index : 32 * index + 32]
        if type_ == "address":
            if word[:12] != _ZERO_PAD:
                return None
            values.append(checksum("0x" + word[12:].hex()))
        elif type_ == "bytes32":
            values.append(word)
        elif type_ == "bool":
            flag = int.from_bytes(word, "big")
            if flag > 1:
                return None
            values.append(bool(flag))
        elif type_.startswith("uint"):
            number = int.from_bytes(word, "big")
            if number >> _bits(type_):
                return None
            values.append(number)
        else:
            bits = _bits(type_)
            number = int.from_bytes(word, "big", signed=True)
            if not -(1 << (bits - 1)) <= number < 1 << (bits - 1):
                return None
            values.append(number)
    return values
