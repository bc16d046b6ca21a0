"""The import-layer contracts of pyproject.toml hold on the tree, and break when a core imports upward."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from market.chain.paths import REPO_ROOT

PACKAGES = ("cli", "esp", "client", "api", "reproduce", "market", "reputation", "offload_core", "sweep")
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(root / "pyproject.toml"), "--no-cache"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=root,
        env=env,
    )


def copy_of_the_tree(tmp_path: Path) -> Path:
    for package in PACKAGES:
        shutil.copytree(REPO_ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__", "build"))
    shutil.copy(REPO_ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_tree_keeps_every_import_contract():
    result = lint_imports(REPO_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    "core,upward", [("offload_core", "market"), ("reputation", "offload_core"), ("market", "api"), ("api", "cli")]
)
def test_a_layer_that_imports_upward_or_sideways_breaks_the_contract(tmp_path: Path, core: str, upward: str):
    root = copy_of_the_tree(tmp_path)
    (root / core / "upward.py").write_text(f"import {upward}  # noqa: F401\n")
    result = lint_imports(root)
    assert result.returncode != 0 and "BROKEN" in result.stdout, result.stdout
    assert f"{core}.upward -> {upward}" in result.stdout


def test_web3_outside_market_chain_breaks_the_contract(tmp_path: Path):
    root = copy_of_the_tree(tmp_path)
    (root / "market" / "leak.py").write_text("import web3  # noqa: F401\n")
    text = (root / "pyproject.toml").read_text().replace('"market.fields"]', '"market.fields", "market.leak"]')
    (root / "pyproject.toml").write_text(text)
    result = lint_imports(root)
    assert result.returncode != 0 and "market.leak -> web3" in result.stdout, result.stdout
