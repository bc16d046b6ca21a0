"""Everything one app instance holds, built by `create_app` and stored on `app.state.market`.

Every step of the protocol that a route takes (stake, offer, lock, reveal, register, rate, refund,
trade, challenge, bond, credits) goes through `protocol`, the one `market.protocol.Protocol` of
this app, built with the server's market terms (`Settings.market_terms`).

The chain connection's writes are not thread-safe (nonces come from the pending block), so every
chain write runs under `chain_lock` (on PostgreSQL a lock across the workers of the server too:
`api.advisory.ChainLock`); the indexer runs after it under `index_lock`, so that one run
can index the writes of several requests while the next one talks to the chain. FastAPI runs the
routes that write on its thread pool.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session, sessionmaker

from api import models
from api.advisory import ChainLock
from api.errors import ApiError
from api.indexer import Indexer
from api.node import ChainHandle
from api.security import Vault
from api.settings import Settings
from api.states import TaskState, TradeState
from market.chain.connection import Chain
from market.chain.contracts import LockKind, LockOpened, LockState, PurchaseOpened
from market.chain.deploy import Market
from market.chain.errors import ContractRevert, TransactionRevertedError
from market.chain.offers import Offer, Opening
from market.content import ContentStore
from market.protocol import Protocol

log = logging.getLogger("api.state")

Opened = TypeVar("Opened", LockOpened, PurchaseOpened)


@dataclass
class AppState:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    vault: Vault
    handle: ChainHandle
    market: Market
    protocol: Protocol
    indexer: Indexer
    store: ContentStore
    chain_lock: ChainLock = field(default_factory=ChainLock)
    offer_lock: threading.Lock = field(default_factory=threading.Lock)
    """Around `protocol.make_offer`: an ESP's check of its earlier commitments and its new one are one step."""
    index_lock: threading.Lock = field(default_factory=threading.Lock)
    indexable_block: int = 0
    """Every write whose transactions are in blocks up to this one has committed its rows (under chain_lock)."""
    seen_task_id: int = 0
    """The last task whose ESP commitment `protocol` knows (`remember_commitments`, `check_sibling_commitments`)."""

    @property
    def chain(self) -> Chain:
        return self.market.chain

    def signer(self, account: models.Account) -> LocalAccount:
        """The account's key, opened for one transaction; never logged nor returned."""
        if account.encrypted_key is None:  # self-custodied: the route must prepare its transaction (api.custody)
            raise ApiError(
                409, "self_custodied", "this account keeps its own key and this action is not offered to such accounts yet"
            )
        key: LocalAccount = Account.from_key(self.vault.open(account.encrypted_key, account.address))
        return key

    @contextmanager
    def writing(self, session: Session) -> Iterator[None]:
        """One write: chain transactions and the route's rows under the chain lock, then the indexer.

        The session's read snapshot is ended first (SQLite in WAL mode cannot turn an old read into a
        write once another connection committed). The route's rows are committed before its blocks
        are indexed, so that the projections find them (a registered task links its product); on
        failure they are rolled back and the indexer still records whatever reached the chain.

        Group commit: the indexer runs outside the chain lock, up to the last block whose writes have
        all committed. While one request indexes, the next sends its transaction; a request whose
        blocks another run already indexed skips its own. Events of other clients in later blocks
        are indexed by the next write (or at start).
        """
        session.commit()
        try:
            with self.chain_lock:
                try:
                    yield
                    mark_committed(session)
                    session.commit()
                except BaseException:
                    session.rollback()
                    raise
                finally:
                    self.indexable_block = max(self.indexable_block, self.chain.last_block)
                    through = self.indexable_block
            self.index_through(through)
        except BaseException:
            try:
                self.index_through(self.indexable_block)
            except Exception:  # the original error matters more; the next run catches up
                log.exception("indexing after a failed write failed")
            raise
        finally:
            session.expire_all()

    def lock_as_intent(
        self, session: Session, row: models.Task | models.Trade, lock_id: bytes, send_lock: Callable[[], Opened]
    ) -> Opened:
        """Commit `row` as an intent (state pending, with the lock's id), then lock and record the lock.

        A lock's id is known before it is sent (a generation lock's is its offer's digest, a
        purchase's the digest of its terms), so the intent carries it: if the server dies after the
        lock, the indexer completes the row by that id (GenerationLocked / PurchaseLocked), and the
        fee or price can still be refunded. A lock that the node refuses or that reverts leaves
        nothing behind. Call inside `writing`.
        """
        offered = isinstance(row, models.Task) and row.state == TaskState.OFFERED  # a node's task: it stays, offered
        row.lock_id = "0x" + lock_id.hex()
        set_state(row, TaskState.PENDING, TradeState.PENDING)
        session.add(row)
        mark_committed(session)  # from here on a retry must not lock again: the intent may be mined
        session.commit()
        try:
            lock = send_lock()
        except (ContractRevert, TransactionRevertedError):  # refused or reverted: no lock exists
            if offered:
                set_state(row, TaskState.OFFERED, TradeState.PENDING)
            else:
                session.delete(row)
            session.commit()
            raise
        if lock.lock_id != lock_id:  # terms read from the chain moved under the route (see trades): the chain's id
            log.warning("lock %s was mined as %s", row.lock_id, "0x" + lock.lock_id.hex())
            row.lock_id = "0x" + lock.lock_id.hex()
        set_state(row, TaskState.LOCKED, TradeState.LOCKED)
        return lock

    def check_lock(self, lock_id: bytes, kind: LockKind) -> None:
        """409 `lock_mismatch` unless the exchange holds a lock `lock_id` of `kind` that is still locked.

        Call before revealing a secret for it: a lock's id is the EIP-712 digest of all its terms (sender,
        receiver, amount, token or offer, hashlock, timelock), so an id computed from the terms the server
        recorded that the chain holds, of the right kind and still locked, is a lock on exactly those terms.
        """
        lock = self.market.exchange.get_lock(lock_id)
        if lock.kind != kind or lock.state != LockState.LOCKED:
            log.error(
                "lock 0x%s: expected a locked %s lock, the chain holds %s %s",
                lock_id.hex(),
                kind.name,
                lock.kind.name,
                lock.state.name,
            )
            raise ApiError(
                409, "lock_mismatch", "the chain holds no lock on the recorded terms that is still locked: nothing revealed"
            )

    def remember_commitments(self) -> int:
        """Give the protocol's ESPs back what they committed to (their guard against equivocation) after a restart.

        Every task's offer whose lock exists or may still be mined counts (abandoned intents do not);
        returns how many commitments were restored.
        """
        with self.sessions() as session:
            rows = (
                session.execute(
                    select(models.Task.id, models.Esp.address, models.Account.address, models.Task.opening)
                    .select_from(models.Task)
                    .join(models.Esp, models.Esp.id == models.Task.esp_id)
                    .join(models.Account, models.Account.id == models.Task.producer_id)
                    .where(models.Task.state != TaskState.ABANDONED)
                    .order_by(models.Task.id)
                )
                .tuples()
                .all()
            )
        restored = 0
        for task_id, esp, producer, opening in rows:
            self.seen_task_id = max(self.seen_task_id, task_id)
            if opening is None:
                continue
            committed = Opening.from_json(opening)
            self.protocol.remember(esp, producer, committed)
            restored += 1
        return restored

    def check_sibling_commitments(self, session: Session, producer: str, opening: Opening) -> None:
        """With several workers, inside `writing` (the chain lock is theirs too): learn the ESP commitments that the
        tasks of sibling workers recorded since the last look, and refuse this job (409 `duplicate_commitment`, before
        anything is sent) if one of them is the same content, or a near-copy, committed to another producer. The
        protocol's guard (`Protocol.commit_offer`) knows the commitments of this process only; every task's intent
        commits under the chain lock, so none can slip between this check and this job's own intent."""
        rows = (
            session.execute(
                select(models.Task.id, models.Esp.address, models.Account.address, models.Task.opening)
                .select_from(models.Task)
                .join(models.Esp, models.Esp.id == models.Task.esp_id)
                .join(models.Account, models.Account.id == models.Task.producer_id)
                .where(models.Task.id > self.seen_task_id, models.Task.state != TaskState.ABANDONED)
                .order_by(models.Task.id)
            )
            .tuples()
            .all()
        )
        if not rows:
            return
        threshold = self.market.registry.similarity_threshold()
        conflict = None
        for task_id, esp, owner, recorded in rows:
            self.seen_task_id = max(self.seen_task_id, task_id)
            if recorded is None:
                continue
            earlier = Opening.from_json(recorded)
            self.protocol.remember(esp, owner, earlier)
            if owner != producer and (
                earlier.content_hash == opening.content_hash
                or (earlier.perceptual_hash ^ opening.perceptual_hash).bit_count() <= threshold
            ):
                conflict = owner
        if conflict is not None:
            raise ApiError(
                409, "duplicate_commitment", f"the ESP refuses: this content (or a near-copy) was committed to {conflict} before"
            )

    def recover_content(self, session: Session, task: models.Task) -> bool:
        """Give a delivered task without content its content (a route that died between the ESP's reveal and
        its commit leaves one: the indexer marks it delivered from the Withdrawn event). The plaintext was
        stored before the reveal; if the store lost it, the ciphertext is opened with the sealed content key
        and checked against the offer's commitment. Returns whether the task has its content now; the
        products registered from the task are linked to it as well. The caller commits."""
        if task.state != TaskState.DELIVERED or task.content_sha256 is not None:
            return task.content_sha256 is not None
        if (
            task.offer is None
            or task.opening is None
            or task.hashlock is None
            or task.encrypted_content_key is None
            or task.ciphertext_sha256 is None
        ):
            return False
        offer, opening = Offer.from_json(task.offer), Opening.from_json(task.opening)
        digest = opening.content_hash.hex()
        try:
            self.store.get(digest)
        except (OSError, ValueError):
            try:
                key = self.vault.open(task.encrypted_content_key, task.hashlock)
                delivery = Protocol.open_content(key, self.store.get(task.ciphertext_sha256), opening, offer)
            except Exception:  # a missing ciphertext, a key that does not open, content that is not what was committed
                log.exception("task %s: its content cannot be recovered", task.id)
                return False
            digest = self.store.put(delivery.content)
        task.content_sha256 = digest
        session.execute(
            update(models.Product)
            .where((models.Product.task_id == task.id) | (models.Product.lock_id == task.lock_id))
            .values(task_id=task.id, content_sha256=digest)
        )
        return True

    def recover_contents(self) -> int:
        """At start: every delivered task without content gets it back (`recover_content`); returns how many."""
        recovered = 0
        with self.sessions.begin() as session:
            query = select(models.Task).where(models.Task.state == TaskState.DELIVERED, models.Task.content_sha256.is_(None))
            for task in session.scalars(query):
                recovered += self.recover_content(session, task)
        return recovered

    def index_through(self, block: int) -> None:
        """Make sure that the indexer has stored every event up to `block` (one run for many writers).

        A run goes as far as every committed write allows at the moment it starts, not only to
        `block`: the writers that queued behind it then find their blocks indexed and skip their runs.
        """
        with self.index_lock:
            if self.indexer.last_block < block:
                self.indexer.run_once(through=max(block, self.indexable_block))


def mark_committed(session: Session) -> None:
    """Record, in the transaction about to commit, that the request's Idempotency-Key has written.

    The idempotency layer puts the request's claim (account id, key) in `session.info`; once this
    commits, a retry with that key never runs the write again, whatever becomes of the reply
    (indexing and the reply come after). A request without a key has no claim: nothing to do.
    """
    claim = session.info.get("idempotency")
    if claim is None:
        return
    account_id, key = claim
    session.execute(
        update(models.IdempotentReply)
        .where(
            models.IdempotentReply.account_id == account_id,
            models.IdempotentReply.key == key,
            models.IdempotentReply.state == models.IdempotencyState.RUNNING,
        )
        .values(state=models.IdempotencyState.COMMITTED)
    )


def set_state(row: models.Task | models.Trade, task_state: TaskState, trade_state: TradeState) -> None:
    """Move a task to `task_state` or a trade to `trade_state` (a lock intent's steps are the same for both)."""
    if isinstance(row, models.Task):
        row.state = task_state
    else:
        row.state = trade_state
