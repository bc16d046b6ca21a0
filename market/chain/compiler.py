"""Compile the Solidity sources with solc-js (through the node shim) or a native solc.

py-solc-x drives the compiler with the standard-JSON interface. The compiler is the npm package
`solc`, reached through `contracts/solc-shim.js`; `SOLC_BINARY` names a native compiler instead.
Nothing here downloads a compiler (`solcx.install_solc` is never called).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import solcx

from market.chain.artifacts import Artifact
from market.chain.paths import BUILD_DIR, CONTRACTS_DIR, REPO_ROOT, SOLC_SHIM

#: The project's sources (test contracts included); each contract in them gets
#: `market/chain/build/<Name>.json`.
SOURCE_GLOBS = ("*.sol", "test/*.sol")

#: Compiler settings shared by every build. `prague` because py-evm (eth-tester 0.14) does not
#: run solc 0.8.37's default target `osaka`.
COMPILER_SETTINGS: dict[str, Any] = {
    "evmVersion": "prague",
    "optimizer": {"enabled": True, "runs": 200},
    "remappings": ["@openzeppelin/=node_modules/@openzeppelin/"],
    "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}},
}


class CompilerNotFoundError(RuntimeError):
    """Neither SOLC_BINARY nor the solc-js shim (node and node_modules/solc) is available."""


def solc_binary() -> Path:
    """The compiler to run: `SOLC_BINARY` if set, else the solc-js shim."""
    override = os.environ.get("SOLC_BINARY")
    if override:
        return Path(override)
    if shutil.which("node") is None or not (REPO_ROOT / "node_modules" / "solc").is_dir():
        raise CompilerNotFoundError(
            "no Solidity compiler: run `make install` (installs solc-js into node_modules) or set SOLC_BINARY"
        )
    return SOLC_SHIM


def source_files(contracts_dir: Path = CONTRACTS_DIR) -> list[Path]:
    """The project's Solidity sources, sorted so that builds are reproducible."""
    files = {path for pattern in SOURCE_GLOBS for path in contracts_dir.glob(pattern)}
    return sorted(files)


def standard_json_input(sources: list[Path], root: Path = REPO_ROOT) -> dict[str, Any]:
    """A standard-JSON compiler input with source unit names relative to the repository root."""
    return {
        "language": "Solidity",
        "sources": {path.relative_to(root).as_posix(): {"content": path.read_text()} for path in sources},
        "settings": COMPILER_SETTINGS,
    }


def compile_sources(sources: list[Path] | None = None, root: Path = REPO_ROOT) -> dict[str, Artifact]:
    """Compile `sources` (default: all project contracts) and return artifacts by contract name.

    Only contracts defined in the given files are returned, not the OpenZeppelin ones they import.
    """
    sources = source_files() if sources is None else sources
    output = solcx.compile_standard(standard_json_input(sources, root), base_path=str(root), solc_binary=str(solc_binary()))
    wanted = {path.relative_to(root).as_posix() for path in sources}
    artifacts: dict[str, Artifact] = {}
    for source_name, contracts in output["contracts"].items():
        if source_name not in wanted:
            continue
        for name, compiled in contracts.items():
            artifacts[name] = Artifact(
                contract_name=name,
                source=source_name,
                abi=compiled["abi"],
                bytecode="0x" + compiled["evm"]["bytecode"]["object"],
                deployed_bytecode="0x" + compiled["evm"]["deployedBytecode"]["object"],
            )
    return artifacts


def write_artifacts(artifacts: dict[str, Artifact], build_dir: Path = BUILD_DIR) -> list[Path]:
    """Write each artifact to `<build_dir>/<ContractName>.json`; returns the paths written."""
    build_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, artifact in sorted(artifacts.items()):
        path = build_dir / f"{name}.json"
        path.write_text(json.dumps(artifact.to_json(), indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written
