"""`market.chain.anvil.AnvilNode` keeps anvil's cache of persisted states private and removes it when it stops
(anvil spills states to ~/.foundry/anvil/tmp by default and never cleans it: a day of tests filled the disk)."""

from __future__ import annotations

from pathlib import Path

import requests

from market.chain.anvil import AnvilNode, free_port


def test_an_anvil_node_keeps_its_state_cache_private_and_removes_it_when_it_stops() -> None:
    with AnvilNode(port=free_port()) as node:
        cache = node.cache_dir
        assert cache is not None and cache.is_dir() and not str(cache).startswith(str(Path.home() / ".foundry"))
        reply = requests.post(node.url, json={"jsonrpc": "2.0", "id": 1, "method": "anvil_mine", "params": [300]}, timeout=10)
        assert reply.ok and "error" not in reply.json()
    assert node.cache_dir is None and not cache.exists()
