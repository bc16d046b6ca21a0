"""Request body limit and Idempotency-Key replay, in front of every route, as plain ASGI middleware.

Plain ASGI (not `@app.middleware("http")`, which wraps every request in extra tasks and memory
streams): a request that neither middleware concerns costs one dictionary lookup each.

Body limit: a declared `Content-Length` over the limit is 413 `body_too_large` before anything is
read; a body without one (chunked) is read up to the limit and then handed on, or refused.

Idempotency: a write (POST/PATCH) with `Idempotency-Key` from an authenticated account is run
once. The key is claimed first (a row unique per account and key, so this holds across processes),
with a hash of method, path, query and body; the write marks the claim `committed` in its own
database transaction, before any indexing (`api.state.mark_committed`); the reply (status < 500) is
stored before it is sent. The same key with the same request then replays that reply (header
`Idempotent-Replayed: true`) without a second transaction; with a different request it is 409
`idempotency_key_reused`. A reply that carries a secret (`Cache-Control: no-store`: a new API key)
is never stored: a replay is 409 `idempotent_reply_withheld`. A write that committed but whose reply
failed (5xx) is never run again: a replay is 409 `idempotent_reply_lost` (read the resource instead).
A request that failed before committing anything releases its claim, so a retry runs. While the
first request with a key still runs elsewhere, the same key is 409 `idempotency_in_progress`.
Keyed writes of one account are serialised (a lock per account, not one for the server).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_response
from api.models import Account, AccountSession, IdempotencyState, IdempotentReply, expired
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
    """413 for a body over `max_body_bytes`; an ESP node's offer, which carries the ciphertext, may be
    `max_offer_bytes`."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, max_offer_bytes: int | None = None) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_offer_bytes = max_offer_bytes or max_body_bytes

    def limit_of(self, scope: Scope) -> int:
        path = scope["path"]
        if scope["method"] == "POST" and path.startswith("/esp/jobs/") and path.endswith("/offer"):
            return self.max_offer_bytes
        return self.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_of(scope)
        length = Headers(scope=scope).get("content-length")
        if length is not None:
            if not length.isdigit() or int(length) > limit:
                await self.too_large()(scope, receive, send)
                return
        elif scope["method"] in WRITE_METHODS:
            body = await read_body(receive, limit)
            if body is None:
                await self.too_large()(scope, receive, send)
                return
            receive = replay_receive(body, receive)
        await self.app(scope, receive, send)

    def too_large(self) -> Response:
        return error_response(413, "body_too_large", f"request bodies are limited to {self.max_body_bytes} bytes")


