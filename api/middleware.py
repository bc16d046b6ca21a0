"""Request body limit and Idempotency-Key replay, in front of every route, as plain ASGI middleware.

Plain ASGI (not `@app.middleware("http")`, which wraps every request in extra tasks and memory
streams): a request that neither middleware concerns costs one dictionary lookup each.

Body limit: a declared `Content-Length` over the limit is 413 `body_too_large` before anything is
read; a body without one (chunked) is read up to the limit and then handed on, or refused.

Idempotency: a write (POST/PATCH) with `Idempotency-Key` from an authenticated account is run
once; its reply (status < 500) is stored with a hash of method, path, query and body before it is
sent. The same key with the same request replays that reply (header `Idempotent-Replayed: true`)
without a second transaction; with a different request it is 409 `idempotency_key_reused`. Keyed
writes are serialised so that two concurrent replays cannot both run.
"""

from __future__ import annotations

import asyncio
import hashlib

from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_response
from api.models import Account, IdempotentReply
from api.state import AppState

WRITE_METHODS = ("POST", "PUT", "PATCH")


async def read_body(receive: Receive, limit: int | None = None) -> bytes | None:
    """The whole request body, or None as soon as it grows past `limit` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if limit is not None and size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def replay_receive(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands the already read `body` to the app once, then defers to the real one."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = Headers(scope=scope).get("content-length")
        if length is not None:
            if not length.isdigit() or int(length) > self.max_body_bytes:
                await self.too_large()(scope, receive, send)
                return
        elif scope["method"] in WRITE_METHODS:
            body = await read_body(receive, self.max_body_bytes)
            if body is None:
                await self.too_large()(scope, receive, send)
                return
            receive = replay_receive(body, receive)
        await self.app(scope, receive, send)

    def too_large(self) -> Response:
        return error_response(413, "body_too_large", f"request bodies are limited to {self.max_body_bytes} bytes")


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.lock = asyncio.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PATCH"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        key = headers.get("idempotency-key")
        if key is None:
            await self.app(scope, receive, send)
            return
        if not 1 <= len(key) <= 128:
            await error_response(422, "invalid_idempotency_key", "Idempotency-Key must be 1 to 128 characters")(
                scope, receive, send
            )
            return
        state: AppState = scope["app"].state.market
        account_id = await run_in_threadpool(_account_id, state, headers.get("authorization", ""))
        if account_id is None:
            await self.app(scope, receive, send)  # the route answers 401
            return
        body = await read_body(receive) or b""
        digest = hashlib.sha256(
            b"\n".join([scope["method"].encode(), scope["path"].encode(), scope.get("query_string", b""), body])
        ).hexdigest()
        async with self.lock:
            stored = await run_in_threadpool(_lookup, state, account_id, key)
            if stored is not None:
                if stored.request_hash != digest:
                    reply: Response = error_response(
                        409, "idempotency_key_reused", "this Idempotency-Key was used with a different request"
                    )
                else:
                    reply = Response(
                        stored.body, stored.status_code, media_type="application/json", headers={"Idempotent-Replayed": "true"}
                    )
                await reply(scope, receive, send)
                return
            start: Message = {}
            chunks: list[bytes] = []

            async def capture(message: Message) -> None:
                nonlocal start
                if message["type"] == "http.response.start":
                    start = message
                elif message["type"] == "http.response.body":
                    chunks.append(message.get("body", b""))

            await self.app(scope, replay_receive(body, receive), capture)
            content = b"".join(chunks)
            status = int(start["status"])
            if status < 500:
                await run_in_threadpool(_store, state, account_id, key, digest, status, content)
            response_headers = MutableHeaders(raw=list(start.get("headers", [])))
            response_headers["content-length"] = str(len(content))
            await send({"type": "http.response.start", "status": status, "headers": response_headers.raw})
            await send({"type": "http.response.body", "body": content})


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
