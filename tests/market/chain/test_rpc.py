"""The lean JSON-RPC client, and how `Chain` sends through it when the node misbehaves.

A proxy on 127.0.0.1 stands between the client and the session's anvil node; each test tells it
what to do with some calls (refuse a method, drop the connection after forwarding, close every
kept-alive connection) and reads back which methods it saw.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from eth_account import Account

from market.chain.anvil import LOOPBACK, AnvilNode
from market.chain.connection import Chain
from market.chain.errors import ChainError, RpcUnreachableError, TransactionRevertedError
from market.chain.rpc import METHOD_NOT_FOUND, JsonRpcClient, RpcError
from market.terms import ETHER

pytestmark = pytest.mark.anvil

#: What a test's hook returns for one call: None forwards it, a dict is the reply, DROP forwards it
#: and closes the connection without replying, CUT closes it without forwarding.
DROP = "drop"
CUT = "cut"
Hook = Callable[[dict[str, Any]], Any]


class Proxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.hook: Hook = lambda call: None
        self.methods: list[str] = []
        self.connections = 0
        self.close_after_reply = False
        self.reply_body: bytes | None = None
        self.refuse_batches = False
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                proxy.connections += 1

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                calls = payload if isinstance(payload, list) else [payload]
                proxy.methods += [call["method"] for call in calls]
                if proxy.reply_body is not None:
                    return self._reply(proxy.reply_body)
                if proxy.refuse_batches and isinstance(payload, list):
                    error = {"code": -32600, "message": "batch requests are not supported"}
                    return self._reply(json.dumps({"jsonrpc": "2.0", "id": None, "error": error}).encode())
                replies = []
                for call in calls:
                    action = proxy.hook(call)
                    if action == CUT:
                        self.close_connection = True
                        return
                    if action is None or action == DROP:
                        replies.append(proxy.forward(call))
                        if action == DROP:
                            self.close_connection = True
                            return
                    else:
                        replies.append({"jsonrpc": "2.0", "id": call["id"], **action})
                self._reply(json.dumps(replies if isinstance(payload, list) else replies[0]).encode())

            def _reply(self, body: bytes) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                # Without a Connection: close header the client keeps the connection for its next call.
                self.close_connection = proxy.close_after_reply

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.url = f"http://{LOOPBACK}:{self.server.server_address[1]}"

    def forward(self, call: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(self.upstream, json.dumps(call).encode(), {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as reply:
            return json.loads(reply.read())


@pytest.fixture
def proxy(anvil_node: AnvilNode) -> Iterator[Proxy]:
    proxy = Proxy(anvil_node.url)
    thread = threading.Thread(target=proxy.server.serve_forever, daemon=True)
    thread.start()
    yield proxy
    proxy.server.shutdown()
    proxy.server.server_close()


def refuse(method: str, error: dict[str, Any]) -> Hook:
    return lambda call: {"error": error} if call["method"] == method else None


# -- the client ----------------------------------------------------------------------------------


def test_a_batch_answers_in_order_with_each_error_in_its_place(anvil_node: AnvilNode) -> None:
    rpc = JsonRpcClient(anvil_node.url)
    chain_id, unknown, block = rpc.batch([("eth_chainId", []), ("no_such_method", []), ("eth_blockNumber", [])])
    assert int(chain_id, 16) == anvil_node.chain_id
    assert isinstance(unknown, RpcError) and unknown.code == METHOD_NOT_FOUND and unknown.method == "no_such_method"
    assert int(block, 16) >= 0


def test_an_error_reply_raises_rpc_error_with_its_code(anvil_node: AnvilNode) -> None:
    with pytest.raises(RpcError) as caught:
        JsonRpcClient(anvil_node.url).call("no_such_method", [])
    assert caught.value.code == METHOD_NOT_FOUND


def test_a_node_without_batches_gets_the_calls_one_by_one(proxy: Proxy, anvil_node: AnvilNode) -> None:
    proxy.refuse_batches = True
    chain_id, unknown = JsonRpcClient(proxy.url).batch([("eth_chainId", []), ("no_such_method", [])])
    assert int(chain_id, 16) == anvil_node.chain_id
    assert isinstance(unknown, RpcError) and unknown.code == METHOD_NOT_FOUND
    chain, receiver = Chain.connect(proxy.url), Account.create().address
    chain.send_ether(chain.funder, receiver, 3)  # its estimate, block and nonce were one batch
    assert chain.balance(receiver) == 3


def test_a_connection_the_node_closed_while_idle_is_replaced_once(proxy: Proxy) -> None:
    proxy.close_after_reply = True
    rpc = JsonRpcClient(proxy.url)
    assert [rpc.call("eth_chainId", []) for _ in range(3)] == [rpc.call("eth_chainId", [])] * 3
    assert proxy.connections == 4


def test_a_call_that_must_not_be_repeated_reports_the_closed_connection(proxy: Proxy) -> None:
    proxy.close_after_reply = True
    rpc = JsonRpcClient(proxy.url)
    rpc.call("eth_chainId", [])
    with pytest.raises(RpcUnreachableError, match="no answer from the JSON-RPC node"):
        rpc.call("eth_chainId", [], retry=False)


def test_a_reply_that_is_not_json_is_a_chain_error(proxy: Proxy) -> None:
    proxy.reply_body = b"<html>bad gateway</html>"
    with pytest.raises(ChainError, match="not JSON"):
        JsonRpcClient(proxy.url).call("eth_chainId", [])


def test_a_url_that_is_not_http_is_refused() -> None:
    with pytest.raises(RpcUnreachableError, match="not an http"):
        JsonRpcClient("ws://127.0.0.1:8545")


# -- sending through it --------------------------------------------------------------------------


def funded_sender(chain: Chain) -> Account:
    return chain.new_account(ETHER, "rpc-test")


def test_a_node_without_the_synchronous_send_gets_a_plain_send_and_a_poll(proxy: Proxy) -> None:
    proxy.hook = refuse("eth_sendRawTransactionSync", {"code": METHOD_NOT_FOUND, "message": "method not found"})
    chain = Chain.connect(proxy.url)
    sender = funded_sender(chain)
    first = chain.send_ether(sender, chain.funder.address, 1)
    second = chain.send_ether(sender, chain.funder.address, 1)
    assert second.block_number > first.block_number
    # The synchronous send is tried once (the funding transfer), then never again.
    assert proxy.methods.count("eth_sendRawTransactionSync") == 1
    assert proxy.methods.count("eth_sendRawTransaction") == 3
    assert "eth_getTransactionReceipt" in proxy.methods


def test_a_synchronous_send_that_times_out_is_followed_by_polling_for_the_receipt(proxy: Proxy) -> None:
    def sent_but_timed_out(call: dict[str, Any]) -> Any:
        if call["method"] != "eth_sendRawTransactionSync":
            return None
        proxy.forward({**call, "method": "eth_sendRawTransaction"})
        return {"error": {"code": 4, "message": "the transaction was added to the pool but not mined in time"}}

    proxy.hook = sent_but_timed_out
    chain = Chain.connect(proxy.url)
    before = chain.balance(chain.funder.address)
    receiver = Account.create().address
    tx = chain.send_ether(chain.funder, receiver, 7)
    assert chain.balance(receiver) == 7
    assert chain.balance(chain.funder.address) == before - 7 - tx.fee_wei
    assert "eth_getTransactionReceipt" in proxy.methods


def once(method: str, action: str) -> Hook:
    """`action` for the first call of `method` (either send), then forward everything."""
    done: list[bool] = []

    def hook(call: dict[str, Any]) -> Any:
        if call["method"].startswith(method) and not done:
            done.append(True)
            return action
        return None

    return hook


def test_a_send_whose_reply_was_lost_is_found_by_its_hash_and_not_sent_again(proxy: Proxy) -> None:
    chain = Chain.connect(proxy.url)
    receiver = Account.create().address
    proxy.hook = once("eth_sendRawTransaction", DROP)
    tx = chain.send_ether(chain.funder, receiver, 5)
    assert chain.balance(receiver) == 5 and tx.block_number > 0
    assert proxy.methods.count("eth_getTransactionByHash") == 1
    assert sum(m.startswith("eth_sendRawTransaction") for m in proxy.methods) == 1


def test_a_send_lost_before_the_node_took_it_is_sent_again_once(proxy: Proxy) -> None:
    chain = Chain.connect(proxy.url)
    receiver = Account.create().address
    before = chain.balance(chain.funder.address)
    proxy.hook = once("eth_sendRawTransaction", CUT)
    tx = chain.send_ether(chain.funder, receiver, 5)
    assert chain.balance(receiver) == 5
    assert chain.balance(chain.funder.address) == before - 5 - tx.fee_wei
    assert sum(m.startswith("eth_sendRawTransaction") for m in proxy.methods) == 2


def test_a_node_that_stops_answering_during_a_send_is_unreachable_not_a_revert(proxy: Proxy) -> None:
    chain = Chain.connect(proxy.url)
    receiver = Account.create().address
    sending: list[bool] = []

    def gone_after_the_send(call: dict[str, Any]) -> Any:
        if call["method"].startswith("eth_sendRawTransaction"):
            sending.append(True)
            return DROP
        return CUT if sending else None

    proxy.hook = gone_after_the_send
    with pytest.raises(RpcUnreachableError):
        chain.send_ether(chain.funder, receiver, 5)
    # The node had taken it: the caller was told "unreachable", never "reverted".
    assert Chain.connect(proxy.upstream).balance(receiver) == 5


def test_a_send_the_node_refuses_is_a_failed_transaction(anvil_node: AnvilNode) -> None:
    chain = Chain.connect(anvil_node.url)
    penniless = chain.new_account(0, "penniless")
    with pytest.raises(TransactionRevertedError, match="the node refused"):
        chain.send_ether(penniless, chain.funder.address, ETHER)
