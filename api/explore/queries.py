"""The explorer's reads: what each page shows, from the API's database (the indexed chain state).

Every function takes keyword arguments after the session and returns plain dataclasses or rows;
none writes. Chain-event arguments are read with SQL JSON extraction (`args["tokenId"]`), which
SQLite and PostgreSQL both run, so that a page reads the events of its object, not all of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Row, func, or_, select
from sqlalchemy.orm import Session

from api import crud, models
from api.states import TaskState, TradeState
from market.content import hamming_distance
from market.simulation import MARKET_REPUTATION
from reputation import MWSL, Rating
from reputation.mwsl import densify

#: bytes32("royalty"): the reason of the exchange's Credited event for a producer's royalty on a resale.
ROYALTY_REASON = "0x" + b"royalty".ljust(32, b"\0").hex()

ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
HASH32 = re.compile(r"^0x[0-9a-fA-F]{64}$")
TOKEN = re.compile(r"^#?[0-9]{1,15}$")


@dataclass(frozen=True)
class Totals:
    products: int
    final: int
    pending: int
    revoked: int
    trades: int
    volume_wei: int
    royalties_wei: int
    open_escrows: int
    esps: int


def totals(session: Session, *, final_through_block: int) -> Totals:
    """Market totals; a product is final when registered in a block at or before `final_through_block`
    (the last block whose challenge window has closed) and not revoked."""
    product = models.Product
    revoked = session.scalar(select(func.count()).where(product.revoked.is_(True))) or 0
    every = session.scalar(select(func.count()).select_from(product)) or 0
    final = session.scalar(select(func.count()).where(product.revoked.is_(False), product.block_number <= final_through_block)) or 0
    claimed = list(session.scalars(select(models.Trade.price_wei).where(models.Trade.state == TradeState.CLAIMED)))
    royalties: list[dict[str, Any]] = list(
        session.scalars(
            select(models.ChainEvent.args).where(
                models.ChainEvent.name == "Credited", models.ChainEvent.args["reason"].as_string() == ROYALTY_REASON
            )
        )
    )
    open_tasks = session.scalar(select(func.count()).where(models.Task.state == TaskState.LOCKED)) or 0
    open_trades = session.scalar(select(func.count()).where(models.Trade.state == TradeState.LOCKED)) or 0
    return Totals(
        products=every,
        final=final,
        pending=every - revoked - final,
        revoked=revoked,
        trades=len(claimed),
        volume_wei=sum(int(price) for price in claimed),
        royalties_wei=sum(int(args["amount"]) for args in royalties),
        open_escrows=open_tasks + open_trades,
        esps=session.scalar(select(func.count()).select_from(models.Esp)) or 0,
    )


@dataclass(frozen=True)
class Activity:
    block_number: int
    log_index: int
    contract: str
    name: str
    args: dict[str, Any]


def recent_activity(session: Session, *, limit: int = 20) -> list[Activity]:
    """The latest indexed chain events, newest first."""
    event = models.ChainEvent
    rows = session.scalars(select(event).order_by(event.block_number.desc(), event.log_index.desc()).limit(limit))
    return [Activity(e.block_number, e.log_index, e.contract, e.name, dict(e.args)) for e in rows]


def product_rows(session: Session, *, limit: int, offset: int) -> tuple[list[Row[Any]], int]:
    """A page of products, newest first, and how many there are."""
    table = models.Product.__table__
    rows = list(session.execute(select(table).order_by(table.c.token_id.desc()).limit(limit).offset(offset)))
    return rows, session.scalar(select(func.count()).select_from(table)) or 0


@dataclass(frozen=True)
class Ownership:
    block_number: int
    from_address: str
    to_address: str


@dataclass
class ProductView:
    product: models.Product
    prompt_hash: str | None
    owners: list[Ownership]
    challenges: list[models.Challenge]
    trades: list[models.Trade]


def product_view(session: Session, *, token_id: int) -> ProductView | None:
    """A product with its task's prompt hash, its owner history (Transfer events), challenges and trades."""
    product = session.get(models.Product, token_id)
    if product is None:
        return None
    task = session.get(models.Task, product.task_id) if product.task_id is not None else None
    prompt_hash = str(task.opening["prompt_hash"]) if task is not None and task.opening else None
    event = models.ChainEvent
    # A token's transfers come at or after its registration's block: that bound spares most rows the JSON lookup.
    transfers = session.execute(
        select(event.block_number, event.log_index, event.args).where(
            event.name == "Transfer", event.block_number >= product.block_number, event.args["tokenId"].as_integer() == token_id
        )
    ).all()
    owners = [
        Ownership(row.block_number, str(row.args["from"]), str(row.args["to"]))
        for row in sorted(transfers, key=lambda row: (row.block_number, row.log_index))
    ]
    challenges = list(
        session.scalars(
            select(models.Challenge)
            .where(or_(models.Challenge.original_id == token_id, models.Challenge.duplicate_id == token_id))
            .order_by(models.Challenge.id)
        )
    )
    trades = list(session.scalars(select(models.Trade).where(models.Trade.token_id == token_id).order_by(models.Trade.id)))
    return ProductView(product, prompt_hash, owners, challenges, trades)


