"""The coordinator (issue #17): an ESP node's job channel and self-custodied producers, in process.

The ESP node here is the test itself, acting as `aigc-market esp run` would with its own key: it signs
in (EIP-4361), stakes on chain, takes the job, offers, reveals on chain and delivers. The producers are
one API-key account and one self-custodied account (the Python client signs what the server prepares).
The node process itself is tested in tests/esp/."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from eth_account import Account
from fastapi.testclient import TestClient
from sqlalchemy import select

from api import models
from client.market_client import ApiClientError, JobAction, MarketClient
from market.chain.connection import Chain
from market.chain.offers import SECP256K1_N
from market.content import DeterministicImageGenerator
from market.protocol import Protocol
from market.terms import ETHER

BASE = "http://testserver"
ZERO32 = "0x" + "00" * 32


def node_protocol(client: TestClient) -> Protocol:
    state = client.app.state.market  # type: ignore[attr-defined]
    return Protocol(state.market, state.protocol.terms)


def signed_in(client: TestClient, chain: Chain, funds: int = ETHER) -> MarketClient:
    key = Account.create()
    chain.fund([(key.address, funds)])
    return MarketClient.sign_in(BASE, key, http=client)


def esp_node(client: TestClient, chain: Chain) -> MarketClient:
    """A self-custodied ESP that staked on chain itself and registered as a node."""
    node = signed_in(client, chain)
    assert node.signer is not None
    node_protocol(client).stake(node.signer)
    esp = node.register_esp("node one")
    assert esp.operator == "node" and esp.profile is None
    return node


def seed_of(task_id: int) -> bytes:
    return f"node seed {task_id}".encode()


def offer_for(client: TestClient, node: MarketClient) -> tuple[Any, bytes]:
    """The node takes its one job and offers: returns the job (offer side) and the content key."""
    [job] = node.esp_jobs(wait_s=0)
    assert job.action == JobAction.OFFER
    content = DeterministicImageGenerator().generate(job.prompt, seed_of(job.task_id))
    assert node.signer is not None
    made = node_protocol(client).make_offer(
        node.signer, job.producer, content, hashlib.sha256(job.prompt.encode()).digest(), fee=job.fee_wei
    )
    node.submit_offer(
        job.task_id, made.signed, made.ciphertext, latency_s=1.5, energy_j=2.0, completed=True, quality=0.9,
        breakdown={"T_gen": 1.5}, generation_s=0.01,
    )  # fmt: skip
    return made, made.key


def test_an_esp_node_and_two_kinds_of_producer_reach_registered_products(client: TestClient, chain: Chain) -> None:
    node = esp_node(client, chain)
    api_key_producer, _ = MarketClient.with_new_account(BASE, http=client)
    self_producer = signed_in(client, chain)
    assert self_producer.me().custody == "self"
    for producer in (api_key_producer, self_producer):
        task = producer.create_task("a lighthouse at dusk")
        assert task.state == "requested" and task.cost is None
        made, key = offer_for(client, node)
        offered = producer.task(task.id)
        assert offered.state == "offered" and offered.generation_s == 0.01 and offered.cost is not None
        assert producer.lock(task.id).state == "locked"
        [job] = node.esp_jobs(wait_s=0)
        assert job.action == JobAction.REVEAL and job.task_id == task.id
        assert node.signer is not None
        node_protocol(client).reveal(node.signer, made.offer, key)
        assert node.submit_delivery(task.id, made.opening, key).state == "delivered"
        product = producer.register_product(task.id)
        assert producer.task(task.id).state == "registered" and product.producer == producer.me().address
        assert producer.content(product.token_id) == DeterministicImageGenerator().generate(
            "a lighthouse at dusk", seed_of(task.id)
        )
    assert node.esp_jobs(wait_s=0) == []


def test_the_server_holds_no_key_of_a_self_custodied_account(client: TestClient, chain: Chain) -> None:
    esp_node(client, chain)
    producer = signed_in(client, chain)
    state = client.app.state.market  # type: ignore[attr-defined]
    with state.sessions() as session:
        rows = session.scalars(select(models.Account).where(models.Account.custody == "self")).all()
    assert len(rows) == 2 and all(r.encrypted_key is None and r.api_key_hash is None for r in rows)
    assert producer.me().address in {r.address for r in rows}


def test_a_signed_lock_of_another_call_is_refused_and_nothing_is_recorded(client: TestClient, chain: Chain) -> None:
    node = esp_node(client, chain)
    producer = signed_in(client, chain)
    task = producer.create_task("a quiet harbour")
    offer_for(client, node)
    reply = client.post(f"/tasks/{task.id}/lock", json={}, headers=producer._auth)
    assert reply.status_code == 428 and reply.json()["code"] == "signature_required"
    prepared = reply.json()["transaction"]
    prepared["value"] = hex(int(prepared["value"], 16) - 1)  # a lock of one wei less than the offer's fee
    forged = producer._sign(prepared)
    reply = client.post(f"/tasks/{task.id}/lock", json={"signed_transaction": forged}, headers=producer._auth)
    assert reply.status_code == 422 and reply.json()["code"] == "transaction_mismatch"
    assert producer.task(task.id).state == "offered"


def test_an_offer_signed_by_another_key_is_refused(client: TestClient, chain: Chain) -> None:
    node = esp_node(client, chain)
    producer, _ = MarketClient.with_new_account(BASE, http=client)
    task = producer.create_task("a red kite")
    [job] = node.esp_jobs(wait_s=0)
    impostor = Account.create()
    made = node_protocol(client).make_offer(
        impostor, job.producer, b"x" * 64, hashlib.sha256(job.prompt.encode()).digest(), fee=job.fee_wei, phash=1
    )
    forged = type(made.signed)(type(made.offer)(**{**made.offer.__dict__, "esp": node.me().address}), made.signed.signature)
    with pytest.raises(ApiClientError) as refused:
        node.submit_offer(
            task.id, forged, made.ciphertext, latency_s=1, energy_j=1, completed=True, quality=1, breakdown={}, generation_s=0
        )
    assert refused.value.code == "invalid_offer_signature" and producer.task(task.id).state == "requested"


def test_the_malleated_twin_of_the_nodes_own_signature_is_refused_as_the_exchange_would(client: TestClient, chain: Chain) -> None:
    """s -> n - s with v flipped recovers the same signer (eth_account accepts it), but the exchange's
    OpenZeppelin ECDSA refuses a high s: taken here, the task would wait for a lock that can only revert."""
    node = esp_node(client, chain)
    producer, _ = MarketClient.with_new_account(BASE, http=client)
    task = producer.create_task("a red kite")
    [job] = node.esp_jobs(wait_s=0)
    assert node.signer is not None
    made = node_protocol(client).make_offer(
        node.signer, job.producer, b"x" * 64, hashlib.sha256(job.prompt.encode()).digest(), fee=job.fee_wei, phash=1
    )
    signature = made.signed.signature
    s = int.from_bytes(signature[32:64], "big")
    twin = signature[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes((55 - signature[64],))
    with pytest.raises(ApiClientError) as refused:
        node.submit_offer(
            task.id, type(made.signed)(made.offer, twin), made.ciphertext, latency_s=1, energy_j=1, completed=True, quality=1,
            breakdown={}, generation_s=0,
        )  # fmt: skip
    assert refused.value.code == "invalid_offer_signature" and producer.task(task.id).state == "requested"


def test_only_the_tasks_esp_node_may_offer_on_it(client: TestClient, chain: Chain) -> None:
    esp_node(client, chain)
    other = esp_node(client, chain)
    producer, _ = MarketClient.with_new_account(BASE, http=client)
    first = producer.esps().items[0].address
    task = producer.create_task("a bridge in fog", esp=first)
    assert other.esp_jobs(wait_s=0) == []
    reply = client.post(
        f"/esp/jobs/{task.id}/delivery",
        json={"opening": {"content_hash": ZERO32, "perceptual_hash": "0x0", "prompt_hash": ZERO32, "salt": ZERO32}, "key": ZERO32},
        headers=other._auth,
    )
    assert reply.status_code == 403


def test_a_delivery_before_the_key_is_on_chain_is_refused(client: TestClient, chain: Chain) -> None:
    node = esp_node(client, chain)
    producer, _ = MarketClient.with_new_account(BASE, http=client)
    task = producer.create_task("an owl")
    made, key = offer_for(client, node)
    producer.lock(task.id)
    with pytest.raises(ApiClientError) as refused:
        node.submit_delivery(task.id, made.opening, key)
    assert refused.value.code == "key_not_revealed" and producer.task(task.id).state == "locked"


def test_a_replayed_sign_in_is_refused(client: TestClient, chain: Chain) -> None:
    from datetime import UTC, datetime, timedelta

    from api.siwe import SignInMessage, format_time, sign

    key = Account.create()
    nonce = client.post("/auth/nonce").json()
    now = datetime.now(UTC)
    message = SignInMessage(
        domain=nonce["domain"], address=key.address, uri=nonce["uri"], chain_id=nonce["chain_id"], nonce=nonce["nonce"],
        issued_at=format_time(now), expiration_time=format_time(now + timedelta(hours=1)),
    )  # fmt: skip
    body = {"message": message.text(), "signature": sign(message, bytes(key.key))}
    assert client.post("/auth/sign-in", json=body).status_code == 201
    replay = client.post("/auth/sign-in", json=body)
    assert replay.status_code == 401 and replay.json()["code"] == "sign_in_nonce_invalid"


def test_a_default_server_plays_no_esp(make_settings: Any) -> None:
    """Without the development setting `simulated_esps`, an API-key account cannot register a server-run ESP:
    the server would hold its key and generate for it."""
    from api.main import create_app

    with TestClient(create_app(make_settings(simulated_esps=False)), raise_server_exceptions=False) as client:
        account = client.post("/accounts").json()
        reply = client.post("/esps", json={"name": "played"}, headers={"Authorization": f"Bearer {account['api_key']}"})
    assert reply.status_code == 409 and reply.json()["code"] == "esp_must_run_a_node"


def test_an_api_key_producer_may_not_hand_in_a_signed_transaction(client: TestClient, chain: Chain) -> None:
    node = esp_node(client, chain)
    producer, _ = MarketClient.with_new_account(BASE, http=client)
    task = producer.create_task("a tern")
    offer_for(client, node)
    reply = client.post(f"/tasks/{task.id}/lock", json={"signed_transaction": "0x02c0"}, headers=producer._auth)
    assert reply.status_code == 422 and reply.json()["code"] == "signed_transaction_unexpected"
    assert producer.task(task.id).state == "offered"


def test_a_delivery_that_does_not_open_to_the_committed_content_is_refused(client: TestClient, chain: Chain) -> None:
    node = esp_node(client, chain)
    producer, _ = MarketClient.with_new_account(BASE, http=client)
    task = producer.create_task("a heron")
    made, key = offer_for(client, node)
    producer.lock(task.id)
    assert node.signer is not None
    node_protocol(client).reveal(node.signer, made.offer, key)
    other = type(made.opening)(b"\x01" * 32, made.opening.perceptual_hash, made.opening.prompt_hash, made.opening.salt)
    with pytest.raises(ApiClientError) as refused:
        node.submit_delivery(task.id, other, key)
    assert refused.value.code == "content_mismatch" and producer.task(task.id).content_sha256 is None
    assert node.submit_delivery(task.id, made.opening, key).state == "delivered"  # the true opening still goes in


def test_an_offer_whose_hashlock_another_task_holds_is_refused(client: TestClient, chain: Chain) -> None:
    node = esp_node(client, chain)
    producer, _ = MarketClient.with_new_account(BASE, http=client)
    first = producer.create_task("a gull")
    made, key = offer_for(client, node)
    second = producer.create_task("a second gull")
    [job] = node.esp_jobs(wait_s=0)
    assert node.signer is not None and job.task_id == second.id
    again = node_protocol(client).make_offer(
        node.signer, job.producer, b"y" * 64, hashlib.sha256(job.prompt.encode()).digest(), fee=job.fee_wei, key=key, phash=7
    )
    with pytest.raises(ApiClientError) as refused:
        node.submit_offer(
            second.id,
            again.signed,
            again.ciphertext,
            latency_s=1,
            energy_j=1,
            completed=True,
            quality=1,
            breakdown={},
            generation_s=0,
        )
    assert refused.value.code == "offer_reused" and producer.task(second.id).state == "requested"
    assert producer.task(first.id).state == "offered"


def test_the_client_refuses_to_sign_a_transaction_outside_the_market(client: TestClient, chain: Chain) -> None:
    """A compromised server cannot make a self-custodied client sign a transfer to itself."""
    producer = signed_in(client, chain)
    forged = {"to": Account.create().address, "value": "0x1", "data": "0x", "chainId": hex(chain.chain_id), "nonce": "0x0",
              "gas": "0x5208", "maxFeePerGas": "0x1", "maxPriorityFeePerGas": "0x1"}  # fmt: skip
    with pytest.raises(ApiClientError) as refused:
        producer._sign(forged)
    assert refused.value.code == "unexpected_transaction"


def registered_product(client: TestClient, node: MarketClient, producer: MarketClient, prompt: str) -> int:
    """A task of `producer` through the node, to a registered product: its token id."""
    task = producer.create_task(prompt)
    made, key = offer_for(client, node)
    producer.lock(task.id)
    assert node.signer is not None
    node_protocol(client).reveal(node.signer, made.offer, key)
    node.submit_delivery(task.id, made.opening, key)
    return producer.register_product(task.id).token_id


def final_product_and_a_self_custodied_buyer(
    client: TestClient, chain: Chain, prompt: str
) -> tuple[MarketClient, MarketClient, int, Any]:
    """A product of an API-key seller made through a node and past its challenge window, and a signed-in buyer:
    (seller, buyer, token id, the deployed market)."""
    node = esp_node(client, chain)
    seller, _ = MarketClient.with_new_account(BASE, http=client)
    buyer = signed_in(client, chain)
    token = registered_product(client, node, seller, prompt)
    market = client.app.state.market.market  # type: ignore[attr-defined]
    chain.advance_time(market.registry.challenge_window() + 1)
    return seller, buyer, token, market


def test_a_self_custodied_buyer_buys_claims_the_bond_and_withdraws_its_credit(client: TestClient, chain: Chain) -> None:
    seller, buyer, token, market = final_product_and_a_self_custodied_buyer(client, chain, "a lantern in snow")
    trade = buyer.open_trade(token, 10**16)  # prepared, then locked with the buyer's signature
    assert trade.state == "locked" and trade.buyer == buyer.me().address
    assert seller.claim_trade(trade.id).state == "claimed"
    assert market.registry.owner_of(token) == buyer.me().address
    buyer.claim_bond(token)  # the bond follows the product: its owner's now
    balance = buyer.me().balance_wei
    withdrawn = buyer.withdraw_credits()
    assert withdrawn.withdrawn_wei == market.registry.registration_bond() and buyer.me().balance_wei > balance
    assert buyer.credits().total_wei == 0


def prepared_trades(client: TestClient, buyer: MarketClient) -> list[dict[str, Any]]:
    page = client.get("/trades", params={"limit": 100}, headers=buyer._auth).json()
    return [trade for trade in page["items"] if trade["state"] == "prepared"]


def prepare(client: TestClient, buyer: MarketClient, token: int, price: int) -> Any:
    """The first, unsigned POST /trades of a self-custodied buyer: the terms drawn, 428 with the lock to sign."""
    return client.post("/trades", json={"token_id": token, "price_wei": str(price)}, headers=buyer._auth)


def test_a_new_prepare_for_a_token_replaces_the_buyers_earlier_terms_and_locks_with_the_newest(
    client: TestClient, chain: Chain
) -> None:
    _, buyer, token, _ = final_product_and_a_self_custodied_buyer(client, chain, "a heron at dawn")
    for _ in range(3):
        assert prepare(client, buyer, token, 10**16).status_code == 428
    assert len(prepared_trades(client, buyer)) == 1
    trade = buyer.open_trade(token, 10**16)
    assert trade.state == "locked" and prepared_trades(client, buyer) == []


def test_prepared_trades_that_can_no_longer_be_locked_are_deleted_and_their_number_is_capped(
    make_settings: Any, chain: Chain
) -> None:
    from api.main import create_app

    with TestClient(create_app(make_settings(prepared_trades_per_account=1)), raise_server_exceptions=False) as client:
        node = esp_node(client, chain)
        seller, _ = MarketClient.with_new_account(BASE, http=client)
        buyer = signed_in(client, chain)
        first, second = (registered_product(client, node, seller, prompt) for prompt in ("a wren", "a finch"))
        market = client.app.state.market.market  # type: ignore[attr-defined]
        chain.advance_time(market.registry.challenge_window() + 1)
        assert prepare(client, buyer, first, 10**16).status_code == 428
        refused = prepare(client, buyer, second, 10**16)
        assert refused.status_code == 429 and refused.json()["code"] == "too_many_prepared_trades"
        assert [t["token_id"] for t in prepared_trades(client, buyer)] == [first]
        # Past its timelock the first can no longer be locked: the next prepare deletes it and goes ahead.
        chain.advance_time(client.app.state.market.protocol.terms.lock_duration_s + 1)  # type: ignore[attr-defined]
        assert prepare(client, buyer, second, 10**16).status_code == 428
        assert [t["token_id"] for t in prepared_trades(client, buyer)] == [second]


def test_the_explorer_shows_a_node_and_its_task_before_any_offer(client: TestClient, chain: Chain) -> None:
    node = esp_node(client, chain)
    producer, _ = MarketClient.with_new_account(BASE, http=client)
    producer.create_task("a moth at a lamp")  # requested: no offer, no lock, no predicted cost yet
    page = client.get(f"/explore/esps/{node.me().address}")
    assert page.status_code == 200 and "node" in page.text and "requested" in page.text
    assert client.get(f"/explore/esps/{node.me().address}/jobs.csv").status_code == 200


def test_a_producer_cannot_flood_a_node_with_requests_it_never_locks(make_settings: Any, chain: Chain) -> None:
    """A node generates for every request: unlocked requests are work a producer could make it do for free."""
    from api.main import create_app

    with TestClient(create_app(make_settings(open_tasks_per_account=2)), raise_server_exceptions=False) as client:
        esp_node(client, chain)
        producer, _ = MarketClient.with_new_account(BASE, http=client)
        producer.create_task("one")
        producer.create_task("two")
        with pytest.raises(ApiClientError) as refused:
            producer.create_task("three")
        assert refused.value.status == 429 and refused.value.code == "too_many_open_tasks"
        other, _ = MarketClient.with_new_account(BASE, http=client)
        assert other.create_task("another producer's").state == "requested"  # the limit is per producer
