"""The indexer's leader among the workers of one server: exactly one follows the chain, and a survivor takes over.

Every worker of `aigc-market serve --workers N` (PostgreSQL) runs an `IndexerLeader` thread. Each
`poll_s` it tries a session-level advisory lock (`pg_try_advisory_lock`) on a connection of its
own; the one worker that holds it is the leader and indexes up to the chain's head every poll, so
that events no write of this server caused (another client of the node, a contract call made
outside the API) reach the database. The head is read under the chain lock, so every write of any
worker in a block up to it has committed its rows first (the projections find them). When the
leader dies, even by SIGKILL, PostgreSQL ends its session and releases the lock, and the next poll
of a surviving worker takes it: the takeover costs at most one poll interval after the database
notices the dead connection (at once for a killed process: its socket closes).

Indexing runs themselves, the leader's and those a route makes to show its own write in its reply,
go one at a time across workers (a transaction-level advisory lock in `Indexer.run_once`).
The leader's connection carries `application_name` `aigc-market leader <pid> <schema>` while it leads,
which is how an operator (and the test) sees which worker leads: `pg_stat_activity`.
See docs/api.md#several-workers.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import TYPE_CHECKING

from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError

from api.advisory import INDEXER_LEADER, advisory_key, dedicated_connection, label

if TYPE_CHECKING:
    from api.state import AppState

log = logging.getLogger("api.indexer_leader")


class IndexerLeader:
    def __init__(self, state: AppState, poll_s: float) -> None:
        self.state = state
        self.poll_s = poll_s
        self.leading = False
        self._connection: Connection | None = None
        self._scope = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="indexer-leader", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._drop()

    def _loop(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                if not self.leading:
                    self.leading = self._try_lead()
                if self.leading:
                    self._follow()
            except DBAPIError:
                log.exception("the indexer leader's connection failed: leadership given up")
                self._drop()
            except Exception:  # a node that does not answer, say: try again at the next poll
                log.exception("the indexer leader's run failed")

    def _try_lead(self) -> bool:
        if self._connection is None:
            self._connection, self._scope = dedicated_connection(self.state.engine, "candidate")
        key = advisory_key(self._scope, INDEXER_LEADER)
        if not self._connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar_one():
            return False
        self._connection.execute(
            text("SELECT set_config('application_name', :name, false)"), {"name": label("leader", self._scope)}
        )
        log.info("this worker now leads the indexer")
        return True

    def _follow(self) -> None:
        """Index up to the head, read while no write of any worker is between its blocks and its commit."""
        assert self._connection is not None
        self._connection.execute(text("SELECT 1"))  # a broken connection has lost the lock: stop leading
        state = self.state
        with state.chain_lock:
            head = state.chain.head()
            state.indexable_block = max(state.indexable_block, head)
        state.index_through(head)

    def _drop(self) -> None:
        self.leading = False
        if self._connection is not None:
            with contextlib.suppress(DBAPIError):
                self._connection.close()
            self._connection = None