@dataclass(frozen=True)
class RatingRow:
    block_number: int
    producer: str
    positive: bool
    score: int
    at: int
    lock_id: str


@dataclass(frozen=True)
class Job:
    task_id: int
    lock_id: str | None
    state: str
    fee_wei: int
    predicted_s: float | None
    measured_s: float | None
    token_id: int | None


@dataclass
class EspView:
    esp: models.Esp
    jobs_by_state: dict[str, int]
    products: int
    ratings: list[RatingRow]
    jobs: list[Job] = field(default_factory=list)


def rated_events(session: Session) -> list[Any]:
    """Every indexed Rated event as (block, log index, args) rows, in chain order (read once per page)."""
    event = models.ChainEvent
    rows = session.execute(select(event.block_number, event.log_index, event.args).where(event.name == "Rated")).all()
    return sorted(rows, key=lambda row: (row.block_number, row.log_index))


def ratings_of(session: Session, *, esp: str, events: list[Any] | None = None) -> list[RatingRow]:
    """The Rated events of one ESP, oldest first (from `events`, `rated_events`, when given)."""
    wanted = esp.lower()
    return [
        RatingRow(
            row.block_number,
            str(row.args["producer"]),
            bool(row.args["positive"]),
            int(row.args["score"]),
            int(row.args["at"]),
            str(row.args["lockId"]),
        )
        for row in (rated_events(session) if events is None else events)
        if str(row.args["esp"]).lower() == wanted
    ]


def esp_view(session: Session, *, address: str, block_time: Any, jobs: int = 50, events: list[Any] | None = None) -> EspView | None:
    """An ESP with its jobs by state, its products, the ratings it received and its latest `jobs` jobs, each
    with the latency the placement predicted and the one measured on chain (lock block to reveal block,
    by `block_time(number)`)."""
    esp = session.scalar(select(models.Esp).where(func.lower(models.Esp.address) == address.lower()))
    if esp is None:
        return None
    by_state = dict(
        session.execute(
            select(models.Task.state, func.count()).where(models.Task.esp_id == esp.id).group_by(models.Task.state)
        ).all()
    )
    products = session.scalar(select(func.count()).where(models.Product.esp == esp.address)) or 0
    view = EspView(
        esp, {str(k): int(v) for k, v in by_state.items()}, products, ratings_of(session, esp=esp.address, events=events)
    )
    tasks = list(
        session.scalars(select(models.Task).where(models.Task.esp_id == esp.id).order_by(models.Task.id.desc()).limit(jobs))
    )
    lock_ids = [t.lock_id for t in tasks if t.lock_id]
    blocks: dict[tuple[str, str], int] = {}
    if lock_ids:
        event = models.ChainEvent
        for e in session.scalars(
            select(event).where(event.name.in_(("GenerationLocked", "Withdrawn")), event.args["id"].as_string().in_(lock_ids))
        ):
            blocks[(e.name, str(e.args["id"]))] = e.block_number
    for task in tasks:
        measured = None
        locked, revealed = blocks.get(("GenerationLocked", task.lock_id or "")), blocks.get(("Withdrawn", task.lock_id or ""))
        if locked is not None and revealed is not None:
            start, end = block_time(locked), block_time(revealed)
            measured = None if start is None or end is None else float(end - start)
        view.jobs.append(Job(task.id, task.lock_id, str(task.state), int(task.fee_wei), task.latency_s, measured, task.token_id))
    return view


@dataclass(frozen=True)
class ReputationPoint:
    at: int
    trust: float
    belief: float
    disbelief: float
    uncertainty: float


