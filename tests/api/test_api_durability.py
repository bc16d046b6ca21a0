"""Durability: SIGKILL the real server (`aigc-market serve`) KILLS times in the middle of a stream of writes.

The chain is an anvil node started by the test (`--rpc`), so it outlives every kill; the database is
the default SQLite file under `--data`. The writer sends, back to back, the cheapest real writes that
touch both the chain and the database: create an account (one transfer), a generation task (the ESP's
offer locked, then withdrawn), the product registration of that task (one registry transaction from
the task's paid offer) and a rating. After
each restart, every write whose 2xx reply was received must be there exactly once, and the indexer
must agree with the chain: products, ratings and stored events counted in the database equal what the
contracts say (through `market.chain` wrappers at the addresses of `deployment.json`).

A registration cut off by a kill is retried once after the restart: it must end as one product, not
two and not a stuck "generation used" error. A task intent cut off before its lock stays an intent
whose lock id is not on chain; one whose lock was mined is completed by that id. The figure goes to
out/verification/api_durability.json.
"""

from __future__ import annotations

import json
import random
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from api_helpers import new_account, new_esp
from fastapi.testclient import TestClient

from api import models
from api.indexer import INDEXED
from api.launcher import ServerProcess
from market.chain.anvil import AnvilNode, free_port
from market.chain.connection import Chain
from market.chain.deploy import Deployment, attach_market
from market.chain.offers import Offer, Opening

KILLS = 20
"""SIGKILLs per run (the issue asks for 20); each costs one server start, about 3 to 5 s here."""
KILL_AFTER_S = (0.1, 0.7)
"""The kill lands at a uniformly random time in this window after the writer resumed."""
SEED = 20240607
FIGURE = Path(__file__).resolve().parents[2] / "out" / "verification" / "api_durability.json"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@dataclass
class Ledger:
    """What the server acknowledged (a 2xx reply reached the client)."""

    accounts: dict[str, str] = field(default_factory=dict)
    tasks: dict[int, str] = field(default_factory=dict)
    products: dict[int, int] = field(default_factory=dict)
    ratings: set[int] = field(default_factory=set)
    interrupted_registration: int | None = None
    retried_registrations: int = 0
    unexpected: list[str] = field(default_factory=list)

    def count(self) -> int:
        return len(self.accounts) + len(self.tasks) + len(self.products) + len(self.ratings)


class Writer(threading.Thread):
    """Writes until the server stops answering; records each acknowledged write."""

    def __init__(self, url: str, ledger: Ledger, producer: dict[str, str], esp: str, cycle: int) -> None:
        super().__init__(daemon=True)
        self.url, self.ledger, self.producer, self.esp, self.cycle = url, ledger, producer, esp, cycle

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as http:
            step = 0
            while True:
                step += 1
                try:
                    reply = http.post("/accounts")
                    if not self.ok(reply, "account"):
                        return
                    self.ledger.accounts[reply.json()["address"]] = reply.json()["api_key"]
                    prompt = f"durability {self.cycle}.{step} {random.random()}"
                    reply = http.post("/tasks", json={"prompt": prompt, "esp": self.esp}, headers=self.producer)
                    if not self.ok(reply, "task"):
                        return
                    task = reply.json()
                    self.ledger.tasks[task["id"]] = task["lock_id"]
                    self.ledger.interrupted_registration = task["id"]
                    reply = http.post("/products", json={"task_id": task["id"]}, headers=self.producer)
                    if not self.ok(reply, "product"):
                        return
                    self.ledger.interrupted_registration = None
                    self.ledger.products[reply.json()["token_id"]] = task["id"]
                    reply = http.post(f"/tasks/{task['id']}/rating", json={"positive": True, "score": 70}, headers=self.producer)
                    if not self.ok(reply, "rating"):
                        return
                    self.ledger.ratings.add(task["id"])
                except httpx.HTTPError:
                    return  # the server died under this request: not acknowledged

    def ok(self, reply: httpx.Response, what: str) -> bool:
        if reply.is_success:
            return True
        self.ledger.unexpected.append(f"{what}: {reply.status_code} {reply.text[:200]}")
        return False


