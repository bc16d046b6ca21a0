"""Account creation is gated (issue 18, item 1): accounts start empty unless the operator turns the faucet on,
which gives ether only on a development chain, a configured amount, within a per-client and a global budget
kept in the database; POST /accounts is throttled per client address."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api import faucet
from api.faucet import FaucetConfigError, check_faucet
from api.main import create_app
from api.models import Account, FaucetGrant
from api.settings import DEVELOPMENT_CHAIN_IDS, Settings
from market.chain.connection import Chain
from market.terms import ETHER

DOCS = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def from_address(app: object, host: str) -> TestClient:
    """A client of `app` whose requests come from `host` (without running the app's lifespan again)."""
    return TestClient(app, raise_server_exceptions=False, client=(host, 40000))  # type: ignore[arg-type]


def test_accounts_start_empty_when_the_faucet_is_off(make_settings: Callable[..., Settings], chain: Chain) -> None:
    with TestClient(create_app(make_settings(faucet_wei=0))) as client:
        funder = chain.balance(chain.funder.address)
        reply = client.post("/accounts")
        assert reply.status_code == 201, reply.text
        body = reply.json()
        assert body["balance_wei"] == 0 and body["funded_wei"] == 0 and body["funding"] == "off"
        assert reply.headers["cache-control"] == "no-store"  # it carries the API key
        assert chain.balance(body["address"]) == 0 and chain.balance(chain.funder.address) == funder
        # An empty account can still be used once the operator funds it out of band.
        chain.send_ether(chain.funder, body["address"], ETHER)
        me = client.get("/accounts/me", headers={"Authorization": f"Bearer {body['api_key']}"})
        assert me.json()["balance_wei"] == ETHER


def test_the_default_settings_give_nothing_away() -> None:
    assert Settings().faucet_wei == 0


def test_faucet_budgets_per_client_and_in_all_survive_a_restart(
    make_settings: Callable[..., Settings], chain: Chain, db_url: str
) -> None:
    settings = make_settings(db_url=db_url, faucet_wei=ETHER, faucet_client_budget_wei=2 * ETHER, faucet_budget_wei=3 * ETHER)
    funder = chain.balance(chain.funder.address)
    app = create_app(settings)
    with TestClient(app):
        first, second = from_address(app, "10.0.0.1"), from_address(app, "10.0.0.2")
        replies = [first.post("/accounts").json() for _ in range(3)] + [second.post("/accounts").json() for _ in range(3)]
        assert [r["funding"] for r in replies] == [
            "funded",
            "funded",
            "client_budget_spent",
            "funded",
            "budget_spent",
            "budget_spent",
        ]
        assert [r["funded_wei"] for r in replies] == [ETHER, ETHER, 0, ETHER, 0, 0]
        assert sum(chain.balance(r["address"]) for r in replies) == 3 * ETHER
    spent = funder - chain.balance(chain.funder.address)
    assert 3 * ETHER <= spent < 3 * ETHER + ETHER // 10  # three grants and their fees, nothing more
    app = create_app(
        make_settings(db_url=db_url, faucet_wei=ETHER, faucet_client_budget_wei=2 * ETHER, faucet_budget_wei=3 * ETHER)
    )
    with TestClient(app):
        assert from_address(app, "10.0.0.3").post("/accounts").json()["funding"] == "budget_spent"
        state = app.state.market
        with state.sessions() as session:
            assert session.scalar(select(func.count()).select_from(FaucetGrant)) == 3
            assert session.scalar(select(func.count()).select_from(Account)) == 7


def test_an_ipv6_client_is_one_client_for_its_whole_64(make_settings: Callable[..., Settings]) -> None:
    app = create_app(make_settings(faucet_wei=ETHER, faucet_client_budget_wei=ETHER))
    with TestClient(app):
        assert from_address(app, "2001:db8:1:2::1").post("/accounts").json()["funding"] == "funded"
        assert from_address(app, "2001:db8:1:2::ffff").post("/accounts").json()["funding"] == "client_budget_spent"
        assert from_address(app, "2001:db8:1:3::1").post("/accounts").json()["funding"] == "funded"


def test_the_faucet_is_refused_on_a_chain_whose_ether_has_value(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(FaucetConfigError, match="development chain"):
        check_faucet(make_settings(faucet_wei=1), 1)  # Ethereum mainnet
    check_faucet(make_settings(faucet_wei=0), 1)  # off: any chain
    for chain_id in DEVELOPMENT_CHAIN_IDS:
        check_faucet(make_settings(faucet_wei=1), chain_id)
    monkeypatch.setattr(faucet, "DEVELOPMENT_CHAIN_IDS", frozenset())  # the embedded chain taken for a real one
    with pytest.raises(FaucetConfigError):
        create_app(make_settings(faucet_wei=ETHER))
    create_app(make_settings(faucet_wei=0))  # the same chain with the faucet off starts


def test_account_creation_is_throttled_per_client(make_settings: Callable[..., Settings]) -> None:
    app = create_app(make_settings(account_creations_per_hour=60, account_creation_burst=3))
    with TestClient(app):
        hasty, other = from_address(app, "10.0.0.7"), from_address(app, "10.0.0.8")
        statuses = [hasty.post("/accounts").status_code for _ in range(4)]
        assert statuses == [201, 201, 201, 429]
        refused = hasty.post("/accounts")
        assert refused.json()["code"] == "rate_limited" and 1 <= int(refused.headers["retry-after"]) <= 60
        assert hasty.get("/health").status_code == 200  # only account creation is throttled this hard
        assert other.post("/accounts").status_code == 201


def test_the_api_page_documents_every_setting() -> None:
    text = DOCS.read_text()
    for name in Settings.model_fields:
        if name == "chain":
            continue
        assert f"AIGC_MARKET_{name.upper()}" in text, name
    assert re.search(r"faucet", text, re.IGNORECASE) and "development chain" in text