def reputation_history(
    session: Session, *, esp: models.Esp, period_s: float, now: int, points: int = 12, events: list[Any] | None = None
) -> list[ReputationPoint]:
    """The ESP's MWSL opinion (T, b, d, u, averaged over every producer that has rated anyone by now) after each
    of its ratings (at most `points` of them, evenly spread, the last always kept) and at `now`: the model of
    GET /esps/{address}/reputation (`api/reputation.py`), fed the ratings in chain order (`events`, from
    `rated_events`, when given), so that its last point is that route's answer."""
    column = {str(address).lower(): index - 1 for address, index in session.execute(select(models.Esp.address, models.Esp.id))}
    n_esps = max(1, max(column.values(), default=0) + 1)
    ratings: list[Rating] = []
    producers: dict[str, int] = {}
    mine: list[int] = []
    for e in rated_events(session) if events is None else events:
        esp_col = column.get(str(e.args["esp"]).lower())
        if esp_col is None:
            continue
        row = producers.setdefault(str(e.args["producer"]).lower(), len(producers))
        ratings.append(Rating(row, esp_col, bool(e.args["positive"]), int(e.args["at"]) / period_s, float(e.args["score"])))
        if esp_col == esp.id - 1:
            mine.append(len(ratings) - 1)
    if len(mine) > points:
        step = len(mine) / points
        mine = sorted({mine[int(i * step)] for i in range(points)} | {mine[-1]})
    mwsl = MWSL(MARKET_REPUTATION, max(1, len(producers)), n_esps)
    history: list[ReputationPoint] = []
    fed = 0
    column_of = esp.id - 1
    for index in [*mine, None]:
        upto = len(ratings) if index is None else index + 1
        if upto > fed:
            mwsl.observe_records(ratings[fed:upto])
            fed = upto
        at = now if index is None else int(round(ratings[index].t * period_s))
        t_now = max(now / period_s, max((r.t for r in ratings), default=0.0)) if index is None else ratings[index].t
        history.append(_opinion(mwsl, column_of, t_now, at))
    return history


def _opinion(mwsl: MWSL, column: int, now: float, at: int) -> ReputationPoint:
    """T, b, d, u of ESP `column` averaged over every producer row, from one fusion (T = b + a u is linear, so
    its mean is mean(b) + a mean(u)); what `api.reputation.opinion_of` gives with no producer named."""
    fused = mwsl.fused(now)
    b, d, u = (
        float(densify(col, fused.pairs, rated, mwsl.n_producers)[:, column].mean())
        for col, rated in zip(fused.column, fused.rated, strict=True)
    )
    return ReputationPoint(at, b + float(mwsl.base_rates()[column]) * u, b, d, u)


@dataclass
class LockView:
    lock_id: str
    kind: str
    """generation or purchase."""
    state: str
    sender: str
    receiver: str
    amount_wei: int
    hashlock: str | None
    timelock: int
    token_id: int | None = None
    task_id: int | None = None
    trade_id: int | None = None


def lock_view(session: Session, *, lock_id: str) -> LockView | None:
    """The escrow (HTLC) with id `lock_id`: a task's generation lock, a trade's purchase lock, or one seen
    only on chain (locked outside this server), with its state from the Withdrawn / Refunded events."""
    lock_id = lock_id.lower()
    task = session.scalar(select(models.Task).where(models.Task.lock_id == lock_id))
    if task is not None:
        out = crud.task_out(session, task)
        return LockView(
            lock_id, "generation", str(task.state), out.producer, out.esp, int(task.fee_wei), task.hashlock, task.timelock,
            token_id=task.token_id, task_id=task.id,
        )  # fmt: skip
    trade = session.scalar(select(models.Trade).where(models.Trade.lock_id == lock_id))
    if trade is not None:
        sold = crud.trade_out(session, trade)
        return LockView(
            lock_id, "purchase", str(trade.state), sold.buyer, sold.seller, int(trade.price_wei), trade.hashlock, trade.timelock,
            token_id=trade.token_id, trade_id=trade.id,
        )  # fmt: skip
    event = models.ChainEvent
    events = list(
        session.scalars(
            select(event)
            .where(
                event.name.in_(("GenerationLocked", "PurchaseLocked", "Withdrawn", "Refunded")),
                event.args["id"].as_string() == lock_id,
            )
            .order_by(event.block_number, event.log_index)
        )
    )
    opened = next((e for e in events if e.name.endswith("Locked")), None)
    if opened is None:
        return None
    ended = {e.name for e in events}
    state = "claimed" if "Withdrawn" in ended else "refunded" if "Refunded" in ended else "locked"
    args = opened.args
    if opened.name == "GenerationLocked":
        return LockView(
            lock_id, "generation", "delivered" if state == "claimed" else state, str(args["producer"]), str(args["esp"]),
            int(args["fee"]), str(args["hashlock"]), int(args["timelock"]),
        )  # fmt: skip
    return LockView(
        lock_id, "purchase", state, str(args["buyer"]), str(args["seller"]), int(args["price"]), str(args["hashlock"]),
        int(args["timelock"]), token_id=int(args["tokenId"]),
    )  # fmt: skip


