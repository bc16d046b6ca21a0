"""Indexer idempotence, restart on the same SQLite file, refusal to start on another chain."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from api_helpers import new_account, new_esp
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from api.main import create_app
from api.models import ChainEvent, ChainMeta, Esp, IndexerCursor, Product
from api.node import ChainMismatchError
from api.settings import Settings
from market.chain.connection import Chain


def snapshot(app) -> tuple[int, list[tuple[int, int]], list[tuple[str, int, int]], list[tuple[int, str | None]]]:  # noqa: ANN001
    with app.state.market.sessions() as session:
        count = session.scalar(select(func.count()).select_from(ChainEvent)) or 0
        logs = [tuple(r) for r in session.execute(select(ChainEvent.block_number, ChainEvent.log_index).order_by(ChainEvent.id))]
        esps = [tuple(r) for r in session.execute(select(Esp.address, Esp.positives, Esp.negatives).order_by(Esp.id))]
        products = [tuple(r) for r in session.execute(select(Product.token_id, Product.owner).order_by(Product.token_id))]
    return count, logs, esps, products


def populate(client: TestClient) -> None:
    esp, _ = new_esp(client)
    _, headers = new_account(client)
    task = client.post("/tasks", json={"prompt": "p", "esp": esp}, headers=headers).json()
    client.post("/products", json={"task_id": task["id"]}, headers=headers)
    client.post(f"/tasks/{task['id']}/rating", json={"positive": True, "score": 5}, headers=headers)


def test_indexer_runs_twice_and_from_zero_without_double_counting(client: TestClient) -> None:
    populate(client)
    app = client.app
    state = app.state.market  # type: ignore[attr-defined]
    before = snapshot(app)
    assert before[0] > 0 and before[2][0][1] == 1
    assert state.indexer.run_once() == 0
    with state.sessions.begin() as session:  # forget the cursor: everything is read again
        session.execute(update(IndexerCursor).values(last_block=0))
    assert state.indexer.run_once() == 0
    assert snapshot(app) == before


def test_restart_keeps_state_and_resumes(make_settings: Callable[..., Settings], chain: Chain) -> None:
    settings = make_settings()
    with TestClient(create_app(settings)) as client:
        populate(client)
        before = snapshot(client.app)
        cursor = client.get("/health").json()["indexed_block"]
    # While the server is down, someone moves ether: new blocks, no market events.
    chain.send_ether(chain.funder, chain.funder.address, 1)
    with TestClient(create_app(make_settings())) as client:
        assert snapshot(client.app) == before
        health = client.get("/health").json()
        assert health["indexed_block"] == health["block"] > cursor
        assert client.get("/products/1").json()["owner"] is not None
        populate(client)
        assert snapshot(client.app)[0] > before[0]


def test_refuses_another_chain(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    create_app(settings)  # deploys and records the chain
    with pytest.raises(ChainMismatchError, match="no contract there"):
        create_app(make_settings(chain=Chain.embedded()))
    app = create_app(make_settings())
    with app.state.market.sessions.begin() as session:
        session.execute(update(ChainMeta).values(chain_id=1))
    with pytest.raises(ChainMismatchError, match="indexes chain 1"):
        create_app(make_settings())
