"""The app factory: `create_app(settings)` builds every piece of state and stores it on `app.state`.

Start order: database and migrations, server secret, chain (injected, --rpc or supervised anvil,
identified by its marker before it is reused), the faucet's chain check (ether is given away only on
a development chain), contracts (deployed once, or checked against what the database recorded: a
different chain is refused), the protocol with the server's market terms (checked against the
deployment's parameters), indexer catch-up, Idempotency-Key claims of requests that died before
committing released, delivered tasks without content given it back, the ESPs' memory of their
commitments (from the tasks), simulation runs left over from a killed server marked interrupted and
old run folders removed. A worker of several (`serve --workers N`, `api.workers`) skips those recoveries
(its supervisor made them once) and, on PostgreSQL, shares the chain lock and the indexer with its
siblings (`api.advisory`, `api.indexer_leader`; docs/api.md#several-workers).

Middleware, outermost first: rate limits (429 before anything is read), body limit, idempotency.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from api import crud, errors
from api.advisory import ChainLock
from api.db import make_engine, migrate, session_factory
from api.explore import mount_explorer
from api.faucet import check_faucet
from api.indexer import Indexer
from api.indexer_leader import IndexerLeader
from api.middleware import BodyLimitMiddleware, IdempotencyMiddleware
from api.node import bind_market, open_chain
from api.ratelimit import RateLimitMiddleware, worker_share
from api.routes import accounts, auth, credits, esp_jobs, esps, health, products, simulations, tasks, trades
from api.security import Vault
from api.settings import Settings
from api.simulations import SimulationRunner
from api.state import AppState
from market.content import ContentStore
from market.protocol import Protocol

log = logging.getLogger("api")


def create_app(settings: Settings | None = None, *, recover: bool = True) -> FastAPI:
    """The app. `recover=False`: a worker of several (`api.workers`), whose start must not touch the state of the
    requests its siblings are serving (running Idempotency-Key claims, running simulations, pending intents):
    the supervisor recovered once before starting them."""
    settings = settings or Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database_url())
    migrate(engine)
    sessions = session_factory(engine)
    vault = Vault(settings.server_secret())
    handle = open_chain(settings)
    try:
        check_faucet(settings, handle.chain.chain_id)
        market = bind_market(handle.chain, sessions, settings)
        terms = settings.market_terms()
        terms.check_against(market.params())
        protocol = Protocol(market, terms)
        indexer = Indexer(market, sessions)
        indexer.run_once()
        if recover:
            with sessions.begin() as session:
                abandoned = crud.abandon_stale_intents(session, handle.chain.now())
                released = crud.release_stale_claims(session)
            if abandoned:
                log.warning("%d lock intents expired with no lock on chain: marked abandoned", abandoned)
            if released:
                log.warning("%d Idempotency-Key claims of requests cut off before committing released", released)
        chain_lock = ChainLock(engine)
    except BaseException:
        handle.stop()
        engine.dispose()
        raise
    state = AppState(
        settings=settings,
        engine=engine,
        sessions=sessions,
        vault=vault,
        handle=handle,
        market=market,
        protocol=protocol,
        indexer=indexer,
        store=ContentStore(settings.data_dir / "content"),
        chain_lock=chain_lock,
    )
    if recover:
        recovered = state.recover_contents()
        if recovered:
            log.warning("%d delivered tasks without content: content recovered", recovered)
    state.remember_commitments()
    runner = SimulationRunner(sessions, settings.data_dir / "simulations", settings)
    if recover:
        runner.recover()
    leader = IndexerLeader(state, settings.indexer_poll_s) if settings.workers > 1 and chain_lock.shared else None

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if leader is not None:
            leader.start()
        yield
        if leader is not None:
            leader.stop()
        runner.shutdown()
        handle.stop()
        chain_lock.close()
        engine.dispose()

    app = FastAPI(
        title="AIGC market",
        version="0.1.0",
        lifespan=lifespan,
        description="Blockchain-backed marketplace for AI-generated content at the edge (docs/architecture.md).",
    )
    app.state.market = state
    app.state.simulations = runner
    errors.install(app)
    # The last added runs first: rate limits before anything is read, the body limit before an idempotent
    # write reads the body.
    app.add_middleware(IdempotencyMiddleware)
    # An ESP node's offer carries its ciphertext, base64 (4/3 of it) in JSON.
    offer_bytes = settings.max_content_bytes * 4 // 3 + settings.max_body_bytes
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=settings.max_body_bytes, max_offer_bytes=offer_bytes)
    # Several workers: each one limits its share of every budget (docs/api.md#several-workers).
    share = worker_share(settings.workers)
    app.add_middleware(
        RateLimitMiddleware,
        vault=vault,
        per_client=share(settings.rate_limit_per_s, settings.rate_limit_burst),
        per_account=share(settings.account_rate_limit_per_s, settings.account_rate_limit_burst),
        account_creation=share(settings.account_creations_per_hour / 3600, settings.account_creation_burst),
        trusted_proxies=settings.trusted_proxies,
    )
    for module in (accounts, auth, esps, esp_jobs, tasks, products, trades, credits, simulations, health):
        app.include_router(module.router)
    mount_explorer(app)  # the web pages under /explore (docs/explorer.md)
    serve_bounds_in_schema(app, fee_floor=market.exchange.fee_floor(), max_periods=settings.max_simulation_periods)
    return app


def serve_bounds_in_schema(app: FastAPI, fee_floor: int, max_periods: int) -> None:
    """State this server's own bounds in its OpenAPI schema: the exchange's fee floor (fixed at deployment) as
    the least `fee_wei` of POST /tasks, and `max_simulation_periods` as the most `periods` of POST /simulations,
    so that a request the schema allows is one the server takes (those two are checked by the routes)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            models = schema["components"]["schemas"]
            for branch in models["TaskCreate"]["properties"]["fee_wei"].get("anyOf", []):
                if branch.get("type") == "integer":
                    branch.pop("exclusiveMinimum", None)
                    branch["minimum"] = fee_floor
            periods = models["SimulationCreate"]["properties"]["periods"]
            periods["maximum"] = min(periods.get("maximum", max_periods), max_periods)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
