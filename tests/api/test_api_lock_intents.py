"""Lock intents: a task or trade row is committed, with its lock's id, before its lock is sent, so a server that
dies in between never leaves a fee or a price locked on chain that no request can refund: the indexer
completes the row from GenerationLocked / PurchaseLocked by that id."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from api_helpers import new_account, new_esp, new_product, pass_challenge_window
from fastapi.testclient import TestClient

from api.main import create_app
from api.settings import Settings
from market.chain.connection import Chain
from market.chain.contracts import LockState
from market.chain.errors import RpcUnreachableError
from market.chain.offers import Offer, offer_id


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


def lock_duration(client: TestClient) -> int:
    return client.app.state.market.protocol.terms.lock_duration_s  # type: ignore[attr-defined]


def test_a_lock_sent_before_the_server_died_is_recovered_and_refundable(
    client: TestClient, chain: Chain, monkeypatch: pytest.MonkeyPatch
) -> None:
    esp, _ = new_esp(client, profile="cheating")
    producer, headers = new_account(client)
    exchange = client.app.state.market.market.exchange  # type: ignore[attr-defined]
    stakes = exchange.balance()
    monkeypatch.setattr(exchange, "lock_generation", die(exchange.lock_generation, before_sending=False))
    assert client.post("/tasks", json={"prompt": "cut off", "esp": esp}, headers=headers).status_code == 500
    monkeypatch.undo()

    task = only_task(client, headers)
    # Completed by the indexer from GenerationLocked, by the lock id the intent recorded before sending.
    assert task["state"] == "locked"
    assert exchange.generation_lock(Offer.from_json(task["offer"])).lock_id.hex() == task["lock_id"][2:]
    assert exchange.balance() == stakes + task["fee_wei"]
    before = chain.balance(producer)
    chain.advance_time(lock_duration(client) + 1)
    refunded = client.post(f"/tasks/{task['id']}/refund", headers=headers)
    assert refunded.status_code == 200 and refunded.json()["state"] == "refunded"
    assert exchange.balance() == stakes and chain.balance(producer) > before


def test_a_lock_whose_reply_was_lost_stays_an_intent_and_is_recovered(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """The node stops answering after it took the lock, so the chain layer cannot tell whether the lock
    was sent (tests/market/chain/test_rpc.py): 503, and the intent is kept, not deleted."""
    esp, _ = new_esp(client)
    _, headers = new_account(client)
    exchange = client.app.state.market.market.exchange  # type: ignore[attr-defined]
    stakes = exchange.balance()
    cut_off = RpcUnreachableError("no answer from the JSON-RPC node: RemoteDisconnected")
    monkeypatch.setattr(exchange, "lock_generation", die(exchange.lock_generation, before_sending=False, error=cut_off))
    reply = client.post("/tasks", json={"prompt": "cut off", "esp": esp}, headers=headers)
    assert reply.status_code == 503 and reply.json()["code"] == "chain_unreachable"
    monkeypatch.undo()
    task = only_task(client, headers)
    assert task["state"] == "locked"
    assert exchange.get_lock(bytes.fromhex(task["lock_id"][2:])).state is LockState.LOCKED
    assert exchange.balance() == stakes + task["fee_wei"]


def test_an_intent_whose_lock_never_left_is_abandoned_after_its_timelock(
    make_settings: Callable[..., Settings], chain: Chain, monkeypatch: pytest.MonkeyPatch
) -> None:
    with TestClient(create_app(make_settings()), raise_server_exceptions=False) as client:
        esp, _ = new_esp(client)
        _, headers = new_account(client)
        exchange = client.app.state.market.market.exchange  # type: ignore[attr-defined]
        stakes = exchange.balance()
        monkeypatch.setattr(exchange, "lock_generation", die(exchange.lock_generation, before_sending=True))
        assert client.post("/tasks", json={"prompt": "never sent", "esp": esp}, headers=headers).status_code == 500
        monkeypatch.undo()
        pending = only_task(client, headers)
        # The intent carries the id its lock will have (the offer's digest, the same off chain and on chain);
        # nothing is locked under it.
        offer = Offer.from_json(pending["offer"])
        expected = offer_id(offer, chain_id=chain.chain_id, exchange=exchange.address)
        assert pending["state"] == "pending" and pending["lock_id"] == "0x" + expected.hex()
        assert exchange.offer_id(offer) == expected and exchange.get_lock(expected).state is LockState.NONE
        refused = client.post(f"/tasks/{pending['id']}/refund", headers=headers)
        assert refused.status_code == 409 and refused.json()["code"] == "lock_pending"
        rating = client.post(f"/tasks/{pending['id']}/rating", json={"positive": False}, headers=headers)
        assert rating.status_code == 409 and rating.json()["code"] == "lock_pending"
        assert exchange.balance() == stakes
        duration = lock_duration(client)
    chain.advance_time(duration + 1)
    with TestClient(create_app(make_settings())) as client:  # the restart's recovery
        assert only_task(client, headers)["state"] == "abandoned"


def test_a_refused_lock_leaves_no_intent_behind(client: TestClient) -> None:
    esp, _ = new_esp(client)
    _, headers = new_account(client)
    reply = client.post("/tasks", json={"prompt": "too dear", "esp": esp, "fee_wei": 10**30}, headers=headers)
    assert 400 <= reply.status_code < 500
    floor = client.app.state.market.market.exchange.fee_floor()  # type: ignore[attr-defined]
    cheap = client.post("/tasks", json={"prompt": "too cheap", "esp": esp, "fee_wei": floor - 1}, headers=headers)
    assert cheap.status_code == 422 and cheap.json()["code"] == "fee_below_floor"
    assert client.get("/tasks", headers=headers).json()["total"] == 0


def test_a_purchase_lock_sent_before_the_server_died_is_recovered_and_refundable(
    client: TestClient, chain: Chain, monkeypatch: pytest.MonkeyPatch
) -> None:
    esp, _ = new_esp(client)
    _, seller = new_account(client)
    buyer_address, buyer = new_account(client)
    _, token = new_product(client, esp, seller, "for sale")
    pass_challenge_window(client, chain)
    exchange = client.app.state.market.market.exchange  # type: ignore[attr-defined]
    held = exchange.balance()
    monkeypatch.setattr(exchange, "lock_purchase", die(exchange.lock_purchase, before_sending=False))
    reply = client.post("/trades", json={"token_id": token, "price_wei": 10**15}, headers=buyer)
    assert reply.status_code == 500
    monkeypatch.undo()

    trades = client.get("/trades", headers=buyer).json()["items"]
    # Completed by the indexer from PurchaseLocked, by the id of the terms the intent recorded.
    assert len(trades) == 1 and trades[0]["state"] == "locked"
    assert exchange.get_lock(bytes.fromhex(trades[0]["lock_id"][2:])).state is LockState.LOCKED
    assert exchange.balance() == held + 10**15
    before = chain.balance(buyer_address)
    chain.advance_time(lock_duration(client) + 1)
    refunded = client.post(f"/trades/{trades[0]['id']}/refund", headers=buyer)
    assert refunded.status_code == 200 and refunded.json()["state"] == "refunded"
    assert exchange.balance() == held and chain.balance(buyer_address) > before
