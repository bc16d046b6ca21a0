"""Typed wrappers of the three market contracts.

Each write takes the acting account, signs and sends the transaction, and returns the receipt
(`TxResult`) with decoded events, plus what the call produced (a token id, a lock id, a verdict).
A revert raises `ContractRevert` naming the contract's custom error.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from eth_account.signers.local import LocalAccount
from web3.contract import Contract

from market.chain.calldata import CalldataEncoder
from market.chain.connection import Chain, TxResult


class LockKind(IntEnum):
    GENERATION = 0
    PURCHASE = 1


class LockState(IntEnum):
    NONE = 0
    LOCKED = 1
    WITHDRAWN = 2
    REFUNDED = 3


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


@dataclass(frozen=True)
class LockInfo:
    lock_id: bytes
    sender: str
    receiver: str
    amount: int
    hashlock: bytes
    timelock: int
    token_id: int
    kind: LockKind
    state: LockState


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


class _Wrapper:
    def __init__(self, chain: Chain, contract: Contract) -> None:
        self.chain = chain
        self.contract = contract
        self._immutables: dict[str, int] = {}
        self._calldata = CalldataEncoder(contract.abi)
        self._address = str(contract.address)

    def _transact(self, sender: LocalAccount, function: str, *args: object, value: int = 0) -> TxResult:
        """Send `function(*args)` from `sender` with `value` wei."""
        return self.chain.send_call(self._address, self._calldata.encode(function, *args), sender, value)

    def _immutable(self, getter: str) -> int:
        """A value fixed at deployment (a Solidity `immutable`): read from the chain once per wrapper."""
        if getter not in self._immutables:
            self._immutables[getter] = int(self.chain.call(getattr(self.contract.functions, getter)()))
        return self._immutables[getter]

    @property
    def address(self) -> str:
        return self._address

    def balance(self) -> int:
        return self.chain.balance(self.address)


class Registry(_Wrapper):
    """AIGCRegistry: Proof-of-AIGC registration, challenges, ERC-721 products."""

    def register(
        self,
        producer: LocalAccount,
        *,
        content_hash: bytes,
        perceptual_hash: int,
        prompt_hash: bytes,
        esp: str,
        signature: bytes,
        uri: str = "",
        bond: int | None = None,
    ) -> Registered:
        tx = self._transact(producer, "register", content_hash, perceptual_hash, prompt_hash, esp, signature, uri,
                            value=self.registration_bond() if bond is None else bond)
        return Registered(tx, tx.event("ProductRegistered").args["tokenId"])

    def challenge(
        self, challenger: LocalAccount, original_id: int, duplicate_id: int, deposit: int | None = None
    ) -> ChallengeOutcome:
        tx = self._transact(challenger, "challenge", original_id, duplicate_id,
                            value=self.challenge_deposit() if deposit is None else deposit)
        resolved = tx.event("ChallengeResolved").args
        return ChallengeOutcome(tx, resolved["upheld"], resolved["distance"])

    def approve(self, owner: LocalAccount, spender: str, token_id: int) -> TxResult:
        return self._transact(owner, "approve", spender, token_id)

    def transfer(self, owner: LocalAccount, to: str, token_id: int) -> TxResult:
        return self._transact(owner, "transferFrom", owner.address, to, token_id)

    def product(self, token_id: int) -> ProductRecord:
        fields = self.chain.call(self.contract.functions.product(token_id))
        return ProductRecord(token_id, *fields)

    def owner_of(self, token_id: int) -> str:
        return str(self.chain.call(self.contract.functions.ownerOf(token_id)))

    def token_of_content(self, content_hash: bytes) -> int:
        return int(self.chain.call(self.contract.functions.tokenOfContent(content_hash)))

    def is_revoked(self, token_id: int) -> bool:
        return bool(self.chain.call(self.contract.functions.isRevoked(token_id)))

    def total_registered(self) -> int:
        return int(self.chain.call(self.contract.functions.totalRegistered()))

    def royalty_info(self, token_id: int, sale_price: int) -> tuple[str, int]:
        receiver, amount = self.chain.call(self.contract.functions.royaltyInfo(token_id, sale_price))
        return str(receiver), int(amount)

    def hamming_distance(self, a: int, b: int) -> int:
        return int(self.chain.call(self.contract.functions.hammingDistance(a, b)))

    def registration_bond(self) -> int:
        return self._immutable("registrationBond")

    def challenge_deposit(self) -> int:
        return self._immutable("challengeDeposit")

    def similarity_threshold(self) -> int:
        return self._immutable("similarityThreshold")

    def royalty_bps(self) -> int:
        return self._immutable("royaltyBps")


class Exchange(_Wrapper):
    """AIGCExchange: HTLC escrow for generation fees and product purchases."""

    def lock_generation(self, producer: LocalAccount, esp: str, hashlock: bytes, timelock: int, fee: int) -> LockOpened:
        tx = self._transact(producer, "lockGeneration", esp, hashlock, timelock, value=fee)
        return LockOpened(tx, bytes(tx.event("Locked").args["id"]))

    def lock_purchase(
        self, buyer: LocalAccount, token_id: int, hashlock: bytes, timelock: int, price: int
    ) -> LockOpened:
        tx = self._transact(buyer, "lockPurchase", token_id, hashlock, timelock, value=price)
        return LockOpened(tx, bytes(tx.event("Locked").args["id"]))

    def withdraw(self, receiver: LocalAccount, lock_id: bytes, preimage: bytes) -> TxResult:
        return self._transact(receiver, "withdraw", lock_id, preimage)

    def refund(self, sender: LocalAccount, lock_id: bytes) -> TxResult:
        return self._transact(sender, "refund", lock_id)

    def get_lock(self, lock_id: bytes) -> LockInfo:
        sender, receiver, amount, hashlock, timelock, token_id, kind, state = self.chain.call(
            self.contract.functions.getLock(lock_id)
        )
        return LockInfo(
            lock_id, sender, receiver, amount, bytes(hashlock), timelock, token_id, LockKind(kind), LockState(state)
        )

    def lock_ids(self, from_block: int = 0) -> list[bytes]:
        """Ids of every lock opened since `from_block`, from the Locked events."""
        return [bytes(event.args["id"]) for event in self.chain.events(self.contract, "Locked", from_block)]

    def min_timelock(self) -> int:
        return self._immutable("minTimelock")


class Ledger(_Wrapper):
    """ReputationLedger: ratings of ESPs tied to settled generation locks."""

    def rate(self, producer: LocalAccount, lock_id: bytes, positive: bool, score: int) -> TxResult:
        return self._transact(producer, "rate", lock_id, positive, score)

    def stats(self, producer: str, esp: str) -> RatingStats:
        return RatingStats(*self.chain.call(self.contract.functions.stats(producer, esp)))

    def is_rated(self, lock_id: bytes) -> bool:
        return bool(self.chain.call(self.contract.functions.isRated(lock_id)))
