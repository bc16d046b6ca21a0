"""Where the package keeps its compiled artifacts, and where a source checkout keeps contracts and node tools.

The artifacts (`market/chain/build/*.json`) ship inside the package, so an installed (non-editable)
`aigc-market` deploys without a compiler; the Solidity sources, solc-js and anvil are only needed in a
checkout (compiling, tests).
"""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CONTRACTS_DIR = REPO_ROOT / "contracts"
BUILD_DIR = Path(__file__).resolve().parent / "build"
SOLC_SHIM = CONTRACTS_DIR / "solc-shim.js"
NODE_MODULES = REPO_ROOT / "node_modules"
