"""Annotated dependencies: the app state, a database session, the authenticated account."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.errors import ApiError
from api.models import Account
from api.state import AppState

bearer = HTTPBearer(auto_error=False, description="The API key returned once by POST /accounts.")


def get_state(request: Request) -> AppState:
    return request.app.state.market


State = Annotated[AppState, Depends(get_state)]


def get_session(state: State) -> Iterator[Session]:
    with state.sessions() as session:
        yield session


DB = Annotated[Session, Depends(get_session)]


def current_account(
    state: State, session: DB, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Account:
    """The account whose API key is in `Authorization: Bearer <key>`; 401 otherwise."""
    if credentials is None or not credentials.credentials:
        raise ApiError(401, "missing_api_key", "this request needs Authorization: Bearer <api key>")
    key = credentials.credentials
    if len(key) > 200:
        raise ApiError(401, "invalid_api_key", "the API key is not valid")
    digest = state.vault.key_hash(key)
    account = session.scalar(select(Account).where(Account.api_key_hash == digest))
    if account is None or not state.vault.matches(key, account.api_key_hash):
        raise ApiError(401, "invalid_api_key", "the API key is not valid")
    return account


CurrentAccount = Annotated[Account, Depends(current_account)]
