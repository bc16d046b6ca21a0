"""Deploy and wire the three market contracts; read and write deployment files.

The registry reads the exchange's generation locks and the exchange reads the registry's tokens, so
each names the other as an immutable: the registry is deployed first with the address the exchange
will get (CREATE: keccak256(rlp([deployer, nonce]))), and the exchange's constructor checks it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import rlp
from eth_account.signers.local import LocalAccount
from eth_utils import keccak, to_canonical_address, to_checksum_address

from market.chain.artifacts import load_artifact
from market.chain.connection import Chain, TxResult
from market.chain.contracts import Exchange, Ledger, Registry
from market.terms import MarketParams

__all__ = ["Deployment", "Market", "MarketParams", "attach_market", "create_address", "deploy_market"]


@dataclass(frozen=True)
class Deployment:
    """What `aigc-market chain deploy` writes: `{"chain_id", "block", "contracts": {...}}`."""

    chain_id: int
    block: int
    contracts: dict[str, str]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n")

    @classmethod
    def read(cls, path: Path) -> Deployment:
        data = json.loads(path.read_text())
        return cls(chain_id=int(data["chain_id"]), block=int(data["block"]), contracts=dict(data["contracts"]))


@dataclass
class Market:
    """The three deployed contracts on one chain."""

    chain: Chain
    registry: Registry
    exchange: Exchange
    ledger: Ledger
    deployment: Deployment

    def params(self) -> MarketParams:
        """The parameters the contracts were deployed with (their immutables, read once per wrapper)."""
        registry, exchange = self.registry, self.exchange
        return MarketParams(
            registration_bond=registry.registration_bond(),
            challenge_deposit=registry.challenge_deposit(),
            similarity_threshold=registry.similarity_threshold(),
            royalty_bps=registry.royalty_bps(),
            challenge_window=registry.challenge_window(),
            min_timelock=exchange.min_timelock(),
            max_timelock=exchange.max_timelock(),
            fee_floor=exchange.fee_floor(),
            min_stake=exchange.min_stake(),
            unbonding_delay=exchange.unbonding_delay(),
        )

    def contract_addresses(self) -> list[str]:
        return [self.registry.address, self.exchange.address, self.ledger.address]


def deploy_market(
    chain: Chain, deployer: LocalAccount | None = None, params: MarketParams | None = None
) -> tuple[Market, dict[str, TxResult]]:
    """Deploy registry, exchange (wired to the registry) and ledger (wired to the exchange)."""
    deployer = deployer or chain.funder
    params = params or MarketParams()
    nonce = chain.nonce(deployer.address)
    registry, r1 = chain.deploy(
        load_artifact("AIGCRegistry"),
        deployer,
        params.registration_bond,
        params.challenge_deposit,
        params.similarity_threshold,
        params.royalty_bps,
        params.challenge_window,
        create_address(deployer.address, nonce + 1),
    )
    exchange, r2 = chain.deploy(
        load_artifact("AIGCExchange"),
        deployer,
        registry.address,
        params.min_timelock,
        params.max_timelock,
        params.fee_floor,
        params.min_stake,
        params.unbonding_delay,
    )
    ledger, r3 = chain.deploy(load_artifact("ReputationLedger"), deployer, exchange.address)
    deployment = Deployment(
        chain_id=chain.chain_id,
        block=r3.block_number,
        contracts={"AIGCRegistry": registry.address, "AIGCExchange": exchange.address, "ReputationLedger": ledger.address},
    )
    market = Market(chain, Registry(chain, registry), Exchange(chain, exchange), Ledger(chain, ledger), deployment)
    return market, {"AIGCRegistry": r1, "AIGCExchange": r2, "ReputationLedger": r3}


def create_address(deployer: str, nonce: int) -> str:
    """The address of the contract that `deployer` creates with transaction `nonce`."""
    return to_checksum_address(keccak(rlp.encode([to_canonical_address(deployer), nonce]))[12:])


def attach_market(chain: Chain, deployment: Deployment) -> Market:
    """Wrap contracts already deployed at the addresses of `deployment`."""
    if deployment.chain_id != chain.chain_id:
        raise ValueError(f"deployment is for chain {deployment.chain_id}, connected to {chain.chain_id}")
    addresses = deployment.contracts
    return Market(
        chain,
        Registry(chain, chain.contract(load_artifact("AIGCRegistry"), addresses["AIGCRegistry"])),
        Exchange(chain, chain.contract(load_artifact("AIGCExchange"), addresses["AIGCExchange"])),
        Ledger(chain, chain.contract(load_artifact("ReputationLedger"), addresses["ReputationLedger"])),
        deployment,
    )
