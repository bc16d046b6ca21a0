"""Rate limits in front of every route: token buckets per client address, per account and for account creation.

A bucket holds up to `burst` tokens and refills at `rate` tokens per second; a request takes one. An
empty bucket answers 429 `rate_limited` with `Retry-After` (whole seconds until a token is there),
before the request is read any further. Three families of buckets, each in process (one server
process holds the chain lock anyway):

- per client address (`Settings.rate_limit_per_s`, `rate_limit_burst`): every request;
- per account (`account_rate_limit_per_s`, `account_rate_limit_burst`): every request that carries an
  API key, keyed by the key's HMAC, so an account is limited from any number of addresses without a
  database lookup (a made-up key gets a bucket of its own and is still limited by its address);
- account creation per client address (`account_creations_per_hour`, `account_creation_burst`):
  POST /accounts, a free supply of identities otherwise.

The client address is the TCP peer's; X-Forwarded-For is believed only from `Settings.trusted_proxies`
(the right-most address that is not a trusted proxy). An IPv6 client is keyed by its /64, the block one
host usually holds. Each family keeps at most `MAX_KEYS` buckets, the least recently used are
forgotten first (a forgotten bucket is a full one).

With several workers (`serve --workers N`) each worker keeps its own buckets with 1/N of every rate
and burst (`worker_share`): a documented share of the budget rather than a bucket in the database,
because a bucket there costs a database round trip (and a row lock every client's requests contend
for) on every request, reads included, which would cost the reads more than the second worker
gains them. A client never gets more than its budget: its connections spread over the workers,
and the shares add up to it; a client whose connections all land on one worker gets 1/N of it
(docs/api.md#several-workers).

Written here rather than taken from a library: a bucket is a dozen lines, and it gives the wait
until the next token directly, which is what `Retry-After` needs.
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from api.errors import error_response
from api.security import Vault

#: Buckets kept per family (about 100 bytes each).
MAX_KEYS = 100_000


class TokenBuckets:
    """One token bucket per key, all with the same rate and burst; thread-safe."""

    def __init__(self, rate_per_s: float, burst: int, clock: Callable[[], float] = time.monotonic, max_keys: int = MAX_KEYS):
        self.rate = rate_per_s
        self.burst = float(burst)
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def take(self, key: str, cost: float = 1.0) -> float:
        """Take `cost` tokens from `key`'s bucket: 0.0 if they were there, else the seconds until they will be
        (nothing is taken then)."""
        if not self.enabled:
            return 0.0
        now = self.clock()
        with self._lock:
            tokens, stamp = self._buckets.pop(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - stamp) * self.rate)
            if tokens >= cost:
                tokens -= cost
                wait = 0.0
            else:
                wait = (cost - tokens) / self.rate
            self._buckets[key] = (tokens, now)
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
            return wait


def worker_share(workers: int) -> Callable[[float, int], TokenBuckets]:
    """Buckets of one worker of `workers`: 1/workers of a rate and of a burst (at least one token)."""

    def share(rate_per_s: float, burst: int) -> TokenBuckets:
        return TokenBuckets(rate_per_s / workers, max(1, burst // workers))

    return share


def client_key(host: str | None) -> str:
    """The rate-limit key of a client address: the address itself, or its /64 for IPv6."""
    if not host:
        return "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host[:64]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{address}/64", strict=False))
    return str(address)


def client_address(scope: Scope, trusted_proxies: Iterable[str] = ()) -> str:
    """The client's rate-limit key: the TCP peer, or what a trusted proxy says it forwarded for."""
    peer = scope.get("client")
    host = peer[0] if peer else None
    trusted = set(trusted_proxies)
    if host in trusted:
        forwarded = Headers(scope=scope).get("x-forwarded-for", "")
        for hop in reversed([part.strip() for part in forwarded.split(",") if part.strip()]):
            if hop not in trusted:
                host = hop
                break
    return client_key(host)


#: The requests that can make a new identity (an API-key account, a sign-in that may create one): the account-creation budget.
IDENTITY_PATHS = ("/accounts", "/auth/sign-in")


class RateLimitMiddleware:
    """429 `rate_limited` + Retry-After when a bucket of the request's client, account or account creation is empty."""

    def __init__(
        self,
        app: ASGIApp,
        vault: Vault,
        per_client: TokenBuckets,
        per_account: TokenBuckets,
        account_creation: TokenBuckets,
        trusted_proxies: Iterable[str] = (),
    ) -> None:
        self.app = app
        self.vault = vault
        self.per_client, self.per_account, self.account_creation = per_client, per_account, account_creation
        self.trusted_proxies = tuple(trusted_proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        client = client_address(scope, self.trusted_proxies)
        scope.setdefault("state", {})["client"] = client
        wait = self.per_client.take(client)
        if not wait and self.per_account.enabled:
            authorization = Headers(scope=scope).get("authorization", "")
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() == "bearer" and 0 < len(token) <= 200:
                wait = self.per_account.take(self.vault.key_hash(token))
        if not wait and scope["method"] == "POST" and scope["path"].rstrip("/") in IDENTITY_PATHS:
            wait = self.account_creation.take(client)
        if wait:
            retry_after = str(max(1, math.ceil(wait)))
            reply = error_response(
                429, "rate_limited", f"too many requests: retry after {retry_after} s", headers={"Retry-After": retry_after}
            )
            await reply(scope, receive, send)
            return
        await self.app(scope, receive, send)
