"""With several workers an ESP's guard against committing one content to two producers holds across workers: each
worker's protocol knows only its own commitments, so a worker also checks its siblings' tasks under the chain lock
(docs/api.md#several-workers). Two apps on one database play two workers here."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from api_helpers import new_account, new_esp
from fastapi.testclient import TestClient

from api.main import create_app
from api.routes import tasks as tasks_route
from api.settings import Settings


def test_a_worker_refuses_a_content_that_a_sibling_worker_committed_to_another_producer(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    # One prompt gives one content (as a careless ESP's constant seed would), so both jobs commit the same content.
    monkeypatch.setattr(tasks_route, "job_seed", lambda: b"a careless ESP's constant seed")
    first_worker = TestClient(create_app(make_settings(workers=2)), raise_server_exceptions=False)
    second_worker = TestClient(create_app(make_settings(workers=2)), raise_server_exceptions=False)
    with first_worker, second_worker:
        esp, _ = new_esp(first_worker)
        _, first = new_account(first_worker)
        _, second = new_account(second_worker)
        assert first_worker.post("/tasks", json={"prompt": "exclusive", "esp": esp}, headers=first).status_code == 201
        refused = second_worker.post("/tasks", json={"prompt": "exclusive", "esp": esp}, headers=second)
        assert refused.status_code == 409 and refused.json()["code"] == "duplicate_commitment"
        assert second_worker.get("/tasks", headers=second).json()["total"] == 0
        assert second_worker.post("/tasks", json={"prompt": "another", "esp": esp}, headers=second).status_code == 201
