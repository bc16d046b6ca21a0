"""Inputs and error details (issue 18, item 5): control characters are refused in every text field with a 4xx
and a stable code, on SQLite and PostgreSQL; error details carry no URL, path or dependency's exception text.
(The managed node's identification is in test_api_node.py.)"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
from api_helpers import new_account, new_esp
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.main import create_app
from api.models import Account, ChainEvent, Esp, Product, Task, Trade
from api.settings import Settings
from market.chain.errors import ChainError, RpcUnreachableError, TransactionRevertedError

CONTROLS = ["\x00", "\x01", "\x07", "\x1b[31m", "\n", "\r", "\t", "\x7f", "\x85", "\x9f", "\ud800"]

#: Every text field of every request body, as (method, path, body with "{text}" where the text goes).
TEXT_FIELDS: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/tasks", {"prompt": "{text}", "esp": "{esp}"}),
    ("POST", "/esps", {"name": "{text}"}),
    ("PATCH", "/esps/{esp}", {"name": "{text}"}),
    ("POST", "/products", {"task_id": 1, "uri": "{text}"}),
    ("POST", "/simulations", {"periods": 1, "selection": "{text}"}),
    ("POST", "/simulations", {"periods": 1, "caching": "{text}"}),
    ("POST", "/simulations", {"periods": 1, "esp_profiles": ["honest", "{text}"]}),
    ("POST", "/tasks", {"prompt": "fine", "{text}": 1}),  # a key is text too
]


def counts(client: TestClient) -> tuple[int, ...]:
    state = client.app.state.market  # type: ignore[attr-defined]
    with state.sessions() as session:
        rows = tuple(
            session.scalar(select(func.count()).select_from(m)) or 0 for m in (Account, Esp, Task, Product, Trade, ChainEvent)
        )
    return (*rows, state.chain.head())


def fill(value: Any, text: str, esp: str) -> Any:
    if isinstance(value, str):
        return esp if value == "{esp}" else value.replace("{text}", text)
    if isinstance(value, dict):
        return {fill(k, text, esp): fill(v, text, esp) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, text, esp) for v in value]
    return value


def test_control_characters_are_refused_in_every_text_field(make_settings: Callable[..., Settings], db_url: str) -> None:
    with TestClient(create_app(make_settings(db_url=db_url)), raise_server_exceptions=False) as client:
        esp, esp_headers = new_esp(client)
        _, headers = new_account(client)
        task = client.post("/tasks", json={"prompt": "a fox", "esp": esp}, headers=headers)
        assert task.status_code == 201
        before = counts(client)
        for method, path, template in TEXT_FIELDS:
            for control in CONTROLS:
                body = fill(template, f"a{control}b", esp)
                who = esp_headers if path.startswith("/esps/") else headers
                # Sent as JSON text with \\u escapes, as any client would (a raw NUL byte is not even JSON).
                content = json.dumps(body).encode()
                reply = client.request(
                    method, path.replace("{esp}", esp), content=content, headers=who | {"Content-Type": "application/json"}
                )
                assert reply.status_code == 422, (method, path, repr(control), reply.status_code, reply.text)
                assert reply.json()["code"] == "control_character", (path, repr(control), reply.text)
        assert counts(client) == before
        # A plain prompt with every printable character, accents and emoji is still fine.
        ok = client.post("/tasks", json={"prompt": "Ünïcödé ✓ 🦊 <>&\"'\\ ~", "esp": esp}, headers=headers)
        assert ok.status_code == 201, ok.text


def test_error_details_carry_no_url_path_or_dependency_text(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    _, headers = new_account(client)
    state = client.app.state.market  # type: ignore[attr-defined]
    secret_url = "https://mainnet.example.org/v3/PROVIDERKEY123"
    leaks = re.compile(r"://|PROVIDERKEY|/tmp/|/home/|/work/|\.py\b|Traceback|requests\.|urllib3|web3")
    for error in (
        RpcUnreachableError(f"no answer from the JSON-RPC node at {secret_url}: ConnectionError"),
        TransactionRevertedError(f"transaction 0xabc reverted on chain via {secret_url}"),
        ChainError(f"{secret_url} answered 500: /work/main/market/chain/rpc.py"),
        RuntimeError(f"psycopg.OperationalError: connection to {secret_url} failed at /tmp/x.sock"),
    ):

        def fail(address: str, error: Exception = error) -> int:
            raise error

        monkeypatch.setattr(state.chain, "balance", fail)
        reply = client.get("/accounts/me", headers=headers)
        assert 500 <= reply.status_code < 600 or reply.status_code == 409, reply.text
        assert not leaks.search(reply.text), (type(error).__name__, reply.text)
        assert set(reply.json()) == {"code", "detail"}
    monkeypatch.undo()
    unreachable = RpcUnreachableError(f"no answer from {secret_url}")
    monkeypatch.setattr(state.chain, "balance", lambda address: (_ for _ in ()).throw(unreachable))
    reply = client.get("/accounts/me", headers=headers)
    assert reply.status_code == 503 and reply.json()["code"] == "chain_unreachable"