def check(
    server: ServerProcess, ledger: Ledger, producer: dict[str, str], producer_address: str, esp: str, new_accounts: list[str]
) -> None:
    """Every acknowledged write is there once; the index agrees with the chain."""
    db = sqlite3.connect(f"file:{server.data_dir / 'market.sqlite3'}?mode=ro", uri=True)
    try:
        accounts = dict(db.execute("SELECT address, count(*) FROM accounts GROUP BY address").fetchall())
        task_rows = dict(db.execute("SELECT id, lock_id FROM tasks").fetchall())
        intents = dict(db.execute("SELECT lock_id, state FROM tasks WHERE state IN ('pending', 'abandoned')").fetchall())
        events = db.execute("SELECT count(*), count(DISTINCT block_number || '/' || log_index) FROM chain_events").fetchone()
        product_tasks = dict(db.execute("SELECT token_id, task_id FROM products").fetchall())
    finally:
        db.close()
    lost = [a for a in ledger.accounts if accounts.get(a) != 1]
    assert not lost, f"acknowledged accounts missing or doubled: {lost}"
    assert all(task_rows.get(i) == lock for i, lock in ledger.tasks.items()), "an acknowledged task is missing"
    locks = [lock for lock in task_rows.values() if lock is not None]
    assert len(locks) == len(task_rows), "a task has no lock id (an intent records it before the lock is sent)"
    assert len(set(locks)) == len(locks), "two tasks share a lock"
    assert events[0] == events[1], "an event was stored twice"

    with httpx.Client(base_url=server.url, timeout=30) as http:
        for address in new_accounts:  # the keys handed out since the last check still open their account
            assert http.get("/accounts/me", headers=bearer(ledger.accounts[address])).json()["address"] == address
        listed: list[dict] = []
        while True:
            page = http.get("/products", params={"producer": producer_address, "limit": 100, "offset": len(listed)}).json()
            listed += page["items"]
            if len(listed) >= page["total"]:
                break
        tokens = [p["token_id"] for p in listed]
        assert len(tokens) == len(set(tokens))
        for token, task_id in ledger.products.items():
            assert tokens.count(token) == 1 and product_tasks[token] == task_id, f"product {token} lost or doubled"
        assert sorted(t for t in product_tasks.values() if t is not None) == sorted(set(product_tasks.values()) - {None})
        health = http.get("/health").json()
        assert health["indexed_block"] == health["block"]
        esp_row = http.get(f"/esps/{esp}").json()
        rated = {t["id"] for t in tasks_of(http, producer) if t["rated"]}
        assert ledger.ratings <= rated

    market = attach_market(Chain.connect(server.rpc_url or ""), Deployment.read(server.data_dir / "deployment.json"))
    assert market.registry.total_registered() == len(product_tasks) == page["total"]
    # No fee is locked on chain without a task row that can refund it (the lock intents' promise), and a
    # kill between a task's intent and its lock leaves an intent only if the lock never reached the chain:
    # one whose lock was mined is completed by its lock id.
    on_chain = {"0x" + lock_id.hex() for lock_id, _ in market.exchange.generation_lock_ids(market.deployment.block)}
    assert on_chain <= set(locks), f"generation locks with no task: {sorted(on_chain - set(locks))}"
    assert not on_chain & set(intents), f"locks on chain left as intents: {sorted(on_chain & set(intents))}"
    for token in ledger.products:
        assert market.registry.owner_of(token) == producer_address
    stats = market.ledger.stats(producer_address, esp)
    assert (esp_row["positives"], esp_row["negatives"]) == (stats.positives, stats.negatives)
    assert stats.positives >= len(ledger.ratings)
    on_chain = sum(
        len(market.chain.events(getattr(market, attribute).contract, name))
        for attribute, names in INDEXED.items()
        for name in names
    )
    assert events[0] == on_chain, f"indexer has {events[0]} events, the chain {on_chain}"


def tasks_of(http: httpx.Client, headers: dict[str, str]) -> list[dict]:
    found: list[dict] = []
    while True:
        page = http.get("/tasks", params={"limit": 100, "offset": len(found)}, headers=headers).json()
        found += page["items"]
        if len(found) >= page["total"]:
            return found


