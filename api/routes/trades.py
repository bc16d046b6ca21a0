"""Trades: purchase HTLCs between two accounts of this server, on final products only.

POST /trades (buyer): the server draws the seller's secret s, the buyer locks the price under
sha256(s) (`Protocol.lock_purchase`; s is kept sealed for the seller) as a lock intent whose id, the
digest of the purchase's terms, is recorded before the lock is sent. A product still inside its
challenge window cannot be bought: 409 `product_not_final`. POST /trades/{id}/claim (seller only):
approve the exchange for the token and reveal s (`Protocol.claim_sale`); the token moves to the
buyer, and price and royalty are credited (withdrawn with POST /credits/withdraw). POST
/trades/{id}/refund (buyer only, `Protocol.refund_purchase`): after the timelock when the seller
never claimed, or at once when the seller no longer owns the token. Claim and refund pass the
lock's terms back, rebuilt from the trade's row.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter
from sqlalchemy import delete, func, or_, select

from api import crud, custody, models
from api.deps import DB, CurrentAccount, State
from api.errors import ApiError, forbidden, not_found
from api.routes.common import ERRORS, SIGNATURE, IdPath, Limit, Offset
from api.schemas import ClaimCreate, Page, TradeCreate, TradeOut
from api.states import Custody, TradeState
from market.chain.contracts import LockKind, purchase_opened
from market.chain.errors import ContractRevert
from market.chain.hashlocks import hashlock_of, new_secret
from market.chain.offers import Purchase, purchase_id

log = logging.getLogger("api.trades")

router = APIRouter(prefix="/trades", tags=["trades"])


@router.post("", status_code=201, response_model=TradeOut, responses=ERRORS | SIGNATURE)
def open_trade(body: TradeCreate, state: State, session: DB, account: CurrentAccount) -> TradeOut:
    """The buyer locks the price of a final product under the seller's hashlock (the server draws the secret).

    A self-custodied buyer signs the lock: the first request draws the terms and keeps them as a `prepared`
    trade (428 with the lock to sign); the same request with `signed_transaction` locks exactly those."""
    if account.custody == Custody.SELF:
        return open_trade_signed(body, state, session, account)
    signer = state.signer(account)
    secret = new_secret()
    hashlock = hashlock_of(secret)
    hashlock_hex = "0x" + hashlock.hex()  # the row's hashlock, also what its sealed secret is bound to
    protocol, chain, exchange = state.protocol, state.chain, state.market.exchange
    with state.writing(session):
        # The terms that `Protocol.lock_purchase` will lock, read under the chain lock, which every write of
        # this server holds: the seller is the token's owner, the timelock counts from the latest block.
        seller = seller_of(state, session, body.token_id, account)
        timelock = chain.now() + protocol.terms.lock_duration_s
        terms = Purchase(account.address, seller.address, body.token_id, body.price_wei, hashlock, timelock)
        trade = models.Trade(
            hashlock=hashlock_hex,
            token_id=body.token_id,
            buyer_id=account.id,
            seller_id=seller.id,
            price_wei=str(body.price_wei),
            timelock=timelock,
            encrypted_secret=state.vault.seal(secret, hashlock_hex),
        )
        opened = state.lock_as_intent(
            session,
            trade,
            purchase_id(terms, chain_id=chain.chain_id, exchange=exchange.address),
            lambda: protocol.lock_purchase(signer, body.token_id, hashlock, body.price_wei, timelock=timelock),
        )
        if opened.terms != terms:  # another client's block came in between: record what was locked
            trade.timelock = opened.terms.timelock
            moved_to = crud.account_by_address(session, opened.terms.seller)
            if moved_to is not None:
                trade.seller_id = moved_to.id
            else:
                log.error("trade %s: the token moved to %s, not served here, while it was locked", trade.id, opened.terms.seller)
    return crud.trade_out(session, trade)


def open_trade_signed(body: TradeCreate, state: State, session: DB, account: models.Account) -> TradeOut:
    """A self-custodied buyer's trade: prepared (terms drawn, 428), then locked with the buyer's signature."""
    exchange = state.market.exchange
    prepared = session.scalar(
        select(models.Trade)
        .where(
            models.Trade.buyer_id == account.id,
            models.Trade.token_id == body.token_id,
            models.Trade.price_wei == str(body.price_wei),
            models.Trade.state == TradeState.PREPARED,
        )
        .order_by(models.Trade.id.desc())
    )
    if body.signed_transaction is None or prepared is None:
        if body.signed_transaction is not None:
            raise ApiError(409, "trade_not_prepared", "ask without signed_transaction first: the server draws the terms")
        prepared = prepare_trade(body, state, session, account)
    terms = crud.purchase_terms(session, prepared)
    call = exchange.call_of("lockPurchase", terms.token_id, terms.hashlock, terms.timelock, value=terms.price)
    send = custody.sender(state, account, body.signed_transaction, call=call, parse=purchase_opened, as_server=custody.never)
    with state.writing(session):
        state.lock_as_intent(session, prepared, purchase_id(terms, chain_id=state.chain.chain_id, exchange=exchange.address), send)
    return crud.trade_out(session, prepared)


def seller_of(state: State, session: DB, token_id: int, buyer: models.Account) -> models.Account:
    """The account of the token's owner on chain: 404 for an unknown token, 409 `seller_not_served` when the owner
    has no account here (nobody could claim the sale), `self_trade` when it is the buyer."""
    try:
        owner = state.market.registry.owner_of(token_id)
    except ContractRevert as exc:
        raise not_found(f"product {token_id}") from exc
    seller = crud.account_by_address(session, owner)
    if seller is None:
        raise ApiError(409, "seller_not_served", "the product's owner has no account on this server to claim a sale")
    if seller.id == buyer.id:
        raise ApiError(409, "self_trade", "the caller already owns this product")
    return seller


def prepare_trade(body: TradeCreate, state: State, session: DB, account: models.Account) -> models.Trade:
    """Draw a self-custodied buyer's terms (the seller's secret sealed here) and keep them `prepared`.

    A prepared trade is no lock and holds nothing, but it is a row and a sealed secret per request: the buyer's
    earlier prepared terms for the same token are replaced (only the newest would be matched anyway), those
    whose timelock can no longer be locked are deleted, and at most `prepared_trades_per_account` remain
    (429 `too_many_prepared_trades`)."""
    seller = seller_of(state, session, body.token_id, account)
    now = state.chain.now()
    lapsed = or_(models.Trade.token_id == body.token_id, models.Trade.timelock < now + state.market.exchange.min_timelock())
    session.execute(
        delete(models.Trade).where(models.Trade.buyer_id == account.id, models.Trade.state == TradeState.PREPARED, lapsed)
    )
    waiting = session.scalar(
        select(func.count())
        .select_from(models.Trade)
        .where(models.Trade.buyer_id == account.id, models.Trade.state == TradeState.PREPARED)
    )
    if (waiting or 0) >= state.settings.prepared_trades_per_account:
        session.commit()
        raise ApiError(
            429,
            "too_many_prepared_trades",
            f"{waiting} prepared trades of this account wait for their signed locks: sign them or let them lapse first",
        )
    secret = new_secret()
    hashlock_hex = "0x" + hashlock_of(secret).hex()
    trade = models.Trade(
        hashlock=hashlock_hex,
        token_id=body.token_id,
        buyer_id=account.id,
        seller_id=seller.id,
        price_wei=str(body.price_wei),
        timelock=now + state.protocol.terms.lock_duration_s,
        encrypted_secret=state.vault.seal(secret, hashlock_hex),
        state=TradeState.PREPARED,
    )
    session.add(trade)
    session.commit()
    return trade


@router.get("", response_model=Page[TradeOut], responses=ERRORS)
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


@router.post("/{trade_id}/claim", response_model=TradeOut, responses=ERRORS | SIGNATURE)
def claim(trade_id: IdPath, state: State, session: DB, account: CurrentAccount, body: ClaimCreate | None = None) -> TradeOut:
    """The seller reveals its secret: the token moves, price and royalty are credited. A self-custodied seller
    signs what it sends (428): first the exchange's approval for the token if it lacks one, then the claim."""
    trade = crud.get_or_404(session, models.Trade, trade_id, f"trade {trade_id}")
    if trade.seller_id != account.id:
        raise forbidden("only the seller of this trade can claim it")
    terms = crud.purchase_of(session, trade)
    # The secret is revealed only for the lock of exactly the recorded terms: their digest must be the
    # trade's lock id, the secret must open its hashlock, and the chain must hold that id as a purchase
    # lock still locked (a lock on other terms, a copied hashlock at 1 wei say, has another id).
    lock_id = purchase_id(terms, chain_id=state.chain.chain_id, exchange=state.market.exchange.address)
    secret = state.vault.open(trade.encrypted_secret, crud.secret_context(trade))
    if "0x" + lock_id.hex() != trade.lock_id or hashlock_of(secret) != terms.hashlock:
        log.error("trade %s: its recorded terms do not hash to its lock id %s", trade.id, trade.lock_id)
        raise ApiError(409, "lock_mismatch", "the trade's recorded terms do not match its lock: nothing revealed")
    state.check_lock(lock_id, LockKind.PURCHASE)
    # `Protocol.claim_sale` approves the exchange first, which only the owner can: a seller who no longer
    # owns the token gets the exchange's verdict here, not ERC-721's.
    try:
        owner = state.market.registry.owner_of(trade.token_id)
    except ContractRevert as exc:
        raise ApiError(409, "product_revoked", f"product {trade.token_id} was revoked: it cannot be delivered") from exc
    if owner != account.address:
        raise ApiError(
            409, "seller_not_owner", f"product {trade.token_id} no longer belongs to the seller: the buyer can refund at once"
        )
    signed = None if body is None else body.signed_transaction
    registry, exchange = state.market.registry, state.market.exchange
    if account.custody == Custody.SELF and not registry.exchange_may_move(account.address, trade.token_id, exchange.address):
        # The seller's own key approves the exchange first: this request sends the approval, the next the claim.
        send_approval = custody.sender(
            state,
            account,
            signed,
            call=registry.call_of("approve", exchange.address, trade.token_id),
            parse=lambda tx: tx,
            as_server=lambda key: registry.approve(key, exchange.address, trade.token_id),
        )
        with state.writing(session):
            send_approval()
        raise custody.signature_required(state, account, exchange.call_of("withdrawPurchase", terms.as_tuple(), secret))
    send = custody.sender(
        state,
        account,
        signed,
        call=exchange.call_of("withdrawPurchase", terms.as_tuple(), secret),
        parse=lambda tx: tx,
        as_server=lambda key: state.protocol.claim_sale(key, terms, secret),
    )
    with state.writing(session):
        send()
        trade.state = TradeState.CLAIMED
    return crud.trade_out(session, trade)


@router.post("/{trade_id}/refund", response_model=TradeOut, responses=ERRORS | SIGNATURE)
def refund(trade_id: IdPath, state: State, session: DB, account: CurrentAccount, body: ClaimCreate | None = None) -> TradeOut:
    """The buyer takes the price back: after the timelock, or at once if the seller no longer owns the token."""
    trade = crud.get_or_404(session, models.Trade, trade_id, f"trade {trade_id}")
    if trade.buyer_id != account.id:
        raise forbidden("only the buyer of this trade can refund it")
    terms = crud.purchase_of(session, trade)
    send = custody.sender(
        state,
        account,
        None if body is None else body.signed_transaction,
        call=state.market.exchange.call_of("refundPurchase", terms.as_tuple()),
        parse=lambda tx: tx,
        as_server=lambda key: state.protocol.refund_purchase(key, terms, wait=False),  # the server never moves chain time
    )
    with state.writing(session):
        send()
        trade.state = TradeState.REFUNDED
    return crud.trade_out(session, trade)
