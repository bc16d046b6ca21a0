"""Helpers shared by the API tests (conftest fixtures cannot be imported by name)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from api import models
from market.chain.connection import Chain
from market.chain.hashlocks import hashlock_of, new_secret
from market.chain.offers import Opening
from market.protocol import Protocol


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
    assert task.status_code == 201 and task.json()["state"] == "delivered", task.text
    product = client.post("/products", json={"task_id": task.json()["id"]}, headers=headers)
    assert product.status_code == 201, product.text
    return task.json(), product.json()["token_id"]


def challenge_window(client: TestClient) -> int:
    """Seconds after registration during which a product can be challenged (then it is final)."""
    return client.app.state.market.market.registry.challenge_window()  # type: ignore[attr-defined]


def pass_challenge_window(client: TestClient, chain: Chain) -> None:
    """Move chain time so that every product registered so far is final."""
    chain.advance_time(challenge_window(client))


def squat_content_of(client: TestClient, task_id: int, esp: str, producer: str) -> int:
    """An A1 squatter acting outside the API (so outside its ESPs' guard): ESP `esp` commits the content
    of task `task_id` (as its pending registration would show it) to `producer`, which locks, gets the
    key and registers first. Returns the squatter's token (indexed)."""
    state = client.app.state.market  # type: ignore[attr-defined]
    with state.sessions() as session:
        victim = Opening.from_json(session.get(models.Task, task_id).opening)
        esp_key = state.signer(
            session.scalar(
                select(models.Account).join(models.Esp, models.Esp.account_id == models.Account.id).where(models.Esp.address == esp)
            )
        )
        producer_key = state.signer(session.scalar(select(models.Account).where(models.Account.address == producer)))
    outsider = Protocol(state.market, state.protocol.terms)
    copied = Opening.of(victim.content_hash, victim.perceptual_hash, victim.prompt_hash)
    key = new_secret()
    signed = outsider.commit_offer(esp_key, producer, copied, hashlock_of(key))
    outsider.lock(producer_key, signed)
    outsider.reveal(esp_key, signed.offer, key)
    token = outsider.register(producer_key, signed.offer, copied).token_id
    state.indexer.run_once()
    return token
