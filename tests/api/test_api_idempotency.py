"""Idempotency-Key: a replay returns the first reply without a second transaction; another body is 409."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from api_helpers import new_account, new_esp
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.main import create_app
from api.models import Account, IdempotentReply
from api.settings import Settings


def test_replay_and_conflict(client: TestClient) -> None:
    esp, _ = new_esp(client)
    _, headers = new_account(client)
    keyed = headers | {"Idempotency-Key": "task-1"}
    first = client.post("/tasks", json={"prompt": "once", "esp": esp}, headers=keyed)
    block = client.get("/health").json()["block"]
    again = client.post("/tasks", json={"prompt": "once", "esp": esp}, headers=keyed)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    assert client.get("/health").json()["block"] == block
    assert client.get("/tasks", headers=headers).json()["total"] == 1
    other = client.post("/tasks", json={"prompt": "twice", "esp": esp}, headers=keyed)
    assert other.status_code == 409 and other.json()["code"] == "idempotency_key_reused"


def test_a_reply_with_a_new_api_key_is_never_stored(make_settings: Callable[..., Settings], db_url: str) -> None:
    """Issue 18, item 3: a keyed POST /accounts (from an authenticated account) is run once, but its reply, which
    carries the new account's API key, is not stored: a replay says so with a stable code."""
    with TestClient(create_app(make_settings(db_url=db_url)), raise_server_exceptions=False) as client:
        _, headers = new_account(client)
        keyed = headers | {"Idempotency-Key": "make-one"}
        first = client.post("/accounts", headers=keyed)
        assert first.status_code == 201
        api_key = first.json()["api_key"]
        again = client.post("/accounts", headers=keyed)
        assert again.status_code == 409 and again.json()["code"] == "idempotent_reply_withheld", again.text
        assert api_key not in again.text
        state = client.app.state.market  # type: ignore[attr-defined]
        with state.sessions() as session:
            rows = session.scalars(select(IdempotentReply)).all()
            assert len(rows) == 1 and rows[0].withheld and rows[0].body is None
            assert all(api_key.encode() not in (row.body or b"") for row in rows)
            assert session.scalar(select(func.count()).select_from(Account)) == 2  # the replay created nothing
        # The key it carried still works: it was shown once, to the first reply.
        assert client.get("/accounts/me", headers={"Authorization": f"Bearer {api_key}"}).status_code == 200


def test_a_committed_write_whose_indexing_failed_is_not_repeated(
    make_settings: Callable[..., Settings], db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 18, item 3: the outcome of a committed chain write is recorded before indexing, so a retry of a write
    whose reply failed afterwards (a 5xx) never sends its transactions again."""
    with TestClient(create_app(make_settings(db_url=db_url)), raise_server_exceptions=False) as client:
        esp, _ = new_esp(client)
        _, headers = new_account(client)
        state = client.app.state.market  # type: ignore[attr-defined]
        index_through = state.index_through
        broken = {"on": True}

        def failing(block: int) -> None:
            if broken["on"]:
                raise RuntimeError("the database went away while indexing")
            index_through(block)

        monkeypatch.setattr(state, "index_through", failing)
        keyed = headers | {"Idempotency-Key": "task-after-commit"}
        first = client.post("/tasks", json={"prompt": "once only", "esp": esp}, headers=keyed)
        assert first.status_code == 500
        broken["on"] = False
        head = state.chain.head()
        retry = client.post("/tasks", json={"prompt": "once only", "esp": esp}, headers=keyed)
        assert retry.status_code == 409 and retry.json()["code"] == "idempotent_reply_lost", retry.text
        assert state.chain.head() == head  # no transaction sent again
        tasks = client.get("/tasks", headers=headers).json()
        assert tasks["total"] == 1 and tasks["items"][0]["state"] == "delivered"
        # A write that failed before committing anything releases its key: the retry runs.
        monkeypatch.setattr(state, "signer", lambda account: (_ for _ in ()).throw(RuntimeError("vault down")))
        keyed = headers | {"Idempotency-Key": "task-before-commit"}
        assert client.post("/tasks", json={"prompt": "later", "esp": esp}, headers=keyed).status_code == 500
        monkeypatch.undo()
        retried = client.post("/tasks", json={"prompt": "later", "esp": esp}, headers=keyed)
        assert retried.status_code == 201, retried.text
        assert client.get("/tasks", headers=headers).json()["total"] == 2


def test_keyed_writes_of_one_account_do_not_hold_up_another_accounts(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 18, item 3: a lock per account, not one for the whole server."""
    _, slow = new_account(client)
    _, quick = new_account(client)
    state = client.app.state.market  # type: ignore[attr-defined]
    signer, entered, release = state.signer, threading.Event(), threading.Event()

    def held(account: object) -> object:
        entered.set()
        release.wait(30)
        return signer(account)

    monkeypatch.setattr(state, "signer", held)
    results: dict[str, int] = {}
    worker = threading.Thread(
        target=lambda: results.update(
            slow=client.post("/esps", json={"name": "slow"}, headers=slow | {"Idempotency-Key": "s"}).status_code
        )
    )
    worker.start()
    try:
        assert entered.wait(30)
        started = time.monotonic()
        reply = client.post("/tasks", json={}, headers=quick | {"Idempotency-Key": "q"})
        assert reply.status_code == 422 and time.monotonic() - started < 10
        assert worker.is_alive()  # the first account's keyed write is still held
    finally:
        release.set()
        worker.join(60)
    assert results["slow"] == 201


def test_an_idempotency_key_must_be_visible_ascii(client: TestClient) -> None:
    _, headers = new_account(client)
    for key in ("", "a b", "é".encode("latin-1"), "k" * 129):
        reply = client.post("/esps", json={"name": "e"}, headers=headers | {"Idempotency-Key": key})
        assert reply.status_code == 422 and reply.json()["code"] == "invalid_idempotency_key", key
