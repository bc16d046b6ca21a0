"""Typed wrappers of the three market contracts.

Each write takes the acting account, signs and sends the transaction, and returns the receipt
(`TxResult`) with decoded events, plus what the call produced (a token id, a lock id, a verdict).
A revert raises `ContractRevert` naming the contract's custom error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from eth_account.signers.local import LocalAccount
from web3.contract import Contract

from market.chain.calldata import CalldataEncoder
from market.chain.connection import Call, Chain, TxResult
from market.chain.errors import ChainError, ContractRevert
from market.chain.offers import Offer, Opening, Purchase, SignedOffer


class LockKind(IntEnum):
    GENERATION = 0
    PURCHASE = 1


class LockState(IntEnum):
    NONE = 0
    LOCKED = 1
    WITHDRAWN = 2
    REFUNDED = 3


class EspState(IntEnum):
    NONE = 0
    ACTIVE = 1
    EXITING = 2
    SLASHED = 3


@dataclass(frozen=True)
class ProductRecord:
    token_id: int
    producer: str
    esp: str
    content_hash: bytes
    perceptual_hash: int
    prompt_hash: bytes
    registered_at: int
    revoked: bool
    uri: str
    generation_seq: int
    """The `seq` of the generation lock it was registered from: its priority (smaller is earlier)."""
    generated_at: int
    """Block time of that lock: when the content existed at the latest."""
    bond_released: bool


@dataclass(frozen=True)
class LockInfo:
    """What the exchange stores of a lock (its terms are in its id and its event)."""

    lock_id: bytes
    kind: LockKind
    state: LockState
    seq: int
    locked_at: int


@dataclass(frozen=True)
class EspInfo:
    state: EspState
    stake: int
    available_at: int


@dataclass(frozen=True)
class RatingStats:
    positives: int
    negatives: int
    last_rated_at: int


@dataclass(frozen=True)
class Registered:
    tx: TxResult
    token_id: int


@dataclass(frozen=True)
class ChallengeOutcome:
    tx: TxResult
    upheld: bool
    distance: int


@dataclass(frozen=True)
class LockOpened:
    tx: TxResult
    lock_id: bytes
    seq: int


@dataclass(frozen=True)
class PurchaseOpened:
    tx: TxResult
    lock_id: bytes
    terms: Purchase


def registered(tx: TxResult) -> Registered:
    """What a `register` transaction produced: its token."""
    return Registered(tx, tx.event("ProductRegistered").args["tokenId"])


def challenge_outcome(tx: TxResult) -> ChallengeOutcome:
    """The verdict of a `challenge` transaction."""
    resolved = tx.event("ChallengeResolved").args
    return ChallengeOutcome(tx, resolved["upheld"], resolved["distance"])


def lock_opened(tx: TxResult) -> LockOpened:
    """The id and seq of the lock a `lockGeneration` transaction opened."""
    locked = tx.event("GenerationLocked").args
    return LockOpened(tx, bytes(locked["id"]), int(locked["seq"]))


def purchase_opened(tx: TxResult) -> PurchaseOpened:
    """The id and terms of the lock a `lockPurchase` transaction opened."""
    locked = tx.event("PurchaseLocked").args
    return PurchaseOpened(tx, bytes(locked["id"]), Purchase.from_event(locked))


View = tuple["_Wrapper", str, tuple[Any, ...]]
"""One view to read: the contract's wrapper, the function and its arguments (see `read_views`)."""


def read_views(chain: Chain, views: Sequence[View], *, errors: bool = False) -> list[Any]:
    """The results of many views, in order, as each `_view` returns them.

    On a chain that batches calls (`RpcChain.call_raw_many`) they go in JSON-RPC batches, a few round
    trips for thousands of views; elsewhere one by one. The views are read against the same state only
    if nothing is sent meanwhile. A view that reverts raises its decoded revert (the first one's), or
    with `errors`, comes back as that `ChainError` in its place.
    """
    coders = [wrapper._calldata.coder(function) for wrapper, function, _ in views]
    calls = [(wrapper.address, coder.encode(args)) for (wrapper, _, args), coder in zip(views, coders, strict=True)]
    many = getattr(chain, "call_raw_many", None)
    raws: list[bytes | ChainError]
    if many is not None:
        raws = many(calls)
    else:
        raws = []
        for to, data in calls:
            try:
                raws.append(chain.call_raw(to, data))
            except ChainError as exc:
                if not errors:
                    raise
                raws.append(exc)
    results: list[Any] = []
    for coder, raw in zip(coders, raws, strict=True):
        if isinstance(raw, ChainError):
            if not errors:
                raise raw
            results.append(raw)
        else:
            results.append(coder.decode(raw))
    return results


