"""EIP-1559 (type 2) transactions serialised and signed in a few RLP steps.

`eth_account`'s `sign_transaction` validates and normalises the dictionary through layers of
curried formatters: 0.4-0.6 ms of CPU per transaction (`benchmarks/signing.py`), 6-10x this path. Every
transaction this project sends has the same shape (type 2, no access list), so it is serialised
here and its hash signed with libsecp256k1 (coincurve, the backend `sign_transaction` ends in),
with each account's parsed key kept: eth_account parses the key again on every signature, which
costs as much as the signature.

The RLP is written here too (`encode_rlp`, the Yellow Paper's appendix B for the two shapes a
transaction has: non-negative integers and byte strings, and lists of them). pyrlp's `rlp.encode`
infers a serialiser for every item and walks them through generic codecs: under cProfile it was
two-thirds of `sign_dynamic_fee`'s time in `aigc-market simulate`, and `benchmarks/signing.py`
measures it unprofiled at 3-4x this encoder's time for a signed transaction (~20-25 µs against 5-8 µs,
twice per transaction). Each field is also encoded once for both the signed and unsigned payloads.
`tests/market/chain/test_transactions.py` checks that the encoder's bytes equal `rlp.encode`'s (the
oracle) for any nesting of those shapes, and that the signed bytes equal eth_account's for any field
values.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from coincurve import PrivateKey
from eth_account.signers.local import LocalAccount
from eth_utils import keccak

DYNAMIC_FEE_TYPE = b"\x02"

#: The RLP of an empty list: every transaction's access list.
EMPTY_LIST = b"\xc0"

RlpItem = int | bytes | list[Any]
"""What `encode_rlp` takes: a non-negative integer, a byte string, or a list of items."""


@dataclass(frozen=True)
class SignedTransaction:
    raw: bytes
    """The signed transaction as sent with eth_sendRawTransaction (type byte + RLP)."""
    hash: bytes
    """Its hash (keccak of `raw`), the id a node knows it by."""


def _length_prefix(length: int, offset: int) -> bytes:
    """The prefix of a string (offset 0x80) or list (offset 0xc0) payload of `length` bytes: one byte up to 55
    bytes, else the length's own big-endian bytes after a byte that says how many there are."""
    if length <= 55:
        return bytes((offset + length,))
    size = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes((offset + 55 + len(size),)) + size


def _encode_string(value: bytes) -> bytes:
    """A byte string: a single byte below 0x80 is its own encoding."""
    if len(value) == 1 and value[0] < 0x80:
        return value
    return _length_prefix(len(value), 0x80) + value


def _encode_int(value: int) -> bytes:
    """A non-negative integer: its minimal big-endian bytes as a string (0 is the empty string, 0x80). A negative
    one raises OverflowError (pyrlp refuses it too, with a TypeError)."""
    return _encode_string(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def _encode_list(encoded_items: list[bytes]) -> bytes:
    """A list whose items are already encoded."""
    payload = b"".join(encoded_items)
    return _length_prefix(len(payload), 0xC0) + payload


def encode_rlp(item: RlpItem) -> bytes:
    """The RLP of `item`: the bytes `rlp.encode` gives for it, without pyrlp's per-item serialiser inference."""
    if isinstance(item, bytes):
        return _encode_string(item)
    if isinstance(item, list):
        return _encode_list([encode_rlp(element) for element in item])
    if isinstance(item, int):
        return _encode_int(item)
    raise TypeError(f"RLP of a {type(item).__name__}: only non-negative ints, bytes and lists are supported")


def sign_dynamic_fee(account: LocalAccount, tx: dict[str, Any]) -> SignedTransaction:
    """Sign a type-2 transaction given as chainId, nonce, maxPriorityFeePerGas, maxFeePerGas, gas, to
    (absent for a deployment), value and data (0x-hex, optional)."""
    to = tx.get("to")
    data = tx.get("data") or "0x"
    # Each field is encoded once: the unsigned payload and the signed one share these nine items.
    fields = [
        _encode_int(int(tx["chainId"])),
        _encode_int(int(tx["nonce"])),
        _encode_int(int(tx["maxPriorityFeePerGas"])),
        _encode_int(int(tx["maxFeePerGas"])),
        _encode_int(int(tx["gas"])),
        _encode_string(bytes.fromhex(to[2:]) if to else b""),
        _encode_int(int(tx.get("value", 0))),
        _encode_string(bytes.fromhex(data[2:]) if isinstance(data, str) else bytes(data)),
        EMPTY_LIST,
    ]
    signature = signer_of(bytes(account.key)).sign_recoverable(keccak(DYNAMIC_FEE_TYPE + _encode_list(fields)), hasher=None)
    r, s, y_parity = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:64], "big"), signature[64]
    raw = DYNAMIC_FEE_TYPE + _encode_list(fields + [_encode_int(y_parity), _encode_int(r), _encode_int(s)])
    return SignedTransaction(raw=raw, hash=keccak(raw))


@lru_cache(maxsize=65536)
def signer_of(key: bytes) -> PrivateKey:
    """The parsed secp256k1 key of a private key, kept (libsecp256k1 signs low-s, as Ethereum requires): transactions
    and EIP-712 offers (`market.chain.offers`) are signed with it."""
    return PrivateKey(key)
