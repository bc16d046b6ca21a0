"""Everything one app instance holds, built by `create_app` and stored on `app.state.market`.

The chain connection is not thread-safe (nonces come from the pending block), so every chain write
and the indexer run under `chain_lock`; FastAPI runs the sync endpoints on a thread pool.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from api import models
from api.indexer import Indexer
from api.node import ChainHandle
from api.security import Vault
from api.settings import Settings
from market.chain.deploy import Market
from market.content import ContentStore


@dataclass
class AppState:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    vault: Vault
    handle: ChainHandle
    market: Market
    indexer: Indexer
    store: ContentStore
    chain_lock: threading.RLock = field(default_factory=threading.RLock)

    @property
    def chain(self):  # noqa: ANN201 - market.chain.connection.Chain
        return self.market.chain

    def signer(self, account: models.Account) -> LocalAccount:
        """The account's key, opened for one transaction; never logged nor returned."""
        return Account.from_key(self.vault.open(account.encrypted_key, account.address))

    @contextmanager
    def writing(self, session: Session) -> Iterator[None]:
        """One write: chain transactions, then the route's rows, then the indexer, under the chain lock.

        The session's read snapshot is ended first (SQLite in WAL mode cannot turn an old read into a
        write once another connection committed); its rows are committed before the indexer runs so
        that the projections find them; on failure they are rolled back and the indexer still
        records whatever reached the chain.
        """
        session.commit()
        with self.chain_lock:
            try:
                yield
                session.commit()
            except BaseException:
                session.rollback()
                raise
            finally:
                self.indexer.run_once()
                session.expire_all()
