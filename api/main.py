"""The app factory: `create_app(settings)` builds every piece of state and stores it on `app.state`.

Start order: database and migrations, server secret, chain (injected, --rpc or supervised anvil),
contracts (deployed once, or checked against what the database recorded: a different chain is
refused), the protocol with the server's market terms (checked against the deployment's parameters),
indexer catch-up, the ESPs' memory of their commitments (from the tasks), simulation runs left over
from a killed server marked interrupted.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import crud, errors
from api.db import make_engine, migrate, session_factory
from api.indexer import Indexer
from api.middleware import BodyLimitMiddleware, IdempotencyMiddleware
from api.node import bind_market, open_chain
from api.routes import accounts, credits, esps, health, products, simulations, tasks, trades
from api.security import Vault
from api.settings import Settings
from api.simulations import SimulationRunner
from api.state import AppState
from market.content import ContentStore
from market.protocol import Protocol

log = logging.getLogger("api")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.database_url())
    migrate(engine)
    sessions = session_factory(engine)
    vault = Vault(settings.server_secret())
    handle = open_chain(settings)
    try:
        market = bind_market(handle.chain, sessions, settings)
        terms = settings.market_terms()
        terms.check_against(market.params())
        protocol = Protocol(market, terms)
        indexer = Indexer(market, sessions)
        indexer.run_once()
        with sessions.begin() as session:
            abandoned = crud.abandon_stale_intents(session, handle.chain.now())
        if abandoned:
            log.warning("%d lock intents expired with no lock on chain: marked abandoned", abandoned)
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
    )
    state.remember_commitments()
    runner = SimulationRunner(sessions, settings.data_dir / "simulations", settings.max_running_simulations)
    runner.recover()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        runner.shutdown()
        handle.stop()
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
    # The last added runs first: the body limit is checked before an idempotent write reads the body.
    app.add_middleware(IdempotencyMiddleware)
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=settings.max_body_bytes)
    for module in (accounts, esps, tasks, products, trades, credits, simulations, health):
        app.include_router(module.router)
    return app
