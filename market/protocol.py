"""Protocol v2, step by step: the only code that runs the market's protocol against the contracts.

The simulation, the demo, the API and the tests call these steps; each is one transaction (or one
signature) by one party, in the order of `docs/protocol.md`:

    ESP:       stake -> make_offer (encrypt, commit, sign; hands over the Quote) ... reveal (withdraw the fee),
                                                                           then hands over the opening
    producer:              lock (the ESP's offer + fee) ..................... open_content -> register -> rate
    anyone:    challenge (within the window) | prove_equivocation | claim_bond (final) | withdraw_credits
    trade:     lock_purchase (final products only) -> claim_sale | refund_purchase

Every transaction goes through `on_tx(operation, tx)` so that a caller can book its gas.

`Protocol.batch()` queues many parties' steps of one phase (say every producer's lock of a period) and
sends them together (`Chain.send_many`: pipelined on a JSON-RPC node, one by one elsewhere); each
queued step hands back a `Slot` holding its result or its decoded revert (docs/scale.md).
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np
from eth_account.signers.local import LocalAccount

from market.chain.connection import Call, TxResult
from market.chain.contracts import (
    ChallengeOutcome,
    LockOpened,
    PurchaseOpened,
    Registered,
    View,
    lock_opened,
    purchase_opened,
    read_views,
    registered,
)
from market.chain.deploy import Market
from market.chain.errors import ChainError
from market.chain.hashlocks import hashlock_of, new_secret
from market.chain.offers import Offer, Opening, Purchase, SignedOffer, sign_offer
from market.content import content_hash, decrypt, encrypt, perceptual_hash
from market.terms import MarketTerms

TxHook = Callable[[str, TxResult], object]
T = TypeVar("T")


class ContentMismatch(ValueError):
    """The revealed key decrypts to content other than what the offer committed to."""


class DuplicateCommitment(ValueError):
    """An honest ESP refuses to commit content it already committed to another producer (it would be slashed)."""


@dataclass(frozen=True)
class Commitment:
    producer: str
    content_hash: bytes
    perceptual_hash: int


@dataclass(frozen=True)
class Quote:
    """What an ESP hands the producer before the lock: its signed offer and the ciphertext, nothing more.

    The opening (content hash, pHash, salt) is released only once the lock is on chain: a producer who
    learnt the content hash before locking could have its own second ESP key commit it earlier and get
    the honest ESP slashed as the later seller (`docs/protocol.md`, the equivocation row).
    """

    signed: SignedOffer
    ciphertext: bytes


@dataclass(frozen=True)
class Job:
    """An ESP's accepted job: the signed offer, the content it committed to, and the key (ESP-only until revealed)."""

    signed: SignedOffer
    opening: Opening
    key: bytes
    ciphertext: bytes

    @property
    def offer(self) -> Offer:
        return self.signed.offer

    @property
    def quote(self) -> Quote:
        """The part of the job the producer receives before it locks."""
        return Quote(self.signed, self.ciphertext)


@dataclass(frozen=True)
class Delivery:
    """What the producer holds after the ESP revealed the key: the content, checked against the commitment."""

    content: bytes
    opening: Opening


class _CommitmentIndex:
    """Every commitment the guard knows, searchable at once: by content hash, and by pHash distance to
    all of them in one vectorised XOR and popcount (a market of 10,000 jobs made a Python scan of the
    earlier commitments, once per offer, the slowest part of a large simulation)."""

    def __init__(self) -> None:
        self._phashes = np.zeros(1024, dtype=np.uint64)
        self._producers: list[str] = []
        self._by_content: dict[bytes, list[str]] = {}

    def conflict(self, producer: str, content_hash: bytes, phash: int, threshold: int) -> str | None:
        """The producer of an earlier commitment to another producer of the same content or a near-copy."""
        for earlier in self._by_content.get(content_hash, []):
            if earlier != producer:
                return earlier
        count = len(self._producers)
        if count:
            distances = np.bitwise_count(self._phashes[:count] ^ np.uint64(phash))
            for index in np.flatnonzero(distances <= threshold).tolist():
                if self._producers[index] != producer:
                    return self._producers[index]
        return None

    def add(self, commitment: Commitment) -> None:
        count = len(self._producers)
        if count == len(self._phashes):
            self._phashes = np.concatenate([self._phashes, np.zeros(count, dtype=np.uint64)])
        self._phashes[count] = commitment.perceptual_hash
        self._producers.append(commitment.producer)
        self._by_content.setdefault(commitment.content_hash, []).append(commitment.producer)


