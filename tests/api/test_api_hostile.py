"""A table of malformed and hostile requests: each is a 4xx with a code, never a 500, and changes nothing."""

from __future__ import annotations

import json
from typing import Any

import pytest
import simulation_targets
from api_helpers import new_account, new_esp
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.models import Account, ChainEvent, Esp, Product, Simulation, Task, Trade

HUGE = "x" * 5000
BAD_ADDR = "0x" + "zz" * 20
U256 = 2**256

# (method, path, json body, who: "me" | "other" | "none" | "bad")
CASES: list[tuple[str, str, Any, str]] = [
    ("POST", "/esps", {}, "me"),
    ("POST", "/esps", {"name": ""}, "me"),
    ("POST", "/esps", {"name": HUGE}, "me"),
    ("POST", "/esps", {"name": 5}, "me"),
    ("POST", "/esps", {"name": "e", "profile": "evil"}, "me"),
    ("POST", "/esps", {"name": "e", "extra": 1}, "me"),
    ("POST", "/esps", {"name": "e"}, "none"),
    ("POST", "/esps", {"name": "e"}, "bad"),
    ("POST", "/esps", [1, 2], "me"),
    ("POST", "/esps", {"name": "again"}, "esp"),
    ("POST", "/esps", "not json", "me"),
    ("PATCH", "/esps/{esp}", {"name": "mine"}, "other"),
    ("PATCH", "/esps/{esp}", {"profile": "cheating"}, "none"),
    ("PATCH", "/esps/0x1234", {"name": "x"}, "me"),
    ("PATCH", "/esps/" + "0x" + "11" * 20, {"name": "x"}, "me"),
    ("GET", "/esps/" + BAD_ADDR, None, "me"),
    ("GET", "/esps/" + "0x" + "22" * 20 + "/reputation", None, "me"),
    ("GET", "/esps/{esp}/reputation?producer=nothex", None, "me"),
    ("POST", "/tasks", {}, "me"),
    ("POST", "/tasks", {"prompt": ""}, "me"),
    ("POST", "/tasks", {"prompt": HUGE}, "me"),
    ("POST", "/tasks", {"prompt": "p", "fee_wei": 0}, "me"),
    ("POST", "/tasks", {"prompt": "p", "fee_wei": -5}, "me"),
    ("POST", "/tasks", {"prompt": "p", "fee_wei": U256}, "me"),
    ("POST", "/tasks", {"prompt": "p", "fee_wei": "lots"}, "me"),
    ("POST", "/tasks", {"prompt": "p", "fee_wei": 10**30}, "me"),
    ("POST", "/tasks", {"prompt": "p", "fee_wei": 1}, "me"),
    ("POST", "/tasks", {"prompt": "p", "esp": BAD_ADDR}, "me"),
    ("POST", "/tasks", {"prompt": "p", "esp": "0x" + "33" * 20}, "me"),
    ("POST", "/tasks", {"prompt": "p"}, "none"),
    ("POST", "/tasks", {"prompt": "p"}, "bad"),
    ("POST", "/tasks", {"prompt": "p", "esp": "{esp}"}, "esp"),
    ("GET", "/tasks/1", None, "other"),
    ("GET", "/tasks/999", None, "me"),
    ("GET", "/tasks/0", None, "me"),
    ("GET", "/tasks/abc", None, "me"),
    ("GET", f"/tasks/{2**70}", None, "me"),
    ("POST", "/tasks/1/refund", None, "other"),
    ("POST", "/tasks/1/refund", None, "me"),
    ("POST", "/tasks/2/refund", None, "me"),
    ("POST", "/tasks/1/rating", {"positive": True, "score": 70000}, "me"),
    ("POST", "/tasks/1/rating", {"positive": "maybe"}, "me"),
    ("POST", "/tasks/1/rating", {"positive": True}, "other"),
    ("POST", "/tasks/2/rating", {"positive": True}, "me"),
    ("POST", "/products", {"task_id": 1}, "other"),
    ("POST", "/products", {"task_id": 2}, "me"),
    ("POST", "/products", {"task_id": 999}, "me"),
    ("POST", "/products", {"task_id": -1}, "me"),
    ("POST", "/products", {"task_id": 1, "uri": HUGE}, "me"),
    ("POST", "/products", {}, "me"),
    ("GET", "/products/999", None, "me"),
    ("GET", "/products/-3", None, "me"),
    ("GET", "/products/999/content", None, "me"),
    ("GET", "/products?limit=0", None, "me"),
    ("GET", "/products?limit=100000", None, "me"),
    ("GET", "/products?offset=-1", None, "me"),
    ("GET", "/products?owner=0x12", None, "me"),
    ("POST", "/products/1/challenges", {"duplicate_id": 1}, "other"),
    ("POST", "/products/1/challenges", {"duplicate_id": 1}, "me"),
    ("POST", "/products/1/challenges", {"duplicate_id": 0}, "me"),
    ("POST", "/products/999/challenges", {"duplicate_id": 1}, "me"),
    ("POST", "/products/1/challenges", {"duplicate_id": 999}, "me"),
    ("POST", "/products/1/bond", None, "other"),
    ("POST", "/products/1/bond", None, "me"),
    ("POST", "/products/1/bond", None, "none"),
    ("POST", "/products/999/bond", None, "me"),
    ("POST", "/products/0/bond", None, "me"),
    ("GET", "/credits", None, "none"),
    ("GET", "/credits", None, "bad"),
    ("POST", "/credits/withdraw", None, "me"),
    ("POST", "/credits/withdraw", None, "none"),
    ("PUT", "/credits/withdraw", None, "me"),
    ("GET", "/products/999/challenges", None, "me"),
    ("POST", "/trades", {"token_id": 1, "price_wei": 0}, "other"),
    ("POST", "/trades", {"token_id": 1, "price_wei": -1}, "other"),
    ("POST", "/trades", {"token_id": 1, "price_wei": 10**40}, "other"),
    ("POST", "/trades", {"token_id": 1, "price_wei": 1000}, "me"),
    ("POST", "/trades", {"token_id": 1, "price_wei": 1000}, "other"),
    ("POST", "/trades", {"token_id": 999, "price_wei": 1000}, "other"),
    ("POST", "/trades", {"token_id": 1}, "other"),
    ("POST", "/trades", {"token_id": 1, "price_wei": 1000}, "none"),
    ("POST", "/trades/999/claim", None, "me"),
    ("POST", "/trades/999/refund", None, "me"),
    ("GET", "/trades/999", None, "me"),
    ("POST", "/simulations", {"periods": 0}, "me"),
    ("POST", "/simulations", {"periods": 10**6}, "me"),
    ("POST", "/simulations", {"periods": 200}, "me"),
    ("POST", "/simulations", {"selection": "best"}, "me"),
    ("POST", "/simulations", {"esp_profiles": []}, "me"),
    ("POST", "/simulations", {"periods": 1}, "none"),
    ("GET", "/simulations/nope", None, "me"),
    ("GET", "/simulations/" + "a" * 300, None, "me"),
    ("DELETE", "/products/1", None, "me"),
    ("GET", "/no/such/path", None, "me"),
    # control characters in every text field (issue 18: 422 control_character, nothing stored)
    ("POST", "/tasks", {"prompt": "a\x00b"}, "me"),
    ("POST", "/tasks", {"prompt": "\x1b[2J"}, "me"),
    ("POST", "/tasks", {"prompt": "\ud800"}, "me"),
    ("POST", "/tasks", {"prompt": "p", "\x00": 1}, "me"),
    ("POST", "/esps", {"name": "e\x00"}, "other"),
    ("PATCH", "/esps/{esp}", {"name": "\x7f"}, "esp"),
    ("POST", "/products", {"task_id": 1, "uri": "x\x85y"}, "me"),
    ("POST", "/simulations", {"selection": "\x00"}, "me"),
    ("POST", "/simulations", {"esp_profiles": ["honest\n"]}, "me"),
    # oversized numbers
    ("POST", "/products", {"task_id": 2**64}, "me"),
    ("POST", "/trades", {"token_id": 2**70, "price_wei": 1000}, "other"),
    ("POST", "/trades", {"token_id": 1, "price_wei": 2**300}, "other"),
    ("POST", "/tasks/1/rating", {"positive": True, "score": -1}, "me"),
    ("POST", "/tasks/1/rating", {"positive": True, "score": 2**64}, "me"),
    ("POST", "/products/1/challenges", {"duplicate_id": 2**63}, "me"),
    ("GET", f"/trades/{2**64}", None, "me"),
    ("GET", f"/products/{2**64}/content", None, "me"),
    ("GET", "/products?limit=100000000000000000000", None, "me"),
    ("POST", "/simulations", {"periods": 2**64}, "me"),
    ("POST", "/simulations", {"seed": 2**63}, "me"),
    # an Idempotency-Key replayed with other requests (its first use: a refused withdrawal)
    ("POST", "/credits/withdraw", {"again": 1}, "keyed"),
    ("POST", "/tasks", {"prompt": "other body"}, "keyed"),
    ("POST", "/esps", {"name": "n"}, "keyed"),
    ("POST", "/tasks/1/rating", {"positive": True}, "keyed"),
    # other accounts' rows, on every route that takes one
    ("GET", "/tasks/1", None, "esp"),
    ("POST", "/tasks/1/rating", {"positive": False}, "esp"),
    ("POST", "/tasks/2/refund", None, "other"),
    ("POST", "/products", {"task_id": 2}, "other"),
    ("POST", "/products/1/bond", None, "esp"),
    ("POST", "/products/1/challenges", {"duplicate_id": 1}, "esp"),
    ("PATCH", "/esps/{esp}", {"name": "stolen"}, "me"),
    ("GET", "/simulations/{sim}", None, "other"),
    ("GET", "/simulations/{sim}", None, "none"),
    ("GET", "/simulations", None, "none"),
]


