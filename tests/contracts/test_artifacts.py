"""The committed artifacts are what the sources compile to, through the solc-js shim."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from market.chain.artifacts import MARKET_CONTRACTS, load_artifact
from market.chain.compiler import COMPILER_SETTINGS, compile_sources, solc_binary, source_files, standard_json_input
from market.chain.paths import BUILD_DIR, REPO_ROOT, SOLC_SHIM

#: Every contract, library and interface of the sources, with the file that defines it.
EXPECTED_ARTIFACTS = {
    "AIGCRegistry": "contracts/AIGCRegistry.sol",
    "AIGCExchange": "contracts/AIGCExchange.sol",
    "ReputationLedger": "contracts/ReputationLedger.sol",
    "Commitments": "contracts/AIGCTypes.sol",
    "IGenerationLocks": "contracts/AIGCTypes.sol",
    "ReentrantReceiver": "contracts/test/ReentrantReceiver.sol",
}
DEPLOYABLE = (*MARKET_CONTRACTS, "ReentrantReceiver")


@pytest.fixture(scope="module")
def fresh_artifacts():
    return compile_sources()


def test_the_build_holds_one_artifact_per_contract_library_and_interface_of_the_sources():
    committed = {path.stem: json.loads(path.read_text())["sourceName"] for path in BUILD_DIR.glob("*.json")}
    assert committed == EXPECTED_ARTIFACTS


def test_every_deployable_contract_has_an_abi_and_bytecode():
    for name in DEPLOYABLE:
        artifact = load_artifact(name)
        assert artifact.abi, name
        assert artifact.bytecode.startswith("0x") and len(artifact.bytecode) > 2, name
        assert artifact.deployed_bytecode.startswith("0x") and len(artifact.deployed_bytecode) > 2, name


def test_the_commitments_library_is_internal_only():
    commitments = load_artifact("Commitments")
    assert commitments.abi == []  # `commit` is internal: inlined into the exchange and the registry
    assert len(commitments.bytecode) > 2


def test_the_generation_locks_interface_is_the_view_the_exchange_implements():
    interface = load_artifact("IGenerationLocks")
    assert interface.bytecode == interface.deployed_bytecode == "0x"
    assert [entry["name"] for entry in interface.abi] == ["generationLock"]
    assert interface.abi[0] in load_artifact("AIGCExchange").abi


def test_committed_artifacts_match_a_fresh_compile(fresh_artifacts):
    committed = {path.stem for path in BUILD_DIR.glob("*.json")}
    assert committed == set(fresh_artifacts), "market/chain/build has stale or missing files: run `make artifacts`"
    for name, fresh in fresh_artifacts.items():
        artifact = load_artifact(name)
        assert artifact.source == fresh.source, f"{name}: compiled from another file"
        assert artifact.abi == fresh.abi, f"{name}: ABI differs from a fresh compile"
        assert artifact.bytecode == fresh.bytecode, f"{name}: bytecode differs from a fresh compile"
        assert artifact.deployed_bytecode == fresh.deployed_bytecode, f"{name}: runtime differs from a fresh compile"


def test_a_comment_only_edit_of_a_source_changes_its_bytecode(tmp_path):
    """The comparison above catches any edit: the metadata hash in the bytecode covers the source text."""
    (tmp_path / "contracts").mkdir()
    (tmp_path / "node_modules").symlink_to(REPO_ROOT / "node_modules")
    edited = tmp_path / "contracts" / "AIGCTypes.sol"
    shutil.copy(REPO_ROOT / "contracts" / "AIGCTypes.sol", edited)
    edited.write_text(edited.read_text() + "\n// an edit that changes no code\n")
    recompiled = compile_sources([edited], root=tmp_path)
    assert recompiled["Commitments"].source == "contracts/AIGCTypes.sol"
    assert recompiled["Commitments"].bytecode != load_artifact("Commitments").bytecode


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
        input=json.dumps(full_output),
        capture_output=True,
        text=True,
        check=True,
    )
    assert len(proc.stdout.encode()) > 64 * 1024
    output = json.loads(proc.stdout)
    assert not [e for e in output.get("errors", []) if e["severity"] == "error"]
    assert "contracts/AIGCExchange.sol" in output["contracts"]


def test_solc_binary_environment_variable_overrides_the_shim(monkeypatch, tmp_path):
    fake = tmp_path / "solc"
    monkeypatch.setenv("SOLC_BINARY", str(fake))
    assert solc_binary() == fake
