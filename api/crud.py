"""Database reads and writes that need no chain, and the conversion of rows to response models."""

from __future__ import annotations

import functools
from typing import Any, TypeVar

from sqlalchemy import Row, Select, bindparam, delete, func, select, update
from sqlalchemy.orm import Session

from api import models, schemas
from api.errors import ApiError, not_found
from api.states import INTENT_STATES, TaskState, TradeState
from market.chain.offers import Offer, Opening, Purchase


def account_by_address(session: Session, address: str) -> models.Account | None:
    return session.scalar(select(models.Account).where(func.lower(models.Account.address) == address.lower()))


def esp_by_address(session: Session, address: str) -> models.Esp:
    esp = session.scalar(select(models.Esp).where(func.lower(models.Esp.address) == address.lower()))
    if esp is None:
        raise not_found(f"ESP {address}")
    return esp


def esp_out(esp: models.Esp) -> schemas.EspOut:
    return schemas.EspOut(
        address=esp.address,
        name=esp.name,
        profile=esp.profile,
        operator=esp.operator,
        index=esp.id - 1,
        positives=esp.positives,
        negatives=esp.negatives,
        stake_state=esp.stake_state,
    )


T = TypeVar("T")


def get_or_404(session: Session, model: type[T], key: Any, what: str) -> T:
    row = session.get(model, key)
    if row is None:
        raise not_found(what)
    return row


def _settled_lock(row: models.Task | models.Trade) -> None:
    """409 `lock_pending` while the row is only an intent: its lock is not (or never will be) on chain."""
    if row.state in (TaskState.REQUESTED, TaskState.OFFERED):
        raise ApiError(409, "task_not_locked", f"this task is {row.state}: no fee is locked for it")
    if row.state in INTENT_STATES or row.lock_id is None:
        raise ApiError(409, "lock_pending", f"the lock of this {row.__tablename__[:-1]} is not on chain (state {row.state})")


def offer_of(task: models.Task) -> Offer:
    """The ESP's offer of the task's generation lock (what refund, rating and registration pass back)."""
    _settled_lock(task)
    assert task.offer is not None  # every row of a v2 database has one (a v1 database is refused at start)
    return Offer.from_json(task.offer)


def opening_of(task: models.Task) -> Opening:
    assert task.opening is not None
    return Opening.from_json(task.opening)


def purchase_of(session: Session, trade: models.Trade) -> Purchase:
    """The terms of the trade's purchase lock, rebuilt from the row (its id is their digest)."""
    _settled_lock(trade)
    return purchase_terms(session, trade)


def purchase_terms(session: Session, trade: models.Trade) -> Purchase:
    """The terms the trade's row holds, locked or not (a prepared trade's are what its buyer is asked to sign)."""
    assert trade.hashlock is not None
    buyer, seller = session.get(models.Account, trade.buyer_id), session.get(models.Account, trade.seller_id)
    assert buyer is not None and seller is not None
    return Purchase(
        buyer.address, seller.address, trade.token_id, int(trade.price_wei), bytes.fromhex(trade.hashlock[2:]), trade.timelock
    )


def secret_context(row: models.Task | models.Trade) -> str:
    """What a row's sealed secret is bound to: its hashlock (rows older than intents: their lock id)."""
    context = row.hashlock or row.lock_id
    assert context is not None
    return context


def abandon_stale_intents(session: Session, chain_now: int) -> int:
    """Mark `abandoned` the intents whose timelock has passed with no lock: none can be mined any more.

    Run after the indexer has caught up, so that an intent whose lock did reach the chain is
    already `locked`. Returns how many rows were marked.
    """
    marked = 0
    for model, pending, abandoned in (
        (models.Task, TaskState.PENDING, TaskState.ABANDONED),
        (models.Trade, TradeState.PENDING, TradeState.ABANDONED),
    ):
        result = session.execute(update(model).where(model.state == pending, model.timelock <= chain_now).values(state=abandoned))
        marked += result.rowcount  # type: ignore[attr-defined]
    return marked


def release_stale_claims(session: Session) -> int:
    """At start: forget the Idempotency-Key claims of requests that were running when the server stopped
    and had committed nothing (a retry runs them); committed ones stay. Returns how many were released."""
    result = session.execute(delete(models.IdempotentReply).where(models.IdempotentReply.state == models.IdempotencyState.RUNNING))
    return int(result.rowcount)  # type: ignore[attr-defined]


