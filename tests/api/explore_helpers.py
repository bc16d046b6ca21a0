"""Helpers of the explorer's browser tests: a real uvicorn server in a thread, a short market lifecycle over
HTTP, and a page probe that collects console errors and failed requests and runs axe-core."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from api.explore import STATIC_DIR
from api.launcher import serve_in_thread
from api.main import create_app
from api.settings import Settings
from market.chain.connection import Chain
from market.terms import ETHER

AXE = STATIC_DIR / "vendor" / "axe.min.js"
CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "out" / "screenshots"


#: The test servers' settings (as tests/api/conftest.py's HARNESS): the faucet on, no rate limits.
HARNESS: dict[str, Any] = {
    "faucet_wei": 10 * ETHER,
    "faucet_client_budget_wei": 10**6 * ETHER,
    "faucet_budget_wei": 10**6 * ETHER,
    "rate_limit_per_s": 0,
    "account_rate_limit_per_s": 0,
    "account_creations_per_hour": 0,
    "simulated_esps": True,
}


def explorer_app(data_dir: Path, chain: Chain) -> FastAPI:
    return create_app(Settings(data_dir=data_dir, chain=chain, secret="explorer-test-secret", **HARNESS))


def serving(app: FastAPI) -> AbstractContextManager[str]:
    """`app` under uvicorn on 127.0.0.1 (a free port) in a thread; stopped on exit."""
    return serve_in_thread(app)


def auth(account: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {account['api_key']}"}


@dataclass
class Market:
    """What the lifecycle left: accounts (as POST /accounts returned them), tokens, locks."""

    esp: dict[str, Any]
    cheat: dict[str, Any]
    producer: dict[str, Any]
    other_producer: dict[str, Any]
    buyer: dict[str, Any]
    token: int
    second: int
    accused: int
    task_lock: str
    trade: dict[str, Any]
    content_hash: str
    extra: dict[str, Any] = field(default_factory=dict)


def lifecycle(http: httpx.Client, chain: Chain, challenge_window: int) -> Market:
    """Two ESPs (one cheats), two producers, a buyer: three products, a rating each way, a refund, a rejected
    challenge, the challenge window passed, the second product sold (0.01 ether) and resold (0.02 ether), and a
    purchase lock of the first left open (to be claimed by a test)."""
    esp, cheat, producer, other, buyer = (http.post("/accounts").json() for _ in range(5))
    assert http.post("/esps", json={"name": "edge one"}, headers=auth(esp)).status_code == 201
    assert http.post("/esps", json={"name": "cheat", "profile": "cheating"}, headers=auth(cheat)).status_code == 201

    def product(owner: dict[str, Any], prompt: str) -> tuple[dict[str, Any], dict[str, Any]]:
        task = http.post("/tasks", json={"prompt": prompt, "esp": esp["address"]}, headers=auth(owner)).json()
        registered = http.post("/products", json={"task_id": task["id"]}, headers=auth(owner))
        assert registered.status_code == 201, registered.text
        return task, registered.json()

    task, first = product(producer, "a red fox")
    _, second = product(producer, "a blue bird")
    _, accused = product(other, "a green field")
    rated = http.post(f"/tasks/{task['id']}/rating", json={"positive": True, "score": 80}, headers=auth(producer))
    assert rated.status_code == 200, rated.text
    cheated = http.post("/tasks", json={"prompt": "never delivered", "esp": cheat["address"]}, headers=auth(producer)).json()
    assert cheated["state"] == "locked"
    verdict = http.post(
        f"/products/{first['token_id']}/challenges", json={"duplicate_id": accused["token_id"]}, headers=auth(producer)
    )
    assert verdict.status_code == 201 and verdict.json()["upheld"] is False, verdict.text
    chain.set_next_block_timestamp(cheated["timelock"])
    assert http.post(f"/tasks/{cheated['id']}/refund", headers=auth(producer)).json()["state"] == "refunded"
    assert http.post(f"/tasks/{cheated['id']}/rating", json={"positive": False}, headers=auth(producer)).status_code == 200
    chain.advance_time(challenge_window)
    for seller, buyer_of, price in ((producer, buyer, 10**16), (buyer, other, 2 * 10**16)):  # a sale, then a resale
        sale = http.post("/trades", json={"token_id": second["token_id"], "price_wei": price}, headers=auth(buyer_of)).json()
        assert http.post(f"/trades/{sale['id']}/claim", headers=auth(seller)).json()["state"] == "claimed"
    trade = http.post("/trades", json={"token_id": first["token_id"], "price_wei": 10**16}, headers=auth(buyer))
    assert trade.status_code == 201 and trade.json()["state"] == "locked", trade.text
    return Market(
        esp=esp,
        cheat=cheat,
        producer=producer,
        other_producer=other,
        buyer=buyer,
        token=first["token_id"],
        second=second["token_id"],
        accused=accused["token_id"],
        task_lock=task["lock_id"],
        trade=trade.json(),
        content_hash=first["content_hash"],
    )


@dataclass
class Probe:
    """Console errors, uncaught exceptions, failed requests and error responses of one page."""

    errors: list[str] = field(default_factory=list)

    def attach(self, page: Any) -> None:
        page.on("console", lambda msg: self.errors.append(f"console: {msg.text}") if msg.type == "error" else None)
        page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))
        page.on("requestfailed", lambda request: self.errors.append(f"failed: {request.url} {request.failure}"))
        page.on("response", lambda reply: self.errors.append(f"{reply.status}: {reply.url}") if reply.status >= 400 else None)


def serious_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core (the vendored copy, injected inline) on the page: its serious and critical violations."""
    page.add_script_tag(content=AXE.read_text())
    found: list[dict[str, Any]] = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ["violations"]})).violations
            .map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(" ")).slice(0, 5)}))"""
    )
    return [v for v in found if v["impact"] in ("serious", "critical")]
