"""Request body limit and Idempotency-Key replay, in front of every route.

Idempotency: a write (POST/PATCH) with `Idempotency-Key` from an authenticated account is run
once; its reply (status < 500) is stored with a hash of method, path, query and body. The same key
with the same request replays that reply (header `Idempotent-Replayed: true`) without a second
transaction; with a different request it is 409 `idempotency_key_reused`. Keyed writes are
serialised so that two concurrent replays cannot both run.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from api.errors import error_response
from api.models import Account, IdempotentReply
from api.state import AppState

Next = Callable[[Request], Awaitable[Response]]


def install(app: FastAPI, max_body_bytes: int) -> None:
    idempotency_lock = asyncio.Lock()

    @app.middleware("http")
    async def idempotency(request: Request, call_next: Next) -> Response:
        key = request.headers.get("idempotency-key")
        if key is None or request.method not in ("POST", "PATCH"):
            return await call_next(request)
        if not 1 <= len(key) <= 128:
            return error_response(422, "invalid_idempotency_key", "Idempotency-Key must be 1 to 128 characters")
        state: AppState = request.app.state.market
        account_id = await run_in_threadpool(_account_id, state, request.headers.get("authorization", ""))
        if account_id is None:
            return await call_next(request)  # the route answers 401
        body = await request.body()
        digest = hashlib.sha256(b"\n".join([request.method.encode(), request.url.path.encode(),
                                            request.url.query.encode(), body])).hexdigest()
        async with idempotency_lock:
            stored = await run_in_threadpool(_lookup, state, account_id, key)
            if stored is not None:
                if stored.request_hash != digest:
                    return error_response(409, "idempotency_key_reused",
                                          "this Idempotency-Key was used with a different request")
                return Response(stored.body, stored.status_code, media_type="application/json",
                                headers={"Idempotent-Replayed": "true"})
            response = await call_next(request)
            chunks = [chunk async for chunk in response.body_iterator]  # type: ignore[attr-defined]
            content = b"".join(c if isinstance(c, bytes) else c.encode() for c in chunks)
            if response.status_code < 500:
                await run_in_threadpool(_store, state, account_id, key, digest, response.status_code, content)
            headers = {k: v for k, v in response.headers.items() if k.lower() != "content-length"}
            return Response(content, response.status_code, headers=headers)

    @app.middleware("http")
    async def body_limit(request: Request, call_next: Next) -> Response:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > max_body_bytes):
            return error_response(413, "body_too_large", f"request bodies are limited to {max_body_bytes} bytes")
        # A body without Content-Length (chunked) is read here, cached for the route, and measured.
        if length is None and request.method in ("POST", "PUT", "PATCH") and len(await request.body()) > max_body_bytes:
            return error_response(413, "body_too_large", f"request bodies are limited to {max_body_bytes} bytes")
        return await call_next(request)


def _account_id(state: AppState, authorization: str) -> int | None:
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token or len(token) > 200:
        return None
    with state.sessions() as session:
        account = session.scalar(select(Account).where(Account.api_key_hash == state.vault.key_hash(token)))
        return account.id if account is not None else None


def _lookup(state: AppState, account_id: int, key: str) -> IdempotentReply | None:
    with state.sessions() as session:
        return session.get(IdempotentReply, (account_id, key))


def _store(state: AppState, account_id: int, key: str, digest: str, status: int, body: bytes) -> None:
    with state.sessions.begin() as session:
        session.add(IdempotentReply(account_id=account_id, key=key, request_hash=digest, status_code=status, body=body))
