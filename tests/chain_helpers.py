"""Helpers shared by the contract tests: expected reverts and ready-made protocol v2 steps.

The steps go through `market.protocol.Protocol` (the one place that runs the protocol); what a test
attacks directly (a forged offer, a wrong opening) goes through the contract wrappers.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount

from market.chain.artifacts import Artifact
from market.chain.calldata import CalldataEncoder
from market.chain.connection import TxResult
from market.chain.contracts import LockOpened, PurchaseOpened, Registered
from market.chain.deploy import Market
from market.chain.errors import ContractRevert
from market.chain.hashlocks import hashlock_of, new_secret
from market.chain.offers import Offer, SignedOffer, sign_offer
from market.protocol import Job, Protocol
from market.terms import ETHER, MarketParams, MarketTerms

PARAMS = MarketParams()
"""The parameters of the test deployment (conftest deploys with the defaults)."""
FEE = ETHER // 100
PRICE = ETHER // 10
HOUR = 3600
STAKE = PARAMS.min_stake

__all__ = [
    "ETHER",
    "FEE",
    "HOUR",
    "PARAMS",
    "PRICE",
    "STAKE",
    "Content",
    "flip_bits",
    "generate",
    "make_content",
    "make_final",
    "offer",
    "open_generation",
    "open_purchase",
    "protocol",
    "register",
    "reverts",
    "stake",
]


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


def offer(
    market: Market, producer: LocalAccount | str, esp: LocalAccount, content: Content, fee: int = FEE, duration: int = HOUR
) -> Job:
    """`esp` (staked here if needed) accepts a job for `producer`: its signed offer committing to `content`."""
    stake(market, esp)
    address = producer if isinstance(producer, str) else producer.address
    return protocol(market, fee, duration).make_offer(esp, address, content.data, content.prompt_hash, phash=content.phash)


def open_generation(
    market: Market, producer: LocalAccount, esp: LocalAccount, fee: int = FEE, duration: int = HOUR, content: Content | None = None
) -> tuple[LockOpened, Job]:
    """Lock `fee` from `producer` with `esp`'s offer; returns the lock and the ESP's job (offer, key, opening)."""
    job = offer(market, producer, esp, content or make_content(f"job {new_secret().hex()}"), fee, duration)
    return market.exchange.lock_generation(producer, job.signed), job


def generate(
    market: Market, producer: LocalAccount, esp: LocalAccount, content: Content, uri: str = "ipfs://x"
) -> tuple[Job, Registered]:
    """A whole honest generation of `content`: offer, lock, reveal, register."""
    stake(market, esp)
    return protocol(market).generate(producer, esp, content.data, content.prompt_hash, uri=uri, phash=content.phash)


def register(market: Market, producer: LocalAccount, esp: LocalAccount, content: Content, uri: str = "ipfs://x") -> Registered:
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


def open_purchase(
    market: Market, buyer: LocalAccount, token_id: int, price: int = PRICE, duration: int = HOUR
) -> tuple[PurchaseOpened, bytes]:
    """Lock `price` from `buyer` for the current owner of final product `token_id`; returns the lock and secret."""
    secret = new_secret()
    lock = market.exchange.lock_purchase(buyer, token_id, hashlock_of(secret), market.chain.now() + duration, price)
    return lock, secret


# -- added for the v2 contract unit tests ------------------------------------------------------------

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"


def block_time(market: Market, tx: TxResult) -> int:
    """The timestamp of the block that mined `tx`."""
    return market.chain.block_timestamp(tx.block_number)


def resign(market: Market, esp: LocalAccount, offer: Offer, **changes: Any) -> SignedOffer:
    """`offer` with `changes` (Offer field names), signed by `esp` in the market's exchange domain."""
    changed = dataclasses.replace(offer, **changes)
    return sign_offer(esp, changed, chain_id=market.chain.chain_id, exchange=market.exchange.address)


def paid_generation(
    market: Market, producer: LocalAccount, esp: LocalAccount, content: Content | None = None, fee: int = FEE, duration: int = HOUR
) -> Job:
    """A generation lock of `producer` that `esp` withdrew with the key: paid, not registered yet."""
    _, job = open_generation(market, producer, esp, fee, duration, content)
    market.exchange.withdraw_generation(esp, job.offer, job.key)
    return job


def final_product(market: Market, owner: LocalAccount, esp: LocalAccount, label: str = "product") -> int:
    """A product registered by `owner` (its producer), past its challenge window, the exchange approved."""
    token_id = register(market, owner, esp, make_content(label)).token_id
    make_final(market, token_id)
    market.registry.approve(owner, market.exchange.address, token_id)
    return token_id


# A contract account that refuses ether: any plain transfer (empty calldata) reverts, and a call whose
# calldata is `abi.encode(target) ++ data` is forwarded as `target.call{value: msg.value}(data)`, its
# revert data bubbled up. Hand-assembled (no solc artifact): the 9-byte constructor copies the runtime.
_FORWARDER_RUNTIME = bytes.fromhex(
    "36"
    "15"
    "6027"
    "57"  # if calldatasize == 0: jump to refuse
    "6020"
    "36"
    "03"
    "6020"
    "5f"
    "37"  # calldatacopy(0, 32, calldatasize - 32)
    "5f"
    "5f"
    "6020"
    "36"
    "03"
    "5f"
    "34"
    "5f"
    "35"
    "5a"
    "f1"  # call(gas, cd[0:32], value, 0, size, 0, 0)
    "3d"
    "5f"
    "5f"
    "3e"  # returndatacopy(0, 0, returndatasize)
    "6023"
    "57"  # if success: jump to ok
    "3d"
    "5f"
    "fd"  # revert(0, returndatasize)
    "5b"
    "3d"
    "5f"
    "f3"  # ok: return(0, returndatasize)
    "5b"
    "5f"
    "5f"
    "fd"  # refuse: revert(0, 0)
)
_FORWARDER_ARTIFACT = Artifact(
    contract_name="EtherRefusingForwarder",
    source="tests/chain_helpers.py",
    abi=[],
    bytecode="0x60" + f"{len(_FORWARDER_RUNTIME):02x}" + "8060095f395ff3" + _FORWARDER_RUNTIME.hex(),
    deployed_bytecode="0x" + _FORWARDER_RUNTIME.hex(),
)


@dataclass(frozen=True)
class Forwarder:
    """A deployed ether-refusing forwarder: `call` sends a contract call through it (it is `msg.sender`)."""

    market: Market
    address: str

    def call(self, sender: LocalAccount, target: str, function: str, *args: Any, value: int = 0) -> TxResult:
        """`target.function(*args)` with `value` wei, called by the forwarder on behalf of `sender`."""
        contract = next(
            c for c in (self.market.registry, self.market.exchange, self.market.ledger) if c.address.lower() == target.lower()
        )
        data = bytes.fromhex(CalldataEncoder(contract.contract.abi).encode(function, *args)[2:])
        payload = "0x" + (bytes(12) + bytes.fromhex(target[2:]) + data).hex()
        return self.market.chain.send_call(self.address, payload, sender, value)


def deploy_forwarder(market: Market, deployer: LocalAccount) -> Forwarder:
    """A fresh ether-refusing forwarder (see `Forwarder`)."""
    contract, _ = market.chain.deploy(_FORWARDER_ARTIFACT, deployer)
    return Forwarder(market, str(contract.address))
