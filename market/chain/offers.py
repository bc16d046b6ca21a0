"""The terms of protocol v2's locks: an ESP's signed offer, the content it commits to, a purchase.

An `Offer` is what an ESP signs (EIP-712, the exchange's domain "AIGCExchange" version "2") when
it accepts a job; its digest is the id of the generation lock made with it. An `Opening` is the
content the offer committed to, revealed at registration. A `Purchase` holds the terms of a
purchase lock, whose id is their digest. See `docs/protocol.md`.

The EIP-712 digests, signatures and recoveries are computed here directly rather than through
eth_account's typed-data functions, which cost milliseconds a call (see the section below).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from coincurve import PublicKey
from eth_abi import encode as abi_encode
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_checksum_address
from hexbytes import HexBytes

from market.chain.abi_words import encode_words
from market.chain.transactions import signer_of

DOMAIN_NAME, DOMAIN_VERSION = "AIGCExchange", "2"

#: The order of secp256k1's group: r and s of a signature lie below it.
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141

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


# EIP-712 by hand. eth_account's `encode_typed_data` and `sign_typed_data` rebuild the whole type machinery
# (dependencies, type strings, the domain's types and hash) on every call: the largest share of the Python CPU
# per task when `aigc-market simulate` was profiled. Here the type hashes are computed once, the domain separator
# once per exchange, and a struct hash is one keccak of 32-byte words; signing and recovery go straight to
# libsecp256k1 (coincurve, where eth_account ends too). `benchmarks/signing.py` times both paths (~8x fewer µs
# per signed offer and per id, ~3x per recovered signer); `tests/market/chain/test_offers_signing.py` checks
# digests, signatures and recovered signers against eth_account's for arbitrary field values.

_DOMAIN_TYPE_HASH = keccak(text="EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")


def _encode_type(primary: str, fields: list[dict[str, str]]) -> str:
    """EIP-712's encodeType of a struct without struct members: "Offer(address esp,address producer,...)"."""
    return primary + "(" + ",".join(f"{field['type']} {field['name']}" for field in fields) + ")"


@dataclass(frozen=True)
class _Struct:
    """What hashing one struct needs, worked out once: its type hash, and each field's ABI type."""

    type_hash: bytes
    types: tuple[str, ...]

    @classmethod
    def of(cls, primary: str, fields: list[dict[str, str]]) -> _Struct:
        return cls(keccak(text=_encode_type(primary, fields)), ("bytes32", *(field["type"] for field in fields)))

    def hash(self, values: tuple[Any, ...]) -> bytes:
        """keccak(typeHash ++ one 32-byte word per field): EIP-712's hashStruct for these (all static) types.

        Values of the usual Python types are laid out by hand (`abi_words`); anything else goes to
        `eth_abi.encode`, as in eth_account, so that what it accepts, pads or refuses stays the same.
        """
        encoded = encode_words(self.types, (self.type_hash, *values))
        return keccak(encoded if encoded is not None else abi_encode(self.types, [self.type_hash, *values]))


_OFFER = _Struct.of("Offer", OFFER_FIELDS)
_PURCHASE = _Struct.of("Purchase", PURCHASE_FIELDS)


@lru_cache(maxsize=256)
def _domain_separator(chain_id: int, exchange: str) -> bytes:
    """hashStruct of the exchange's domain (`exchange_domain`)."""
    return keccak(
        abi_encode(
            ["bytes32", "bytes32", "bytes32", "uint256", "address"],
            [_DOMAIN_TYPE_HASH, keccak(text=DOMAIN_NAME), keccak(text=DOMAIN_VERSION), chain_id, exchange],
        )
    )


def _digest(chain_id: int, exchange: str, struct_hash: bytes) -> bytes:
    """keccak(0x1901 ++ domainSeparator ++ hashStruct(message)): what EIP-712 signs."""
    return keccak(b"\x19\x01" + _domain_separator(chain_id, exchange) + struct_hash)


def offer_id(offer: Offer, *, chain_id: int, exchange: str) -> bytes:
    """The offer's EIP-712 digest: what its ESP signs and the id of its lock (computed off chain)."""
    return _digest(chain_id, exchange, _OFFER.hash(offer.as_tuple()))


def purchase_id(terms: Purchase, *, chain_id: int, exchange: str) -> bytes:
    """The id of a purchase lock with these terms (computed off chain)."""
    return _digest(chain_id, exchange, _PURCHASE.hash(terms.as_tuple()))


def sign_offer(esp: LocalAccount, offer: Offer, *, chain_id: int, exchange: str) -> SignedOffer:
    """The ESP's EIP-712 signature of `offer` (the ESP must be `offer.esp` for the exchange to accept it): r ++ s ++ v
    with v = 27 + the recovery id, eth_account's 65 bytes (libsecp256k1 signs deterministically and low-s)."""
    signature = signer_of(bytes(esp.key)).sign_recoverable(offer_id(offer, chain_id=chain_id, exchange=exchange), hasher=None)
    return SignedOffer(offer, signature[:64] + bytes((27 + signature[64],)))


def offer_signer(signed: SignedOffer, *, chain_id: int, exchange: str) -> str | None:
    """The address whose EIP-712 signature `signed` carries, by the exchange's own rule; None where the exchange's
    `lockGeneration` would refuse the signature. Checked off chain before anyone locks.

    The rule is OpenZeppelin's `ECDSA.tryRecover` (5.x), which `SignatureChecker.isValidSignatureNow` applies for
    an ESP that is an account: exactly 65 bytes r || s || v, v of 27 or 28 (`ecrecover` knows no other), s in
    the lower half of the group order (EIP-2: the malleated twin of a signature is refused), and a point that
    recovers. eth_account is looser (v of 0/1 or an EIP-155 v, a high s): a signature it accepts could pass
    this check and then revert on chain.
    """
    try:
        signature = signed.signature if isinstance(signed.signature, bytes) else HexBytes(signed.signature)
        if len(signature) != 65 or signature[64] not in (27, 28):
            return None
        r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:64], "big")
        if not 0 < r < SECP256K1_N or not 0 < s <= SECP256K1_N // 2:
            return None
        digest = offer_id(signed.offer, chain_id=chain_id, exchange=exchange)
        public_key = PublicKey.from_signature_and_message(signature[:64] + bytes((signature[64] - 27,)), digest, hasher=None)
    except Exception:  # a signature that is no bytes or recovers no point, an offer that does not encode
        return None
    return to_checksum_address(keccak(public_key.format(compressed=False)[1:])[-20:])
