"""Recovery and claims check the whole lock (issue 18, item 4): a secret is revealed only for the lock of exactly
the recorded terms (sender, receiver, amount, kind, token, hashlock: the lock id is their digest, and the
chain must hold it as a lock of that kind, still locked); an intent is adopted only by an event with its terms;
a challenge's verdict is read from its own transaction's log; a delivered task always gets its content."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from api_helpers import new_account, new_esp, new_product, pass_challenge_window
from fastapi.testclient import TestClient
from sqlalchemy import update

from api import models
from api.main import create_app
from api.settings import Settings
from market.chain.connection import Chain
from market.chain.events import DecodedEvent
from market.chain.offers import Offer
from market.protocol import Protocol


def open_trade(client: TestClient, chain: Chain) -> tuple[dict[str, Any], dict[str, str], dict[str, str]]:
    """A final product of a seller and a locked purchase of it: (trade, seller headers, buyer headers)."""
    esp, _ = new_esp(client)
    _, seller = new_account(client)
    _, buyer = new_account(client)
    _, token = new_product(client, esp, seller, "for sale")
    pass_challenge_window(client, chain)
    trade = client.post("/trades", json={"token_id": token, "price_wei": 10**15}, headers=buyer)
    assert trade.status_code == 201 and trade.json()["state"] == "locked", trade.text
    return trade.json(), seller, buyer


def watch_reveals(monkeypatch: pytest.MonkeyPatch, client: TestClient) -> list[str]:
    """Record every call that would put the secret or an approval on the wire."""
    market = client.app.state.market.market  # type: ignore[attr-defined]
    calls: list[str] = []
    for wrapper, name in ((market.exchange, "withdraw_purchase"), (market.registry, "approve")):
        original = getattr(wrapper, name)

        def recorded(*args: Any, _name: str = name, _original: Callable[..., Any] = original, **kwargs: Any) -> Any:
            calls.append(_name)
            return _original(*args, **kwargs)

        monkeypatch.setattr(wrapper, name, recorded)
    return calls


@pytest.mark.parametrize("tamper", ["price_wei", "timelock", "token_id", "hashlock"])
def test_claim_reveals_nothing_for_a_lock_on_other_terms(
    client: TestClient, chain: Chain, monkeypatch: pytest.MonkeyPatch, tamper: str
) -> None:
    """The row's terms no longer hash to its lock (a row adopted from another lock, say one with a copied
    hashlock at 1 wei): the seller's secret is not sent anywhere, no transaction at all."""
    trade, seller, _ = open_trade(client, chain)
    state = client.app.state.market  # type: ignore[attr-defined]
    values = {"price_wei": "1", "timelock": trade["timelock"] + 1, "token_id": trade["token_id"] + 1}
    with state.sessions.begin() as session:
        row = session.get(models.Trade, trade["id"])
        if tamper == "hashlock":
            # The hashlock is also the sealed secret's context: keep the secret openable, break the terms.
            secret = state.vault.open(row.encrypted_secret, row.hashlock)
            row.hashlock = "0x" + "11" * 32
            row.encrypted_secret = state.vault.seal(secret, row.hashlock)
        else:
            session.execute(update(models.Trade).where(models.Trade.id == trade["id"]).values({tamper: values[tamper]}))
    calls = watch_reveals(monkeypatch, client)
    head = chain.head()
    reply = client.post(f"/trades/{trade['id']}/claim", headers=seller)
    assert reply.status_code == 409 and reply.json()["code"] == "lock_mismatch", reply.text
    assert calls == [] and chain.head() == head


def test_claim_reveals_nothing_for_a_lock_no_longer_locked(
    client: TestClient, chain: Chain, monkeypatch: pytest.MonkeyPatch
) -> None:
    trade, seller, buyer = open_trade(client, chain)
    chain.set_next_block_timestamp(trade["timelock"])
    assert client.post(f"/trades/{trade['id']}/refund", headers=buyer).json()["state"] == "refunded"
    state = client.app.state.market  # type: ignore[attr-defined]
    with state.sessions.begin() as session:  # the row still says locked (a lost refund reply, a stale copy)
        session.execute(update(models.Trade).where(models.Trade.id == trade["id"]).values(state="locked"))
    calls = watch_reveals(monkeypatch, client)
    head = chain.head()
    reply = client.post(f"/trades/{trade['id']}/claim", headers=seller)
    assert reply.status_code == 409 and reply.json()["code"] == "lock_mismatch", reply.text
    assert calls == [] and chain.head() == head


def test_a_claim_of_the_recorded_lock_still_goes_through(client: TestClient, chain: Chain) -> None:
    trade, seller, _ = open_trade(client, chain)
    claimed = client.post(f"/trades/{trade['id']}/claim", headers=seller)
    assert claimed.status_code == 200 and claimed.json()["state"] == "claimed", claimed.text


