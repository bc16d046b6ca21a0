"""Annotated dependencies: the app state, a database session, the authenticated account.

They are `async def` on purpose: FastAPI runs a plain `def` dependency on the thread pool, and under
concurrent load each such hop (a thread switch and a fight for the GIL) costs more than the work
itself, an indexed lookup of one row. The same holds for the read-only routes, which are `async def`
and query the database inline; routes that talk to the chain stay `def` and run on the pool.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.errors import ApiError
from api.models import Account, AccountSession, expired
from api.security import SESSION_PREFIX
from api.state import AppState

bearer = HTTPBearer(auto_error=False, description="The API key returned once by POST /accounts.")


async def get_state(request: Request) -> AppState:
    # async: FastAPI runs a plain `def` dependency on the thread pool, a hop that costs more than this.
    state: AppState = request.app.state.market
    return state


State = Annotated[AppState, Depends(get_state)]


async def get_session(request: Request, state: State) -> AsyncIterator[Session]:
    """One session per request. Opening one does no I/O and closing one only hands its connection back
    to the pool, so both run on the event loop rather than costing two thread-pool hops per request.

    A request with a claimed Idempotency-Key carries its claim in `session.info`, where a write marks it
    committed in its own transaction (`api.state.mark_committed`)."""
    session = state.sessions()
    claim = getattr(request.state, "idempotency", None)
    if claim is not None:
        session.info["idempotency"] = claim
    try:
        yield session
    finally:
        session.close()


DB = Annotated[Session, Depends(get_session)]


async def current_account(
    state: State, session: DB, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Account:
    """The account whose API key, or signed-in session token, is in `Authorization: Bearer <key>`; 401 otherwise."""
    if credentials is None or not credentials.credentials:
        raise ApiError(401, "missing_api_key", "this request needs Authorization: Bearer <api key>")
    key = credentials.credentials
    if len(key) > 200:
        raise ApiError(401, "invalid_api_key", "the API key is not valid")
    digest = state.vault.key_hash(key)
    if key.startswith(SESSION_PREFIX):  # a self-custodied account's session (Sign-In with Ethereum)
        signed_in = session.get(AccountSession, digest)
        if signed_in is None or expired(signed_in.expires_at):
            raise ApiError(401, "invalid_api_key", "the session token is not valid or has expired: sign in again")
        account = session.get(Account, signed_in.account_id)
        assert account is not None
        return account
    account = session.scalar(select(Account).where(Account.api_key_hash == digest))
    if account is None or account.api_key_hash is None or not state.vault.matches(key, account.api_key_hash):
        raise ApiError(401, "invalid_api_key", "the API key is not valid")
    return account


CurrentAccount = Annotated[Account, Depends(current_account)]
