"""What protocol v2 adds to the API: staked ESPs, finality, bonds, credits, displacement, immediate refunds,
purchase intents by lock id, and a 4xx with a stable code for every custom error of the contracts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from api_helpers import new_account, new_esp, new_product, pass_challenge_window, squat_content_of
from fastapi.testclient import TestClient
from sqlalchemy import select

from api import models
from api.errors import REVERTS, revert_code, revert_status
from api.main import create_app
from api.routes import tasks as tasks_route
from api.settings import Settings
from market.chain.artifacts import all_abis
from market.chain.connection import Chain
from market.chain.contracts import EspState, LockState
from market.chain.errors import ContractRevert
from market.chain.offers import Purchase, purchase_id
from market.terms import MarketTerms


def app_state(client: TestClient) -> Any:
    return client.app.state.market  # type: ignore[attr-defined]


def signer_of(client: TestClient, address: str) -> Any:
    state = app_state(client)
    with state.sessions() as session:
        return state.signer(session.scalar(select(models.Account).where(models.Account.address == address)))


# -- ESPs ------------------------------------------------------------------------------------------


def test_registering_an_esp_stakes_it_from_its_own_funds(client: TestClient) -> None:
    state = app_state(client)
    exchange, stake = state.market.exchange, state.protocol.terms.esp_stake
    address, headers = new_account(client)
    before = client.get("/accounts/me", headers=headers).json()["balance_wei"]
    held = exchange.balance()
    reply = client.post("/esps", json={"name": "staked"}, headers=headers)
    assert reply.status_code == 201 and reply.json()["stake_state"] == "active"
    assert exchange.esp_info(address).state is EspState.ACTIVE and exchange.esp_info(address).stake == stake
    assert exchange.balance() == held + stake
    assert client.get("/accounts/me", headers=headers).json()["balance_wei"] < before - stake
    again = client.post("/esps", json={"name": "twice"}, headers=headers)
    assert again.status_code == 409 and again.json()["code"] == "already_registered"
    assert exchange.balance() == held + stake


def test_an_account_that_cannot_pay_the_stake_is_refused(make_settings: Callable[..., Settings]) -> None:
    poor = MarketTerms().esp_stake // 2
    with TestClient(create_app(make_settings(faucet_wei=poor)), raise_server_exceptions=False) as client:
        address, headers = new_account(client)
        reply = client.post("/esps", json={"name": "poor"}, headers=headers)
        assert reply.status_code == 409 and reply.json()["code"] == "insufficient_funds"
        assert client.get("/esps").json()["total"] == 0
        assert app_state(client).market.exchange.esp_info(address).state is EspState.NONE


def test_settings_override_the_market_terms(make_settings: Callable[..., Settings]) -> None:
    terms = MarketTerms()
    settings = make_settings(esp_stake_wei=2 * terms.esp_stake, generation_fee_wei=terms.generation_fee // 2, lock_duration_s=900)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        esp, _ = new_esp(client)
        assert app_state(client).market.exchange.esp_info(esp).stake == 2 * terms.esp_stake
        _, headers = new_account(client)
        task = client.post("/tasks", json={"prompt": "terms", "esp": esp}, headers=headers).json()
        assert task["fee_wei"] == terms.generation_fee // 2
        assert task["timelock"] - int(task["offer"]["expiry"]) == 900 - terms.offer_ttl_s
    with pytest.raises(ValueError, match="fee floor"):  # terms the deployment would refuse: no start
        create_app(make_settings(generation_fee_wei=1))


def test_a_stake_whose_route_died_is_recorded_without_a_second_one(client: TestClient) -> None:
    state = app_state(client)
    address, headers = new_account(client)
    state.protocol.stake(signer_of(client, address))  # the route's transaction, then the server "died"
    held = state.market.exchange.balance()
    reply = client.post("/esps", json={"name": "recovered"}, headers=headers)
    assert reply.status_code == 201 and reply.json()["stake_state"] == "active"
    assert state.market.exchange.balance() == held


def test_an_esp_that_left_takes_no_jobs(client: TestClient) -> None:
    state = app_state(client)
    leaving, _ = new_esp(client)
    staying, _ = new_esp(client)
    _, headers = new_account(client)
    state.protocol.announce_exit(signer_of(client, leaving))
    state.indexer.run_once()
    assert client.get(f"/esps/{leaving}").json()["stake_state"] == "exiting"
    refused = client.post("/tasks", json={"prompt": "to the leaver", "esp": leaving}, headers=headers)
    assert refused.status_code == 409 and refused.json()["code"] == "esp_not_active"
    for prompt in ("chosen one", "chosen two", "chosen three"):  # reputation picks among the ESPs that stay
        chosen = client.post("/tasks", json={"prompt": prompt}, headers=headers)
        assert chosen.status_code == 201 and chosen.json()["esp"] == staying
    # An account the exchange knows as exiting cannot register (again) as an ESP here.
    address, other = new_account(client)
    state.protocol.stake(signer_of(client, address))
    state.protocol.announce_exit(signer_of(client, address))
    reply = client.post("/esps", json={"name": "exiting"}, headers=other)
    assert reply.status_code == 409 and reply.json()["code"] == "esp_cannot_stake"


# -- finality, trades, credits ---------------------------------------------------------------------


def test_a_buyer_refunds_at_once_when_the_token_was_sold_to_another(client: TestClient, chain: Chain) -> None:
    esp, _ = new_esp(client)
    seller, seller_headers = new_account(client)
    first_address, first = new_account(client)
    second_address, second = new_account(client)
    _, token = new_product(client, esp, seller_headers, "sold twice")
    pass_challenge_window(client, chain)
    loser = client.post("/trades", json={"token_id": token, "price_wei": 10**15}, headers=first).json()
    winner = client.post("/trades", json={"token_id": token, "price_wei": 2 * 10**15}, headers=second).json()
    early = client.post(f"/trades/{loser['id']}/refund", headers=first)
    assert early.status_code == 409 and early.json()["code"] == "AIGCExchangeTimelockNotExpired"
    assert client.post(f"/trades/{winner['id']}/claim", headers=seller_headers).json()["state"] == "claimed"
    assert client.get(f"/products/{token}").json()["owner"] == second_address
    too_late = client.post(f"/trades/{loser['id']}/claim", headers=seller_headers)
    assert too_late.status_code == 409 and too_late.json()["code"] == "seller_not_owner"
    before = chain.balance(first_address)
    refunded = client.post(f"/trades/{loser['id']}/refund", headers=first)  # no timelock to wait for
    assert refunded.status_code == 200 and refunded.json()["state"] == "refunded"
    assert chain.balance(first_address) > before
    assert client.get("/credits", headers=seller_headers).json()["exchange_wei"] == 2 * 10**15
    assert client.get(f"/trades/{loser['id']}", headers=seller_headers).json()["state"] == "refunded"


def test_royalties_are_credited_to_the_producer(client: TestClient, chain: Chain) -> None:
    esp, _ = new_esp(client)
    producer, producer_headers = new_account(client)
    owner, owner_headers = new_account(client)
    _, buyer_headers = new_account(client)
    _, token = new_product(client, esp, producer_headers, "royalties")
    pass_challenge_window(client, chain)
    trade = client.post("/trades", json={"token_id": token, "price_wei": 10**16}, headers=owner_headers).json()
    client.post(f"/trades/{trade['id']}/claim", headers=producer_headers)
    resale = client.post("/trades", json={"token_id": token, "price_wei": 10**16}, headers=buyer_headers).json()
    assert client.post(f"/trades/{resale['id']}/claim", headers=owner_headers).json()["state"] == "claimed"
    royalty = 10**16 * app_state(client).market.registry.royalty_bps() // 10_000
    assert client.get("/credits", headers=producer_headers).json()["exchange_wei"] == 10**16 + royalty
    assert client.get("/credits", headers=owner_headers).json()["exchange_wei"] == 10**16 - royalty


def test_an_earlier_generation_displaces_a_product_registered_first(client: TestClient, chain: Chain) -> None:
    """Two producers paid two ESPs for the same content: the earlier lock wins, whoever registers first."""
    esp, _ = new_esp(client)
    copier, _ = new_esp(client)
    early_address, early = new_account(client)
    late_address, late = new_account(client)
    first = client.post("/tasks", json={"prompt": "one content", "esp": esp}, headers=early).json()
    squatter = squat_content_of(client, first["id"], copier, late_address)
    product = client.post("/products", json={"task_id": first["id"]}, headers=early)
    assert product.status_code == 201, product.text
    token = product.json()["token_id"]
    displaced = client.get(f"/products/{squatter}").json()
    assert displaced["revoked"] is True and displaced["owner"] is None
    assert displaced["content_hash"] == product.json()["content_hash"]
    assert product.json()["generation_seq"] < displaced["generation_seq"]
    assert client.get("/products", params={"producer": late_address}).json()["total"] == 1
    assert client.get("/credits", headers=early).json()["registry_wei"] == app_state(client).market.registry.registration_bond()
    revoked = client.post(f"/products/{squatter}/bond", headers=late)
    assert revoked.status_code == 409 and revoked.json()["code"] == "product_revoked"
    assert client.post("/trades", json={"token_id": squatter, "price_wei": 10**15}, headers=early).status_code == 404
    pass_challenge_window(client, chain)
    assert client.post(f"/products/{token}/bond", headers=early).json()["owner"] == early_address


def test_an_esp_refuses_to_commit_one_content_to_two_producers(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    """It would be slashed for it (proveEquivocation); it remembers its commitments across a restart.
    (The per-job seed is fixed here so that one prompt gives one content, as a careless ESP's would.)"""
    monkeypatch.setattr(tasks_route, "job_seed", lambda: b"a careless ESP's constant seed")
    with TestClient(create_app(make_settings()), raise_server_exceptions=False) as client:
        esp, _ = new_esp(client)
        _, first = new_account(client)
        _, second = new_account(client)
        assert client.post("/tasks", json={"prompt": "exclusive", "esp": esp}, headers=first).status_code == 201
        again = client.post("/tasks", json={"prompt": "exclusive", "esp": esp}, headers=first)
        assert again.status_code == 201  # the same producer may buy its own content again
        refused = client.post("/tasks", json={"prompt": "exclusive", "esp": esp}, headers=second)
        assert refused.status_code == 409 and refused.json()["code"] == "duplicate_commitment"
    with TestClient(create_app(make_settings()), raise_server_exceptions=False) as client:
        refused = client.post("/tasks", json={"prompt": "exclusive", "esp": esp}, headers=second)
        assert refused.status_code == 409 and refused.json()["code"] == "duplicate_commitment"
        assert client.get("/tasks", headers=second).json()["total"] == 0
        assert client.post("/tasks", json={"prompt": "another", "esp": esp}, headers=second).status_code == 201


def test_a_purchase_intent_carries_the_id_of_its_terms(client: TestClient, chain: Chain, monkeypatch: pytest.MonkeyPatch) -> None:
    esp, _ = new_esp(client)
    seller, seller_headers = new_account(client)
    buyer, buyer_headers = new_account(client)
    _, token = new_product(client, esp, seller_headers, "intent")
    pass_challenge_window(client, chain)
    state = app_state(client)

    def killed(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the server died before sending")

    monkeypatch.setattr(state.market.exchange, "lock_purchase", killed)
    assert client.post("/trades", json={"token_id": token, "price_wei": 10**15}, headers=buyer_headers).status_code == 500
    monkeypatch.undo()
    (trade,) = client.get("/trades", headers=buyer_headers).json()["items"]
    with state.sessions() as session:
        hashlock = bytes.fromhex(session.get(models.Trade, trade["id"]).hashlock[2:])
    terms = Purchase(buyer, seller, token, 10**15, hashlock, trade["timelock"])
    expected = purchase_id(terms, chain_id=chain.chain_id, exchange=state.market.exchange.address)
    assert trade["state"] == "pending" and trade["lock_id"] == "0x" + expected.hex()
    assert state.market.exchange.purchase_id(terms) == expected
    assert state.market.exchange.get_lock(expected).state is LockState.NONE
    refused = client.post(f"/trades/{trade['id']}/refund", headers=buyer_headers)
    assert refused.status_code == 409 and refused.json()["code"] == "lock_pending"


def test_credits_need_a_key_and_start_empty(client: TestClient) -> None:
    address, headers = new_account(client)
    assert client.get("/credits").status_code == 401
    assert client.post("/credits/withdraw").status_code == 401
    assert client.get("/credits", headers=headers).json() == {
        "address": address,
        "registry_wei": 0,
        "exchange_wei": 0,
        "total_wei": 0,
    }
    empty = client.post("/credits/withdraw", headers=headers)
    assert empty.status_code == 409 and empty.json()["code"] == "no_credit"


# -- errors ----------------------------------------------------------------------------------------


def test_every_custom_error_of_the_market_maps_to_a_4xx_with_a_stable_code() -> None:
    declared = {
        entry["name"]
        for contract in ("AIGCExchange", "AIGCRegistry", "ReputationLedger")
        for entry in all_abis()[contract]
        if entry.get("type") == "error"
    }
    assert declared - set(REVERTS) == set(), "custom errors without a status and code in api.errors.REVERTS"
    for name in declared:
        revert = ContractRevert(name)
        assert 400 <= revert_status(revert) < 500, name
        assert revert_code(revert).replace("_", "").isalnum(), name
    assert revert_code(ContractRevert("AIGCExchangeNotFinal")) == "product_not_final"
    assert revert_code(ContractRevert("AIGCRegistryChallengeWindowClosed")) == "challenge_window_closed"
    assert (revert_status(ContractRevert("Panic")), revert_code(ContractRevert("Panic"))) == (409, "Panic")
