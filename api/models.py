"""SQLAlchemy 2 models: what the chain does not keep, plus an idempotent index of what it does.

The chain is the truth for money and ownership. `chain_events` is a copy of its logs, unique by
(block_number, log_index), and the projections (`products.owner`, `esps.positives`, `challenges`,
lock states of tasks and trades) are updated only when an event row is inserted for the first time,
so re-indexing never counts twice. Wei amounts are decimal strings: they exceed every SQL integer
type. Credits are not projected: GET /credits reads them from the contracts.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from api.states import Custody, EspOperator, EspStakeState, SelectedBy, SimulationStatus, TaskState, TradeState
from market.actors import EspProfile

E = TypeVar("E", bound=StrEnum)


def utcnow() -> datetime:
    return datetime.now(UTC)


def expired(at: datetime) -> bool:
    """Whether `at` has passed (SQLite hands datetimes back naive, in UTC)."""
    return (at if at.tzinfo is not None else at.replace(tzinfo=UTC)) <= utcnow()


class EnumString(TypeDecorator[E], Generic[E]):
    """A StrEnum column stored as its value in a plain VARCHAR (the schema has no enum type or constraint):
    a value outside the enum is refused on the way in, and rows come back as members."""

    impl = String
    cache_ok = True

    def __init__(self, enum: type[E], length: int) -> None:
        super().__init__(length)
        self.enum = enum

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else self.enum(value).value

    def process_result_value(self, value: Any, dialect: Dialect) -> E | None:
        return None if value is None else self.enum(value)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON}


class ChainMeta(Base):
    """The one chain this database indexes (a single row, id 1)."""

    __tablename__ = "chain_meta"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    registry_address: Mapped[str] = mapped_column(String(42))
    exchange_address: Mapped[str] = mapped_column(String(42))
    ledger_address: Mapped[str] = mapped_column(String(42))
    deploy_block: Mapped[int] = mapped_column(BigInteger)
    protocol_version: Mapped[int] = mapped_column(Integer, server_default="1")
    """Protocol of the recorded contracts: rows older than this column are v1; this server speaks v2."""


class Account(Base):
    __tablename__ = "accounts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    address: Mapped[str] = mapped_column(String(42), unique=True)
    api_key_hash: Mapped[str | None] = mapped_column(String(64), unique=True, nullable=True)
    """HMAC-SHA256 of the API key under the server secret (hex); the key itself is never stored. None for a
    self-custodied account (it signs in with its own key: `AccountSession`)."""
    encrypted_key: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    """AES-GCM(nonce || ciphertext) of the private key, associated data = address; None when the server holds no
    key for the account (custody self)."""
    custody: Mapped[Custody] = mapped_column(EnumString(Custody, 8), default=Custody.SERVER, server_default=Custody.SERVER.value)
    """server (the server holds the key and signs) or self (Sign-In with Ethereum; the owner signs what the
    server prepares)."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Esp(Base):
    __tablename__ = "esps"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    """Also the ESP's index (id - 1) in the MWSL reputation matrix."""
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), unique=True)
    address: Mapped[str] = mapped_column(String(42), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    profile: Mapped[EspProfile | None] = mapped_column(EnumString(EspProfile, 16), nullable=True)
    """The simulated behaviour of an ESP the server runs (operator server); None for a node."""
    operator: Mapped[EspOperator] = mapped_column(
        EnumString(EspOperator, 8), default=EspOperator.SERVER, server_default=EspOperator.SERVER.value
    )
    """node (its own process and key: the server only coordinates its jobs) or server (a simulated profile)."""
    positives: Mapped[int] = mapped_column(Integer, default=0)
    negatives: Mapped[int] = mapped_column(Integer, default=0)
    stake_state: Mapped[EspStakeState] = mapped_column(
        EnumString(EspStakeState, 16), default=EspStakeState.ACTIVE, server_default=EspStakeState.ACTIVE.value
    )
    """active (staked: may take jobs), exiting (announced its exit), withdrawn (took its stake back), slashed;
    kept from the exchange's ESP events. A row exists only once its stake is on chain."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Task(Base):
    """A generation request with its placement and cost breakdown, the ESP's offer and its generation lock."""

    __tablename__ = "tasks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    producer_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    esp_id: Mapped[int] = mapped_column(ForeignKey("esps.id"), index=True)
    prompt: Mapped[str] = mapped_column(Text)
    lock_id: Mapped[str | None] = mapped_column(String(66), unique=True, nullable=True)
    """The generation lock's id: the offer's EIP-712 digest, recorded with the intent before the lock is sent
    (the indexer completes an intent by it). None only in rows older than protocol v2's intents."""
    hashlock: Mapped[str | None] = mapped_column(String(66), unique=True, index=True, nullable=True)
    """sha256 of the content key (the offer's hashlock); what the sealed key is bound to."""
    offer: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    """The ESP's offer (`market.chain.offers.Offer.to_json`): refund, rating and registration pass it back."""
    opening: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    """The content the offer committed to (`Opening.to_json`), opened at registration."""
    fee_wei: Mapped[str] = mapped_column(String(80))
    timelock: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[TaskState] = mapped_column(EnumString(TaskState, 16))
    """See `api.states.TaskState`."""
    selected_by: Mapped[SelectedBy] = mapped_column(EnumString(SelectedBy, 16))
    ciphertext_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    """None until the ESP's node offered (state requested)."""
    content_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    encrypted_content_key: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    """The content key sealed by the server: only for a server-run ESP (a node keeps its keys)."""
    offer_signature: Mapped[str | None] = mapped_column(String(132), nullable=True)
    """The ESP's EIP-712 signature of `offer` (0x-hex), which the lock carries."""
    latency_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    """The offloading core's predicted latency (None until offered)."""
    energy_j: Mapped[float | None] = mapped_column(Float, nullable=True)
    completed: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    quality: Mapped[float | None] = mapped_column(Float, nullable=True)
    breakdown: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    generation_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    """Measured wall-clock seconds of the generation on the ESP's machine (a node reports it with its offer)."""
    rated: Mapped[bool] = mapped_column(Boolean, default=False)
    token_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    stored_bytes: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    """Bytes this task keeps on the server (prompt, ciphertext, content): counted in its producer's storage quota."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SignInNonce(Base):
    """A Sign-In with Ethereum nonce the server issued (EIP-4361): good for one sign-in before it expires."""

    __tablename__ = "sign_in_nonces"
    nonce: Mapped[str] = mapped_column(String(32), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class AccountSession(Base):
    """A session of a self-custodied account, opened by a signed-in message: its bearer token's keyed hash."""

    __tablename__ = "account_sessions"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Product(Base):
    """A registered product (from ProductRegistered), with its owner kept from Transfer events."""

    __tablename__ = "products"
    token_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    producer: Mapped[str] = mapped_column(String(42), index=True)
    esp: Mapped[str] = mapped_column(String(42), index=True)
    owner: Mapped[str | None] = mapped_column(String(42), index=True, nullable=True)
    content_hash: Mapped[str] = mapped_column(String(66), index=True)
    """Not unique: a product that registers content with an earlier generation displaces (revokes) its holder."""
    perceptual_hash: Mapped[str] = mapped_column(String(18))
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    block_number: Mapped[int] = mapped_column(BigInteger)
    lock_id: Mapped[str | None] = mapped_column(String(66), unique=True, index=True, nullable=True)
    """The paid generation lock it was registered from (links it to its task)."""
    generation_seq: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    """Priority of that lock: of two products with one content, the smaller wins."""
    bond_released: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """The owner claimed the registration bond (BondReleased): only once the product is final."""
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id"), nullable=True)
    content_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    """Address of the plaintext in the content store, when this server has it."""


class Trade(Base):
    """A purchase HTLC: the buyer locked the price under sha256(secret); the seller's secret is kept encrypted.

    The row holds the lock's `Purchase` terms (buyer and seller by account, token, price, hashlock,
    timelock): its id is their digest, and claim and refund pass them back."""

    __tablename__ = "trades"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    lock_id: Mapped[str | None] = mapped_column(String(66), unique=True, nullable=True)
    """The purchase lock's id (the digest of its terms), recorded with the intent before the lock is sent."""
    hashlock: Mapped[str | None] = mapped_column(String(66), unique=True, index=True, nullable=True)
    """sha256 of the seller's secret, recorded before the lock is sent (None in rows older than intents)."""
    token_id: Mapped[int] = mapped_column(BigInteger, index=True)
    buyer_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    seller_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    price_wei: Mapped[str] = mapped_column(String(80))
    timelock: Mapped[int] = mapped_column(BigInteger)
    encrypted_secret: Mapped[bytes] = mapped_column(LargeBinary)
    state: Mapped[TradeState] = mapped_column(EnumString(TradeState, 16))
    """pending, locked, claimed, refunded, abandoned (as for tasks)."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Challenge(Base):
    """A ChallengeResolved event: the verdict of the registry on one fraud proof."""

    __tablename__ = "challenges"
    __table_args__ = (UniqueConstraint("block_number", "log_index", name="uq_challenges_log"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    original_id: Mapped[int] = mapped_column(BigInteger, index=True)
    duplicate_id: Mapped[int] = mapped_column(BigInteger, index=True)
    challenger: Mapped[str] = mapped_column(String(42))
    upheld: Mapped[bool] = mapped_column(Boolean)
    distance: Mapped[int] = mapped_column(Integer)
    block_number: Mapped[int] = mapped_column(BigInteger)
    log_index: Mapped[int] = mapped_column(Integer)


class ChainEvent(Base):
    __tablename__ = "chain_events"
    __table_args__ = (UniqueConstraint("block_number", "log_index", name="uq_chain_events_log"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    block_number: Mapped[int] = mapped_column(BigInteger)
    log_index: Mapped[int] = mapped_column(Integer)
    contract: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(32), index=True)
    args: Mapped[dict[str, Any]] = mapped_column(JSON)


class IndexerCursor(Base):
    """The last block whose events are all stored (a single row, id 1)."""

    __tablename__ = "indexer_cursor"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_block: Mapped[int] = mapped_column(BigInteger)


class Simulation(Base):
    __tablename__ = "simulations"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[SimulationStatus] = mapped_column(EnumString(SimulationStatus, 16))
    """running, done, failed, interrupted (the server stopped before the end)."""
    periods: Mapped[int] = mapped_column(Integer)
    periods_done: Mapped[int] = mapped_column(Integer, default=0)
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    """What went wrong, in the server's words (never an exception's text: that is logged)."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    output_bytes: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    """Size of the run's folder (counted in its account's storage quota); 0 once retention removed it."""
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    purged: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    """The run's folder was removed by the retention setting (the summary stays)."""


