"""Sign-In with Ethereum (EIP-4361) for self-custodied accounts, and what a client needs to know of the chain.

POST /auth/nonce issues a nonce; POST /auth/sign-in takes the signed message (api/siwe.py checks it),
spends the nonce, creates the account on its first sign-in (custody self: no key on the server, funded
by the faucet like POST /accounts) and opens a session whose bearer token is shown once. GET /chain
tells clients and ESP nodes the chain id, its public JSON-RPC endpoint, the contracts, the market terms and
the exchange's EIP-712 domain (docs/api.md#self-custodied-accounts, docs/esp-node.md).
"""

from __future__ import annotations

import dataclasses
import secrets
from datetime import timedelta

from fastapi import APIRouter, Request, Response
from sqlalchemy import delete, update

from api import faucet, models
from api.deps import DB, State
from api.errors import ApiError
from api.ratelimit import client_key
from api.routes.common import ERRORS
from api.schemas import ChainInfo, SignedIn, SignIn, SignInNonce
from api.security import new_session_token
from api.siwe import SignInError, SignInMessage, verify_signature
from api.state import AppState
from api.states import Custody, Funding
from market.chain.offers import exchange_domain

router = APIRouter(tags=["sign-in"])


def expected_domain(state: AppState, request: Request) -> str:
    return state.settings.sign_in_domain or request.headers.get("host", "") or "localhost"


@router.post("/auth/nonce", status_code=201, response_model=SignInNonce, responses=ERRORS)
def sign_in_nonce(request: Request, state: State, session: DB) -> SignInNonce:
    """A fresh nonce for one sign-in message, good for `sign_in_nonce_ttl_s`."""
    nonce = secrets.token_hex(16)
    now = models.utcnow()
    expires_at = now + timedelta(seconds=state.settings.sign_in_nonce_ttl_s)
    # Spent and lapsed nonces are of no use: the table holds only the live ones (an unauthenticated route must
    # not grow the database without bound).
    session.execute(delete(models.SignInNonce).where(models.SignInNonce.expires_at <= now))
    session.add(models.SignInNonce(nonce=nonce, expires_at=expires_at, used=False))
    session.commit()
    domain = expected_domain(state, request)
    return SignInNonce(nonce=nonce, expires_at=expires_at, domain=domain, chain_id=state.chain.chain_id, uri=f"http://{domain}")


@router.post("/auth/sign-in", status_code=201, response_model=SignedIn, responses=ERRORS)
def sign_in(body: SignIn, request: Request, response: Response, state: State, session: DB) -> SignedIn:
    """Open a session for the message's address: 401 for a message or signature this server refuses."""
    now = models.utcnow()
    try:
        message = SignInMessage.parse(body.message)
        expires_at = message.check(
            domain=expected_domain(state, request),
            chain_id=state.chain.chain_id,
            now=now,
            max_lifetime_s=state.settings.session_max_s,
        )
        verify_signature(message, body.signature)
    except SignInError as exc:
        raise ApiError(401, exc.code, exc.detail) from exc
    # Spend the nonce: one statement, so that two sign-ins with it cannot both pass.
    spent = session.execute(
        update(models.SignInNonce)
        .where(models.SignInNonce.nonce == message.nonce, models.SignInNonce.used.is_(False), models.SignInNonce.expires_at > now)
        .values(used=True)
    )
    if spent.rowcount != 1:  # type: ignore[attr-defined]  # CursorResult of an UPDATE
        session.rollback()
        raise ApiError(401, "sign_in_nonce_invalid", "the nonce was not issued by this server, was used, or expired")
    account = session.query(models.Account).filter(models.Account.address == message.address).one_or_none()
    amount, funding = 0, Funding.OFF
    token = new_session_token()
    if account is None:
        client = getattr(request.state, "client", None) or client_key(request.client.host if request.client else None)
        with state.writing(session):
            amount, funding = faucet.decide(session, state.settings, state.chain.chain_id, client)
            account = models.Account(address=message.address, api_key_hash=None, encrypted_key=None, custody=Custody.SELF)
            session.add(account)
            session.flush()
            session.add(models.AccountSession(token_hash=state.vault.key_hash(token), account_id=account.id, expires_at=expires_at))
            if amount:
                session.add(models.FaucetGrant(client=client, account_id=account.id, amount_wei=str(amount)))
                state.chain.send_ether(state.chain.funder, message.address, amount)
    else:
        if account.custody != Custody.SELF:
            session.rollback()
            raise ApiError(409, "custody_mismatch", "this address has an API-key account on this server: use its API key")
        session.execute(
            delete(models.AccountSession).where(
                models.AccountSession.account_id == account.id, models.AccountSession.expires_at <= now
            )
        )
        session.add(models.AccountSession(token_hash=state.vault.key_hash(token), account_id=account.id, expires_at=expires_at))
        session.commit()
    response.headers["Cache-Control"] = "no-store"
    return SignedIn(address=message.address, token=token, expires_at=expires_at, funded_wei=amount, funding=funding)


@router.get("/chain", response_model=ChainInfo, responses=ERRORS)
async def chain_info(state: State) -> ChainInfo:
    chain, market = state.chain, state.market
    return ChainInfo(
        chain_id=chain.chain_id,
        rpc_url=state.settings.public_rpc_url or chain.rpc_url,
        deployment=market.deployment.to_json(),
        terms={k: int(v) for k, v in dataclasses.asdict(state.protocol.terms).items()},
        eip712_domain=exchange_domain(chain.chain_id, market.exchange.address),
    )
