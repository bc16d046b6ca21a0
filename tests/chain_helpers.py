"""Helpers shared by the contract tests: expected reverts and ready-made protocol v2 steps.

The steps go through `market.protocol.Protocol` (the one place that runs the protocol); what a test
attacks directly (a forged offer, a wrong opening) goes through the contract wrappers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount

from market.chain.contracts import LockOpened, PurchaseOpened, Registered
from market.chain.deploy import Market
from market.chain.errors import ContractRevert
from market.chain.hashlocks import hashlock_of, new_secret
from market.protocol import Job, Protocol
from market.terms import ETHER, MarketParams, MarketTerms

PARAMS = MarketParams()
"""The parameters of the test deployment (conftest deploys with the defaults)."""
FEE = ETHER // 100
PRICE = ETHER // 10
HOUR = 3600
STAKE = PARAMS.min_stake

__all__ = ["ETHER", "FEE", "HOUR", "PARAMS", "PRICE", "STAKE", "Content", "flip_bits", "generate", "make_content",
           "make_final", "offer", "open_generation", "open_purchase", "protocol", "register", "reverts", "stake"]


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
    """Stand-in content bytes with a chosen 64-bit perceptual hash (default: from its sha256)."""
    data = content_of(label)
    digest = hashlib.sha256(data).digest()
    return Content(
        data=data,
        content_hash=digest,
        prompt_hash=hashlib.sha256(b"prompt:" + label.encode()).digest(),
        phash=int.from_bytes(digest[:8], "big") if phash is None else phash,
    )


def protocol(market: Market, fee: int = FEE, duration: int = HOUR, price: int = PRICE) -> Protocol:
    return Protocol(market, MarketTerms(generation_fee=fee, lock_duration_s=duration, sale_price=price))


def stake(market: Market, esp: LocalAccount, amount: int = STAKE) -> None:
    """Register `esp` as an active ESP (a no-op if it is active already)."""
    if not market.exchange.is_active_esp(esp.address):
        protocol(market).stake(esp, amount)


def offer(market: Market, producer: LocalAccount | str, esp: LocalAccount, content: Content, fee: int = FEE,
          duration: int = HOUR) -> Job:
    """`esp` (staked here if needed) accepts a job for `producer`: its signed offer committing to `content`."""
    stake(market, esp)
    address = producer if isinstance(producer, str) else producer.address
    return protocol(market, fee, duration).make_offer(esp, address, content.data, content.prompt_hash,
                                                      phash=content.phash)


def open_generation(market: Market, producer: LocalAccount, esp: LocalAccount, fee: int = FEE, duration: int = HOUR,
                    content: Content | None = None) -> tuple[LockOpened, Job]:
    """Lock `fee` from `producer` with `esp`'s offer; returns the lock and the ESP's job (offer, key, opening)."""
    job = offer(market, producer, esp, content or make_content(f"job {new_secret().hex()}"), fee, duration)
    return market.exchange.lock_generation(producer, job.signed), job


def generate(market: Market, producer: LocalAccount, esp: LocalAccount, content: Content,
             uri: str = "ipfs://x") -> tuple[Job, Registered]:
    """A whole honest generation of `content`: offer, lock, reveal, register."""
    stake(market, esp)
    return protocol(market).generate(producer, esp, content.data, content.prompt_hash, uri=uri, phash=content.phash)


def register(market: Market, producer: LocalAccount, esp: LocalAccount, content: Content,
             uri: str = "ipfs://x") -> Registered:
    """Register `content` for `producer` from a paid generation by `esp`."""
    return generate(market, producer, esp, content, uri)[1]


def make_final(market: Market, token_id: int) -> None:
    """Move chain time past `token_id`'s challenge window."""
    record = market.registry.product(token_id)
    final_at = record.registered_at + market.registry.challenge_window()
    if market.chain.now() < final_at:
        market.chain.set_next_block_timestamp(final_at)


def flip_bits(value: int, count: int) -> int:
    """`value` with its `count` lowest bits flipped (Hamming distance `count`)."""
    return value ^ ((1 << count) - 1)


def open_purchase(market: Market, buyer: LocalAccount, token_id: int, price: int = PRICE,
                  duration: int = HOUR) -> tuple[PurchaseOpened, bytes]:
    """Lock `price` from `buyer` for the current owner of final product `token_id`; returns the lock and secret."""
    secret = new_secret()
    lock = market.exchange.lock_purchase(buyer, token_id, hashlock_of(secret), market.chain.now() + duration, price)
    return lock, secret
