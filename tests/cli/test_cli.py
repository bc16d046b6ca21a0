"""The `aigc-market` command: deploy, node, compile --check and demo, and its one-line errors."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from market.chain.anvil import free_port, port_is_free, rpc_answers
from market.chain.connection import Chain
from market.chain.paths import REPO_ROOT

CLI = [sys.executable, "-m", "cli"]


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, cwd=REPO_ROOT)


def assert_one_line_error(proc: subprocess.CompletedProcess[str], code: int, fragment: str) -> None:
    assert proc.returncode == code, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("aigc-market: error:") and fragment in lines[0]
    assert "Traceback" not in proc.stdout + proc.stderr


def test_deploy_without_rpc_uses_an_embedded_chain_and_writes_the_deployment(tmp_path: Path):
    out = tmp_path / "deployment.json"
    proc = run_cli("chain", "deploy", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "embedded" in proc.stdout
    deployment = json.loads(out.read_text())
    assert set(deployment) == {"chain_id", "block", "contracts"}
    assert set(deployment["contracts"]) == {"AIGCRegistry", "AIGCExchange", "ReputationLedger"}


def test_deploy_to_anvil_puts_code_at_every_written_address(tmp_path: Path, anvil_node):
    out = tmp_path / "deployment.json"
    proc = run_cli("chain", "deploy", "--rpc", anvil_node.url, "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    deployment = json.loads(out.read_text())
    assert deployment["chain_id"] == 31337
    chain = Chain.connect(anvil_node.url)
    for address in deployment["contracts"].values():
        assert len(chain.code(address)) > 0
    assert deployment["block"] <= chain.head()


def test_deploy_to_an_unreachable_rpc_prints_one_line_and_exits_2(tmp_path: Path):
    proc = run_cli("chain", "deploy", "--rpc", f"http://127.0.0.1:{free_port()}", "--out", str(tmp_path / "d.json"))
    assert_one_line_error(proc, 2, "no EVM JSON-RPC node answers")
    assert not (tmp_path / "d.json").exists()


def test_an_unknown_option_prints_one_line_and_exits_2():
    assert_one_line_error(run_cli("chain", "deploy", "--bogus"), 2, "No such option")


def test_an_out_of_range_port_prints_one_line_and_exits_2():
    assert_one_line_error(run_cli("chain", "node", "--port", "70000"), 2, "--port")


def test_a_malformed_private_key_prints_one_line_and_exits_2(anvil_node):
    proc = run_cli("chain", "deploy", "--rpc", anvil_node.url, "--private-key", "0x1234")
    assert_one_line_error(proc, 2, "--private-key")


def test_chain_node_starts_anvil_on_loopback_prints_its_url_and_stops_on_sigterm():
    port = free_port()
    proc = subprocess.Popen(
        [*CLI, "chain", "node", "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO_ROOT
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url == f"http://127.0.0.1:{port}"
        assert rpc_answers(url)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    deadline = time.monotonic() + 10
    while not port_is_free(port) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert port_is_free(port), "anvil kept running after the command stopped"


def test_chain_node_on_a_busy_port_prints_one_line_and_exits_2(anvil_node):
    assert_one_line_error(run_cli("chain", "node", "--port", str(anvil_node.port)), 2, "already in use")


def test_compile_check_passes_on_the_committed_artifacts():
    proc = run_cli("chain", "compile", "--check")
    assert proc.returncode == 0, proc.stderr
    assert "match a fresh compile" in proc.stdout


@pytest.mark.parametrize("backend", ["embedded", "anvil"])
def test_demo_walks_the_lifecycle_and_every_invariant_holds(backend: str, request: pytest.FixtureRequest):
    args = ["demo", "--json"]
    if backend == "anvil":
        args += ["--rpc", request.getfixturevalue("anvil_node").url]
    proc = run_cli(*args)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    operations = [step["operation"] for step in report["steps"]]
    for expected in (
        "registerEsp",
        "lockGeneration",
        "withdrawGeneration",
        "register",
        "rate",
        "challenge (upheld)",
        "claimBond",
        "lockPurchase",
        "withdrawPurchase",
        "withdrawCredit",
    ):
        assert expected in operations
    # The copy is challenged inside its window and the sale comes only after the original is final.
    assert operations.index("challenge (upheld)") < operations.index("claimBond") < operations.index("lockPurchase")
    assert all(step["gas"] > 0 for step in report["steps"] if step["gas"] is not None)
    assert report["invariants"] and all(report["invariants"].values())


def test_the_application_assembles_every_command_group_explicitly():
    from cli.main import app

    commands = {c.name for c in app.registered_commands}
    groups = {g.name for g in app.registered_groups}
    assert commands == {"demo", "simulate", "serve", "reproduce", "sweep"} and groups == {"chain", "esp", "offload", "reputation"}