def _no_hook(operation: str, tx: TxResult) -> None:
    return None


class Protocol:
    """The protocol's steps on one deployed market, with the market's terms."""

    def __init__(self, market: Market, terms: MarketTerms | None = None, on_tx: TxHook = _no_hook) -> None:
        self.market = market
        self.terms = terms or MarketTerms()
        self.on_tx = on_tx
        self.commitments: dict[str, list[Commitment]] = {}
        """What each ESP signed through this object: the guard against selling a duplicate by accident
        (in memory: an ESP that restarts reloads its history with `remember`; `docs/protocol.md`)."""
        self._guard_lock = threading.Lock()
        self._index = _CommitmentIndex()

    @property
    def chain_id(self) -> int:
        return self.market.chain.chain_id

    def batch(self) -> Batch:
        """An empty batch of steps on this protocol (see `Batch`)."""
        return Batch(self)

    def _book(self, operation: str, tx: TxResult) -> TxResult:
        self.on_tx(operation, tx)
        return tx

    # -- ESP: stake, offer, reveal, exit ------------------------------------------------------------

    def stake(self, esp: LocalAccount, amount: int | None = None) -> TxResult:
        """Register `esp` as an ESP with `amount` wei of stake (the terms' stake by default)."""
        return self._book("registerEsp", self.market.exchange.register_esp(esp, amount or self.terms.esp_stake))

    def announce_exit(self, esp: LocalAccount) -> TxResult:
        return self._book("announceExit", self.market.exchange.announce_exit(esp))

    def withdraw_stake(self, esp: LocalAccount) -> TxResult:
        return self._book("withdrawStake", self.market.exchange.withdraw_stake(esp))

    def make_offer(
        self,
        esp: LocalAccount,
        producer: str,
        content: bytes,
        prompt_hash: bytes,
        *,
        fee: int | None = None,
        lock_duration_s: int | None = None,
        nonce: int | None = None,
        key: bytes | None = None,
        phash: int | None = None,
        now: int | None = None,
    ) -> Job:
        """The ESP accepts a job: encrypts `content` under a fresh key, commits to it and signs the offer.

        `phash` overrides the perceptual hash of `content` (for non-image content and tests); `now`, the
        chain time the offer counts from, is read from the chain when not given (see `commit_offer`).
        """
        key = new_secret() if key is None else key
        opening = Opening.of(content_hash(content), perceptual_hash(content) if phash is None else phash, prompt_hash)
        signed = self.commit_offer(
            esp, producer, opening, hashlock_of(key), fee=fee, lock_duration_s=lock_duration_s, nonce=nonce, now=now
        )
        return Job(signed, opening, key, encrypt(key, content))

    def commit_offer(
        self,
        esp: LocalAccount,
        producer: str,
        opening: Opening,
        hashlock: bytes,
        *,
        fee: int | None = None,
        lock_duration_s: int | None = None,
        nonce: int | None = None,
        now: int | None = None,
    ) -> SignedOffer:
        """The ESP's signed offer to `producer` committing to `opening`, payable under `hashlock`, from now.

        `now` is the chain time (the latest block's timestamp), read from the chain when not given: a
        caller making many offers before any transaction (a simulation's period) reads it once.

        Raises `DuplicateCommitment` when an ESP signing through this object committed the same
        content, or a near-copy (pHash within the registry's threshold), to another producer before:
        `proveEquivocation` would slash the later one. (Same content to the same producer is allowed.)
        """
        self._guard(esp.address, producer, opening)
        now = self.market.chain.now() if now is None else now
        offer = Offer(
            esp=esp.address,
            producer=producer,
            hashlock=hashlock,
            fee=self.terms.generation_fee if fee is None else fee,
            timelock=now + (lock_duration_s or self.terms.lock_duration_s),
            expiry=now + self.terms.offer_ttl_s,
            nonce=secrets.randbits(64) if nonce is None else nonce,
            commitment=opening.commitment(),
        )
        return self.sign(esp, offer)

    def remember(self, esp: str, producer: str, opening: Opening) -> None:
        """Record a commitment signed earlier (after a restart), so the guard knows it."""
        with self._guard_lock:
            self._record_commitment(esp, Commitment(producer, opening.content_hash, opening.perceptual_hash))

    def _record_commitment(self, esp: str, commitment: Commitment) -> None:
        self.commitments.setdefault(esp, []).append(commitment)
        self._index.add(commitment)

    def _guard(self, esp: str, producer: str, opening: Opening) -> None:
        # Every ESP signing through this object is checked against all of them: a copy is slashed
        # whichever ESP committed the original (`proveEquivocation`). Check and record are one step, so
        # that two threads cannot both pass with the same content.
        threshold = self.market.registry.similarity_threshold()
        with self._guard_lock:
            earlier = self._index.conflict(producer, opening.content_hash, opening.perceptual_hash, threshold)
            if earlier is not None:
                raise DuplicateCommitment(f"this content (or a near-copy) was committed to {earlier} before")
            self._record_commitment(esp, Commitment(producer, opening.content_hash, opening.perceptual_hash))

    def sign(self, esp: LocalAccount, offer: Offer) -> SignedOffer:
        """`esp`'s EIP-712 signature of `offer` in this market's exchange domain."""
        return sign_offer(esp, offer, chain_id=self.chain_id, exchange=self.market.exchange.address)

    def reveal(self, esp: LocalAccount, offer: Offer, key: bytes) -> TxResult:
        """The ESP withdraws the fee by revealing the content key on chain."""
        return self._book("withdrawGeneration", self.market.exchange.withdraw_generation(esp, offer, key))

    # -- producer: lock, open, register, rate, refund -----------------------------------------------

    def lock(self, producer: LocalAccount, signed: SignedOffer) -> LockOpened:
        """The producer locks the fee with the ESP's signed offer."""
        opened = self.market.exchange.lock_generation(producer, signed)
        self._book("lockGeneration", opened.tx)
        return opened

    @staticmethod
    def revealed_key(reveal_tx: TxResult) -> bytes:
        """The key that a `withdrawGeneration` transaction revealed (what any observer reads)."""
        return bytes(reveal_tx.event("Withdrawn").args["preimage"])

    @staticmethod
    def open_content(key: bytes, ciphertext: bytes, opening: Opening, offer: Offer, phash: int | None = None) -> Delivery:
        """Decrypt and check the content against the offer's commitment (raise `ContentMismatch` if not)."""
        if hashlock_of(key) != offer.hashlock:
            raise ContentMismatch("the key does not match the offer's hashlock")
        content = decrypt(key, ciphertext)
        if opening.commitment() != offer.commitment:
            raise ContentMismatch("the opening does not match the offer's commitment")
        expected_phash = perceptual_hash(content) if phash is None else phash
        if content_hash(content) != opening.content_hash or expected_phash != opening.perceptual_hash:
            raise ContentMismatch("the content is not what the offer committed to")
        return Delivery(content, opening)

    def register(
        self, producer: LocalAccount, offer: Offer, opening: Opening, uri: str = "", operation: str = "register"
    ) -> Registered:
        """Register the content of a paid generation (bond attached)."""
        registered = self.market.registry.register(producer, offer, opening, uri)
        self._book(operation, registered.tx)
        return registered

    def rate(self, producer: LocalAccount, offer: Offer, positive: bool, score: int) -> TxResult:
        return self._book("rate", self.market.ledger.rate(producer, offer, positive, score))

    def refund(self, producer: LocalAccount, offer: Offer, wait: bool = False) -> TxResult:
        """The producer takes the fee back; with `wait` (simulations only), chain time first moves to the timelock."""
        chain = self.market.chain
        if wait and chain.now() < offer.timelock:
            chain.set_next_block_timestamp(offer.timelock)
        return self._book("refundGeneration", self.market.exchange.refund_generation(producer, offer))

    # -- trade --------------------------------------------------------------------------------------

    def purchase_terms(
        self, buyer: str, token_id: int, hashlock: bytes, price: int | None = None, timelock: int | None = None
    ) -> Purchase:
        """The terms `lock_purchase` would lock now (the seller is the token's owner): their digest is the lock's id."""
        return Purchase(
            buyer=buyer,
            seller=self.market.registry.owner_of(token_id),
            token_id=token_id,
            price=self.terms.sale_price if price is None else price,
            hashlock=hashlock,
            timelock=self.market.chain.now() + self.terms.lock_duration_s if timelock is None else timelock,
        )

    def lock_purchase(
        self,
        buyer: LocalAccount,
        token_id: int,
        hashlock: bytes,
        price: int | None = None,
        lock_duration_s: int | None = None,
        timelock: int | None = None,
    ) -> PurchaseOpened:
        """The buyer locks the price of a final product under the seller's hashlock.

        The timelock is `timelock` if given (e.g. from `purchase_terms`), else now + the lock duration.
        """
        if timelock is None:
            timelock = self.market.chain.now() + (lock_duration_s or self.terms.lock_duration_s)
        opened = self.market.exchange.lock_purchase(
            buyer, token_id, hashlock, timelock, self.terms.sale_price if price is None else price
        )
        self._book("lockPurchase", opened.tx)
        return opened

    def claim_sale(self, seller: LocalAccount, terms: Purchase, secret: bytes) -> TxResult:
        """The seller reveals its secret (approving the exchange for the token first if needed): the token
        moves, proceeds and royalty are credited. A seller who no longer owns the token gets the
        exchange's `AIGCExchangeSellerNotOwner`."""
        registry, exchange = self.market.registry, self.market.exchange
        if registry.owner_of(terms.token_id) == seller.address and not registry.exchange_may_move(
            seller.address, terms.token_id, exchange.address
        ):
            self._book("approve", registry.approve(seller, exchange.address, terms.token_id))
        return self._book("withdrawPurchase", exchange.withdraw_purchase(seller, terms, secret))

    def refund_purchase(self, buyer: LocalAccount, terms: Purchase, wait: bool = False) -> TxResult:
        """The buyer takes the price back (at once if the token can no longer be delivered; else after the
        timelock; with `wait`, simulations only, chain time first moves there)."""
        chain = self.market.chain
        if wait and chain.now() < terms.timelock:
            chain.set_next_block_timestamp(terms.timelock)
        return self._book("refundPurchase", self.market.exchange.refund_purchase(buyer, terms))

    # -- disputes, bonds and credits ----------------------------------------------------------------

    def challenge(self, owner: LocalAccount, original_id: int, duplicate_id: int) -> ChallengeOutcome:
        outcome = self.market.registry.challenge(owner, original_id, duplicate_id)
        self._book("challenge (upheld)" if outcome.upheld else "challenge (rejected)", outcome.tx)
        return outcome

    def prove_equivocation(self, caller: LocalAccount, a: Offer, opening_a: Opening, b: Offer, opening_b: Opening) -> TxResult:
        return self._book("proveEquivocation", self.market.exchange.prove_equivocation(caller, a, opening_a, b, opening_b))

    def claim_bond(self, owner: LocalAccount, token_id: int) -> TxResult:
        return self._book("claimBond", self.market.registry.claim_bond(owner, token_id))

    def withdraw_credits(self, account: LocalAccount) -> int:
        """Withdraw what the registry and the exchange credited to `account`; returns the wei received."""
        total = 0
        for contract in (self.market.registry, self.market.exchange):
            credit = contract.credit_of(account.address)
            if credit:
                self._book("withdrawCredit", contract.withdraw_credit(account))
                total += credit
        return total

    # -- whole sequences ----------------------------------------------------------------------------

    def generate(
        self,
        producer: LocalAccount,
        esp: LocalAccount,
        content: bytes,
        prompt_hash: bytes,
        uri: str = "",
        fee: int | None = None,
        phash: int | None = None,
    ) -> tuple[Job, Registered]:
        """One honest generation end to end: offer, lock, reveal, open, register."""
        job = self.make_offer(esp, producer.address, content, prompt_hash, fee=fee, phash=phash)
        self.lock(producer, job.signed)
        key = self.revealed_key(self.reveal(esp, job.offer, job.key))
        delivery = self.open_content(key, job.ciphertext, job.opening, job.offer, phash=phash)
        return job, self.register(producer, job.offer, delivery.opening, uri)

    def sell(self, seller: LocalAccount, buyer: LocalAccount, token_id: int, price: int | None = None) -> PurchaseOpened:
        """One sale end to end: the seller's secret, the buyer's lock, the seller's claim."""
        secret = new_secret()
        opened = self.lock_purchase(buyer, token_id, hashlock_of(secret), price)
        self.claim_sale(seller, opened.terms, secret)
        return opened


