"""Helpers shared by the API tests (conftest fixtures cannot be imported by name)."""

from __future__ import annotations

from fastapi.testclient import TestClient


def new_account(client: TestClient) -> tuple[str, dict[str, str]]:
    """A new account: its address and the Authorization header of its API key."""
    reply = client.post("/accounts")
    assert reply.status_code == 201, reply.text
    body = reply.json()
    return body["address"], {"Authorization": f"Bearer {body['api_key']}"}


def new_esp(client: TestClient, profile: str = "honest") -> tuple[str, dict[str, str]]:
    address, headers = new_account(client)
    reply = client.post("/esps", json={"name": f"esp {address[:8]}", "profile": profile}, headers=headers)
    assert reply.status_code == 201, reply.text
    return address, headers
