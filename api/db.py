"""Engine construction and migrations.

SQLite runs with WAL, synchronous=FULL (an acknowledged write survives a power cut) and foreign
keys on; the pragmas are set on every new DBAPI connection. Migrations run through Alembic's command
API on the same engine at start, so a fresh database and an old one reach the same schema.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

ALEMBIC_DIR = Path(__file__).parent / "alembic"


#: Connections kept open between requests; more are opened on demand, up to MAX_CONNECTIONS in all.
POOL_SIZE = 8
#: Above what the server can use at once: the thread pool's 40 workers, the event loop (which runs the
#: read-only routes and the dependencies inline), the indexer and the idempotency layer. The event loop
#: must never wait for a connection: a connection is handed back on the loop itself when its request
#: ends, so a loop blocked in the pool's queue waits for nothing but its timeout.
MAX_CONNECTIONS = 64


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite files get their parent directory and the durability pragmas."""
    pool = {"pool_size": POOL_SIZE, "max_overflow": MAX_CONNECTIONS - POOL_SIZE}
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        else:
            pool = {}  # an in-memory database lives in one connection (SingletonThreadPool)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **pool)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True, **pool)


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(ALEMBIC_DIR))
    return config


def migrate(engine: Engine) -> None:
    """Apply every migration up to head, on `engine` (no alembic.ini needed)."""
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
