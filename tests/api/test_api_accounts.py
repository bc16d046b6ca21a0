"""Accounts and keys: the API key once, hashed at rest; private keys encrypted; 401 without a valid key."""

from __future__ import annotations

import stat
from pathlib import Path

from api_helpers import new_account
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.models import Account
from api.settings import Settings


def test_key_shown_once_and_stored_hashed(client: TestClient, app: FastAPI) -> None:
    reply = client.post("/accounts")
    assert reply.status_code == 201
    body = reply.json()
    key = body["api_key"]
    headers = {"Authorization": f"Bearer {key}"}
    me = client.get("/accounts/me", headers=headers)
    assert me.status_code == 200 and me.json()["address"] == body["address"] and key not in me.text
    assert me.json()["balance_wei"] > 0
    state = app.state.market
    with state.sessions() as session:
        row = session.scalar(select(Account).where(Account.address == body["address"]))
        assert row is not None and key not in row.api_key_hash
        private = state.signer(row).key
        assert bytes(private) not in row.encrypted_key
        assert bytes(private).hex() not in client.get("/accounts/me", headers=headers).text


def test_missing_or_invalid_key_is_401(client: TestClient) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer " + "x" * 500}):
        reply = client.post("/esps", json={"name": "e"}, headers=headers)
        assert reply.status_code == 401, headers
        assert reply.json()["code"] in ("missing_api_key", "invalid_api_key")
    assert client.get("/accounts/me").status_code == 401


def test_secret_file_is_private(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "d")
    secret = settings.server_secret()
    path = tmp_path / "d" / "server.secret"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and settings.server_secret() == secret


def test_no_key_in_responses(client: TestClient) -> None:
    address, headers = new_account(client)
    key = headers["Authorization"].split()[1]
    for path in ("/accounts/me", "/esps", "/products", "/health", "/tasks", "/trades"):
        assert key not in client.get(path, headers=headers).text
