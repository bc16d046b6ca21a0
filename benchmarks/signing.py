"""Per-call CPU of signing and ABI coding in Python: eth_account's, pyrlp's and eth_abi's paths against the project's own
(issue #20, scale).

A cProfile of `aigc-market simulate` on anvil put much of a transaction's Python CPU in signing it
(two-thirds in pyrlp's `rlp.encode`) and in signing the ESP's EIP-712 offer with eth_account, which
rebuilds its typed-data machinery on every call; the profiler inflated both (unprofiled: ~77 µs and
~0.4 ms), as the figures below show. `market.chain.transactions` and
`market.chain.offers` now encode RLP and EIP-712 themselves; this times, in one run and on the same
inputs, each old path against its replacement (after checking that both give the same bytes):

- the RLP of a typical signed transaction: `rlp.encode` against `encode_rlp`;
- a signed type-2 transaction: `sign_dynamic_fee` as it was, with pyrlp (kept here), against it now;
- the same: `LocalAccount.sign_transaction` against `sign_dynamic_fee`;
- an offer's signature: `Account.sign_typed_data` against `sign_offer`;
- an offer's id (its digest): `encode_typed_data` + keccak against `offer_id`;
- an offer's signer: `encode_typed_data` + `Account.recover_message` against `offer_signer`;
- a call's calldata and an event's data of one-word types: eth_abi against `market.chain.abi_words`.

    python benchmarks/signing.py [--repeats 5] [--json]

Each figure is the best of `--repeats` timings of as many calls as fill 0.2 s (`timeit`'s autorange): the
best is what other jobs on the machine disturb least. With --json the last line is one JSON object with
every figure.
"""

from __future__ import annotations

import argparse
import json
import timeit
from collections.abc import Callable
from typing import Any

import rlp
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak, to_checksum_address
from rich.console import Console
from rich.table import Table

from market.chain.abi_words import decode_words, encode_words
from market.chain.offers import OFFER_FIELDS, Offer, exchange_domain, offer_id, offer_signer, sign_offer
from market.chain.transactions import DYNAMIC_FEE_TYPE, encode_rlp, sign_dynamic_fee, signer_of

console = Console(width=150)

CHAIN_ID, EXCHANGE = 31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3"
ACCOUNT = Account.from_key("0x" + "42" * 32)
PRODUCER = Account.from_key("0x" + "43" * 32).address

#: A transaction as the simulation sends one: a call to the exchange with a few words of calldata (the
#: size of `lockGeneration`'s: an offer and a 65-byte signature).
TX: dict[str, Any] = {
    "chainId": CHAIN_ID,
    "nonce": 17,
    "maxPriorityFeePerGas": 10**9,
    "maxFeePerGas": 2 * 10**9 + 7,
    "gas": 180_000,
    "to": EXCHANGE,
    "value": 10**16,
    "data": "0x" + "5a" * (4 + 12 * 32),
}
OFFER = Offer(ACCOUNT.address, PRODUCER, b"\x03" * 32, 10**16, 1_700_000_600, 1_700_000_300, 2**64 - 1, b"\x09" * 32)
#: The ledger's `rate(Offer, bool, uint8)` arguments, and an offer's fields as an event's data carries them.
RATE_TYPES = ("(address,address,bytes32,uint256,uint64,uint64,uint256,bytes32)", "bool", "uint8")
OFFER_WORDS = ("address", "address", "bytes32", "uint256", "uint64", "uint64", "uint256", "bytes32")


def typical_rlp_fields() -> list[Any]:
    """The twelve items of the signed transaction TX, as `rlp.encode` took them."""
    signed = sign_dynamic_fee(ACCOUNT, TX)
    fields = rlp.decode(signed.raw[1:])
    ints = (0, 1, 2, 3, 4, 6, 9, 10, 11)  # the integer fields: chainId ... gas, value, yParity, r, s
    return [int.from_bytes(field, "big") if i in ints else field for i, field in enumerate(fields)]


def sign_with_pyrlp(tx: dict[str, Any]) -> bytes:
    """`sign_dynamic_fee` as it was before its own RLP encoder: the same steps, pyrlp's `rlp.encode` twice."""
    to, data = tx.get("to"), tx.get("data") or "0x"
    fields: list[Any] = [
        int(tx["chainId"]),
        int(tx["nonce"]),
        int(tx["maxPriorityFeePerGas"]),
        int(tx["maxFeePerGas"]),
        int(tx["gas"]),
        bytes.fromhex(to[2:]) if to else b"",
        int(tx.get("value", 0)),
        bytes.fromhex(data[2:]),
        [],
    ]
    signature = signer_of(bytes(ACCOUNT.key)).sign_recoverable(keccak(DYNAMIC_FEE_TYPE + rlp.encode(fields)), hasher=None)
    r, s, y_parity = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:64], "big"), signature[64]
    return DYNAMIC_FEE_TYPE + bytes(rlp.encode(fields + [y_parity, r, s]))


