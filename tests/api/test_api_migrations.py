"""Migrations: the models and the migrated schema agree on SQLite and PostgreSQL; 0003 (protocol v2) upgrades
a populated database, goes down and up again; a database of protocol v1's contracts is refused at start."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from api.db import make_engine, migrate, run_alembic
from api.main import create_app
from api.models import Base
from api.node import ChainMismatchError
from api.settings import Settings


def alembic(engine: Engine, action: str, revision: str) -> None:
    run_alembic(engine, action, revision)


def schema_diff(engine: Engine) -> list[object]:
    with engine.connect() as connection:
        return compare_metadata(MigrationContext.configure(connection), Base.metadata)


def test_models_and_migrations_agree(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        migrate(engine)
        assert schema_diff(engine) == []
        alembic(engine, "downgrade", "0002")
        alembic(engine, "upgrade", "head")
        assert schema_diff(engine) == []
    finally:
        engine.dispose()


def test_0003_upgrades_a_populated_database(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        alembic(engine, "upgrade", "0002")
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO chain_meta VALUES (1, 31337, '0x1', '0x2', '0x3', 7)"))
            connection.execute(
                text(
                    "INSERT INTO accounts (id, address, api_key_hash, encrypted_key, created_at) "
                    "VALUES (1, '0xaa', 'h', :key, CURRENT_TIMESTAMP)"
                ),
                {"key": b"k"},
            )
            connection.execute(text("INSERT INTO esps VALUES (1, 1, '0xaa', 'e', 'honest', 2, 1, CURRENT_TIMESTAMP)"))
            connection.execute(
                text(
                    "INSERT INTO products (token_id, producer, esp, owner, content_hash, perceptual_hash,"
                    " revoked, block_number) VALUES (1, '0xaa', '0xaa', '0xaa', '0xc1', '00', false, 5)"
                )
            )
        migrate(engine)
        with engine.begin() as connection:
            assert connection.execute(text("SELECT protocol_version FROM chain_meta")).scalar_one() == 1
            assert connection.execute(text("SELECT stake_state FROM esps")).scalar_one() == "active"
            assert connection.execute(text("SELECT bond_released FROM products")).scalar_one() in (False, 0)
            # One content, two products: the holder displaced (revoked) by an earlier generation stays listed.
            connection.execute(text("UPDATE products SET revoked = true, owner = NULL"))
            connection.execute(
                text(
                    "INSERT INTO products (token_id, producer, esp, owner, content_hash, perceptual_hash,"
                    " revoked, block_number, lock_id, generation_seq) "
                    "VALUES (2, '0xbb', '0xaa', '0xbb', '0xc1', '00', false, 9, '0x11', 1)"
                )
            )
        uniques = inspect(engine).get_unique_constraints("products")
        assert not [u for u in uniques if u["column_names"] == ["content_hash"]]
        alembic(engine, "downgrade", "0002")  # v1 keeps one product per content: the revoked copy goes
        with engine.connect() as connection:
            assert connection.execute(text("SELECT token_id FROM products")).scalars().all() == [2]
    finally:
        engine.dispose()


def test_a_database_of_protocol_v1_is_refused(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    create_app(settings)  # deploys v2 and records it
    engine = make_engine(settings.database_url())
    try:
        with engine.begin() as connection:
            connection.execute(text("UPDATE chain_meta SET protocol_version = 1"))
    finally:
        engine.dispose()
    with pytest.raises(ChainMismatchError, match="protocol v1"):
        create_app(make_settings())
