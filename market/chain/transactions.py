"""EIP-1559 (type 2) transactions serialised and signed in a few RLP steps.

`eth_account`'s `sign_transaction` validates and normalises the dictionary through layers of
curried formatters: ~1.5 ms of CPU per transaction, as much as the rest of sending it. Every
transaction this project sends has the same shape (type 2, no access list), so it is serialised
here and its hash signed with libsecp256k1 (coincurve, the backend `sign_transaction` ends in),
with each account's parsed key kept: eth_account parses the key again on every signature, which
costs as much as the signature. `tests/market/chain/test_transactions.py` checks
that the bytes equal eth_account's for any field values.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import rlp
from coincurve import PrivateKey
from eth_account.signers.local import LocalAccount
from eth_utils import keccak

DYNAMIC_FEE_TYPE = b"\x02"


@dataclass(frozen=True)
class SignedTransaction:
    raw: bytes
    """The signed transaction as sent with eth_sendRawTransaction (type byte + RLP)."""
    hash: bytes
    """Its hash (keccak of `raw`), the id a node knows it by."""


def sign_dynamic_fee(account: LocalAccount, tx: dict[str, Any]) -> SignedTransaction:
    """Sign a type-2 transaction given as chainId, nonce, maxPriorityFeePerGas, maxFeePerGas, gas, to
    (absent for a deployment), value and data (0x-hex, optional)."""
    to = tx.get("to")
    data = tx.get("data") or "0x"
    fields: list[Any] = [
        int(tx["chainId"]),
        int(tx["nonce"]),
        int(tx["maxPriorityFeePerGas"]),
        int(tx["maxFeePerGas"]),
        int(tx["gas"]),
        bytes.fromhex(to[2:]) if to else b"",
        int(tx.get("value", 0)),
        bytes.fromhex(data[2:]) if isinstance(data, str) else bytes(data),
        [],
    ]
    signature = _signer(bytes(account.key)).sign_recoverable(keccak(DYNAMIC_FEE_TYPE + rlp.encode(fields)), hasher=None)
    r, s, y_parity = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:64], "big"), signature[64]
    raw = DYNAMIC_FEE_TYPE + rlp.encode(fields + [y_parity, r, s])
    return SignedTransaction(raw=raw, hash=keccak(raw))


@lru_cache(maxsize=65536)
def _signer(key: bytes) -> PrivateKey:
    """The parsed secp256k1 key of a private key (libsecp256k1 signs low-s, as Ethereum requires)."""
    return PrivateKey(key)