def test_an_intent_is_adopted_only_by_an_event_with_its_terms(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    esp, _ = new_esp(client, profile="cheating")
    _, headers = new_account(client)
    state = client.app.state.market  # type: ignore[attr-defined]
    exchange = state.market.exchange

    def never_sent(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the server died before sending the lock")

    monkeypatch.setattr(exchange, "lock_generation", never_sent)
    assert client.post("/tasks", json={"prompt": "intent", "esp": esp}, headers=headers).status_code == 500
    monkeypatch.undo()
    task = client.get("/tasks", headers=headers).json()["items"][0]
    assert task["state"] == "pending"
    offer = Offer.from_json(task["offer"])
    args = {
        "id": bytes.fromhex(task["lock_id"][2:]),
        "esp": offer.esp,
        "producer": offer.producer,
        "hashlock": offer.hashlock,
        "fee": 1,  # the same id with other terms: never adopted
        "timelock": offer.timelock,
        "expiry": offer.expiry,
        "nonce": offer.nonce,
        "commitment": offer.commitment,
        "seq": 1,
    }
    forged = DecodedEvent("AIGCExchange", "GenerationLocked", args, exchange.address, 10**9, 0)
    with state.sessions.begin() as session:
        state.indexer.project(session, forged)
    assert client.get(f"/tasks/{task['id']}", headers=headers).json()["state"] == "pending"
    with state.sessions.begin() as session:
        state.indexer.project(
            session, DecodedEvent("AIGCExchange", "GenerationLocked", args | {"fee": offer.fee}, exchange.address, 10**9, 1)
        )
    assert client.get(f"/tasks/{task['id']}", headers=headers).json()["state"] == "locked"


def test_the_challenge_verdict_is_read_from_its_own_transaction(
    make_settings: Callable[..., Settings], chain: Chain, db_url: str
) -> None:
    """Another challenge resolved in the same block (here: its row, as the indexer would store it) is not
    taken for this one's."""
    with TestClient(create_app(make_settings(db_url=db_url)), raise_server_exceptions=False) as client:
        challenge_in_a_shared_block(client, chain)


def challenge_in_a_shared_block(client: TestClient, chain: Chain) -> None:
    esp, _ = new_esp(client)
    _, owner = new_account(client)
    _, accused = new_account(client)
    _, original = new_product(client, esp, owner, "original fox")
    _, duplicate = new_product(client, esp, accused, "another fox")
    state = client.app.state.market  # type: ignore[attr-defined]
    with state.sessions.begin() as session:
        session.add(
            models.Challenge(
                original_id=999,
                duplicate_id=998,
                challenger="0x" + "99" * 20,
                upheld=True,
                distance=0,
                block_number=chain.head() + 1,
                log_index=0,  # before the real verdict's (its Credited event comes first)
            )
        )
    verdict = client.post(f"/products/{original}/challenges", json={"duplicate_id": duplicate}, headers=owner)
    assert verdict.status_code == 201, verdict.text
    body = verdict.json()
    assert (body["original_id"], body["duplicate_id"], body["upheld"]) == (original, duplicate, False)


def test_a_delivered_task_gets_its_content_back_at_start(
    make_settings: Callable[..., Settings], db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The route died between the ESP's reveal and its commit, and the plaintext is gone from the store: the
    next start opens the ciphertext with the sealed key (checked against the commitment) and stores it."""
    with TestClient(create_app(make_settings(db_url=db_url)), raise_server_exceptions=False) as client:
        esp, _ = new_esp(client)
        _, headers = new_account(client)

        def died(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("the server died after the reveal")

        monkeypatch.setattr(Protocol, "open_content", staticmethod(died))
        assert client.post("/tasks", json={"prompt": "revealed, then cut off", "esp": esp}, headers=headers).status_code == 500
        monkeypatch.undo()
        task = client.get("/tasks", headers=headers).json()["items"][0]
        assert task["state"] == "delivered" and task["content_sha256"] is None  # from the indexed Withdrawn event
        store = client.app.state.market.store  # type: ignore[attr-defined]
        content_hash = task["opening"]["content_hash"][2:]
        (store.root / content_hash[:2] / content_hash).unlink()
    with TestClient(create_app(make_settings(db_url=db_url)), raise_server_exceptions=False) as client:
        task = client.get(f"/tasks/{task['id']}", headers=headers).json()
        assert task["content_sha256"] == content_hash
        product = client.post("/products", json={"task_id": task["id"]}, headers=headers)
        assert product.status_code == 201, product.text
        content = client.get(product.json()["content_url"])
        assert content.status_code == 200 and content.headers["content-type"] == "image/png"