def old_offer_id() -> bytes:
    signable = encode_typed_data(
        domain_data=exchange_domain(CHAIN_ID, EXCHANGE), message_types={"Offer": OFFER_FIELDS}, message_data=OFFER.message()
    )
    return keccak(b"\x19" + signable.version + signable.header + signable.body)


def old_sign_offer() -> bytes:
    signed = Account.sign_typed_data(
        ACCOUNT.key,
        domain_data=exchange_domain(CHAIN_ID, EXCHANGE),
        message_types={"Offer": OFFER_FIELDS},
        message_data=OFFER.message(),
    )
    return bytes(signed.signature)


def old_offer_signer(signature: bytes) -> str:
    signable = encode_typed_data(
        domain_data=exchange_domain(CHAIN_ID, EXCHANGE), message_types={"Offer": OFFER_FIELDS}, message_data=OFFER.message()
    )
    return str(Account.recover_message(signable, signature=signature))


def pairs() -> list[tuple[str, str, Callable[[], Any], str, Callable[[], Any]]]:
    """(operation, old path, its call, new path, its call): the two calls of a pair give the same result."""
    fields = typical_rlp_fields()
    signed = sign_offer(ACCOUNT, OFFER, chain_id=CHAIN_ID, exchange=EXCHANGE)
    rate_args = (OFFER.as_tuple(), True, 4)
    event_data = abi_encode(list(OFFER_WORDS), list(OFFER.as_tuple()))
    return [
        ("RLP of a signed transaction", "rlp.encode", lambda: rlp.encode(fields), "encode_rlp", lambda: encode_rlp(fields)),
        (
            "sign a type-2 transaction",
            "sign_dynamic_fee, pyrlp",
            lambda: sign_with_pyrlp(TX),
            "sign_dynamic_fee",
            lambda: sign_dynamic_fee(ACCOUNT, TX).raw,
        ),
        (
            "sign a type-2 transaction",
            "sign_transaction",
            lambda: bytes(ACCOUNT.sign_transaction(TX).raw_transaction),
            "sign_dynamic_fee",
            lambda: sign_dynamic_fee(ACCOUNT, TX).raw,
        ),
        (
            "sign an offer (EIP-712)",
            "Account.sign_typed_data",
            old_sign_offer,
            "sign_offer",
            lambda: sign_offer(ACCOUNT, OFFER, chain_id=CHAIN_ID, exchange=EXCHANGE).signature,
        ),
        (
            "an offer's id",
            "encode_typed_data",
            old_offer_id,
            "offer_id",
            lambda: offer_id(OFFER, chain_id=CHAIN_ID, exchange=EXCHANGE),
        ),
        (
            "an offer's signer",
            "Account.recover_message",
            lambda: old_offer_signer(signed.signature),
            "offer_signer",
            lambda: offer_signer(signed, chain_id=CHAIN_ID, exchange=EXCHANGE),
        ),
        (
            "calldata of rate(offer, true, 4)",
            "eth_abi.encode",
            lambda: abi_encode(list(RATE_TYPES), list(rate_args)),
            "encode_words",
            lambda: encode_words(RATE_TYPES, rate_args),
        ),
        (
            "an event's data: an offer's 8 words",
            "eth_abi.decode + checksums",
            lambda: [
                to_checksum_address(v) if t == "address" else v
                for t, v in zip(OFFER_WORDS, abi_decode(list(OFFER_WORDS), event_data), strict=True)
            ],
            "decode_words",
            lambda: decode_words(OFFER_WORDS, event_data),
        ),
    ]


def per_call_us(call: Callable[[], Any], repeats: int) -> float:
    """The best of `repeats` timings of as many calls as fill 0.2 s, in µs per call."""
    timer = timeit.Timer(call)
    number, _ = timer.autorange()
    return min(timer.repeat(repeats, number)) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="Timings of each call; the best counts.")
    parser.add_argument("--json", action="store_true", help="End with one JSON line of every figure.")
    args = parser.parse_args()

    rows: list[dict[str, Any]] = []
    for operation, old_name, old, new_name, new in pairs():
        if old() != new():
            raise SystemExit(f"{operation}: {old_name} and {new_name} disagree")
        old_us, new_us = per_call_us(old, args.repeats), per_call_us(new, args.repeats)
        rows.append(
            {"operation": operation, "old": old_name, "new": new_name, "old_us": old_us, "new_us": new_us, "ratio": old_us / new_us}
        )

    table = Table(title=f"signing: µs of CPU per call, best of {args.repeats} (same inputs, same results)")
    for column in ("operation", "old path", "µs", "new path", "µs ", "old / new"):
        table.add_column(column, justify="left" if column in ("operation", "old path", "new path") else "right")
    for row in rows:
        table.add_row(
            row["operation"], row["old"], f"{row['old_us']:,.1f}", row["new"], f"{row['new_us']:,.1f}", f"{row['ratio']:.1f}x"
        )
    console.print(table)
    if args.json:
        print(json.dumps({"repeats": args.repeats, "operations": rows}))


if __name__ == "__main__":
    main()
