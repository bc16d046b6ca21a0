"""The chain the server talks to: an injected one, `--rpc URL`, or a supervised local anvil node.

A server must keep its chain across restarts, so the default is an anvil node on 127.0.0.1 with
`--state` under the data directory (anvil writes it when stopped gracefully). A node already
answering on the port (left running by a server that was killed) is reused, not restarted, but only
once it is identified as this server's own: the node that a server starts gets a marker in its state
(1 wei sent to a random address, kept with the chain id in `<data_dir>/node-marker.json`), and a node
whose chain id or marker differs is refused (`NodeNotOursError`): anything else answering on the port
(another project's anvil, a stray process) is never taken for it. The
contracts are deployed once; their addresses live in the database (`chain_meta`) and in
`<data_dir>/deployment.json`. A database that indexes another chain, or contracts of protocol v1,
refuses to start. The deployment's parameters are `MarketParams()` (market.terms); an attached
market's are read back from its contracts' immutables (`Market.params()`).
"""

from __future__ import annotations

import json
import logging
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_utils.address import to_checksum_address
from sqlalchemy.orm import Session, sessionmaker

from api.models import ChainMeta, IndexerCursor
from api.settings import Settings
from market.chain.anvil import LOOPBACK, AnvilNode, rpc_answers
from market.chain.connection import Chain
from market.chain.deploy import Deployment, Market, attach_market, deploy_market

#: The protocol of the contracts this server deploys and serves.
PROTOCOL_VERSION = 2

log = logging.getLogger("api.node")


#: Beside the data: the chain id and the marker address of the node this server started.
MARKER_FILE = "node-marker.json"


class ChainMismatchError(RuntimeError):
    """The database records a different chain (or contracts) than the one connected: refuse to start."""


class NodeNotOursError(ChainMismatchError):
    """Something answers on the managed node's port, but it is not the node this server started."""


@dataclass
class ChainHandle:
    chain: Chain
    node: AnvilNode | None
    """The anvil process this server started (and stops); None when the chain is someone else's."""

    def alive(self) -> bool:
        return self.node is None or (self.node.process is not None and self.node.process.poll() is None)

    def stop(self) -> None:
        if self.node is not None:
            self.node.stop()


def open_chain(settings: Settings) -> ChainHandle:
    """Connect to the configured chain, starting anvil under the data directory if none is given."""
    if settings.chain is not None:
        return ChainHandle(settings.chain, None)
    if settings.rpc_url:
        return ChainHandle(Chain.connect(settings.rpc_url, settings.private_key), None)
    url = f"http://{LOOPBACK}:{settings.anvil_port}"
    marker = read_marker(settings.data_dir)
    if rpc_answers(url):
        chain = Chain.connect(url, settings.private_key)
        if marker is None or chain.chain_id != marker["chain_id"] or chain.balance(marker["address"]) == 0:
            raise NodeNotOursError(
                f"a JSON-RPC node already answers on {LOOPBACK}:{settings.anvil_port}, but it is not the node this "
                "server started (its chain id or marker differs): stop it, or choose another --anvil-port, or "
                "name it with --rpc"
            )
        log.info("reusing this server's anvil node, still answering at %s", url)
        return ChainHandle(chain, None)
    node = AnvilNode(port=settings.anvil_port, state_path=(settings.data_dir / "anvil-state.json").resolve()).start()
    try:
        chain = Chain.connect(node.url, settings.private_key)
        mark_node(chain, settings.data_dir, marker)
    except BaseException:
        node.stop()
        raise
    log.info("started anvil at %s with state under %s", node.url, settings.data_dir)
    return ChainHandle(chain, node)


def read_marker(data_dir: Path) -> dict[str, Any] | None:
    """The chain id and marker address of the node this data directory's server started, if any."""
    try:
        marker = json.loads((data_dir / MARKER_FILE).read_text())
        return {"chain_id": int(marker["chain_id"]), "address": to_checksum_address(marker["address"])}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def mark_node(chain: Chain, data_dir: Path, marker: dict[str, Any] | None) -> None:
    """Put this server's marker in the state of the node it started (once: the state keeps it)."""
    if marker is None or marker["chain_id"] != chain.chain_id:
        marker = {"chain_id": chain.chain_id, "address": to_checksum_address(secrets.token_bytes(20))}
        (data_dir / MARKER_FILE).write_text(json.dumps(marker) + "\n")
    if chain.balance(marker["address"]) == 0:
        chain.send_ether(chain.funder, marker["address"], 1)


def bind_market(chain: Chain, sessions: sessionmaker[Session], settings: Settings) -> Market:
    """Deploy the contracts once and remember them, or attach to the remembered ones after checking them."""
    with sessions.begin() as session:
        meta = session.get(ChainMeta, 1)
        if meta is None:
            market, _ = deploy_market(chain)
            contracts = market.deployment.contracts
            session.add(
                ChainMeta(
                    id=1,
                    chain_id=chain.chain_id,
                    registry_address=contracts["AIGCRegistry"],
                    exchange_address=contracts["AIGCExchange"],
                    ledger_address=contracts["ReputationLedger"],
                    deploy_block=market.deployment.block,
                    protocol_version=PROTOCOL_VERSION,
                )
            )
            session.add(IndexerCursor(id=1, last_block=max(0, market.deployment.block - 3)))
            market.deployment.write(settings.data_dir / "deployment.json")
            return market
        if meta.protocol_version != PROTOCOL_VERSION:
            raise ChainMismatchError(
                f"the database indexes contracts of protocol v{meta.protocol_version}; this server "
                f"speaks v{PROTOCOL_VERSION}: refusing to start (use a fresh --data or --db)"
            )
        deployment = Deployment(
            meta.chain_id,
            meta.deploy_block,
            {"AIGCRegistry": meta.registry_address, "AIGCExchange": meta.exchange_address, "ReputationLedger": meta.ledger_address},
        )
    check_same_chain(chain, deployment)
    return attach_market(chain, deployment)


def check_same_chain(chain: Chain, deployment: Deployment) -> None:
    """Raise ChainMismatchError unless `chain` has the recorded id and code at every recorded address."""
    if chain.chain_id != deployment.chain_id:
        raise ChainMismatchError(
            f"the database indexes chain {deployment.chain_id}, but the node is chain "
            f"{chain.chain_id}: refusing to start (use the matching --rpc or another --db)"
        )
    for name, address in deployment.contracts.items():
        if not chain.code(address):
            raise ChainMismatchError(
                f"the database indexes {name} at {address} on chain {deployment.chain_id}, "
                "but the node has no contract there: refusing to start (a different chain?)"
            )
