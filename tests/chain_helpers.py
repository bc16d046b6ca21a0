"""Helpers shared by the contract tests: expected reverts and ready-made lifecycle steps."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount

from market.chain.contracts import LockOpened, Registered
from market.chain.deploy import Market
from market.chain.errors import ContractRevert
from market.chain.hashlocks import hashlock_of, new_secret
from market.chain.signing import sign_generation

ETHER = 10**18
FEE = ETHER // 100
PRICE = ETHER // 10
HOUR = 3600


@contextmanager
def reverts(error: str, **params: Any) -> Iterator[pytest.ExceptionInfo[ContractRevert]]:
    """Expect a `ContractRevert` named `error`, whose decoded arguments include `params`."""
    with pytest.raises(ContractRevert) as info:
        yield info
    assert info.value.error == error, f"expected {error}, got {info.value}"
    for name, expected in params.items():
        assert info.value.params[name] == expected, f"{error}.{name}: {info.value.params[name]!r} != {expected!r}"


def content_of(label: str) -> bytes:
    return hashlib.sha512(label.encode()).digest() * 8


@dataclass(frozen=True)
class Content:
    data: bytes
    content_hash: bytes
    prompt_hash: bytes
    phash: int


def make_content(label: str, phash: int | None = None) -> Content:
    data = content_of(label)
    digest = hashlib.sha256(data).digest()
    return Content(
        data=data,
        content_hash=digest,
        prompt_hash=hashlib.sha256(b"prompt:" + label.encode()).digest(),
        phash=int.from_bytes(digest[:8], "big") if phash is None else phash,
    )


def sign(market: Market, esp: LocalAccount, producer: str, content: Content) -> bytes:
    return sign_generation(
        esp,
        chain_id=market.chain.chain_id,
        registry=market.registry.address,
        producer=producer,
        content_hash=content.content_hash,
        prompt_hash=content.prompt_hash,
        perceptual_hash=content.phash,
    )


def register(
    market: Market, producer: LocalAccount, esp: LocalAccount, content: Content, uri: str = "ipfs://x"
) -> Registered:
    """Register `content` for `producer` with a valid signature of `esp`."""
    return market.registry.register(
        producer,
        content_hash=content.content_hash,
        perceptual_hash=content.phash,
        prompt_hash=content.prompt_hash,
        esp=esp.address,
        signature=sign(market, esp, producer.address, content),
        uri=uri,
    )


def flip_bits(value: int, count: int) -> int:
    """`value` with its `count` lowest bits flipped (Hamming distance `count`)."""
    return value ^ ((1 << count) - 1)


def open_generation(
    market: Market, producer: LocalAccount, esp: LocalAccount, fee: int = FEE, duration: int = HOUR
) -> tuple[LockOpened, bytes]:
    """Lock `fee` from `producer` for `esp`; returns the lock and its preimage."""
    key = new_secret()
    lock = market.exchange.lock_generation(
        producer, esp.address, hashlock_of(key), market.chain.now() + duration, fee
    )
    return lock, key


def open_purchase(
    market: Market, buyer: LocalAccount, token_id: int, price: int = PRICE, duration: int = HOUR
) -> tuple[LockOpened, bytes]:
    """Lock `price` from `buyer` for the current owner of `token_id`; returns the lock and secret."""
    secret = new_secret()
    lock = market.exchange.lock_purchase(
        buyer, token_id, hashlock_of(secret), market.chain.now() + duration, price
    )
    return lock, secret
