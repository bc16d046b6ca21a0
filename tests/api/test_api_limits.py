"""Rate limits and quotas (issue 18, item 2): token buckets per client address and per account on every route
(429 + Retry-After), account creation per client; simulations in a process of their own with a time and a
memory limit, quotas per account (runs per window, runs at once) and on the server, stored bytes per account,
run folders removed by retention, listing per account."""

from __future__ import annotations

import multiprocessing
import os
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import simulation_targets
from api_helpers import new_account, new_esp
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api import models
from api.main import create_app
from api.ratelimit import TokenBuckets, client_address, client_key
from api.settings import Settings
from api.simulation_worker import run_in_child

SIM = {"producers": 2, "esps": 2, "consumers": 1, "attackers": 0, "periods": 2, "random_periods": 0}


def from_address(app: FastAPI, host: str) -> TestClient:
    return TestClient(app, raise_server_exceptions=False, client=(host, 40000))


def test_token_bucket() -> None:
    now = [0.0]
    buckets = TokenBuckets(rate_per_s=2.0, burst=3, clock=lambda: now[0], max_keys=2)
    assert [buckets.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a") == pytest.approx(0.5)
    now[0] = 0.5
    assert buckets.take("a") == 0.0 and buckets.take("a") == pytest.approx(0.5)
    assert buckets.take("b") == 0.0  # another key has its own bucket
    buckets.take("c")  # past max_keys the least recently used ("a") is forgotten: a full bucket again
    assert buckets.take("a") == 0.0
    assert TokenBuckets(0, 1).take("x") == 0.0  # rate 0: no limit


def test_client_addresses() -> None:
    assert client_key("2001:db8::1") == client_key("2001:db8::ffff") == "2001:db8::/64"
    assert client_key("::ffff:10.1.2.3") == "10.1.2.3" and client_key(None) == "unknown"
    scope = {"client": ("127.0.0.1", 1), "headers": [(b"x-forwarded-for", b"6.6.6.6, 10.0.0.9")]}
    assert client_address(scope) == "127.0.0.1"  # no trusted proxy: the header is ignored
    assert client_address(scope, ["127.0.0.1"]) == "10.0.0.9"  # the right-most hop the proxy saw
    assert client_address(scope, ["127.0.0.1", "10.0.0.9"]) == "6.6.6.6"


def test_every_route_is_limited_per_client_address(make_settings: Callable[..., Settings], db_url: str) -> None:
    app = create_app(make_settings(db_url=db_url, rate_limit_per_s=0.5, rate_limit_burst=5))
    with TestClient(app):
        flood, calm = from_address(app, "10.1.0.1"), from_address(app, "10.1.0.2")
        paths = ["/health", "/products", "/esps", "/no/such/path", "/simulations"]
        statuses = [flood.get(path).status_code for path in paths]
        assert 429 not in statuses
        for method, path in (("GET", "/health"), ("POST", "/accounts"), ("GET", "/tasks"), ("DELETE", "/products/1")):
            refused = flood.request(method, path)
            assert refused.status_code == 429 and refused.json()["code"] == "rate_limited", (method, path)
            assert 1 <= int(refused.headers["retry-after"]) <= 2
        assert calm.get("/health").status_code == 200  # another client is served


def test_every_account_is_limited_from_any_address(make_settings: Callable[..., Settings]) -> None:
    app = create_app(make_settings(account_rate_limit_per_s=0.2, account_rate_limit_burst=4))
    with TestClient(app) as client:
        _, busy = new_account(client)
        _, other = new_account(client)
        one, two = from_address(app, "10.2.0.1"), from_address(app, "10.2.0.2")
        replies = [c.get("/accounts/me", headers=busy).status_code for c in (one, two, one, two, one)]
        assert replies[:4] == [200, 200, 200, 200] and replies[4] == 429
        assert int(two.get("/tasks", headers=busy).headers["retry-after"]) >= 1
        assert one.get("/accounts/me", headers=other).status_code == 200  # the same address, another account


def runner_of(client: TestClient) -> Any:
    return client.app.state.simulations  # type: ignore[attr-defined]


def wait_for(client: TestClient, sim_id: str, headers: dict[str, str], timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body = client.get(f"/simulations/{sim_id}", headers=headers).json()
        if body["status"] != "running" or time.monotonic() > deadline:
            return body
        time.sleep(0.2)


def test_a_simulation_runs_in_a_process_of_its_own(client: TestClient) -> None:
    runner_of(client).target = simulation_targets.quick
    _, headers = new_account(client)
    started = client.post("/simulations", json=SIM, headers=headers)
    assert started.status_code == 202, started.text
    body = wait_for(client, started.json()["id"], headers)
    assert body["status"] == "done" and body["periods_done"] == 2
    assert body["summary"]["pid"] != os.getpid() and body["summary"]["nice"] >= 10  # apart from the server, below it


def test_a_simulation_past_its_time_limit_is_killed(make_settings: Callable[..., Settings]) -> None:
    with TestClient(create_app(make_settings(simulation_timeout_s=2)), raise_server_exceptions=False) as client:
        runner_of(client).target = simulation_targets.sleepy
        _, headers = new_account(client)
        sim_id = client.post("/simulations", json=SIM, headers=headers).json()["id"]
        body = wait_for(client, sim_id, headers, timeout=60)
        assert body["status"] == "failed" and "time limit" in body["error"]
        assert not runner_of(client).processes  # the process is gone


def test_a_simulation_past_its_memory_limit_fails(make_settings: Callable[..., Settings]) -> None:
    with TestClient(create_app(make_settings(simulation_memory_bytes=512 * 1024**2)), raise_server_exceptions=False) as client:
        runner_of(client).target = simulation_targets.hungry
        _, headers = new_account(client)
        sim_id = client.post("/simulations", json=SIM, headers=headers).json()["id"]
        body = wait_for(client, sim_id, headers, timeout=60)
        assert body["status"] == "failed" and "memory limit" in body["error"], body
        runner_of(client).target = simulation_targets.broken
        sim_id = client.post("/simulations", json=SIM, headers=headers).json()["id"]
        body = wait_for(client, sim_id, headers, timeout=60)
        assert body["status"] == "failed" and "exit code 3" in body["error"], body


def test_simulation_quotas(make_settings: Callable[..., Settings], db_url: str) -> None:
    settings = make_settings(
        db_url=db_url, simulations_per_account=2, max_running_simulations=2, max_running_simulations_per_account=1
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        runner = runner_of(client)
        runner.target = simulation_targets.sleepy
        _, first = new_account(client)
        _, second = new_account(client)
        _, third = new_account(client)
        running = client.post("/simulations", json=SIM, headers=first)
        assert running.status_code == 202
        busy = client.post("/simulations", json=SIM, headers=first)  # one at a time per account
        assert busy.status_code == 429 and busy.json()["code"] == "simulations_busy" and busy.headers["retry-after"]
        assert client.post("/simulations", json=SIM, headers=second).status_code == 202  # another account may
        full = client.post("/simulations", json=SIM, headers=third)  # two at a time on the server
        assert full.status_code == 429 and full.json()["code"] == "simulations_busy"
        runner.stop.set()  # end both runs (they are marked interrupted)
        for thread in list(runner.threads.values()):
            thread.join(30)
        runner.stop.clear()
        runner.target = simulation_targets.quick
        assert wait_for(client, running.json()["id"], first)["status"] == "interrupted"
        assert client.post("/simulations", json=SIM, headers=first).status_code == 202  # the second of the window
        for thread in list(runner.threads.values()):
            thread.join(60)
        over = client.post("/simulations", json=SIM, headers=first)
        assert over.status_code == 429 and over.json()["code"] == "simulation_quota_exceeded", over.text
        assert 86000 <= int(over.headers["retry-after"]) <= 86400


def test_stored_bytes_per_account(make_settings: Callable[..., Settings], db_url: str) -> None:
    with TestClient(create_app(make_settings(db_url=db_url, stored_bytes_per_account=1)), raise_server_exceptions=False) as client:
        esp, _ = new_esp(client)
        _, headers = new_account(client)
        assert client.post("/tasks", json={"prompt": "first", "esp": esp}, headers=headers).status_code == 201
        over = client.post("/tasks", json={"prompt": "second", "esp": esp}, headers=headers)
        assert over.status_code == 403 and over.json()["code"] == "storage_quota_exceeded"
        refused = client.post("/simulations", json=SIM, headers=headers)
        assert refused.status_code == 403 and refused.json()["code"] == "storage_quota_exceeded"
        _, other = new_account(client)
        assert client.post("/tasks", json={"prompt": "theirs", "esp": esp}, headers=other).status_code == 201


def test_simulations_are_listed_and_read_per_account(client: TestClient) -> None:
    runner_of(client).target = simulation_targets.quick
    _, mine = new_account(client)
    _, theirs = new_account(client)
    sim_id = client.post("/simulations", json=SIM, headers=mine).json()["id"]
    wait_for(client, sim_id, mine)
    assert client.get("/simulations").status_code == 401
    assert client.get(f"/simulations/{sim_id}").status_code == 401
    assert [s["id"] for s in client.get("/simulations", headers=mine).json()["items"]] == [sim_id]
    assert client.get("/simulations", headers=theirs).json() == {"items": [], "total": 0, "limit": 50, "offset": 0}
    assert client.get(f"/simulations/{sim_id}", headers=theirs).status_code == 403


def test_old_run_folders_are_removed_by_retention(make_settings: Callable[..., Settings]) -> None:
    with TestClient(create_app(make_settings(simulation_retention_s=3600)), raise_server_exceptions=False) as client:
        runner = runner_of(client)
        runner.target = simulation_targets.quick
        _, headers = new_account(client)
        old = client.post("/simulations", json=SIM, headers=headers).json()["id"]
        assert wait_for(client, old, headers)["status"] == "done"
        state = client.app.state.market  # type: ignore[attr-defined]
        with state.sessions.begin() as session:
            row = session.get(models.Simulation, old)
            assert row.output_bytes > 1000 and (runner.workdir / old).is_dir()
            row.finished_at = datetime.now(UTC) - timedelta(hours=2)
        new = client.post("/simulations", json=SIM, headers=headers).json()["id"]  # each start purges
        assert wait_for(client, new, headers)["status"] == "done"
        assert not (runner.workdir / old).exists() and (runner.workdir / new).is_dir()
        with state.sessions() as session:
            row = session.get(models.Simulation, old)
            assert row.purged and row.output_bytes == 0 and row.summary is not None


def test_the_worker_reports_a_failure_in_the_servers_words(tmp_path: Path) -> None:
    """The real worker, spawned: a run that raises reports the exception's class only, never its text."""
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    bad = {"periods": -1, "seed": "/secret/path/of/the/server"}
    process = context.Process(target=run_in_child, args=(bad, str(tmp_path / "run"), 0, sender))
    process.start()
    sender.close()
    assert receiver.poll(120)
    kind, message = receiver.recv()
    process.join(30)
    assert kind == "error" and re.fullmatch(r"the run failed \(\w+\)", message), message
