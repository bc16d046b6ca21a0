"""Compiled contract artifacts committed under `market/chain/build/` (no compiler needed to run)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from market.chain.paths import BUILD_DIR

#: The contracts that make up a market deployment, in deployment order.
MARKET_CONTRACTS = ("AIGCRegistry", "AIGCExchange", "ReputationLedger")


class ArtifactNotFoundError(FileNotFoundError):
    """No committed artifact for a contract name."""


@dataclass(frozen=True)
class Artifact:
    """The compiled form of one contract, as committed under `market/chain/build/`."""

    contract_name: str
    source: str
    abi: list[dict[str, Any]]
    bytecode: str
    deployed_bytecode: str

    def to_json(self) -> dict[str, Any]:
        return {
            "contractName": self.contract_name,
            "sourceName": self.source,
            "abi": self.abi,
            "bytecode": self.bytecode,
            "deployedBytecode": self.deployed_bytecode,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Artifact:
        return cls(
            contract_name=data["contractName"],
            source=data["sourceName"],
            abi=data["abi"],
            bytecode=data["bytecode"],
            deployed_bytecode=data["deployedBytecode"],
        )


@cache
def _load(path: Path) -> Artifact:
    return Artifact.from_json(json.loads(path.read_text()))


def load_artifact(name: str, build_dir: Path = BUILD_DIR) -> Artifact:
    """The committed artifact of contract `name`."""
    path = build_dir / f"{name}.json"
    if not path.is_file():
        raise ArtifactNotFoundError(f"no compiled artifact for {name!r} at {path}")
    return _load(path)


def all_abis(build_dir: Path = BUILD_DIR) -> dict[str, list[dict[str, Any]]]:
    """Every committed contract's ABI by name (used to decode errors raised anywhere)."""
    return {path.stem: _load(path).abi for path in sorted(build_dir.glob("*.json"))}