def test_sigkill_durability(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    ledger = Ledger()
    started = time.monotonic()
    with AnvilNode(port=free_port()) as node:
        server = ServerProcess(tmp_path / "data", rpc_url=node.url)
        try:
            server.start()
            with httpx.Client(base_url=server.url, timeout=30) as http:
                esp_account = http.post("/accounts").json()
                assert http.post("/esps", json={"name": "durable"}, headers=bearer(esp_account["api_key"])).status_code == 201
                producer_account = http.post("/accounts").json()
            esp, producer_address = esp_account["address"], producer_account["address"]
            producer = bearer(producer_account["api_key"])
            for cycle in range(KILLS):
                seen = set(ledger.accounts)
                writer = Writer(server.url, ledger, producer, esp, cycle)
                writer.start()
                time.sleep(rng.uniform(*KILL_AFTER_S))
                server.kill()
                writer.join(30)
                assert not writer.is_alive()
                server.start()
                if ledger.interrupted_registration is not None:  # the client retries what it never saw answered
                    with httpx.Client(base_url=server.url, timeout=30) as http:
                        task_id = ledger.interrupted_registration
                        reply = http.post("/products", json={"task_id": task_id}, headers=producer)
                        if reply.status_code == 409 and reply.json()["code"] == "already_registered":
                            reply = http.get(f"/tasks/{task_id}", headers=producer)
                        assert reply.is_success, reply.text
                        ledger.products[reply.json()["token_id"]] = task_id
                        ledger.interrupted_registration = None
                        ledger.retried_registrations += 1
                check(server, ledger, producer, producer_address, esp, [a for a in ledger.accounts if a not in seen])
                assert not ledger.unexpected, ledger.unexpected
        finally:
            server.kill()
    elapsed = time.monotonic() - started
    figure = {
        "kills": KILLS,
        "acknowledged_writes": ledger.count(),
        "lost": 0,
        "doubled": 0,
        "by_kind": {
            "accounts": len(ledger.accounts),
            "tasks": len(ledger.tasks),
            "products": len(ledger.products),
            "ratings": len(ledger.ratings),
        },
        "registrations_retried_after_a_kill": ledger.retried_registrations,
        "database": "sqlite",
        "chain": "anvil (--rpc)",
        "seconds": round(elapsed, 1),
    }
    print(f"\n{KILLS} kills, {ledger.count()} acknowledged writes, 0 lost ({elapsed:.0f} s)")
    FIGURE.parent.mkdir(parents=True, exist_ok=True)
    FIGURE.write_text(json.dumps(figure, indent=2) + "\n")


def test_registration_cut_off_after_its_transaction_is_adopted_by_the_retry(client: TestClient) -> None:
    """The registry transaction went through but the server died before recording it: the retry
    records that token (once) instead of failing forever on the registry's "generation used" check."""
    esp, _ = new_esp(client)
    _, headers = new_account(client)
    task = client.post("/tasks", json={"prompt": "cut off", "esp": esp}, headers=headers).json()
    state = client.app.state.market  # type: ignore[attr-defined]

    with state.sessions() as session:  # what the route does up to its transaction, then "dies"
        row = session.get(models.Task, task["id"])
        producer = session.get(models.Account, row.producer_id)
        token = state.protocol.register(state.signer(producer), Offer.from_json(row.offer), Opening.from_json(row.opening)).token_id
    state.indexer.run_once()  # the restarted server's catch-up: the product is indexed, linked by its lock
    registry = state.market.registry
    before = registry.total_registered()
    retry = client.post("/products", json={"task_id": task["id"]}, headers=headers)
    assert retry.status_code == 201, retry.text
    assert retry.json()["token_id"] == token and retry.json()["task_id"] == task["id"] and retry.json()["content_url"]
    assert registry.total_registered() == before
    assert client.get(f"/tasks/{task['id']}", headers=headers).json()["token_id"] == token
    assert client.post("/products", json={"task_id": task["id"]}, headers=headers).json()["code"] == "already_registered"
    # Another account's task with the same prompt is never matched to that token: adoption goes by the
    # task's own lock, and the other ESP's secret seed gives other content, registered as a product of its own.
    other_esp, _ = new_esp(client)
    other_address, other_headers = new_account(client)
    other = client.post("/tasks", json={"prompt": "cut off", "esp": other_esp}, headers=other_headers).json()
    own = client.post("/products", json={"task_id": other["id"]}, headers=other_headers)
    assert own.status_code == 201, own.text
    assert own.json()["token_id"] == before + 1 and own.json()["producer"] == other_address
    assert own.json()["content_hash"] != "0x" + registry.product(token).content_hash.hex()
