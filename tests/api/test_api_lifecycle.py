"""The whole lifecycle through the API, on SQLite and on PostgreSQL, with the 403 cases on the way."""

from __future__ import annotations

from collections.abc import Callable

from api_helpers import new_account, new_esp
from fastapi.testclient import TestClient

from api.main import create_app
from api.settings import Settings
from market.chain.connection import Chain


def test_lifecycle(make_settings: Callable[..., Settings], db_url: str, chain: Chain) -> None:
    with TestClient(create_app(make_settings(db_url=db_url)), raise_server_exceptions=False) as client:
        esp, esp_headers = new_esp(client)
        cheat, _ = new_esp(client, "cheating")
        producer, headers = new_account(client)
        buyer, buyer_headers = new_account(client)

        task = client.post("/tasks", json={"prompt": "a red fox", "esp": esp}, headers=headers).json()
        assert task["state"] == "fulfilled" and task["cost"]["latency_s"] > 0 and "T_up" in task["cost"]["breakdown"]
        chosen = client.post("/tasks", json={"prompt": "a blue bird"}, headers=headers)
        assert chosen.status_code == 201 and chosen.json()["selected_by"] == "mwsl"
        assert client.get(f"/tasks/{task['id']}", headers=buyer_headers).status_code == 403
        assert client.post("/products", json={"task_id": task["id"]}, headers=buyer_headers).status_code == 403

        product = client.post("/products", json={"task_id": task["id"]}, headers=headers)
        assert product.status_code == 201, product.text
        token = product.json()["token_id"]
        assert product.json()["owner"] == producer
        content = client.get(f"/products/{token}/content")
        assert content.status_code == 200 and content.headers["content-type"] == "image/png"
        assert client.post("/products", json={"task_id": task["id"]}, headers=headers).json()["code"] == "already_registered"

        rated = client.post(f"/tasks/{task['id']}/rating", json={"positive": True, "score": 80}, headers=headers)
        assert rated.status_code == 200 and rated.json()["rated"]
        assert client.post(f"/tasks/{task['id']}/rating", json={"positive": True}, headers=headers).json()["code"] == \
            "ReputationLedgerAlreadyRated"
        reputation = client.get(f"/esps/{esp}/reputation").json()
        assert reputation["positives"] == 1 and reputation["reputation"] > 0.5

        # A cheating ESP never reveals: the producer refunds after the timelock and rates it negative.
        cheated = client.post("/tasks", json={"prompt": "a green frog", "esp": cheat}, headers=headers).json()
        assert cheated["state"] == "locked"
        early = client.post(f"/tasks/{cheated['id']}/refund", headers=headers)
        assert early.status_code == 409 and early.json()["code"] == "AIGCExchangeTimelockNotExpired"
        assert client.post(f"/tasks/{cheated['id']}/refund", headers=buyer_headers).status_code == 403
        chain.set_next_block_timestamp(cheated["timelock"])
        assert client.post(f"/tasks/{cheated['id']}/refund", headers=headers).json()["state"] == "refunded"
        client.post(f"/tasks/{cheated['id']}/rating", json={"positive": False}, headers=headers)
        assert client.get(f"/esps/{cheat}/reputation").json()["reputation"] < 0.5

        # ESPs: only the owner may change one.
        assert client.patch(f"/esps/{esp}", json={"name": "x"}, headers=headers).status_code == 403
        assert client.patch(f"/esps/{esp}", json={"name": "renamed"}, headers=esp_headers).json()["name"] == "renamed"

        # Trade: buyer locks, only the seller claims; token and price move.
        trade = client.post("/trades", json={"token_id": token, "price_wei": 10**16}, headers=buyer_headers).json()
        assert client.post(f"/trades/{trade['id']}/claim", headers=buyer_headers).status_code == 403
        assert client.post(f"/trades/{trade['id']}/refund", headers=headers).status_code == 403
        assert client.post(f"/trades/{trade['id']}/claim", headers=headers).json()["state"] == "claimed"
        assert client.get(f"/products/{token}").json()["owner"] == buyer
        assert client.get("/products", params={"owner": buyer}).json()["total"] == 1
        assert client.get("/products", params={"producer": producer, "limit": 1}).json()["items"][0]["token_id"] == token

        # A trade the seller never claims: the buyer refunds after the timelock.
        back = client.post("/trades", json={"token_id": token, "price_wei": 10**15}, headers=headers).json()
        chain.set_next_block_timestamp(back["timelock"])
        assert client.post(f"/trades/{back['id']}/refund", headers=headers).json()["state"] == "refunded"

        # Challenges: only the owner of the original; two different images are not duplicates.
        other = client.post("/tasks", json={"prompt": "a yellow sun", "esp": esp}, headers=headers).json()
        second = client.post("/products", json={"task_id": other["id"]}, headers=headers).json()["token_id"]
        assert client.post(f"/products/{token}/challenges", json={"duplicate_id": second}, headers=headers).status_code == 403
        verdict = client.post(f"/products/{token}/challenges", json={"duplicate_id": second}, headers=buyer_headers)
        assert verdict.status_code == 201 and verdict.json()["upheld"] is False
        assert len(client.get(f"/products/{second}/challenges").json()) == 1
        health = client.get("/health").json()
        assert health["status"] == "ok" and health["indexed_block"] == health["block"]
