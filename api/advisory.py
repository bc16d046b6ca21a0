"""PostgreSQL advisory locks shared by the workers of one server (`aigc-market serve --workers N`).

An advisory lock is named by a 64-bit key. Ours are derived from the database, the schema and the
lock's purpose (`advisory_key`), so that two servers on two schemas of one database (the tests do
this) never wait for each other. A session-level lock is released by PostgreSQL when its holder's
connection ends, so a SIGKILLed worker never leaves one held: that is the takeover of the indexer
(`api.indexer_leader`) and what keeps the chain lock from outliving its holder.

`ChainLock` is the server's chain lock (`AppState.chain_lock`): every chain write and the commit of
its rows run under it. In one process it is a re-entrant thread lock; on PostgreSQL the outermost
acquisition also takes a session-level advisory lock on a connection of its own, so that the writes
of all workers run one at a time, as those of one process do. That is what keeps the nonces of the
accounts the server signs for (the funder, every account's sealed key) right across workers: a
transaction's nonce comes from the node's pending count, read and used under the lock. It also
keeps the faucet's budgets (decided under the lock) and the indexer's group commit (every write in
a block up to the lock holder's last one has committed its rows) true across workers.
See docs/api.md#several-workers.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
from types import TracebackType

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError

log = logging.getLogger("api.advisory")

#: Purposes of the advisory locks (the key's last part).
CHAIN_WRITES = "chain-writes"
INDEXER_RUN = "indexer-run"
INDEXER_LEADER = "indexer-leader"


def is_postgresql(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def namespace(connection: Connection) -> str:
    """The database and schema a connection works in: what our advisory keys are scoped to."""
    database, schema = connection.execute(text("SELECT current_database(), current_schema()")).one()
    return f"{database}.{schema}"


def advisory_key(scope: str, purpose: str) -> int:
    """A signed 64-bit advisory lock key for `purpose` within `scope` (database.schema)."""
    digest = hashlib.blake2b(f"aigc-market:{scope}:{purpose}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def label(role: str, scope: str) -> str:
    """An `application_name` saying which process of which server holds a connection (pg_stat_activity)."""
    return f"aigc-market {role} {os.getpid()} {scope.split('.', 1)[-1]}"[:63]


def dedicated_connection(engine: Engine, role: str) -> tuple[Connection, str]:
    """A connection of its own in autocommit mode (advisory locks outlive transactions), labelled with `role`;
    returns it and its scope."""
    connection = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    scope = namespace(connection)
    connection.execute(text("SELECT set_config('application_name', :name, false)"), {"name": label(role, scope)})
    return connection, scope


class ChainLock:
    """A re-entrant lock for chain writes: a thread lock, and on PostgreSQL an advisory lock across processes."""

    def __init__(self, engine: Engine | None = None) -> None:
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._engine = engine if engine is not None and is_postgresql(engine) else None
        self._connection: Connection | None = None
        self._key = 0
        if self._engine is not None:
            self._connect()

    @property
    def shared(self) -> bool:
        """Whether the lock holds across processes (PostgreSQL)."""
        return self._engine is not None

    def _connect(self) -> None:
        assert self._engine is not None
        self._connection, scope = dedicated_connection(self._engine, "worker")
        self._key = advisory_key(scope, CHAIN_WRITES)

    def _advisory(self, statement: str) -> None:
        assert self._connection is not None
        self._connection.execute(text(f"SELECT {statement}(:key)"), {"key": self._key})

    def acquire(self) -> None:
        self._thread_lock.acquire()
        if self._depth == 0 and self._engine is not None:
            try:
                if self._connection is None:
                    self._connect()
                try:
                    self._advisory("pg_advisory_lock")
                except DBAPIError:  # the connection broke (and with it any lock it held): one new one
                    log.warning("the chain lock's connection broke: reconnecting")
                    self.close()
                    self._connect()
                    self._advisory("pg_advisory_lock")
            except BaseException:
                self._thread_lock.release()
                raise
        self._depth += 1

    def release(self) -> None:
        self._depth -= 1
        try:
            if self._depth == 0 and self._engine is not None:
                try:
                    self._advisory("pg_advisory_unlock")
                except DBAPIError:  # a broken connection holds nothing any more
                    log.warning("the chain lock's connection broke while unlocking")
                    self.close()
        finally:
            self._thread_lock.release()

    def __enter__(self) -> ChainLock:
        self.acquire()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None) -> None:
        self.release()

    def close(self) -> None:
        """Close the lock's connection (releasing whatever it held)."""
        if self._connection is not None:
            with contextlib.suppress(DBAPIError):
                self._connection.close()
            self._connection = None
