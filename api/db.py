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
    run_alembic(engine, "upgrade", "head")


def run_alembic(engine: Engine, action: str, revision: str) -> None:
    """Alembic's `action` ("upgrade", "downgrade") to `revision`, in one transaction on `engine`.

    On SQLite, foreign keys are off while the migrations run: a batch migration rebuilds a table (copy, drop,
    rename), and dropping one that others reference fails with them on (Alembic's advice for batch mode).
    They are checked once it is done, and back on for the connection."""
    config = alembic_config()
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as connection:
        if sqlite:  # outside any transaction: SQLite ignores this pragma within one
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        try:
            with connection.begin():
                config.attributes["connection"] = connection
                getattr(command, action)(config, revision)
                if sqlite:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise RuntimeError(f"the migrations left rows whose foreign keys point nowhere: {broken[:5]}")
        finally:
            if sqlite:
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.commit()


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