#: What an Idempotency-Key may be: 1 to 128 visible ASCII characters.
IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,128}$")


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._locks: dict[int, asyncio.Lock] = {}
        self._users: dict[int, int] = {}

    @asynccontextmanager
    async def account_lock(self, account_id: int) -> AsyncIterator[None]:
        """The keyed writes of one account run one at a time; other accounts' do not wait for them."""
        lock = self._locks.setdefault(account_id, asyncio.Lock())
        self._users[account_id] = self._users.get(account_id, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._users[account_id] -= 1
            if not self._users[account_id]:
                del self._users[account_id], self._locks[account_id]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PATCH"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        key = headers.get("idempotency-key")
        if key is None:
            await self.app(scope, receive, send)
            return
        if not IDEMPOTENCY_KEY.match(key):
            await error_response(422, "invalid_idempotency_key", "Idempotency-Key must be 1 to 128 visible ASCII characters")(
                scope, receive, send
            )
            return
        state: AppState = scope["app"].state.market
        account_id = await run_in_threadpool(_account_id, state, headers.get("authorization", ""))
        if account_id is None:
            await self.app(scope, receive, send)  # the route answers 401 (or, POST /accounts, runs unkeyed)
            return
        body = await read_body(receive) or b""
        digest = hashlib.sha256(
            b"\n".join([scope["method"].encode(), scope["path"].encode(), scope.get("query_string", b""), body])
        ).hexdigest()
        async with self.account_lock(account_id):
            stored = await run_in_threadpool(_claim, state, account_id, key, digest)
            if stored is not None:
                await replay(stored, digest)(scope, receive, send)
                return
            scope.setdefault("state", {})["idempotency"] = (account_id, key)
            start: Message = {}
            chunks: list[bytes] = []

            async def capture(message: Message) -> None:
                nonlocal start
                if message["type"] == "http.response.start":
                    start = message
                elif message["type"] == "http.response.body":
                    chunks.append(message.get("body", b""))

            try:
                await self.app(scope, replay_receive(body, receive), capture)
            except BaseException:
                await run_in_threadpool(_release, state, account_id, key)
                raise
            content = b"".join(chunks)
            status = int(start["status"])
            response_headers = MutableHeaders(raw=list(start.get("headers", [])))
            if status < 500:
                withheld = "no-store" in response_headers.get("cache-control", "")
                await run_in_threadpool(_store, state, account_id, key, status, content, withheld)
            else:
                await run_in_threadpool(_release, state, account_id, key)
            response_headers["content-length"] = str(len(content))
            await send({"type": "http.response.start", "status": status, "headers": response_headers.raw})
            await send({"type": "http.response.body", "body": content})


def replay(stored: IdempotentReply, digest: str) -> Response:
    """The answer to a key already claimed: its stored reply, or why there is none."""
    if stored.request_hash != digest:
        return error_response(409, "idempotency_key_reused", "this Idempotency-Key was used with a different request")
    if stored.state == IdempotencyState.RUNNING:
        return error_response(409, "idempotency_in_progress", "the first request with this Idempotency-Key is still running")
    if stored.state == IdempotencyState.COMMITTED or stored.status_code is None:
        return error_response(
            409,
            "idempotent_reply_lost",
            "the write of the first request with this Idempotency-Key committed but its reply failed: it is not run "
            "again; read the resource instead",
        )
    if stored.withheld:
        return error_response(
            409,
            "idempotent_reply_withheld",
            "the first request with this Idempotency-Key succeeded; its reply carried a secret shown only once, "
            "so it is not stored",
        )
    return Response(stored.body, stored.status_code, media_type="application/json", headers={"Idempotent-Replayed": "true"})


def _account_id(state: AppState, authorization: str) -> int | None:
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token or len(token) > 200:
        return None
    digest = state.vault.key_hash(token)
    with state.sessions() as session:
        account = session.scalar(select(Account).where(Account.api_key_hash == digest))
        if account is not None:
            return account.id
        signed_in = session.get(AccountSession, digest)
        return signed_in.account_id if signed_in is not None and not expired(signed_in.expires_at) else None


def _claim(state: AppState, account_id: int, key: str, digest: str) -> IdempotentReply | None:
    """Claim `key` for this request (None), or the row of the request that claimed it first."""
    for _ in range(3):
        with state.sessions() as session:
            claim = IdempotentReply(
                account_id=account_id,
                key=key,
                request_hash=digest,
                state=IdempotencyState.RUNNING,
                worker_id=state.settings.worker_id,
            )
            session.add(claim)
            try:
                session.commit()
                return None
            except IntegrityError:
                session.rollback()
            stored = session.get(IdempotentReply, (account_id, key))
            if stored is not None:
                return stored
    raise RuntimeError("an Idempotency-Key claim kept vanishing")  # released three times in a row between two statements


def _store(state: AppState, account_id: int, key: str, status: int, body: bytes, withheld: bool) -> None:
    with state.sessions.begin() as session:
        session.execute(
            update(IdempotentReply)
            .where(IdempotentReply.account_id == account_id, IdempotentReply.key == key)
            .values(state=IdempotencyState.DONE, status_code=status, body=None if withheld else body, withheld=withheld)
        )


def _release(state: AppState, account_id: int, key: str) -> None:
    """Forget the claim of a request that failed before its write committed (a retry runs); keep a committed one."""
    with state.sessions.begin() as session:
        session.execute(
            delete(IdempotentReply).where(
                IdempotentReply.account_id == account_id,
                IdempotentReply.key == key,
                IdempotentReply.state == IdempotencyState.RUNNING,
            )
        )
