"""EIP-712 by hand (`market.chain.offers`) equals eth_account's digests, signatures and recovered signers.

eth_account is the oracle: every expected value here is built with `encode_typed_data`, `Account.sign_typed_data`
and `Account.recover_message` from the domain and field lists, never from the module's own hashing. Which signatures
count is the exchange's rule (OpenZeppelin ECDSA.tryRecover: v of 27 or 28, a low s), narrower than eth_account's.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from eth_account import Account
from eth_account.messages import SignableMessage, encode_typed_data
from eth_utils import keccak, to_checksum_address
from hexbytes import HexBytes
from hypothesis import given
from hypothesis import strategies as st

from market.chain.offers import (
    OFFER_FIELDS,
    PURCHASE_FIELDS,
    Offer,
    Purchase,
    SignedOffer,
    exchange_domain,
    offer_id,
    offer_signer,
    purchase_id,
    sign_offer,
)
from market.terms import ETHER

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
CHAIN_ID, EXCHANGE = 31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3"
ESP = Account.from_key("0x" + "42" * 32)

uint256 = st.integers(min_value=0, max_value=2**256 - 1)
uint64 = st.integers(min_value=0, max_value=2**64 - 1)
bytes32 = st.binary(min_size=32, max_size=32)
address = st.binary(min_size=20, max_size=20).map(to_checksum_address)
chain_ids = st.integers(min_value=1, max_value=2**256 - 1)
keys = st.integers(min_value=1, max_value=SECP256K1_N - 1).map(lambda k: Account.from_key(k.to_bytes(32, "big")))
offers = st.builds(Offer, address, address, bytes32, uint256, uint64, uint64, uint256, bytes32)
purchases = st.builds(Purchase, address, address, uint256, uint256, bytes32, uint64)


def signable(primary: str, fields: list[dict[str, str]], message: dict[str, Any], chain_id: int, exchange: str) -> SignableMessage:
    return encode_typed_data(domain_data=exchange_domain(chain_id, exchange), message_types={primary: fields}, message_data=message)


def eth_account_digest(primary: str, fields: list[dict[str, str]], message: dict[str, Any], chain_id: int, exchange: str) -> bytes:
    message_ = signable(primary, fields, message, chain_id, exchange)
    return keccak(b"\x19" + message_.version + message_.header + message_.body)


def eth_account_signer(signed: SignedOffer, chain_id: int = CHAIN_ID, exchange: str = EXCHANGE) -> str | None:
    """The address eth_account recovers (it accepts v of 0/1, 27/28 or EIP-155, and a high s)."""
    try:
        message = signable("Offer", OFFER_FIELDS, signed.offer.message(), chain_id, exchange)
        return str(Account.recover_message(message, signature=signed.signature))
    except Exception:
        return None


def exchange_rule_signer(signed: SignedOffer) -> str | None:
    """The reference of `offer_signer`: eth_account's recovery under OpenZeppelin ECDSA.tryRecover's conditions
    (65 bytes, v of 27 or 28, s at most n / 2), which the exchange applies through SignatureChecker."""
    try:
        signature = HexBytes(signed.signature)
    except Exception:
        return None
    if len(signature) != 65 or signature[64] not in (27, 28) or int.from_bytes(signature[32:64], "big") > SECP256K1_N // 2:
        return None
    return eth_account_signer(signed)


@given(offer=offers, chain_id=chain_ids, exchange=address)
def test_offer_id_is_eth_accounts_digest(offer: Offer, chain_id: int, exchange: str) -> None:
    expected = eth_account_digest("Offer", OFFER_FIELDS, offer.message(), chain_id, exchange)
    assert offer_id(offer, chain_id=chain_id, exchange=exchange) == expected


@given(terms=purchases, chain_id=chain_ids, exchange=address)
def test_purchase_id_is_eth_accounts_digest(terms: Purchase, chain_id: int, exchange: str) -> None:
    expected = eth_account_digest("Purchase", PURCHASE_FIELDS, terms.message(), chain_id, exchange)
    assert purchase_id(terms, chain_id=chain_id, exchange=exchange) == expected


@given(esp=keys, offer=offers, chain_id=chain_ids, exchange=address)
def test_signature_and_signer_are_eth_accounts(esp: Any, offer: Offer, chain_id: int, exchange: str) -> None:
    expected = Account.sign_typed_data(
        esp.key,
        domain_data=exchange_domain(chain_id, exchange),
        message_types={"Offer": OFFER_FIELDS},
        message_data=offer.message(),
    )
    signed = sign_offer(esp, offer, chain_id=chain_id, exchange=exchange)
    assert signed.signature == bytes(expected.signature)
    assert len(signed.signature) == 65 and signed.signature[64] in (27, 28)
    recovered = Account.recover_message(
        signable("Offer", OFFER_FIELDS, offer.message(), chain_id, exchange), signature=signed.signature
    )
    assert offer_signer(signed, chain_id=chain_id, exchange=exchange) == recovered == esp.address


def test_values_off_the_fast_path_encode_as_eth_account_encodes_them() -> None:
    """Values off the fast path (a short bytes32, right-padded; a lowercase, wrongly checksummed or 20-byte address;
    an int subclass) encode to the same digest as eth_account gives."""
    offer = Offer(ESP.address, EXCHANGE, b"\x07" * 32, ETHER, 1_700_000_600, 1_700_000_300, 5, b"\x09" * 32)
    variants = [
        replace(offer, hashlock=b"\x07" * 31),
        replace(offer, commitment=b""),
        replace(offer, esp=ESP.address.lower()),
        replace(offer, esp="0x5fbDB2315678afecb367f032d93F642f64180aa3"),  # a broken checksum: eth_abi takes it
        replace(offer, producer=bytes.fromhex(EXCHANGE[2:])),  # type: ignore[arg-type]
        replace(offer, fee=type("Wei", (int,), {})(ETHER)),
    ]
    for variant in variants:
        expected = eth_account_digest("Offer", OFFER_FIELDS, variant.message(), CHAIN_ID, EXCHANGE)
        assert offer_id(variant, chain_id=CHAIN_ID, exchange=EXCHANGE) == expected


@pytest.mark.parametrize(
    "change",
    [
        {"hashlock": b"\x07" * 33},
        {"fee": -1},
        {"fee": 2**256},
        {"timelock": 2**64},
        {"esp": "0x5FbDB2315678afecb367f032d93F642f64180a"},  # 19 bytes
        {"producer": "0x1234"},
    ],
)
def test_an_offer_eth_account_refuses_is_refused(change: dict[str, Any]) -> None:
    """offer_id raises where eth_account raises; offer_signer says None, as it did."""
    base = Offer(ESP.address, EXCHANGE, b"\x07" * 32, 1, 2, 3, 4, b"\x09" * 32)
    offer = replace(base, **change)
    with pytest.raises(Exception):  # noqa: B017 -- eth_abi's error types, whichever it raises
        eth_account_digest("Offer", OFFER_FIELDS, offer.message(), CHAIN_ID, EXCHANGE)
    with pytest.raises(Exception):  # noqa: B017
        offer_id(offer, chain_id=CHAIN_ID, exchange=EXCHANGE)
    presented = SignedOffer(offer, sign_offer(ESP, base, chain_id=CHAIN_ID, exchange=EXCHANGE).signature)
    assert offer_signer(presented, chain_id=CHAIN_ID, exchange=EXCHANGE) is None
    assert eth_account_signer(presented) is None


def _with(signature: bytes, *, r: int | None = None, s: int | None = None, v: int | None = None) -> bytes:
    r_, s_ = signature[:32], signature[32:64]
    return (
        (r_ if r is None else r.to_bytes(32, "big"))
        + (s_ if s is None else s.to_bytes(32, "big"))
        + bytes((signature[64] if v is None else v,))
    )


def _malformed(valid: bytes) -> dict[str, bytes | str]:
    r, s, v = int.from_bytes(valid[:32], "big"), int.from_bytes(valid[32:64], "big"), valid[64]
    cases: dict[str, bytes | str] = {f"v={x}": _with(valid, v=x) for x in range(256)}
    cases |= {
        "valid": valid,
        "high-s, v flipped (the malleated twin)": _with(valid, s=SECP256K1_N - s, v=55 - v),
        "high-s, v kept": _with(valid, s=SECP256K1_N - s),
        "r = 0": _with(valid, r=0),
        "s = 0": _with(valid, s=0),
        "r = n": _with(valid, r=SECP256K1_N),
        "s = n": _with(valid, s=SECP256K1_N),
        "r = n + r": _with(valid, r=(SECP256K1_N + r) % 2**256),
        "r = 2^256 - 1": _with(valid, r=2**256 - 1),
        "s = n - 1": _with(valid, s=SECP256K1_N - 1),
        "64 bytes": valid[:64],
        "66 bytes, a zero after": valid + b"\x00",
        "66 bytes, v twice": valid + valid[64:],
        "66 bytes, a zero before": b"\x00" + valid,
        "one byte": valid[64:],
        "empty": b"",
        "all zero": b"\x00" * 65,
        "all 0xff": b"\xff" * 65,
        "flipped byte": valid[:10] + bytes((valid[10] ^ 1,)) + valid[11:],
        "hex string": "0x" + valid.hex(),
        "hex string, no 0x": valid.hex(),
        "not hex": "0xzz",
    }
    return cases


def test_malformed_signatures_are_refused_or_accepted_exactly_as_the_exchange_does() -> None:
    offer = Offer(ESP.address, EXCHANGE, b"\x07" * 32, ETHER, 1_700_000_600, 1_700_000_300, 5, b"\x09" * 32)
    valid = sign_offer(ESP, offer, chain_id=CHAIN_ID, exchange=EXCHANGE).signature
    outcomes = {}
    for name, signature in _malformed(valid).items():
        signed = SignedOffer(offer, signature)  # type: ignore[arg-type]
        outcomes[name] = offer_signer(signed, chain_id=CHAIN_ID, exchange=EXCHANGE)
        assert outcomes[name] == exchange_rule_signer(signed), name
    # eth_account would accept these three; the exchange refuses them, so the off-chain check must too.
    assert eth_account_signer(SignedOffer(offer, _malformed(valid)["high-s, v flipped (the malleated twin)"])) == ESP.address  # type: ignore[arg-type]
    assert outcomes["valid"] == ESP.address
    assert outcomes[f"v={valid[64] - 27}"] is outcomes[f"v={valid[64] + 8}"] is None
    assert outcomes["high-s, v flipped (the malleated twin)"] is None
    assert outcomes["v=29"] is outcomes["v=34"] is outcomes["v=2"] is None
    for name in ("64 bytes", "66 bytes, a zero after", "empty", "all zero", "r = 0", "s = 0", "r = n", "s = n", "not hex"):
        assert outcomes[name] is None, name


@given(signature=st.binary(min_size=65, max_size=65), offer=offers)
def test_random_signatures_recover_what_the_exchange_would_recover(signature: bytes, offer: Offer) -> None:
    signed = SignedOffer(offer, signature)
    assert offer_signer(signed, chain_id=CHAIN_ID, exchange=EXCHANGE) == exchange_rule_signer(signed)
