"""GET /health: the chain, the node, the indexer and the database in one look."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text

from api.deps import DB, State
from api.models import IndexerCursor
from api.routes.common import ERRORS
from api.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health, responses=ERRORS)
def health(state: State, session: DB) -> Health:
    session.execute(text("SELECT 1"))
    cursor = session.get(IndexerCursor, 1)
    alive = state.handle.alive()
    return Health(
        status="ok" if alive else "degraded",
        chain_id=state.chain.chain_id,
        block=state.chain.head(),
        backend=state.chain.backend,
        node_alive=alive,
        contracts=state.market.deployment.contracts,
        indexed_block=cursor.last_block if cursor else 0,
        database=state.engine.dialect.name,
    )
