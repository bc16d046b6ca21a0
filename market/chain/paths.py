"""Where the repository keeps contracts, artifacts and node tools."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CONTRACTS_DIR = REPO_ROOT / "contracts"
BUILD_DIR = CONTRACTS_DIR / "build"
SOLC_SHIM = CONTRACTS_DIR / "solc-shim.js"
NODE_MODULES = REPO_ROOT / "node_modules"
