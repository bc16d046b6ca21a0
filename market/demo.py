"""One whole AIGC lifecycle on the three contracts, step by step with the gas of each.

Until the market simulation exists this is what `make demo` runs: an ESP-signed registration, a
generation HTLC, a primary sale and a resale through purchase HTLCs (token transfer and royalty),
an upheld plagiarism challenge and a rating, then the money and ownership invariants.

The content here is a stand-in byte string and its 64-bit perceptual hash is derived from it;
real images with imagehash pHashes come with the market simulation.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from market.chain.connection import TxResult
from market.chain.deploy import Market
from market.chain.hashlocks import hashlock_of, new_secret
from market.chain.signing import sign_generation
from market.invariants import check_market, snapshot_balances, tracked_addresses

ETHER = 10**18
GENERATION_FEE = ETHER // 100
SALE_PRICE = ETHER // 10
RESALE_PRICE = ETHER // 5
LOCK_DURATION = 3600


@dataclass(frozen=True)
class Step:
    """One operation of the walk: its name, the gas it used (None for views) and what happened."""

    operation: str
    gas: int | None
    detail: str


def _flip_bits(value: int, bits: list[int]) -> int:
    for bit in bits:
        value ^= 1 << bit
    return value


@dataclass(frozen=True)
class LifecycleReport:
    steps: list[Step]
    invariants: dict[str, bool]
    """Invariant name -> whether it held at the end of the walk."""


def walk_lifecycle(market: Market, on_step: Callable[[Step], None] = lambda step: None) -> LifecycleReport:
    """Run the lifecycle on `market`, calling `on_step` after each step."""
    chain, registry, exchange, ledger = market.chain, market.registry, market.exchange, market.ledger
    steps: list[Step] = []

    def record(operation: str, tx: TxResult | None, detail: str) -> None:
        step = Step(operation, tx.gas_used if tx else None, detail)
        steps.append(step)
        on_step(step)

    producer = chain.new_account(10 * ETHER, "producer")
    esp = chain.new_account(ETHER, "esp")
    collector = chain.new_account(10 * ETHER, "consumer")
    second_buyer = chain.new_account(10 * ETHER, "consumer")
    attacker = chain.new_account(ETHER, "attacker")
    accomplice = chain.new_account(ETHER, "esp")
    before = snapshot_balances(chain, tracked_addresses(market))

    # Generation: the ESP encrypts the content under key k and hands over sha256(k).
    prompt = b"a lighthouse at dawn, oil painting"
    content = hashlib.sha512(b"generated:" + prompt).digest() * 64
    content_hash = hashlib.sha256(content).digest()
    prompt_hash = hashlib.sha256(prompt).digest()
    phash = int.from_bytes(hashlib.sha256(content).digest()[:8], "big")
    key = new_secret()
    lock = exchange.lock_generation(producer, esp.address, hashlock_of(key), chain.now() + LOCK_DURATION, GENERATION_FEE)
    record("lockGeneration", lock.tx, f"producer locks {GENERATION_FEE / ETHER} ETH for the ESP under sha256(k)")
    claimed = exchange.withdraw(esp, lock.lock_id, key)
    revealed = bytes(claimed.event("Withdrawn").args["preimage"])
    record("withdraw (generation)", claimed, f"ESP reveals k and takes the fee; k from the event matches: {revealed == key}")

    signature = sign_generation(
        esp, chain_id=chain.chain_id, registry=registry.address, producer=producer.address,
        content_hash=content_hash, prompt_hash=prompt_hash, perceptual_hash=phash,
    )
    registered = registry.register(
        producer, content_hash=content_hash, perceptual_hash=phash, prompt_hash=prompt_hash,
        esp=esp.address, signature=signature, uri=f"sha256://{content_hash.hex()}",
    )
    original_id = registered.token_id
    record("register", registered.tx, f"token #{original_id} minted to the producer with the ESP's EIP-712 proof")

    rating = ledger.rate(producer, lock.lock_id, True, 42)
    record("rate", rating, "producer rates the ESP positive (score 42) for the settled lock")

    # Primary sale, then a resale that pays the producer's royalty.
    for seller, buyer, price in ((producer, collector, SALE_PRICE), (collector, second_buyer, RESALE_PRICE)):
        approval = registry.approve(seller, exchange.address, original_id)
        record("approve", approval, "seller approves the exchange for the token")
        secret = new_secret()
        purchase = exchange.lock_purchase(buyer, original_id, hashlock_of(secret), chain.now() + LOCK_DURATION, price)
        record("lockPurchase", purchase.tx, f"buyer locks {price / ETHER} ETH under the seller's hashlock")
        producer_before = chain.balance(producer.address)
        settled = exchange.withdraw(seller, purchase.lock_id, secret)
        royalty = chain.balance(producer.address) - producer_before if seller is not producer else 0
        record(
            "withdraw (purchase)", settled,
            f"token moves to the buyer (owner now {registry.owner_of(original_id) == buyer.address}); "
            f"royalty to the producer {royalty / ETHER} ETH",
        )

    # Plagiarism: a near-duplicate signed by an accomplice ESP, challenged by the current owner.
    copy = content[:-1] + b"\x00"
    copy_hash = hashlib.sha256(copy).digest()
    copy_phash = _flip_bits(phash, [3, 17, 40])
    copy_signature = sign_generation(
        accomplice, chain_id=chain.chain_id, registry=registry.address, producer=attacker.address,
        content_hash=copy_hash, prompt_hash=prompt_hash, perceptual_hash=copy_phash,
    )
    chain.advance_time(1)
    duplicate = registry.register(
        attacker, content_hash=copy_hash, perceptual_hash=copy_phash, prompt_hash=prompt_hash,
        esp=accomplice.address, signature=copy_signature, uri="sha256://copy",
    )
    record("register (duplicate)", duplicate.tx, f"attacker registers a copy as token #{duplicate.token_id}, pHash 3 bits off")
    outcome = registry.challenge(second_buyer, original_id, duplicate.token_id)
    record(
        "challenge (upheld)" if outcome.upheld else "challenge (rejected)", outcome.tx,
        f"owner challenges: distance {outcome.distance}, upheld {outcome.upheld}, "
        f"copy revoked {registry.is_revoked(duplicate.token_id)}",
    )

    results = check_market(market, before)
    record("invariants", None, "; ".join(result.detail for result in results.values()))
    return LifecycleReport(steps, {name: result.holds for name, result in results.items()})