class IdempotencyState(StrEnum):
    """Where the request of an Idempotency-Key stands."""

    RUNNING = "running"
    """Claimed by a request that has not committed anything yet (released if it fails, or at start)."""
    COMMITTED = "committed"
    """Its write committed (recorded in the write's own transaction, before indexing): never run again."""
    DONE = "done"
    """Its reply is stored (`status_code`, `body`), or withheld because it carried a secret."""


class IdempotentReply(Base):
    """The first reply to a write sent with an Idempotency-Key, replayed for the same key and body.

    A row is claimed before the request runs (the key is unique per account, in any number of
    processes); a reply that carries a secret (`Cache-Control: no-store`, e.g. a new API key) is
    never stored: `withheld` is set and a replay answers 409 `idempotent_reply_withheld`."""

    __tablename__ = "idempotent_replies"
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    state: Mapped[IdempotencyState] = mapped_column(
        EnumString(IdempotencyState, 16), default=IdempotencyState.DONE, server_default=IdempotencyState.DONE.value
    )
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    body: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    withheld: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=True)
    worker_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    """The worker of `serve --workers N` that claimed the key (None: a single server); its supervisor releases the
    claims a dead worker held running (`api.crud.release_claims_of`)."""


class FaucetGrant(Base):
    """Ether the faucet gave a new account (development chains only): the per-client and global budgets add these up."""

    __tablename__ = "faucet_grants"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    client: Mapped[str] = mapped_column(String(64), index=True)
    """The client address (an IPv6 client by its /64) that created the account."""
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), unique=True)
    amount_wei: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
