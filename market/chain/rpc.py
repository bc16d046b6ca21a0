"""A lean JSON-RPC 2.0 client over HTTP/1.1 keep-alive, for the calls on a transaction's path.

web3.py runs every call through a stack of middlewares and result formatters and sends it with
`requests`; for the handful of calls a transaction needs (estimate, pending block, nonce, send,
receipt, logs) that machinery costs ~8 ms of CPU per transaction against ~1.5 ms here (measured
on anvil). The results come back as the node sent them (hex strings): callers parse what they use.

Each thread keeps its own connection (`http.client` connections are not thread-safe). A call that
finds its kept-alive connection closed by the node is sent again once on a fresh connection, except
where `retry=False` (sending a transaction: the caller decides whether the first one arrived).
"""

from __future__ import annotations

import http.client
import json
import threading
from dataclasses import dataclass
from itertools import count
from typing import Any
from urllib.parse import urlsplit

from market.chain.errors import ChainError, RpcUnreachableError

#: Error code of a node that does not know a method (JSON-RPC 2.0).
METHOD_NOT_FOUND = -32601


@dataclass
class RpcError(ChainError):
    """The node answered a call with a JSON-RPC error (for a revert, `data` holds the revert bytes as hex)."""

    method: str
    code: int
    message: str
    data: Any = None

    def __post_init__(self) -> None:
        super().__init__(str(self))

    def __str__(self) -> str:
        return f"{self.method}: {self.message} (code {self.code})"


class JsonRpcClient:
    """JSON-RPC over one keep-alive HTTP(S) connection per thread."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise RpcUnreachableError(f"not an http(s) JSON-RPC URL: {url}")
        self.url = url
        self.timeout = timeout
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._local = threading.local()
        self._ids = count(1)

    def call(self, method: str, params: list[Any], *, retry: bool = True) -> Any:
        """The result of `method(params)`; `RpcError` if the node answers with an error."""
        reply = self._post({"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}, retry)
        if not isinstance(reply, dict):
            raise ChainError(f"{method}: malformed JSON-RPC reply")
        return _result(method, reply)

    def batch(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        """The results of several calls sent in one request, in order; an error is returned, not raised."""
        ids = [next(self._ids) for _ in calls]
        payload = [{"jsonrpc": "2.0", "id": i, "method": m, "params": p} for i, (m, p) in zip(ids, calls, strict=True)]
        replies = self._post(payload, True)
        if not isinstance(replies, list):
            if isinstance(replies, dict) and "error" in replies:
                # A node without batch support answers one error for the whole request: one call at a time.
                return [self._call_or_error(method, params) for method, params in calls]
            raise ChainError("malformed JSON-RPC batch reply")
        by_id = {reply.get("id"): reply for reply in replies if isinstance(reply, dict)}
        results: list[Any] = []
        for i, (method, _) in zip(ids, calls, strict=True):
            reply = by_id.get(i)
            if reply is None:
                results.append(ChainError(f"{method}: no reply in the batch"))
                continue
            try:
                results.append(_result(method, reply))
            except RpcError as exc:
                results.append(exc)
        return results

    def _call_or_error(self, method: str, params: list[Any]) -> Any:
        try:
            return self.call(method, params)
        except RpcError as exc:
            return exc

    def close(self) -> None:
        """Close this thread's connection (others close when their threads end)."""
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None

    def _post(self, payload: Any, retry: bool) -> Any:
        body = json.dumps(payload, separators=(",", ":")).encode()
        while True:
            connection, reused = self._connection()
            try:
                return self._exchange(connection, body)
            except (http.client.HTTPException, OSError) as exc:
                self.close()
                # A kept-alive connection may have been closed by the node while idle: one fresh try
                # (a fresh connection is never reused, so this loops at most twice).
                if not (reused and retry):
                    raise RpcUnreachableError(f"no answer from the JSON-RPC node at {self.url}: {exc.__class__.__name__}") from exc

    def _exchange(self, connection: http.client.HTTPConnection, body: bytes) -> Any:
        connection.request("POST", self._path, body, {"Content-Type": "application/json"})
        response = connection.getresponse()
        data = response.read()
        if response.status != 200 and not data.startswith((b"{", b"[")):
            raise ChainError(f"the JSON-RPC node at {self.url} answered HTTP {response.status}")
        try:
            return json.loads(data)
        except ValueError as exc:
            raise ChainError(f"the JSON-RPC node at {self.url} answered something that is not JSON") from exc

    def _connection(self) -> tuple[http.client.HTTPConnection, bool]:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            return connection, True
        cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        connection = cls(self._host, self._port, timeout=self.timeout)
        self._local.connection = connection
        return connection, False


def _result(method: str, reply: dict[str, Any]) -> Any:
    if "error" in reply:
        raise _error(method, reply["error"])
    return reply.get("result")


def _error(method: str, error: Any) -> RpcError:
    if not isinstance(error, dict):
        return RpcError(method, 0, str(error))
    return RpcError(method, int(error.get("code", 0)), str(error.get("message", "")), error.get("data"))