# -- a phase's steps, sent together ----------------------------------------------------------------


class Slot(Generic[T]):
    """The result of one step of a `Batch`, once the batch is sent: its value, or the revert it met."""

    def __init__(self) -> None:
        self._value: T | None = None
        self._error: ChainError | None = None
        self._done = False

    def _set(self, value: T | None, error: ChainError | None) -> None:
        self._value, self._error, self._done = value, error, True

    @property
    def error(self) -> ChainError | None:
        """The revert (`ContractRevert` naming the custom error) of a step that failed, else None."""
        if not self._done:
            raise RuntimeError("the batch of this step was not sent yet")
        return self._error

    def value(self) -> T:
        """The step's result; raises its revert if it failed."""
        if self.error is not None:
            raise self.error
        return self._value  # type: ignore[return-value]  # set with the result when the step succeeded


class Batch:
    """Steps of many parties in one phase, queued and then sent together with `send()`.

    The steps must not depend on one another within the phase (each is checked against the chain as
    it was before the phase: a lock and the reveal of that lock go in two batches). After `send()`, every
    step's transaction is booked through `on_tx` in the order it was queued, and its `Slot` holds what
    the step's method of `Protocol` returns, or its revert, decoded, instead of raising it. The same
    steps one at a time and in a batch give the same results, on any chain (docs/scale.md).
    """

    def __init__(self, protocol: Protocol) -> None:
        self.protocol = protocol
        self._steps: list[tuple[str, LocalAccount, Call, Callable[[TxResult], Any], Slot[Any]]] = []

    def __len__(self) -> int:
        return len(self._steps)

    def _queue(self, operation: str, sender: LocalAccount, call: Call, parse: Callable[[TxResult], T]) -> Slot[T]:
        slot: Slot[T] = Slot()
        self._steps.append((operation, sender, call, parse, slot))
        return slot

    @staticmethod
    def _receipt(tx: TxResult) -> TxResult:
        return tx

    def send(self) -> None:
        """Send every queued step (`Chain.send_many`), book each transaction and fill its slot; empties the batch."""
        steps, self._steps = self._steps, []
        if not steps:
            return
        outcomes = self.protocol.market.chain.send_many([(call, sender) for _, sender, call, _, _ in steps])
        for (operation, _, _, parse, slot), outcome in zip(steps, outcomes, strict=True):
            if isinstance(outcome, TxResult):
                slot._set(parse(self.protocol._book(operation, outcome)), None)
            else:
                slot._set(None, outcome)

    # -- the steps (see the methods of `Protocol` of the same names) ----------------------------

    def stake(self, esp: LocalAccount, amount: int | None = None) -> Slot[TxResult]:
        call = self.protocol.market.exchange.call_of("registerEsp", value=amount or self.protocol.terms.esp_stake)
        return self._queue("registerEsp", esp, call, self._receipt)

    def lock(self, producer: LocalAccount, signed: SignedOffer) -> Slot[LockOpened]:
        offer = signed.offer
        call = self.protocol.market.exchange.call_of("lockGeneration", offer.as_tuple(), signed.signature, value=offer.fee)
        return self._queue("lockGeneration", producer, call, lock_opened)

    def reveal(self, esp: LocalAccount, offer: Offer, key: bytes) -> Slot[TxResult]:
        call = self.protocol.market.exchange.call_of("withdrawGeneration", offer.as_tuple(), key)
        return self._queue("withdrawGeneration", esp, call, self._receipt)

    def register(
        self, producer: LocalAccount, offer: Offer, opening: Opening, uri: str = "", operation: str = "register"
    ) -> Slot[Registered]:
        registry = self.protocol.market.registry
        call = registry.call_of("register", offer.as_tuple(), opening.as_tuple(), uri, value=registry.registration_bond())
        return self._queue(operation, producer, call, registered)

    def rate(self, producer: LocalAccount, offer: Offer, positive: bool, score: int) -> Slot[TxResult]:
        call = self.protocol.market.ledger.call_of("rate", offer.as_tuple(), positive, score)
        return self._queue("rate", producer, call, self._receipt)

    def refund(self, producer: LocalAccount, offer: Offer) -> Slot[TxResult]:
        """The producer's refund (the caller moves chain time to the timelock first, if it must)."""
        call = self.protocol.market.exchange.call_of("refundGeneration", offer.as_tuple())
        return self._queue("refundGeneration", producer, call, self._receipt)

    def lock_purchase(self, buyer: LocalAccount, token_id: int, hashlock: bytes, timelock: int, price: int) -> Slot[PurchaseOpened]:
        call = self.protocol.market.exchange.call_of("lockPurchase", token_id, hashlock, timelock, value=price)
        return self._queue("lockPurchase", buyer, call, purchase_opened)

    def approve_sale(self, seller: LocalAccount, terms: Purchase) -> Slot[TxResult] | None:
        """The approval `claim_sale` sends first when the exchange may not move the token yet (else None).

        Send it in a batch before the one with the claim (`withdraw_purchase`): the claim depends on it.
        """
        registry, exchange = self.protocol.market.registry, self.protocol.market.exchange
        if registry.owner_of(terms.token_id) != seller.address or registry.exchange_may_move(
            seller.address, terms.token_id, exchange.address
        ):
            return None
        return self._queue("approve", seller, registry.call_of("approve", exchange.address, terms.token_id), self._receipt)

    def approve_sales(self, sales: list[tuple[LocalAccount, Purchase]]) -> list[Slot[TxResult] | None]:
        """`approve_sale` of each `(seller, terms)`, with the views it needs read together (`read_views`): the
        same approvals, queued in the same order, in one round trip to the node instead of three per sale."""
        registry, exchange = self.protocol.market.registry, self.protocol.market.exchange
        views: list[View] = []
        for seller, terms in sales:
            views += [
                (registry, "ownerOf", (terms.token_id,)),
                (registry, "getApproved", (terms.token_id,)),
                (registry, "isApprovedForAll", (seller.address, exchange.address)),
            ]
        values = read_views(registry.chain, views)
        slots: list[Slot[TxResult] | None] = []
        for index, (seller, terms) in enumerate(sales):
            owner, approved, for_all = values[3 * index : 3 * index + 3]
            if str(owner) != seller.address or str(approved) == exchange.address or bool(for_all):
                slots.append(None)
                continue
            call = registry.call_of("approve", exchange.address, terms.token_id)
            slots.append(self._queue("approve", seller, call, self._receipt))
        return slots

    def withdraw_purchase(self, seller: LocalAccount, terms: Purchase, secret: bytes) -> Slot[TxResult]:
        """The seller's claim of a sale, once the exchange may move the token (see `approve_sale`)."""
        call = self.protocol.market.exchange.call_of("withdrawPurchase", terms.as_tuple(), secret)
        return self._queue("withdrawPurchase", seller, call, self._receipt)

    def refund_purchase(self, buyer: LocalAccount, terms: Purchase) -> Slot[TxResult]:
        """The buyer's refund (the caller moves chain time to the timelock first, if it must)."""
        call = self.protocol.market.exchange.call_of("refundPurchase", terms.as_tuple())
        return self._queue("refundPurchase", buyer, call, self._receipt)

    def claim_bond(self, owner: LocalAccount, token_id: int) -> Slot[TxResult]:
        return self._queue("claimBond", owner, self.protocol.market.registry.call_of("claimBond", token_id), self._receipt)

    def withdraw_credits_of(self, accounts: list[LocalAccount]) -> list[tuple[int, Slot[TxResult]]]:
        """`withdraw_credits` of every account, in order, with the credits read together (`read_views`)."""
        contracts = (self.protocol.market.registry, self.protocol.market.exchange)
        credits = read_views(
            self.protocol.market.chain,
            [(contract, "creditOf", (account.address,)) for account in accounts for contract in contracts],
        )
        queued = []
        for index, account in enumerate(accounts):
            for offset, contract in enumerate(contracts):
                credit = int(credits[len(contracts) * index + offset])
                if credit:
                    call = contract.call_of("withdrawCredit")
                    queued.append((credit, self._queue("withdrawCredit", account, call, self._receipt)))
        return queued

    def withdraw_credits(self, account: LocalAccount) -> list[tuple[int, Slot[TxResult]]]:
        """What `Protocol.withdraw_credits` sends: (credit, slot) of each contract that credits `account`."""
        queued = []
        for contract in (self.protocol.market.registry, self.protocol.market.exchange):
            credit = contract.credit_of(account.address)
            if credit:
                queued.append((credit, self._queue("withdrawCredit", account, contract.call_of("withdrawCredit"), self._receipt)))
        return queued
