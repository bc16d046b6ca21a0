"""The committed artifacts are what the sources compile to, through the solc-js shim."""

from __future__ import annotations

import json
import subprocess

import pytest

from market.chain.artifacts import MARKET_CONTRACTS, load_artifact
from market.chain.compiler import COMPILER_SETTINGS, compile_sources, solc_binary, source_files, standard_json_input
from market.chain.paths import BUILD_DIR, REPO_ROOT, SOLC_SHIM


@pytest.fixture(scope="module")
def fresh_artifacts():
    return compile_sources()


def test_every_contract_has_a_committed_artifact_with_abi_and_bytecode():
    for name in (*MARKET_CONTRACTS, "ReentrantReceiver"):
        data = json.loads((BUILD_DIR / f"{name}.json").read_text())
        assert data["abi"] and data["bytecode"].startswith("0x") and len(data["bytecode"]) > 2


def test_committed_artifacts_match_a_fresh_compile(fresh_artifacts):
    committed = {path.stem for path in BUILD_DIR.glob("*.json")}
    assert committed == set(fresh_artifacts), "contracts/build has stale or missing files: run `make artifacts`"
    for name, fresh in fresh_artifacts.items():
        artifact = load_artifact(name)
        assert artifact.abi == fresh.abi, f"{name}: ABI differs from a fresh compile"
        assert artifact.bytecode == fresh.bytecode, f"{name}: bytecode differs from a fresh compile"


def test_compiler_targets_prague_with_the_optimizer():
    assert COMPILER_SETTINGS["evmVersion"] == "prague"
    assert COMPILER_SETTINGS["optimizer"]["enabled"] is True


def test_shim_reports_a_solc_version_that_py_solc_x_parses():
    out = subprocess.run([str(SOLC_SHIM), "--version"], capture_output=True, text=True, check=True).stdout
    assert "Version: 0.8." in out


def test_shim_delivers_more_than_64_kib_of_json_through_a_pipe():
    """solcjs cuts piped output at 64 KiB; the shim must not (OpenZeppelin builds exceed it)."""
    full_output = dict(standard_json_input(source_files()))
    full_output["settings"] = dict(COMPILER_SETTINGS, outputSelection={"*": {"*": ["*"], "": ["ast"]}})
    proc = subprocess.run(
        [str(SOLC_SHIM), "--standard-json", "--base-path", str(REPO_ROOT)],
        input=json.dumps(full_output), capture_output=True, text=True, check=True,
    )
    assert len(proc.stdout.encode()) > 64 * 1024
    output = json.loads(proc.stdout)
    assert not [e for e in output.get("errors", []) if e["severity"] == "error"]
    assert "contracts/AIGCExchange.sol" in output["contracts"]


def test_solc_binary_environment_variable_overrides_the_shim(monkeypatch, tmp_path):
    fake = tmp_path / "solc"
    monkeypatch.setenv("SOLC_BINARY", str(fake))
    assert solc_binary() == fake
