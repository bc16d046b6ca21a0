"""A simulation started over HTTP runs in a process of its own and reports its summary when done (to its account)."""

from __future__ import annotations

import time

from api_helpers import new_account
from fastapi.testclient import TestClient


def test_simulation_runs_to_done(client: TestClient) -> None:
    _, headers = new_account(client)
    config = {"producers": 2, "esps": 2, "consumers": 1, "attackers": 1, "periods": 2, "random_periods": 0}
    started = client.post("/simulations", json=config, headers=headers)
    assert started.status_code == 202, started.text
    sim_id = started.json()["id"]
    busy = client.post("/simulations", json=config, headers=headers)
    assert busy.status_code in (202, 429)  # 429 while the first still runs (one at a time)
    deadline = time.monotonic() + 90
    while True:
        body = client.get(f"/simulations/{sim_id}", headers=headers).json()
        if body["status"] != "running" or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert body["status"] == "done", body
    assert body["periods_done"] == 2 and body["summary"]["tasks"] == 4
    assert all(body["summary"]["invariants"].values())
    assert any(item["id"] == sim_id for item in client.get("/simulations", headers=headers).json()["items"])
