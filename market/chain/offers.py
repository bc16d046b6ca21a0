"""The terms of protocol v2's locks: an ESP's signed offer, the content it commits to, a purchase.

An `Offer` is what an ESP signs (EIP-712, the exchange's domain "AIGCExchange" version "2") when
it accepts a job; its digest is the id of the generation lock made with it. An `Opening` is the
content the offer committed to, revealed at registration. A `Purchase` holds the terms of a
purchase lock, whose id is their digest. See `docs/protocol.md`.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from eth_abi import encode as abi_encode
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address

DOMAIN_NAME, DOMAIN_VERSION = "AIGCExchange", "2"

OFFER_FIELDS = [
    {"name": "esp", "type": "address"},
    {"name": "producer", "type": "address"},
    {"name": "hashlock", "type": "bytes32"},
    {"name": "fee", "type": "uint256"},
    {"name": "timelock", "type": "uint64"},
    {"name": "expiry", "type": "uint64"},
    {"name": "nonce", "type": "uint256"},
    {"name": "commitment", "type": "bytes32"},
]
PURCHASE_FIELDS = [
    {"name": "buyer", "type": "address"},
    {"name": "seller", "type": "address"},
    {"name": "tokenId", "type": "uint256"},
    {"name": "price", "type": "uint256"},
    {"name": "hashlock", "type": "bytes32"},
    {"name": "timelock", "type": "uint64"},
]


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


@dataclass(frozen=True)
class Opening:
    """The content an offer commits to: keccak256(abi.encode(contentHash, perceptualHash, promptHash, salt))."""

    content_hash: bytes
    perceptual_hash: int
    prompt_hash: bytes
    salt: bytes

    @classmethod
    def of(cls, content_hash: bytes, perceptual_hash: int, prompt_hash: bytes, salt: bytes | None = None) -> Opening:
        """An opening with a fresh random salt unless one is given."""
        return cls(content_hash, perceptual_hash, prompt_hash, secrets.token_bytes(32) if salt is None else salt)

    def commitment(self) -> bytes:
        return keccak(
            abi_encode(
                ["bytes32", "uint64", "bytes32", "bytes32"], [self.content_hash, self.perceptual_hash, self.prompt_hash, self.salt]
            )
        )

    def as_tuple(self) -> tuple[bytes, int, bytes, bytes]:
        """The Solidity `Opening` struct as web3 and eth_abi take it."""
        return (self.content_hash, self.perceptual_hash, self.prompt_hash, self.salt)

    def to_json(self) -> dict[str, Any]:
        return {
            "content_hash": _hex(self.content_hash),
            "perceptual_hash": self.perceptual_hash,
            "prompt_hash": _hex(self.prompt_hash),
            "salt": _hex(self.salt),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Opening:
        return cls(
            bytes.fromhex(data["content_hash"][2:]),
            int(data["perceptual_hash"]),
            bytes.fromhex(data["prompt_hash"][2:]),
            bytes.fromhex(data["salt"][2:]),
        )


@dataclass(frozen=True)
class Offer:
    """A job an ESP accepted: the Solidity `Offer` struct, field for field."""

    esp: str
    producer: str
    hashlock: bytes
    fee: int
    timelock: int
    expiry: int
    nonce: int
    commitment: bytes

    def as_tuple(self) -> tuple[str, str, bytes, int, int, int, int, bytes]:
        """The Solidity `Offer` struct as web3 and eth_abi take it."""
        return (self.esp, self.producer, self.hashlock, self.fee, self.timelock, self.expiry, self.nonce, self.commitment)

    def message(self) -> dict[str, Any]:
        return {
            "esp": self.esp,
            "producer": self.producer,
            "hashlock": self.hashlock,
            "fee": self.fee,
            "timelock": self.timelock,
            "expiry": self.expiry,
            "nonce": self.nonce,
            "commitment": self.commitment,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "esp": self.esp,
            "producer": self.producer,
            "hashlock": _hex(self.hashlock),
            "fee": str(self.fee),
            "timelock": self.timelock,
            "expiry": self.expiry,
            "nonce": str(self.nonce),
            "commitment": _hex(self.commitment),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Offer:
        return cls(
            to_checksum_address(data["esp"]),
            to_checksum_address(data["producer"]),
            bytes.fromhex(data["hashlock"][2:]),
            int(data["fee"]),
            int(data["timelock"]),
            int(data["expiry"]),
            int(data["nonce"]),
            bytes.fromhex(data["commitment"][2:]),
        )

    @classmethod
    def from_event(cls, args: dict[str, Any]) -> Offer:
        """The offer of a `GenerationLocked` event."""
        return cls(
            str(args["esp"]),
            str(args["producer"]),
            bytes(args["hashlock"]),
            int(args["fee"]),
            int(args["timelock"]),
            int(args["expiry"]),
            int(args["nonce"]),
            bytes(args["commitment"]),
        )


@dataclass(frozen=True)
class Purchase:
    """The terms of a purchase lock: the Solidity `Purchase` struct, field for field."""

    buyer: str
    seller: str
    token_id: int
    price: int
    hashlock: bytes
    timelock: int

    def as_tuple(self) -> tuple[str, str, int, int, bytes, int]:
        return (self.buyer, self.seller, self.token_id, self.price, self.hashlock, self.timelock)

    def message(self) -> dict[str, Any]:
        return {
            "buyer": self.buyer,
            "seller": self.seller,
            "tokenId": self.token_id,
            "price": self.price,
            "hashlock": self.hashlock,
            "timelock": self.timelock,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "buyer": self.buyer,
            "seller": self.seller,
            "token_id": self.token_id,
            "price": str(self.price),
            "hashlock": _hex(self.hashlock),
            "timelock": self.timelock,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Purchase:
        return cls(
            to_checksum_address(data["buyer"]),
            to_checksum_address(data["seller"]),
            int(data["token_id"]),
            int(data["price"]),
            bytes.fromhex(data["hashlock"][2:]),
            int(data["timelock"]),
        )

    @classmethod
    def from_event(cls, args: dict[str, Any]) -> Purchase:
        """The terms of a `PurchaseLocked` event."""
        return cls(
            str(args["buyer"]),
            str(args["seller"]),
            int(args["tokenId"]),
            int(args["price"]),
            bytes(args["hashlock"]),
            int(args["timelock"]),
        )


@dataclass(frozen=True)
class SignedOffer:
    """An offer with its ESP's 65-byte EIP-712 signature."""

    offer: Offer
    signature: bytes


