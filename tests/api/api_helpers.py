"""Helpers shared by the API tests (conftest fixtures cannot be imported by name)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from market.chain.connection import Chain


def new_account(client: TestClient) -> tuple[str, dict[str, str]]:
    """A new account: its address and the Authorization header of its API key."""
    reply = client.post("/accounts")
    assert reply.status_code == 201, reply.text
    body = reply.json()
    return body["address"], {"Authorization": f"Bearer {body['api_key']}"}


def new_esp(client: TestClient, profile: str = "honest") -> tuple[str, dict[str, str]]:
    """A new account registered (and staked on chain) as an ESP."""
    address, headers = new_account(client)
    reply = client.post("/esps", json={"name": f"esp {address[:8]}", "profile": profile}, headers=headers)
    assert reply.status_code == 201, reply.text
    return address, headers


def new_product(client: TestClient, esp: str, headers: dict[str, str], prompt: str) -> tuple[dict[str, Any], int]:
    """A paid generation of `prompt` by `esp`, registered: the task and the product's token id."""
    task = client.post("/tasks", json={"prompt": prompt, "esp": esp}, headers=headers)
    assert task.status_code == 201 and task.json()["state"] == "fulfilled", task.text
    product = client.post("/products", json={"task_id": task.json()["id"]}, headers=headers)
    assert product.status_code == 201, product.text
    return task.json(), product.json()["token_id"]


def challenge_window(client: TestClient) -> int:
    """Seconds after registration during which a product can be challenged (then it is final)."""
    return client.app.state.market.market.registry.challenge_window()  # type: ignore[attr-defined]


def pass_challenge_window(client: TestClient, chain: Chain) -> None:
    """Move chain time so that every product registered so far is final."""
    chain.advance_time(challenge_window(client))
