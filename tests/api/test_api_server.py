"""A real uvicorn server on 127.0.0.1 driven with httpx: lifecycle over HTTP, stop, restart, same state."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import httpx

from api.launcher import ServerProcess, serve_in_thread
from api.main import create_app
from api.settings import Settings
from market.chain.anvil import AnvilNode, free_port
from market.chain.connection import Chain
from market.terms import MarketParams


def serving(settings: Settings) -> AbstractContextManager[str]:
    return serve_in_thread(create_app(settings), startup_timeout=20)


def test_http_lifecycle_and_restart(make_settings: Callable[..., Settings], db_url: str) -> None:
    settings = make_settings(db_url=db_url)
    with serving(settings) as url, httpx.Client(base_url=url, timeout=30) as http:
        esp = http.post("/accounts").json()
        esp_headers = {"Authorization": f"Bearer {esp['api_key']}"}
        assert http.post("/esps", json={"name": "edge"}, headers=esp_headers).status_code == 201
        producer = http.post("/accounts").json()
        headers = {"Authorization": f"Bearer {producer['api_key']}"}
        task = http.post("/tasks", json={"prompt": "over http", "esp": esp["address"]}, headers=headers).json()
        product = http.post("/products", json={"task_id": task["id"]}, headers=headers).json()
        http.post(f"/tasks/{task['id']}/rating", json={"positive": True, "score": 60}, headers=headers)
        before = (
            http.get(f"/products/{product['token_id']}").json(),
            http.get(f"/esps/{esp['address']}").json(),
            http.get("/health").json()["indexed_block"],
        )
    with serving(make_settings(db_url=db_url)) as url, httpx.Client(base_url=url, timeout=30) as http:
        after = (
            http.get(f"/products/{product['token_id']}").json(),
            http.get(f"/esps/{esp['address']}").json(),
            http.get("/health").json()["indexed_block"],
        )
        assert after == before
        assert http.get("/accounts/me", headers=headers).json()["address"] == producer["address"]


def test_whole_lifecycle_over_http_on_the_real_server(tmp_path: Path, db_url: str) -> None:
    """`aigc-market serve` as a process on anvil (--rpc), SQLite or PostgreSQL: every step of the market
    over HTTP only (chain time is moved on the node, as passing time would: timelocks, challenge windows),
    then a stop and a restart on the same database and chain that finds the same state."""

    def auth(account: dict) -> dict[str, str]:
        return {"Authorization": f"Bearer {account['api_key']}"}

    with AnvilNode(port=free_port()) as node:
        clock = Chain.connect(node.url)
        server = ServerProcess(tmp_path / "served", rpc_url=node.url, db_url=db_url)
        try:
            with server, httpx.Client(base_url=server.url, timeout=60) as http:
                esp, cheat, producer, buyer = (http.post("/accounts").json() for _ in range(4))
                assert http.post("/esps", json={"name": "edge"}, headers=auth(esp)).status_code == 201
                assert http.post("/esps", json={"name": "cheat", "profile": "cheating"}, headers=auth(cheat)).status_code == 201
                task = http.post("/tasks", json={"prompt": "served fox", "esp": esp["address"]}, headers=auth(producer)).json()
                assert task["state"] == "delivered"
                product = http.post("/products", json={"task_id": task["id"]}, headers=auth(producer))
                assert product.status_code == 201, product.text
                token = product.json()["token_id"]
                assert http.get(f"/products/{token}/content").headers["content-type"] == "image/png"
                assert http.post(
                    f"/tasks/{task['id']}/rating", json={"positive": True, "score": 80}, headers=auth(producer)
                ).json()["rated"]
                # A cheating ESP never reveals: refund after the timelock.
                locked = http.post("/tasks", json={"prompt": "served frog", "esp": cheat["address"]}, headers=auth(producer)).json()
                assert locked["state"] == "locked"
                clock.set_next_block_timestamp(locked["timelock"])
                assert http.post(f"/tasks/{locked['id']}/refund", headers=auth(producer)).json()["state"] == "refunded"
                # Trade claimed by the seller, once the product is final: token moves to the buyer.
                early = http.post("/trades", json={"token_id": token, "price_wei": 10**16}, headers=auth(buyer))
                assert early.status_code == 409 and early.json()["code"] == "product_not_final"
                window = MarketParams().challenge_window  # the server deployed the default parameters
                clock.advance_time(window)
                trade = http.post("/trades", json={"token_id": token, "price_wei": 10**16}, headers=auth(buyer)).json()
                assert http.post(f"/trades/{trade['id']}/claim", headers=auth(buyer)).status_code == 403
                assert http.post(f"/trades/{trade['id']}/claim", headers=auth(producer)).json()["state"] == "claimed"
                assert http.get(f"/products/{token}").json()["owner"] == buyer["address"]
                # Trade never claimed: the buyer refunds after the timelock.
                back = http.post("/trades", json={"token_id": token, "price_wei": 10**15}, headers=auth(producer)).json()
                clock.set_next_block_timestamp(back["timelock"])
                assert http.post(f"/trades/{back['id']}/refund", headers=auth(producer)).json()["state"] == "refunded"
                # Challenge by the owner of the original: different images, not upheld.
                other = http.post("/tasks", json={"prompt": "served sun", "esp": esp["address"]}, headers=auth(producer)).json()
                second = http.post("/products", json={"task_id": other["id"]}, headers=auth(producer)).json()["token_id"]
                verdict = http.post(f"/products/{token}/challenges", json={"duplicate_id": second}, headers=auth(buyer))
                assert verdict.status_code == 201 and verdict.json()["upheld"] is False
                # Final products: bonds claimed, every credit (proceeds, deposit, bond) withdrawn.
                clock.advance_time(window)
                closed = http.post(f"/products/{token}/challenges", json={"duplicate_id": second}, headers=auth(buyer))
                assert closed.status_code == 409 and closed.json()["code"] == "challenge_window_closed"
                assert http.post(f"/products/{second}/bond", headers=auth(producer)).json()["bond_released"] is True
                credits = http.get("/credits", headers=auth(producer)).json()
                assert credits["exchange_wei"] == 10**16 and credits["registry_wei"] > 0
                withdrawn = http.post("/credits/withdraw", headers=auth(producer)).json()
                assert withdrawn["withdrawn_wei"] == credits["total_wei"]
                health = http.get("/health").json()
                assert health["indexed_block"] == health["block"] and health["database"] == db_url.split(":")[0].split("+")[0]
                before = [
                    http.get(path).json()
                    for path in (
                        f"/products/{token}",
                        f"/products/{second}",
                        "/products",
                        f"/esps/{esp['address']}",
                        f"/products/{second}/challenges",
                    )
                ]
                trades = http.get("/trades", headers=auth(producer)).json()
            with server, httpx.Client(base_url=server.url, timeout=60) as http:
                after = [
                    http.get(path).json()
                    for path in (
                        f"/products/{token}",
                        f"/products/{second}",
                        "/products",
                        f"/esps/{esp['address']}",
                        f"/products/{second}/challenges",
                    )
                ]
                assert after == before
                assert http.get("/trades", headers=auth(producer)).json() == trades
                assert http.get("/accounts/me", headers=auth(buyer)).json()["address"] == buyer["address"]
        finally:
            server.kill()
