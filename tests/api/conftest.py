"""Fixtures: an app on a fresh embedded eth-tester chain with a SQLite file in tmp_path, or a fresh
PostgreSQL schema on 127.0.0.1:5432 (database `test`) dropped when the test ends.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.main import create_app
from api.settings import Settings
from market.chain.connection import Chain
from market.terms import ETHER

PG_BASE = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SECRET = "test-server-secret"


def pg_available() -> bool:
    try:
        import psycopg

        with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=test", connect_timeout=3):
            return True
    except Exception:
        return False


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A URL whose search_path is a fresh schema, dropped (with everything in it) afterwards."""
    if not pg_available():
        pytest.skip("PostgreSQL is not reachable on 127.0.0.1:5432")
    import psycopg

    schema = f"api_test_{uuid.uuid4().hex[:12]}"
    dsn = "host=127.0.0.1 port=5432 user=postgres dbname=test"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    yield f"{PG_BASE}?options=-csearch_path%3D{schema}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def chain() -> Chain:
    return Chain.embedded()


#: What the tests' servers run with unless a test says otherwise: the faucet on (10 ether per account, budgets
#: no test reaches) and no rate limits, as the test harness for real servers does (api.launcher.HARNESS_ENV).
HARNESS: dict[str, Any] = {
    "faucet_wei": 10 * ETHER,
    "faucet_client_budget_wei": 10**6 * ETHER,
    "faucet_budget_wei": 10**6 * ETHER,
    "rate_limit_per_s": 0,
    "account_rate_limit_per_s": 0,
    "account_creations_per_hour": 0,
    "simulated_esps": True,
}


@pytest.fixture
def make_settings(tmp_path: Path, chain: Chain) -> Callable[..., Settings]:
    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {"data_dir": tmp_path / "data", "chain": chain, "secret": SECRET} | HARNESS
        return Settings(**(values | overrides))

    return build


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        return request.getfixturevalue("pg_url")
    return f"sqlite:///{tmp_path / 'data' / 'market.sqlite3'}"


@pytest.fixture
def app(make_settings: Callable[..., Settings]) -> FastAPI:
    return create_app(make_settings())


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client
