"""The default chain: a supervised anvil node whose state under the data directory survives a restart, and
which is identified (chain id and a marker in its state) before it is reused (issue 18, item 5)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from api.db import make_engine, migrate, session_factory
from api.node import MARKER_FILE, NodeNotOursError, bind_market, check_same_chain, open_chain
from api.settings import Settings
from market.chain.anvil import AnvilNode, free_port


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


def test_a_foreign_node_on_the_managed_port_is_not_taken_for_the_servers_own(tmp_path: Path, anvil_node: AnvilNode) -> None:
    settings = Settings(data_dir=tmp_path / "data", anvil_port=anvil_node.port, secret="s")
    with pytest.raises(NodeNotOursError, match="not the node this server started"):
        open_chain(settings)


def test_the_servers_own_node_is_identified_and_reused(tmp_path: Path) -> None:
    """A node left running (its server was killed) carries the marker and the chain id its server recorded."""
    settings = Settings(data_dir=tmp_path / "data", anvil_port=free_port(), secret="s")
    own = open_chain(settings)
    try:
        assert own.node is not None
        marker = json.loads((tmp_path / "data" / MARKER_FILE).read_text())
        assert marker["chain_id"] == own.chain.chain_id and own.chain.balance(marker["address"]) == 1
        again = open_chain(settings)  # the restarted server finds its node still answering
        assert again.node is None and again.chain.chain_id == own.chain.chain_id
        other = Settings(data_dir=tmp_path / "other", anvil_port=settings.anvil_port, secret="s")
        with pytest.raises(NodeNotOursError):  # another data directory's server: not its node
            open_chain(other)
        (tmp_path / "data" / MARKER_FILE).write_text(json.dumps(marker | {"chain_id": 1}))
        with pytest.raises(NodeNotOursError):  # the right marker on another chain id: not it either
            open_chain(settings)
    finally:
        own.stop()