def release_claims_of(session: Session, worker_id: str) -> int:
    """After worker `worker_id` died: forget the Idempotency-Key claims it held running (it committed nothing for
    them: a committed write marks its claim `committed` in its own transaction), so that a retry runs. Returns how
    many were released."""
    result = session.execute(
        delete(models.IdempotentReply).where(
            models.IdempotentReply.worker_id == worker_id, models.IdempotentReply.state == models.IdempotencyState.RUNNING
        )
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def stored_bytes(session: Session, account_id: int) -> int:
    """What an account keeps on the server: its tasks (prompt, ciphertext, content) and its runs' folders."""
    tasks = session.scalar(
        select(func.coalesce(func.sum(models.Task.stored_bytes), 0)).where(models.Task.producer_id == account_id)
    )
    runs = session.scalar(
        select(func.coalesce(func.sum(models.Simulation.output_bytes), 0)).where(models.Simulation.account_id == account_id)
    )
    return int(tasks or 0) + int(runs or 0)


def check_storage_quota(session: Session, account_id: int, quota: int) -> None:
    """403 `storage_quota_exceeded` when the account keeps `quota` bytes or more on the server (0: no quota)."""
    if quota and stored_bytes(session, account_id) >= quota:
        raise ApiError(403, "storage_quota_exceeded", f"this account keeps {quota} bytes or more on the server: its storage quota")


def count(session: Session, query: Select[Any]) -> int:
    """How many rows `query` has: the same FROM and WHERE under count(*), no subquery."""
    return session.scalar(query.with_only_columns(func.count(), maintain_column_froms=True).order_by(None)) or 0


def page(session: Session, query: Select[Any], limit: int, offset: int) -> tuple[list[Any], int]:
    """One page of the ORM entities that `query` selects, and the number of all its rows."""
    return list(session.scalars(query.limit(limit).offset(offset))), count(session, query)


@functools.cache
def product_page_queries(filters: frozenset[str]) -> tuple[Select[Any], Select[Any]]:
    """The page and count statements of the products filtered by equality on `filters` (column names).

    Built once per combination of filters, with bound parameters: a statement SQLAlchemy has seen
    keeps its cache key and compiled form, where rebuilding it costs more than running it.
    """
    table = models.Product.__table__
    where = [table.c[name] == bindparam(name) for name in sorted(filters)]
    page = select(table).where(*where).order_by(table.c.token_id).limit(bindparam("limit")).offset(bindparam("offset"))
    return page, select(func.count()).select_from(table).where(*where)


def product_page(session: Session, filters: dict[str, str], limit: int, offset: int) -> tuple[list[Row[Any]], int]:
    """One page of rows of the products table whose columns equal `filters`, and how many there are in all.

    Plain rows through the session's connection: a page is read-only, and the ORM's loading of
    instances costs more than the query itself.
    """
    page, count_query = product_page_queries(frozenset(filters))
    connection = session.connection()
    rows = list(connection.execute(page, filters | {"limit": limit, "offset": offset}))
    return rows, connection.execute(count_query, filters).scalar_one()


def task_out(session: Session, task: models.Task) -> schemas.TaskOut:
    producer = session.get(models.Account, task.producer_id)
    esp = session.get(models.Esp, task.esp_id)
    assert producer is not None and esp is not None
    return schemas.TaskOut(
        id=task.id,
        producer=producer.address,
        esp=esp.address,
        prompt=task.prompt,
        state=task.state,
        selected_by=task.selected_by,
        lock_id=task.lock_id,
        fee_wei=int(task.fee_wei),
        timelock=task.timelock,
        ciphertext_sha256=task.ciphertext_sha256,
        content_sha256=task.content_sha256,
        rated=task.rated,
        token_id=task.token_id,
        offer=task.offer,
        opening=task.opening,
        cost=None
        if task.latency_s is None or task.energy_j is None or task.completed is None or task.quality is None
        else schemas.CostOut(
            latency_s=task.latency_s,
            energy_j=task.energy_j,
            completed=task.completed,
            quality=task.quality,
            breakdown=task.breakdown or {},
        ),
        generation_s=task.generation_s,
    )


def product_out(product: models.Product | Row[Any]) -> schemas.ProductOut:
    """A product entity or a row of the products table (same attribute names) as its response model."""
    return schemas.ProductOut(
        token_id=product.token_id,
        producer=product.producer,
        esp=product.esp,
        owner=product.owner,
        content_hash=product.content_hash,
        perceptual_hash=product.perceptual_hash,
        revoked=product.revoked,
        block_number=product.block_number,
        task_id=product.task_id,
        content_url=f"/products/{product.token_id}/content" if product.content_sha256 else None,
        lock_id=product.lock_id,
        generation_seq=product.generation_seq,
        bond_released=product.bond_released,
    )


def trade_out(session: Session, trade: models.Trade) -> schemas.TradeOut:
    buyer = session.get(models.Account, trade.buyer_id)
    seller = session.get(models.Account, trade.seller_id)
    assert buyer is not None and seller is not None
    return schemas.TradeOut(
        id=trade.id,
        token_id=trade.token_id,
        lock_id=trade.lock_id,
        buyer=buyer.address,
        seller=seller.address,
        price_wei=int(trade.price_wei),
        timelock=trade.timelock,
        state=trade.state,
    )


def challenge_out(challenge: models.Challenge) -> schemas.ChallengeOut:
    return schemas.ChallengeOut(
        original_id=challenge.original_id,
        duplicate_id=challenge.duplicate_id,
        challenger=challenge.challenger,
        upheld=challenge.upheld,
        distance=challenge.distance,
        block_number=challenge.block_number,
    )


def simulation_out(sim: models.Simulation) -> schemas.SimulationOut:
    return schemas.SimulationOut(
        id=sim.id,
        status=sim.status,
        periods=sim.periods,
        periods_done=sim.periods_done,
        config=sim.config,
        summary=sim.summary,
        error=sim.error,
    )