@pytest.fixture
def world(client: TestClient) -> dict[str, Any]:
    """An ESP, a producer with a registered product (task 1, not final yet), a locked task (task 2), a finished
    simulation run and an Idempotency-Key used once (a refused withdrawal), and a stranger."""
    esp, esp_headers = new_esp(client)
    cheat, _ = new_esp(client, "cheating")
    _, me = new_account(client)
    _, other = new_account(client)
    task = client.post("/tasks", json={"prompt": "original", "esp": esp}, headers=me).json()
    assert client.post("/products", json={"task_id": task["id"]}, headers=me).status_code == 201
    assert client.post("/tasks", json={"prompt": "unpaid", "esp": cheat}, headers=me).json()["state"] == "locked"
    keyed = me | {"Idempotency-Key": "hostile-1"}
    assert client.post("/credits/withdraw", headers=keyed).json()["code"] == "no_credit"
    client.app.state.simulations.target = simulation_targets.quick  # type: ignore[attr-defined]
    sim = client.post("/simulations", json={"periods": 1}, headers=me).json()["id"]
    for thread in list(client.app.state.simulations.threads.values()):  # type: ignore[attr-defined]
        thread.join(60)
    return {"esp": esp, "me": me, "other": other, "esp_headers": esp_headers, "keyed": keyed, "sim": sim}