class _Wrapper:
    def __init__(self, chain: Chain, contract: Contract) -> None:
        self.chain = chain
        self.contract = contract
        self._immutables: dict[str, int] = {}
        self._calldata = CalldataEncoder(list(contract.abi))  # type: ignore[arg-type]  # web3's TypedDicts are dicts
        self._address = str(contract.address)

    def _transact(self, sender: LocalAccount, function: str, *args: object, value: int = 0) -> TxResult:
        """Send `function(*args)` from `sender` with `value` wei."""
        return self.chain.send_call(self._address, self._calldata.encode(function, *args), sender, value)

    def _view(self, function: str, *args: object) -> Any:
        """The result of the view `function(*args)`, as web3 would return it (one eth_call, no web3 on the way)."""
        coder = self._calldata.coder(function)
        return coder.decode(self.chain.call_raw(self._address, coder.encode(args)))

    def call_of(self, function: str, *args: object, value: int = 0) -> Call:
        """The transaction `function(*args)` with `value` wei, not sent (for `Chain.send_many`)."""
        return Call(self._address, self._calldata.encode(function, *args), value)

    def _immutable(self, getter: str) -> int:
        """A value fixed at deployment (a Solidity `immutable`): read from the chain once per wrapper."""
        if getter not in self._immutables:
            self._immutables[getter] = int(self._view(getter))
        return self._immutables[getter]

    @property
    def address(self) -> str:
        return self._address

    def balance(self) -> int:
        return self.chain.balance(self.address)


class Registry(_Wrapper):
    """AIGCRegistry: Proof-of-AIGC registration from paid generation locks, challenges, ERC-721 products."""

    def register(
        self, producer: LocalAccount, offer: Offer, opening: Opening, uri: str = "", bond: int | None = None
    ) -> Registered:
        tx = self._transact(
            producer,
            "register",
            offer.as_tuple(),
            opening.as_tuple(),
            uri,
            value=self.registration_bond() if bond is None else bond,
        )
        return registered(tx)

    def challenge(
        self, challenger: LocalAccount, original_id: int, duplicate_id: int, deposit: int | None = None
    ) -> ChallengeOutcome:
        tx = self._transact(
            challenger, "challenge", original_id, duplicate_id, value=self.challenge_deposit() if deposit is None else deposit
        )
        return challenge_outcome(tx)

    def claim_bond(self, owner: LocalAccount, token_id: int) -> TxResult:
        return self._transact(owner, "claimBond", token_id)

    def withdraw_credit(self, account: LocalAccount) -> TxResult:
        return self._transact(account, "withdrawCredit")

    def credit_of(self, address: str) -> int:
        return int(self._view("creditOf", address))

    def credits_of(self, addresses: Sequence[str]) -> list[int]:
        """`credit_of` of each address, read together (`read_views`)."""
        return [int(c) for c in read_views(self.chain, [(self, "creditOf", (a,)) for a in addresses])]

    def approve(self, owner: LocalAccount, spender: str, token_id: int) -> TxResult:
        return self._transact(owner, "approve", spender, token_id)

    def transfer(self, owner: LocalAccount, to: str, token_id: int) -> TxResult:
        return self._transact(owner, "transferFrom", owner.address, to, token_id)

    def product(self, token_id: int) -> ProductRecord:
        fields = self._view("product", token_id)
        return ProductRecord(token_id, *fields)

    def products(self, token_ids: Sequence[int]) -> list[ProductRecord]:
        """`product` of each token, read together (`read_views`)."""
        records = read_views(self.chain, [(self, "product", (t,)) for t in token_ids])
        return [ProductRecord(t, *fields) for t, fields in zip(token_ids, records, strict=True)]

    def owner_of(self, token_id: int) -> str:
        return str(self._view("ownerOf", token_id))

    def owners_of(self, token_ids: Sequence[int]) -> list[str | None]:
        """`owner_of` of each token, read together (`read_views`); None for a token with no owner (burned or never
        minted: the view reverts)."""
        owners = read_views(self.chain, [(self, "ownerOf", (t,)) for t in token_ids], errors=True)
        for owner in owners:
            if isinstance(owner, ChainError) and not isinstance(owner, ContractRevert):
                raise owner
        return [None if isinstance(owner, ContractRevert) else str(owner) for owner in owners]

    def exchange_may_move(self, owner: str, token_id: int, operator: str) -> bool:
        """Whether `operator` is approved for `token_id` or for all of `owner`'s tokens."""
        if str(self._view("getApproved", token_id)) == operator:
            return True
        return bool(self._view("isApprovedForAll", owner, operator))

    def token_of_content(self, content_hash: bytes) -> int:
        return int(self._view("tokenOfContent", content_hash))

    def token_of_lock(self, lock_id: bytes) -> int:
        return int(self._view("tokenOfLock", lock_id))

    def is_revoked(self, token_id: int) -> bool:
        return bool(self._view("isRevoked", token_id))

    def are_revoked(self, token_ids: Sequence[int]) -> list[bool]:
        """`is_revoked` of each token, read together (`read_views`)."""
        return [bool(r) for r in read_views(self.chain, [(self, "isRevoked", (t,)) for t in token_ids])]

    def is_final(self, token_id: int) -> bool:
        return bool(self._view("isFinal", token_id))

    def total_registered(self) -> int:
        return int(self._view("totalRegistered"))

    def royalty_info(self, token_id: int, sale_price: int) -> tuple[str, int]:
        receiver, amount = self._view("royaltyInfo", token_id, sale_price)
        return str(receiver), int(amount)

    def royalty_infos(self, sales: Sequence[tuple[int, int]]) -> list[tuple[str, int]]:
        """`royalty_info` of each `(token_id, sale_price)`, read together (`read_views`)."""
        infos = read_views(self.chain, [(self, "royaltyInfo", (token_id, price)) for token_id, price in sales])
        return [(str(receiver), int(amount)) for receiver, amount in infos]

    def hamming_distance(self, a: int, b: int) -> int:
        return int(self._view("hammingDistance", a, b))

    def registration_bond(self) -> int:
        return self._immutable("registrationBond")

    def challenge_deposit(self) -> int:
        return self._immutable("challengeDeposit")

    def similarity_threshold(self) -> int:
        return self._immutable("similarityThreshold")

    def royalty_bps(self) -> int:
        return self._immutable("royaltyBps")

    def challenge_window(self) -> int:
        return self._immutable("challengeWindow")


