"""The whole lifecycle through the API, on SQLite and on PostgreSQL, with the 403 and 409 cases on the way."""

from __future__ import annotations

from collections.abc import Callable

from api_helpers import new_account, new_esp, pass_challenge_window
from fastapi.testclient import TestClient

from api.main import create_app
from api.settings import Settings
from market.chain.connection import Chain
from market.chain.contracts import EspState, LockState
from market.chain.offers import Offer, offer_id


def test_lifecycle(make_settings: Callable[..., Settings], db_url: str, chain: Chain) -> None:
    with TestClient(create_app(make_settings(db_url=db_url)), raise_server_exceptions=False) as client:
        state = client.app.state.market  # type: ignore[attr-defined]
        market, terms = state.market, state.protocol.terms
        esp, esp_headers = new_esp(client)
        cheat, _ = new_esp(client, "cheating")
        producer, headers = new_account(client)
        buyer, buyer_headers = new_account(client)
        # Registering an ESP staked it on chain.
        staked = market.exchange.esp_info(esp)
        assert staked.state is EspState.ACTIVE and staked.stake == terms.esp_stake
        assert client.get(f"/esps/{esp}").json()["stake_state"] == "active"

        task = client.post("/tasks", json={"prompt": "a red fox", "esp": esp}, headers=headers).json()
        assert task["state"] == "delivered" and task["cost"]["latency_s"] > 0 and "T_up" in task["cost"]["breakdown"]
        # The lock paid the ESP's signed offer: its id is the offer's digest, and the ESP withdrew it.
        offer = Offer.from_json(task["offer"])
        assert (offer.esp, offer.producer, offer.fee) == (esp, producer, terms.generation_fee)
        assert task["lock_id"] == "0x" + offer_id(offer, chain_id=chain.chain_id, exchange=market.exchange.address).hex()
        assert market.exchange.generation_lock(offer).state is LockState.WITHDRAWN
        chosen = client.post("/tasks", json={"prompt": "a blue bird"}, headers=headers)
        assert chosen.status_code == 201 and chosen.json()["selected_by"] == "mwsl"
        assert client.get(f"/tasks/{task['id']}", headers=buyer_headers).status_code == 403
        assert client.post("/products", json={"task_id": task["id"]}, headers=buyer_headers).status_code == 403

        product = client.post("/products", json={"task_id": task["id"]}, headers=headers)
        assert product.status_code == 201, product.text
        token = product.json()["token_id"]
        assert product.json()["owner"] == producer and product.json()["lock_id"] == task["lock_id"]
        assert product.json()["content_hash"] == task["opening"]["content_hash"]
        content = client.get(f"/products/{token}/content")
        assert content.status_code == 200 and content.headers["content-type"] == "image/png"
        assert client.post("/products", json={"task_id": task["id"]}, headers=headers).json()["code"] == "already_registered"

        rated = client.post(f"/tasks/{task['id']}/rating", json={"positive": True, "score": 80}, headers=headers)
        assert rated.status_code == 200 and rated.json()["rated"]
        assert (
            client.post(f"/tasks/{task['id']}/rating", json={"positive": True}, headers=headers).json()["code"]
            == "ReputationLedgerAlreadyRated"
        )
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
        positive = client.post(f"/tasks/{cheated['id']}/rating", json={"positive": True}, headers=headers)
        assert positive.status_code == 422 and positive.json()["code"] == "ReputationLedgerPositiveRatingOfRefund"
        client.post(f"/tasks/{cheated['id']}/rating", json={"positive": False}, headers=headers)
        assert client.get(f"/esps/{cheat}/reputation").json()["reputation"] < 0.5

        # ESPs: only the owner may change one.
        assert client.patch(f"/esps/{esp}", json={"name": "x"}, headers=headers).status_code == 403
        assert client.patch(f"/esps/{esp}", json={"name": "renamed"}, headers=esp_headers).json()["name"] == "renamed"

        # Trade: only a final product can be bought; the buyer locks, only the seller claims; the token moves,
        # the price is credited to the seller.
        early = client.post("/trades", json={"token_id": token, "price_wei": 10**16}, headers=buyer_headers)
        assert early.status_code == 409 and early.json()["code"] == "product_not_final"
        assert client.get("/trades", headers=buyer_headers).json()["total"] == 0
        pass_challenge_window(client, chain)
        trade = client.post("/trades", json={"token_id": token, "price_wei": 10**16}, headers=buyer_headers).json()
        assert trade["state"] == "locked"
        assert client.post(f"/trades/{trade['id']}/claim", headers=buyer_headers).status_code == 403
        assert client.post(f"/trades/{trade['id']}/refund", headers=headers).status_code == 403
        assert client.post(f"/trades/{trade['id']}/claim", headers=headers).json()["state"] == "claimed"
        assert client.get(f"/products/{token}").json()["owner"] == buyer
        assert client.get("/products", params={"owner": buyer}).json()["total"] == 1
        assert client.get("/products", params={"producer": producer, "limit": 1}).json()["items"][0]["token_id"] == token
        assert client.get("/credits", headers=headers).json()["exchange_wei"] == 10**16  # the producer sold: no royalty

        # A trade the seller never claims: the buyer refunds after the timelock.
        back = client.post("/trades", json={"token_id": token, "price_wei": 10**15}, headers=headers).json()
        early = client.post(f"/trades/{back['id']}/refund", headers=headers)
        assert early.status_code == 409 and early.json()["code"] == "AIGCExchangeTimelockNotExpired"
        chain.set_next_block_timestamp(back["timelock"])
        assert client.post(f"/trades/{back['id']}/refund", headers=headers).json()["state"] == "refunded"

        # Challenges: only the owner of the original, within the accused's window; two different images
        # are not duplicates (the deposit goes to the accused).
        other = client.post("/tasks", json={"prompt": "a yellow sun", "esp": esp}, headers=headers).json()
        second = client.post("/products", json={"task_id": other["id"]}, headers=headers).json()["token_id"]
        assert client.post(f"/products/{token}/challenges", json={"duplicate_id": second}, headers=headers).status_code == 403
        verdict = client.post(f"/products/{token}/challenges", json={"duplicate_id": second}, headers=buyer_headers)
        assert verdict.status_code == 201 and verdict.json()["upheld"] is False
        assert len(client.get(f"/products/{second}/challenges").json()) == 1
        not_final = client.post(f"/products/{second}/bond", headers=headers)
        assert not_final.status_code == 409 and not_final.json()["code"] == "product_not_final"
        pass_challenge_window(client, chain)
        closed = client.post(f"/products/{token}/challenges", json={"duplicate_id": second}, headers=buyer_headers)
        assert closed.status_code == 409 and closed.json()["code"] == "challenge_window_closed"

        # Bonds of final products, then every credit withdrawn at once.
        assert client.post(f"/products/{second}/bond", headers=buyer_headers).status_code == 403
        bond = client.post(f"/products/{second}/bond", headers=headers)
        assert bond.status_code == 200 and bond.json()["bond_released"] is True
        assert client.post(f"/products/{second}/bond", headers=headers).json()["code"] == "bond_already_claimed"
        assert client.post(f"/products/{token}/bond", headers=buyer_headers).json()["bond_released"] is True
        credits = client.get("/credits", headers=headers).json()
        deposit, bond_wei = market.registry.challenge_deposit(), market.registry.registration_bond()
        assert credits == {
            "address": producer,
            "registry_wei": deposit + bond_wei,
            "exchange_wei": 10**16,
            "total_wei": deposit + bond_wei + 10**16,
        }
        before = chain.balance(producer)
        withdrawn = client.post("/credits/withdraw", headers=headers)
        assert withdrawn.status_code == 200 and withdrawn.json()["withdrawn_wei"] == credits["total_wei"]
        assert before < withdrawn.json()["balance_wei"] == chain.balance(producer) < before + credits["total_wei"]
        assert client.get("/credits", headers=headers).json()["total_wei"] == 0
        again = client.post("/credits/withdraw", headers=headers)
        assert again.status_code == 409 and again.json()["code"] == "no_credit"
        health = client.get("/health").json()
        assert health["status"] == "ok" and health["indexed_block"] == health["block"]