def resolve(session: Session, *, query: str) -> str | None:
    """Where the search box sends `query`: a token id, a content hash, a lock id or an address; None when
    nothing matches."""
    text = query.strip()
    if TOKEN.match(text):
        token_id = int(text.lstrip("#"))
        return f"/explore/products/{token_id}" if session.get(models.Product, token_id) is not None else None
    if HASH32.match(text):
        value = text.lower()
        product = session.scalar(
            select(models.Product.token_id).where(models.Product.content_hash == value).order_by(models.Product.token_id).limit(1)
        )
        if product is not None:
            return f"/explore/products/{product}"
        if lock_view(session, lock_id=value) is not None:
            return f"/explore/locks/{value}"
        return None
    if ADDRESS.match(text):
        known = session.scalar(select(models.Esp.address).where(func.lower(models.Esp.address) == text.lower()))
        if known is not None:
            return f"/explore/esps/{known}"
        return f"/explore/address/{text}" if address_known(session, address=text) else None
    return None


def address_known(session: Session, *, address: str) -> bool:
    """Whether the address is an account of this server or appears as a producer, ESP or owner of a product."""
    product = models.Product
    lowered = address.lower()
    if crud.account_by_address(session, address) is not None:
        return True
    return (
        session.scalar(
            select(product.token_id)
            .where(
                or_(
                    func.lower(product.producer) == lowered,
                    func.lower(product.owner) == lowered,
                    func.lower(product.esp) == lowered,
                )
            )
            .limit(1)
        )
        is not None
    )


def address_products(session: Session, *, address: str, limit: int = 200) -> tuple[list[Row[Any]], list[Row[Any]]]:
    """The products an address produced and those it owns now (at most `limit` of each)."""
    table = models.Product.__table__
    lowered = address.lower()
    produced = list(
        session.execute(select(table).where(func.lower(table.c.producer) == lowered).order_by(table.c.token_id).limit(limit))
    )
    owned = list(session.execute(select(table).where(func.lower(table.c.owner) == lowered).order_by(table.c.token_id).limit(limit)))
    return produced, owned


@dataclass(frozen=True)
class Similar:
    token_id: int
    distance: int
    perceptual_hash: str
    revoked: bool


def similar_products(session: Session, *, phash: int, limit: int = 20, max_distance: int = 64) -> list[Similar]:
    """Products whose pHash is within `max_distance` bits of `phash`, nearest first (ties by token id)."""
    table = models.Product.__table__
    found = [
        Similar(row.token_id, distance, row.perceptual_hash, row.revoked)
        for row in session.execute(select(table.c.token_id, table.c.perceptual_hash, table.c.revoked))
        if (distance := hamming_distance(int(row.perceptual_hash, 16), phash)) <= max_distance
    ]
    found.sort(key=lambda s: (s.distance, s.token_id))
    return found[:limit]


def esp_rows(session: Session) -> list[models.Esp]:
    return list(session.scalars(select(models.Esp).order_by(models.Esp.id)))


def simulations_of(session: Session, *, account_id: int) -> list[models.Simulation]:
    return list(
        session.scalars(
            select(models.Simulation)
            .where(models.Simulation.account_id == account_id)
            .order_by(models.Simulation.created_at.desc())
        )
    )


def account_by_cookie(session: Session, *, key_hash: str) -> models.Account | None:
    """The account whose API-key hash the explorer's cookie carries."""
    if not key_hash or len(key_hash) > 128:
        return None
    return session.scalar(select(models.Account).where(models.Account.api_key_hash == key_hash))


def stake_of(session: Session, *, esp: str) -> int | None:
    """What the ESP staked, from its latest indexed EspRegistered event (None when none is indexed)."""
    event = models.ChainEvent
    rows = session.execute(select(event.block_number, event.log_index, event.args).where(event.name == "EspRegistered")).all()
    mine = sorted((r for r in rows if str(r.args["esp"]).lower() == esp.lower()), key=lambda r: (r.block_number, r.log_index))
    return int(mine[-1].args["stake"]) if mine else None