def state_of(client: TestClient) -> tuple[int, ...]:
    state = client.app.state.market  # type: ignore[attr-defined]
    with state.sessions() as session:
        counts = tuple(
            session.scalar(select(func.count()).select_from(model)) or 0
            for model in (Account, Esp, Task, Product, Trade, ChainEvent, Simulation)
        )
    return (*counts, state.chain.head())


def test_hostile_requests(client: TestClient, world: dict[str, Any]) -> None:
    assert len(CASES) >= 100
    headers = {
        "keyed": world["keyed"],
        "me": world["me"],
        "other": world["other"],
        "esp": world["esp_headers"],
        "none": {},
        "bad": {"Authorization": "Bearer not-a-key"},
    }
    before = state_of(client)
    for method, path, body, who in CASES:
        path = path.replace("{esp}", world["esp"]).replace("{sim}", world["sim"])
        kwargs: dict[str, Any] = {"headers": headers[who]}
        if isinstance(body, str):
            kwargs["content"] = body
            kwargs["headers"] = kwargs["headers"] | {"Content-Type": "application/json"}
        elif body is not None:
            body = body if "{esp}" not in str(body) else {**body, "esp": world["esp"]}
            kwargs["content"] = json.dumps(body).encode()  # ASCII escapes: a lone surrogate is sent as \\ud800
            kwargs["headers"] = kwargs["headers"] | {"Content-Type": "application/json"}
        reply = client.request(method, path, **kwargs)
        assert 400 <= reply.status_code < 500, (method, path, who, reply.status_code, reply.text)
        assert isinstance(reply.json().get("code"), str) and reply.json().get("detail"), (method, path, reply.text)
    assert state_of(client) == before


def test_body_limit(client: TestClient, world: dict[str, Any]) -> None:
    reply = client.post("/tasks", content=b"{" + b" " * 100_000 + b"}", headers=world["me"] | {"Content-Type": "application/json"})
    assert reply.status_code == 413 and reply.json()["code"] == "body_too_large"


def test_chunked_bodies(client: TestClient, world: dict[str, Any]) -> None:
    """Bodies without Content-Length are measured too, and a small one still reaches the route."""

    def chunks(size: int):  # noqa: ANN202
        yield b'{"name": "' + b"n" * size + b'"}'

    headers = world["other"] | {"Content-Type": "application/json"}
    assert client.post("/esps", content=chunks(100_000), headers=headers).status_code == 413
    assert client.post("/esps", content=chunks(10), headers=headers).status_code == 201
