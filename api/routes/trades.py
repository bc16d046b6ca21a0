"""Trades: purchase HTLCs between two accounts of this server.

POST /trades (buyer): the server draws the seller's secret s, the buyer locks the price under
sha256(s) (s is kept sealed for the seller). POST /trades/{id}/claim (seller only): approve the
exchange for the token and reveal s; token, price and royalty move in that one transaction.
POST /trades/{id}/refund (buyer only): after the timelock, when the seller never claimed.
"""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import or_, select

from api import crud, models
from api.deps import DB, CurrentAccount, State
from api.errors import ApiError, forbidden, not_found
from api.routes.common import ERRORS, IdPath, Limit, Offset
from api.schemas import Page, TradeCreate, TradeOut
from market.chain.errors import ContractRevert
from market.chain.hashlocks import hashlock_of, new_secret

router = APIRouter(prefix="/trades", tags=["trades"])


@router.post("", status_code=201, response_model=TradeOut, responses=ERRORS)
def open_trade(body: TradeCreate, state: State, session: DB, account: CurrentAccount) -> TradeOut:
    registry = state.market.registry
    try:
        owner = registry.owner_of(body.token_id)
    except ContractRevert as exc:
        raise not_found(f"product {body.token_id}") from exc
    seller = crud.account_by_address(session, owner)
    if seller is None:
        raise ApiError(409, "seller_not_served", "the product's owner has no account on this server to claim a sale")
    if seller.id == account.id:
        raise ApiError(422, "self_trade", "the caller already owns this product")
    signer = state.signer(account)
    secret = new_secret()
    hashlock = hashlock_of(secret)
    hashlock_hex = "0x" + hashlock.hex()  # the row's hashlock, also what its sealed secret is bound to
    with state.writing(session):
        timelock = state.chain.now() + state.settings.lock_duration_s
        trade = models.Trade(hashlock=hashlock_hex, token_id=body.token_id, buyer_id=account.id,
                             seller_id=seller.id, price_wei=str(body.price_wei), timelock=timelock,
                             encrypted_secret=state.vault.seal(secret, hashlock_hex))
        state.lock_as_intent(session, trade, lambda: state.market.exchange.lock_purchase(
            signer, body.token_id, hashlock, timelock, body.price_wei))
    return crud.trade_out(session, trade)


@router.get("", response_model=Page[TradeOut])
async def list_trades(session: DB, account: CurrentAccount, limit: Limit = 50, offset: Offset = 0) -> Page[TradeOut]:
    """The caller's trades, as buyer or seller."""
    query = select(models.Trade).where(or_(models.Trade.buyer_id == account.id, models.Trade.seller_id == account.id))
    rows, total = crud.page(session, query.order_by(models.Trade.id), limit, offset)
    return Page[TradeOut](items=[crud.trade_out(session, t) for t in rows], total=total, limit=limit, offset=offset)


@router.get("/{trade_id}", response_model=TradeOut, responses=ERRORS)
async def get_trade(trade_id: IdPath, session: DB, account: CurrentAccount) -> TradeOut:
    trade = crud.get_or_404(session, models.Trade, trade_id, f"trade {trade_id}")
    if account.id not in (trade.buyer_id, trade.seller_id):
        raise forbidden("this trade is between other accounts")
    return crud.trade_out(session, trade)


@router.post("/{trade_id}/claim", response_model=TradeOut, responses=ERRORS)
def claim(trade_id: IdPath, state: State, session: DB, account: CurrentAccount) -> TradeOut:
    trade = crud.get_or_404(session, models.Trade, trade_id, f"trade {trade_id}")
    if trade.seller_id != account.id:
        raise forbidden("only the seller of this trade can claim it")
    signer = state.signer(account)
    lock_id = crud.lock_of(trade)
    secret = state.vault.open(trade.encrypted_secret, crud.secret_context(trade))
    market = state.market
    with state.writing(session):
        market.registry.approve(signer, market.exchange.address, trade.token_id)
        market.exchange.withdraw(signer, lock_id, secret)
        trade.state = "claimed"
    return crud.trade_out(session, trade)


@router.post("/{trade_id}/refund", response_model=TradeOut, responses=ERRORS)
def refund(trade_id: IdPath, state: State, session: DB, account: CurrentAccount) -> TradeOut:
    trade = crud.get_or_404(session, models.Trade, trade_id, f"trade {trade_id}")
    if trade.buyer_id != account.id:
        raise forbidden("only the buyer of this trade can refund it")
    signer = state.signer(account)
    with state.writing(session):
        state.market.exchange.refund(signer, crud.lock_of(trade))
        trade.state = "refunded"
    return crud.trade_out(session, trade)