class Exchange(_Wrapper):
    """AIGCExchange: ESP stakes, HTLC escrow for generation fees and purchases, credits."""

    # -- ESPs
    def register_esp(self, esp: LocalAccount, stake: int) -> TxResult:
        return self._transact(esp, "registerEsp", value=stake)

    def announce_exit(self, esp: LocalAccount) -> TxResult:
        return self._transact(esp, "announceExit")

    def withdraw_stake(self, esp: LocalAccount) -> TxResult:
        return self._transact(esp, "withdrawStake")

    def prove_equivocation(self, caller: LocalAccount, a: Offer, opening_a: Opening, b: Offer, opening_b: Opening) -> TxResult:
        return self._transact(caller, "proveEquivocation", a.as_tuple(), opening_a.as_tuple(), b.as_tuple(), opening_b.as_tuple())

    def esp_info(self, esp: str) -> EspInfo:
        state, stake, available_at = self._view("espInfo", esp)
        return EspInfo(EspState(state), int(stake), int(available_at))

    def is_active_esp(self, esp: str) -> bool:
        return bool(self._view("isActiveEsp", esp))

    # -- generation
    def lock_generation(self, producer: LocalAccount, signed: SignedOffer, value: int | None = None) -> LockOpened:
        """Lock the offer's fee (or `value` wei, to test a wrong amount) with the ESP's signature."""
        offer = signed.offer
        tx = self._transact(
            producer, "lockGeneration", offer.as_tuple(), signed.signature, value=offer.fee if value is None else value
        )
        return lock_opened(tx)

    def withdraw_generation(self, esp: LocalAccount, offer: Offer, preimage: bytes) -> TxResult:
        return self._transact(esp, "withdrawGeneration", offer.as_tuple(), preimage)

    def refund_generation(self, producer: LocalAccount, offer: Offer) -> TxResult:
        return self._transact(producer, "refundGeneration", offer.as_tuple())

    def generation_lock(self, offer: Offer) -> LockInfo:
        lock_id, state, seq, locked_at = self._view("generationLock", offer.as_tuple())
        return LockInfo(bytes(lock_id), LockKind.GENERATION, LockState(state), int(seq), int(locked_at))

    def offer_id(self, offer: Offer) -> bytes:
        return bytes(self._view("offerId", offer.as_tuple()))

    # -- trading
    def lock_purchase(self, buyer: LocalAccount, token_id: int, hashlock: bytes, timelock: int, price: int) -> PurchaseOpened:
        tx = self._transact(buyer, "lockPurchase", token_id, hashlock, timelock, value=price)
        return purchase_opened(tx)

    def withdraw_purchase(self, seller: LocalAccount, terms: Purchase, preimage: bytes) -> TxResult:
        return self._transact(seller, "withdrawPurchase", terms.as_tuple(), preimage)

    def refund_purchase(self, buyer: LocalAccount, terms: Purchase) -> TxResult:
        return self._transact(buyer, "refundPurchase", terms.as_tuple())

    def purchase_id(self, terms: Purchase) -> bytes:
        return bytes(self._view("purchaseId", terms.as_tuple()))

    # -- credits
    def withdraw_credit(self, account: LocalAccount) -> TxResult:
        return self._transact(account, "withdrawCredit")

    def credit_of(self, address: str) -> int:
        return int(self._view("creditOf", address))

    def credits_of(self, addresses: Sequence[str]) -> list[int]:
        """`credit_of` of each address, read together (`read_views`)."""
        return [int(c) for c in read_views(self.chain, [(self, "creditOf", (a,)) for a in addresses])]

    # -- views
    def get_lock(self, lock_id: bytes) -> LockInfo:
        kind, state, seq, locked_at = self._view("getLock", lock_id)
        return LockInfo(lock_id, LockKind(kind), LockState(state), int(seq), int(locked_at))

    def get_locks(self, lock_ids: Sequence[bytes]) -> list[LockInfo]:
        """`get_lock` of each lock, read together (`read_views`)."""
        infos = read_views(self.chain, [(self, "getLock", (lock_id,)) for lock_id in lock_ids])
        return [
            LockInfo(lock_id, LockKind(kind), LockState(state), int(seq), int(locked_at))
            for lock_id, (kind, state, seq, locked_at) in zip(lock_ids, infos, strict=True)
        ]

    def esp_infos(self, esps: Sequence[str]) -> list[EspInfo]:
        """`esp_info` of each ESP, read together (`read_views`)."""
        infos = read_views(self.chain, [(self, "espInfo", (esp,)) for esp in esps])
        return [EspInfo(EspState(state), int(stake), int(available_at)) for state, stake, available_at in infos]

    def generation_offers(self, from_block: int = 0) -> list[Offer]:
        """The offers of every generation lock opened since `from_block`, from the GenerationLocked events."""
        return [Offer.from_event(e.args) for e in self.chain.events(self.contract, "GenerationLocked", from_block)]

    def purchases(self, from_block: int = 0) -> list[tuple[bytes, Purchase]]:
        """(id, terms) of every purchase lock opened since `from_block`, from the PurchaseLocked events."""
        return [
            (bytes(e.args["id"]), Purchase.from_event(e.args))
            for e in self.chain.events(self.contract, "PurchaseLocked", from_block)
        ]

    def generation_lock_ids(self, from_block: int = 0) -> list[tuple[bytes, int]]:
        """(id, fee) of every generation lock opened since `from_block`."""
        return [(bytes(e.args["id"]), int(e.args["fee"])) for e in self.chain.events(self.contract, "GenerationLocked", from_block)]

    def total_forfeited(self) -> int:
        return int(self._view("totalForfeited"))

    def min_timelock(self) -> int:
        return self._immutable("minTimelock")

    def max_timelock(self) -> int:
        return self._immutable("maxTimelock")

    def fee_floor(self) -> int:
        return self._immutable("feeFloor")

    def min_stake(self) -> int:
        return self._immutable("minStake")

    def unbonding_delay(self) -> int:
        return self._immutable("unbondingDelay")


class Ledger(_Wrapper):
    """ReputationLedger: ratings of ESPs tied to settled generation locks."""

    def rate(self, producer: LocalAccount, offer: Offer, positive: bool, score: int) -> TxResult:
        return self._transact(producer, "rate", offer.as_tuple(), positive, score)

    def stats(self, producer: str, esp: str) -> RatingStats:
        return RatingStats(*self._view("stats", producer, esp))

    def is_rated(self, lock_id: bytes) -> bool:
        return bool(self._view("isRated", lock_id))
