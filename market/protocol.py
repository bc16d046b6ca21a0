"""Protocol v2, step by step: the only code that runs the market's protocol against the contracts.

The simulation, the demo, the API and the tests call these steps; each is one transaction (or one
signature) by one party, in the order of `docs/protocol.md`:

    ESP:       stake -> make_offer (encrypt, commit, sign; hands over the Quote) ... reveal (withdraw the fee),
                                                                           then hands over the opening
    producer:              lock (the ESP's offer + fee) ..................... open_content -> register -> rate
    anyone:    challenge (within the window) | prove_equivocation | claim_bond (final) | withdraw_credits
    trade:     lock_purchase (final products only) -> claim_sale | refund_purchase

Every transaction goes through `on_tx(operation, tx)` so that a caller can book its gas.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass

from eth_account.signers.local import LocalAccount

from market.chain.connection import TxResult
from market.chain.contracts import ChallengeOutcome, LockOpened, PurchaseOpened, Registered
from market.chain.deploy import Market
from market.chain.hashlocks import hashlock_of, new_secret
from market.chain.offers import Offer, Opening, Purchase, SignedOffer, sign_offer
from market.content import content_hash, decrypt, encrypt, perceptual_hash
from market.terms import MarketTerms

TxHook = Callable[[str, TxResult], object]


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

    @property
    def chain_id(self) -> int:
        return self.market.chain.chain_id

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
    ) -> Job:
        """The ESP accepts a job: encrypts `content` under a fresh key, commits to it and signs the offer.

        `phash` overrides the perceptual hash of `content` (for non-image content and tests).
        """
        key = new_secret() if key is None else key
        opening = Opening.of(content_hash(content), perceptual_hash(content) if phash is None else phash, prompt_hash)
        signed = self.commit_offer(esp, producer, opening, hashlock_of(key), fee=fee, lock_duration_s=lock_duration_s, nonce=nonce)
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
    ) -> SignedOffer:
        """The ESP's signed offer to `producer` committing to `opening`, payable under `hashlock`, from now.

        Raises `DuplicateCommitment` when an ESP signing through this object committed the same
        content, or a near-copy (pHash within the registry's threshold), to another producer before:
        `proveEquivocation` would slash the later one. (Same content to the same producer is allowed.)
        """
        self._guard(esp.address, producer, opening)
        now = self.market.chain.now()
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
            self.commitments.setdefault(esp, []).append(Commitment(producer, opening.content_hash, opening.perceptual_hash))

    def _guard(self, esp: str, producer: str, opening: Opening) -> None:
        # Every ESP signing through this object is checked against all of them: a copy is slashed
        # whichever ESP committed the original (`proveEquivocation`). Check and record are one step, so
        # that two threads cannot both pass with the same content.
        threshold = self.market.registry.similarity_threshold()
        with self._guard_lock:
            for earlier in (c for commitments in self.commitments.values() for c in commitments):
                if earlier.producer == producer:
                    continue
                if (
                    earlier.content_hash == opening.content_hash
                    or (earlier.perceptual_hash ^ opening.perceptual_hash).bit_count() <= threshold
                ):
                    raise DuplicateCommitment(f"this content (or a near-copy) was committed to {earlier.producer} before")
            self.commitments.setdefault(esp, []).append(Commitment(producer, opening.content_hash, opening.perceptual_hash))

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
