"""Idempotency-Key: a replay returns the first reply without a second transaction; another body is 409."""

from __future__ import annotations

from api_helpers import new_account, new_esp
from fastapi.testclient import TestClient


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
