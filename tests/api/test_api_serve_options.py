"""Options of `aigc-market serve` that only a real server process shows."""

from __future__ import annotations

from pathlib import Path

import httpx

from api.launcher import ServerProcess
from market.chain.anvil import AnvilNode


def served_log(tmp_path: Path, node: AnvilNode, extra_args: list[str]) -> str:
    server = ServerProcess(tmp_path / "data", rpc_url=node.url, extra_args=extra_args)
    with server:
        assert httpx.get(f"{server.url}/health", timeout=30).status_code == 200
    return (tmp_path / "data" / "server-0.log").read_text(errors="replace")


def test_requests_are_logged_only_with_access_log(tmp_path: Path, anvil_node: AnvilNode) -> None:
    assert '"GET /health HTTP/1.1" 200' in served_log(tmp_path / "on", anvil_node, ["--access-log"])
    quiet = served_log(tmp_path / "off", anvil_node, [])
    assert "Application startup complete" in quiet
    assert "GET /health" not in quiet
