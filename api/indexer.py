"""Copies the market's chain events into `chain_events`, idempotently, and keeps the projections.

Each run reads the events of blocks (cursor, head], inserts the ones whose (block_number,
log_index) is not stored yet and applies each projection only for a row it inserted, then moves the
cursor to head, all in one database transaction: a crash leaves either everything or nothing, a
rerun (or a reset cursor) finds the rows already there and counts nothing twice. (Each projection
therefore runs once per event: a product row, say, is inserted without looking for it first.)

Lock intents are completed by lock id: a task's or trade's row carries its lock's id from before the
lock was sent, and GenerationLocked / PurchaseLocked move a pending (or abandoned) row to `locked`.
Credits (Credited, CreditWithdrawn) are stored as events only: GET /credits reads the contracts.

On PostgreSQL a run begins with a transaction-level advisory lock, so that the runs of several
workers (`serve --workers N`) go one at a time; a run cut off by its worker's death releases it
with its transaction (docs/api.md#several-workers, `api.indexer_leader`).
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased, sessionmaker

from api.advisory import INDEXER_RUN, advisory_key, namespace
from api.models import Account, ChainEvent, Challenge, Esp, IndexerCursor, Product, Task, Trade
from api.states import INTENT_STATES, EspStakeState, TaskState, TradeState
from market.chain.deploy import Market
from market.chain.events import DecodedEvent
from market.chain.offers import Offer, Purchase

log = logging.getLogger("api.indexer")

ZERO_ADDRESS = "0x" + "0" * 40

#: Which events of which contract are indexed.
INDEXED = {
    "registry": (
        "Transfer",
        "ProductRegistered",
        "ProductRevoked",
        "ProductDisplaced",
        "ChallengeResolved",
        "BondReleased",
        "Credited",
        "CreditWithdrawn",
    ),
    "exchange": (
        "GenerationLocked",
        "PurchaseLocked",
        "Withdrawn",
        "Refunded",
        "Credited",
        "CreditWithdrawn",
        "EspRegistered",
        "EspExitAnnounced",
        "StakeWithdrawn",
        "EspSlashed",
    ),
    "ledger": ("Rated",),
}

#: The ESP state each ESP event of the exchange leads to.
ESP_STATES = {
    "EspRegistered": EspStakeState.ACTIVE,
    "EspExitAnnounced": EspStakeState.EXITING,
    "StakeWithdrawn": EspStakeState.WITHDRAWN,
    "EspSlashed": EspStakeState.SLASHED,
}


def jsonable(value: Any) -> Any:
    """Event arguments as JSON: bytes as 0x-hex, integers beyond 2**53 as decimal strings."""
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if abs(value) < 2**53 else str(value)
    return value


class Indexer:
    """Indexes one market into one database; call `run_once` after every write and at start."""

    def __init__(self, market: Market, sessions: sessionmaker[Session]) -> None:
        self.market = market
        self.sessions = sessions
        self.last_block = -1
        """The cursor as of this indexer's last run (-1 before the first one)."""
        self._wanted = {
            (getattr(market, attribute).contract.address, name) for attribute, names in INDEXED.items() for name in names
        }
        self._addresses = sorted({address for address, _ in self._wanted})
        bind = sessions.kw.get("bind")
        self._shared = bind is not None and bind.dialect.name == "postgresql"
        self._run_key: int | None = None

    def fetch(self, from_block: int, to_block: int) -> list[DecodedEvent]:
        """The indexed events in [from_block, to_block], in chain order (one eth_getLogs on a node)."""
        return [e for e in self.market.chain.logs(self._addresses, from_block, to_block) if (e.address, e.name) in self._wanted]

    def run_once(self, through: int | None = None) -> int:
        """Index up to block `through` (default: the head) in one transaction; returns how many events were new."""
        head = self.market.chain.head() if through is None else through
        try:
            return self._run(head, trust_cursor=True)
        except IntegrityError:  # an event past the cursor was stored after all: look the stored ones up
            return self._run(head, trust_cursor=False)

    def _run(self, head: int, trust_cursor: bool) -> int:
        with self.sessions.begin() as session:
            if self._shared:  # one run at a time across the workers of a server (docs/api.md#several-workers)
                if self._run_key is None:
                    self._run_key = advisory_key(namespace(session.connection()), INDEXER_RUN)
                session.execute(select(func.pg_advisory_xact_lock(self._run_key)))
            last = session.scalar(select(IndexerCursor.last_block).where(IndexerCursor.id == 1))
            if last is None:
                last = max(0, self.market.deployment.block - 3)
                session.execute(insert(IndexerCursor), [{"id": 1, "last_block": last}])
            if head <= last:
                self.last_block = last
                return 0
            new = self.fetch(last + 1, head)
            # A run stores its events and moves the cursor past them in one transaction, so when the
            # cursor is where this indexer left it, nothing after it is stored (a reset cursor is not).
            if not (trust_cursor and last == self.last_block):
                stored = {
                    (row[0], row[1])
                    for row in session.execute(
                        select(ChainEvent.block_number, ChainEvent.log_index).where(ChainEvent.block_number.between(last + 1, head))
                    )
                }
                new = [e for e in new if (e.block_number, e.log_index) not in stored]
            if new:
                session.execute(
                    insert(ChainEvent),
                    [
                        {
                            "block_number": e.block_number,
                            "log_index": e.log_index,
                            "contract": e.contract,
                            "name": e.name,
                            "args": {key: jsonable(value) for key, value in e.args.items()},
                        }
                        for e in new
                    ],
                )
            for event in new:
                self.project(session, event)
            session.execute(update(IndexerCursor).where(IndexerCursor.id == 1).values(last_block=head))
        self.last_block = head
        return len(new)

    def project(self, session: Session, event: DecodedEvent) -> None:
        """Apply one newly stored event to the tables that summarise the chain (set-based statements:
        no ORM instances are loaded, and a route's session expires its own after every write)."""
        args = event.args
        if event.name == "ProductRegistered":
            token_id = int(args["tokenId"])
            lock_id = "0x" + bytes(args["lockId"]).hex()
            # The task whose offer the lock paid links the product to its content here, in the indexer's
            # transaction (a crash cannot split them; a registration whose route died is linked too).
            task = session.execute(select(Task.id, Task.content_sha256).where(Task.lock_id == lock_id)).first()
            session.execute(
                insert(Product),
                [
                    {
                        "token_id": token_id,
                        "producer": str(args["producer"]),
                        "esp": str(args["esp"]),
                        "owner": str(args["producer"]),
                        "content_hash": "0x" + bytes(args["contentHash"]).hex(),
                        "perceptual_hash": f"{int(args['perceptualHash']):016x}",
                        "block_number": event.block_number,
                        "revoked": False,
                        "task_id": task.id if task else None,
                        "content_sha256": task.content_sha256 if task else None,
                        "lock_id": lock_id,
                        "generation_seq": int(args["generationSeq"]),
                        "bond_released": False,
                    }
                ],
            )
        elif event.name == "Transfer" and str(args["from"]) != ZERO_ADDRESS:
            owner = None if str(args["to"]) == ZERO_ADDRESS else str(args["to"])
            session.execute(update(Product).where(Product.token_id == int(args["tokenId"])).values(owner=owner))
        elif event.name == "ProductRevoked":
            session.execute(update(Product).where(Product.token_id == int(args["tokenId"])).values(revoked=True, owner=None))
        elif event.name == "ProductDisplaced":  # a registration with an earlier generation took its content
            session.execute(update(Product).where(Product.token_id == int(args["displacedId"])).values(revoked=True, owner=None))
        elif event.name == "BondReleased":
            session.execute(update(Product).where(Product.token_id == int(args["tokenId"])).values(bond_released=True))
        elif event.name == "ChallengeResolved":
            session.execute(
                insert(Challenge),
                [
                    {
                        "original_id": int(args["originalId"]),
                        "duplicate_id": int(args["duplicateId"]),
                        "challenger": str(args["challenger"]),
                        "upheld": bool(args["upheld"]),
                        "distance": int(args["distance"]),
                        "block_number": event.block_number,
                        "log_index": event.log_index,
                    }
                ],
            )
        elif event.name == "Rated":
            counter = Esp.positives if args["positive"] else Esp.negatives
            session.execute(update(Esp).where(Esp.address == str(args["esp"])).values({counter: counter + 1}))
        elif event.name in ("GenerationLocked", "PurchaseLocked"):
            # Completes an intent whose route died between the lock and its commit, found by the lock's id
            # (else a no-op: the route already recorded the lock and left `pending`), and only if the event's
            # terms are the intent's, every one of them (the id is their digest: a mismatch means a bug).
            self.adopt_intent(session, event)
        elif event.name in ("Withdrawn", "Refunded"):
            lock_id = "0x" + bytes(args["id"]).hex()
            withdrawn = event.name == "Withdrawn"
            session.execute(
                update(Task)
                .where(Task.lock_id == lock_id, Task.state == TaskState.LOCKED)
                .values(state=TaskState.DELIVERED if withdrawn else TaskState.REFUNDED)
            )
            session.execute(
                update(Trade)
                .where(Trade.lock_id == lock_id, Trade.state == TradeState.LOCKED)
                .values(state=TradeState.CLAIMED if withdrawn else TradeState.REFUNDED)
            )
        elif event.name in ESP_STATES:
            session.execute(update(Esp).where(Esp.address == str(args["esp"])).values(stake_state=ESP_STATES[event.name]))

    def adopt_intent(self, session: Session, event: DecodedEvent) -> None:
        """Move the intent whose lock id is the event's to `locked`, if the event locked exactly its terms (an offered
        task too: a self-custodied producer may lock its ESP's offer without the server)."""
        args = event.args
        lock_id = "0x" + bytes(args["id"]).hex()
        if event.name == "GenerationLocked":
            task = session.execute(
                select(Task.id, Task.offer).where(
                    Task.lock_id == lock_id, Task.state.in_((*INTENT_STATES, TaskState.OFFERED.value))
                )
            ).first()
            if task is None:
                return
            if task.offer is None or Offer.from_json(task.offer) != Offer.from_event(args):
                log.error("GenerationLocked %s: its terms are not those of task %s: not adopted", lock_id, task.id)
                return
            session.execute(update(Task).where(Task.id == task.id).values(state=TaskState.LOCKED))
            return
        buyer, seller = aliased(Account), aliased(Account)
        trade = session.execute(
            select(Trade.id, buyer.address, seller.address, Trade.token_id, Trade.price_wei, Trade.hashlock, Trade.timelock)
            .join(buyer, buyer.id == Trade.buyer_id)
            .join(seller, seller.id == Trade.seller_id)
            .where(Trade.lock_id == lock_id, Trade.state.in_(INTENT_STATES))
        ).first()
        if trade is None:
            return
        trade_id, buyer_address, seller_address, token_id, price, hashlock, timelock = trade
        locked = Purchase.from_event(args)
        recorded = (buyer_address, seller_address, token_id, int(price), hashlock, timelock)
        if (
            hashlock is None
            or (locked.buyer, locked.seller, locked.token_id, locked.price, "0x" + locked.hashlock.hex(), locked.timelock)
            != recorded
        ):
            log.error("PurchaseLocked %s: its terms are not those of trade %s: not adopted", lock_id, trade_id)
            return
        session.execute(update(Trade).where(Trade.id == trade_id).values(state=TradeState.LOCKED))