def exchange_domain(chain_id: int, exchange: str) -> dict[str, Any]:
    """The exchange's EIP-712 domain."""
    return {"name": DOMAIN_NAME, "version": DOMAIN_VERSION, "chainId": chain_id, "verifyingContract": exchange}


def _digest(chain_id: int, exchange: str, primary: str, fields: list[dict[str, str]], message: dict[str, Any]) -> bytes:
    signable = encode_typed_data(
        domain_data=exchange_domain(chain_id, exchange), message_types={primary: fields}, message_data=message
    )
    return keccak(b"\x19" + signable.version + signable.header + signable.body)


def offer_id(offer: Offer, *, chain_id: int, exchange: str) -> bytes:
    """The offer's EIP-712 digest: what its ESP signs and the id of its lock (computed off chain)."""
    return _digest(chain_id, exchange, "Offer", OFFER_FIELDS, offer.message())


def purchase_id(terms: Purchase, *, chain_id: int, exchange: str) -> bytes:
    """The id of a purchase lock with these terms (computed off chain)."""
    return _digest(chain_id, exchange, "Purchase", PURCHASE_FIELDS, terms.message())


def sign_offer(esp: LocalAccount, offer: Offer, *, chain_id: int, exchange: str) -> SignedOffer:
    """The ESP's EIP-712 signature of `offer` (the ESP must be `offer.esp` for the exchange to accept it)."""
    signed = Account.sign_typed_data(
        esp.key,
        domain_data=exchange_domain(chain_id, exchange),
        message_types={"Offer": OFFER_FIELDS},
        message_data=offer.message(),
    )
    return SignedOffer(offer, bytes(signed.signature))


def offer_signer(signed: SignedOffer, *, chain_id: int, exchange: str) -> str | None:
    """The address whose EIP-712 signature `signed` carries (None when the signature recovers nothing): what the
    exchange's `lockGeneration` checks against `offer.esp`, checked off chain before anyone locks."""
    try:
        signable = encode_typed_data(
            domain_data=exchange_domain(chain_id, exchange),
            message_types={"Offer": OFFER_FIELDS},
            message_data=signed.offer.message(),
        )
        return str(Account.recover_message(signable, signature=signed.signature))
    except Exception:  # a malformed signature: the library's many ways of saying no
        return None
