"""The default chain: a supervised anvil node whose state under the data directory survives a restart."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from api.db import make_engine, migrate, session_factory
from api.node import bind_market, check_same_chain, open_chain
from api.settings import Settings
from market.chain.anvil import free_port


def _sessions(settings: Settings) -> sessionmaker[Session]:
    engine = make_engine(settings.database_url())
    migrate(engine)
    return session_factory(engine)


def test_anvil_state_survives_restart(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", anvil_port=free_port(), secret="s")
    sessions = _sessions(settings)
    handle = open_chain(settings)
    try:
        assert handle.node is not None and handle.alive()
        market = bind_market(handle.chain, sessions, settings)
        contracts = market.deployment.contracts
    finally:
        handle.stop()
    assert (tmp_path / "data" / "anvil-state.json").exists() and (tmp_path / "data" / "deployment.json").exists()
    handle = open_chain(settings)
    try:
        again = bind_market(handle.chain, sessions, settings)
        assert again.deployment.contracts == contracts
        check_same_chain(handle.chain, again.deployment)
        assert again.registry.registration_bond() > 0
    finally:
        handle.stop()
