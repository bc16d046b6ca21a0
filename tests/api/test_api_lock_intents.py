"""Lock intents: a task or trade row is committed before its lock is sent, so a server that dies in between
never leaves a fee or a price locked on chain that no request can refund."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from api_helpers import new_account, new_esp
from fastapi.testclient import TestClient

from api.main import create_app
from api.settings import Settings
from market.chain.connection import Chain
from market.chain.errors import RpcUnreachableError


class ServerKilled(Exception):
    """Stands for the process dying: the route's open transaction is lost, its committed intent stays."""


def die(around: Callable[..., Any], *, before_sending: bool, error: Exception | None = None) -> Callable[..., Any]:
    """`around`, but the server 'dies' (or raises `error`) before it sends (nothing on chain) or right after
    the lock is mined."""

    def dying(*args: Any, **kwargs: Any) -> Any:
        if not before_sending:
            around(*args, **kwargs)
        raise error if error is not None else ServerKilled

    return dying


def only_task(client: TestClient, headers: dict[str, str]) -> dict[str, Any]:
    page = client.get("/tasks", headers=headers).json()
    assert page["total"] == 1
    return page["items"][0]


def test_a_lock_sent_before_the_server_died_is_recovered_and_refundable(
        client: TestClient, chain: Chain, monkeypatch: pytest.MonkeyPatch) -> None:
    esp, _ = new_esp(client, profile="cheating")
    producer, headers = new_account(client)
    exchange = client.app.state.market.market.exchange  # type: ignore[attr-defined]
    monkeypatch.setattr(exchange, "lock_generation", die(exchange.lock_generation, before_sending=False))
    assert client.post("/tasks", json={"prompt": "cut off", "esp": esp}, headers=headers).status_code == 500
    monkeypatch.undo()

    task = only_task(client, headers)
    assert task["state"] == "locked" and task["lock_id"] is not None  # completed by the indexer from Locked
    assert exchange.balance() == task["fee_wei"]
    before = chain.balance(producer)
    chain.advance_time(client.app.state.market.settings.lock_duration_s + 1)  # type: ignore[attr-defined]
    refunded = client.post(f"/tasks/{task['id']}/refund", headers=headers)
    assert refunded.status_code == 200 and refunded.json()["state"] == "refunded"
    assert exchange.balance() == 0 and chain.balance(producer) > before


def test_a_lock_whose_reply_was_lost_stays_an_intent_and_is_recovered(
        client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """The node stops answering after it took the lock, so the chain layer cannot tell whether the lock
    was sent (tests/market/chain/test_rpc.py): 503, and the intent is kept, not deleted."""
    esp, _ = new_esp(client)
    _, headers = new_account(client)
    exchange = client.app.state.market.market.exchange  # type: ignore[attr-defined]
    cut_off = RpcUnreachableError("no answer from the JSON-RPC node: RemoteDisconnected")
    monkeypatch.setattr(exchange, "lock_generation", die(exchange.lock_generation, before_sending=False, error=cut_off))
    reply = client.post("/tasks", json={"prompt": "cut off", "esp": esp}, headers=headers)
    assert reply.status_code == 503 and reply.json()["code"] == "chain_unreachable"
    monkeypatch.undo()
    task = only_task(client, headers)
    assert task["state"] == "locked" and task["lock_id"] is not None
    assert exchange.balance() == task["fee_wei"]


def test_an_intent_whose_lock_never_left_is_abandoned_after_its_timelock(
        make_settings: Callable[..., Settings], chain: Chain, monkeypatch: pytest.MonkeyPatch) -> None:
    with TestClient(create_app(make_settings()), raise_server_exceptions=False) as client:
        esp, _ = new_esp(client)
        _, headers = new_account(client)
        exchange = client.app.state.market.market.exchange  # type: ignore[attr-defined]
        monkeypatch.setattr(exchange, "lock_generation", die(exchange.lock_generation, before_sending=True))
        assert client.post("/tasks", json={"prompt": "never sent", "esp": esp}, headers=headers).status_code == 500
        monkeypatch.undo()
        pending = only_task(client, headers)
        assert pending["state"] == "pending" and pending["lock_id"] is None
        refused = client.post(f"/tasks/{pending['id']}/refund", headers=headers)
        assert refused.status_code == 409 and refused.json()["code"] == "lock_pending"
        assert exchange.balance() == 0
    chain.advance_time(make_settings().lock_duration_s + 1)
    with TestClient(create_app(make_settings())) as client:  # the restart's recovery
        assert only_task(client, headers)["state"] == "abandoned"


def test_a_refused_lock_leaves_no_intent_behind(client: TestClient) -> None:
    esp, _ = new_esp(client)
    _, headers = new_account(client)
    reply = client.post("/tasks", json={"prompt": "too dear", "esp": esp, "fee_wei": 10**30}, headers=headers)
    assert 400 <= reply.status_code < 500
    assert client.get("/tasks", headers=headers).json()["total"] == 0


def test_a_purchase_lock_sent_before_the_server_died_is_recovered_and_refundable(
        client: TestClient, chain: Chain, monkeypatch: pytest.MonkeyPatch) -> None:
    esp, _ = new_esp(client)
    _, seller = new_account(client)
    buyer_address, buyer = new_account(client)
    task = client.post("/tasks", json={"prompt": "for sale", "esp": esp}, headers=seller).json()
    token = client.post("/products", json={"task_id": task["id"]}, headers=seller).json()["token_id"]
    exchange = client.app.state.market.market.exchange  # type: ignore[attr-defined]
    monkeypatch.setattr(exchange, "lock_purchase", die(exchange.lock_purchase, before_sending=False))
    reply = client.post("/trades", json={"token_id": token, "price_wei": 10**15}, headers=buyer)
    assert reply.status_code == 500
    monkeypatch.undo()

    trades = client.get("/trades", headers=buyer).json()["items"]
    assert len(trades) == 1 and trades[0]["state"] == "locked" and trades[0]["lock_id"] is not None
    assert exchange.balance() == 10**15
    before = chain.balance(buyer_address)
    chain.advance_time(client.app.state.market.settings.lock_duration_s + 1)  # type: ignore[attr-defined]
    refunded = client.post(f"/trades/{trades[0]['id']}/refund", headers=buyer)
    assert refunded.status_code == 200 and refunded.json()["state"] == "refunded"
    assert exchange.balance() == 0 and chain.balance(buyer_address) > before
