"""Indexer idempotence, restart on the same SQLite file, refusal to start on another chain."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from api_helpers import new_account, new_esp, new_product, pass_challenge_window, squat_content_of
from fastapi.testclient import TestClient
from sqlalchemy import delete, func, select, update

from api.main import create_app
from api.models import Account, ChainEvent, ChainMeta, Challenge, Esp, IndexerCursor, Product
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


def projections(app) -> list[list[tuple]]:  # noqa: ANN001
    """Every column the indexer writes, table by table."""
    with app.state.market.sessions() as session:
        return [
            [tuple(r) for r in session.execute(query)]
            for query in (
                select(Product).with_only_columns(*Product.__table__.c).order_by(Product.token_id),
                select(Esp.address, Esp.positives, Esp.negatives, Esp.stake_state).order_by(Esp.id),
                select(Challenge.original_id, Challenge.duplicate_id, Challenge.upheld).order_by(Challenge.id),
                select(ChainEvent.block_number, ChainEvent.log_index, ChainEvent.name, ChainEvent.args).order_by(
                    ChainEvent.block_number, ChainEvent.log_index
                ),
            )
        ]


def test_an_emptied_index_is_rebuilt_from_the_chain(client: TestClient, chain: Chain) -> None:
    """Products (linked to their tasks by lock id), displacement, bonds, sales, challenges, ratings and ESP
    states come back the same from the events alone."""
    populate(client)
    esp, _ = new_esp(client)
    copier, _ = new_esp(client)
    _, early = new_account(client)
    late_address, late = new_account(client)
    _, buyer = new_account(client)
    first = client.post("/tasks", json={"prompt": "contested", "esp": esp}, headers=early).json()
    squat_content_of(client, first["id"], copier, late_address)  # displaced by the next registration
    token = client.post("/products", json={"task_id": first["id"]}, headers=early).json()["token_id"]
    _, other = new_product(client, esp, early, "another")
    pass_challenge_window(client, chain)
    assert client.post(f"/products/{token}/bond", headers=early).status_code == 200
    trade = client.post("/trades", json={"token_id": token, "price_wei": 10**15}, headers=buyer).json()
    assert client.post(f"/trades/{trade['id']}/claim", headers=early).json()["state"] == "claimed"
    _, late_product = new_product(client, esp, early, "late one")
    assert client.post(f"/products/{token}/challenges", json={"duplicate_id": late_product}, headers=buyer).status_code == 201
    assert client.post("/credits/withdraw", headers=early).status_code == 200
    state = client.app.state.market  # type: ignore[attr-defined]
    with state.sessions() as session:
        leaving = session.scalar(select(Account).join(Esp, Esp.account_id == Account.id).where(Esp.address == copier))
        state.protocol.announce_exit(state.signer(leaving))
    state.indexer.run_once()
    before = projections(client.app)
    assert any(row[6] for row in before[0]) and any(row[-1] for row in before[0])  # revoked, bond released
    assert ("exiting" in {row[3] for row in before[1]}) and before[2]
    with state.sessions.begin() as session:  # forget everything the indexer wrote
        for model in (Product, Challenge, ChainEvent):
            session.execute(delete(model))
        session.execute(update(Esp).values(positives=0, negatives=0, stake_state="active"))
        session.execute(update(IndexerCursor).values(last_block=0))
    state.indexer.last_block = -1
    assert state.indexer.run_once() == len(before[3])
    assert projections(client.app) == before


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
