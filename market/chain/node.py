"""`RpcChain`: the `Chain` backend of a JSON-RPC node (anvil, or any EVM node).

Everything on a transaction's path (estimate, pending block, nonce, send, receipt) and the logs go
through the lean client (`rpc.py`, signing in `transactions.py`): web3's middlewares and result
formatters cost several times the request itself. web3 serves the views.
"""

from __future__ import annotations

import time
from typing import Any

import requests
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address
from web3 import HTTPProvider, Web3
from web3.types import RPCEndpoint

from market.chain.connection import Chain
from market.chain.errors import ChainError, RpcUnreachableError, TransactionRevertedError, revert_data
from market.chain.events import DecodedEvent
from market.chain.receipts import Receipt, TxResult
from market.chain.rpc import METHOD_NOT_FOUND, JsonRpcClient, RpcError
from market.chain.transactions import sign_dynamic_fee

#: Headroom over eth_estimateGas: refunds and the 63/64 rule make estimates a little tight.
GAS_MARGIN = 1.2

#: Error code of `eth_sendRawTransactionSync` when the node took the transaction but did not mine it
#: within its wait (EIP-7966).
SYNC_SEND_TIMEOUT = 4


class RpcChain(Chain):
    """A connection to the node at `url`; `private_key` is the funder (see `Chain.connect`)."""

    backend = "rpc"

    def __init__(self, url: str, private_key: str, timeout: float = 10.0) -> None:
        #: The lean client that sends transactions and reads logs.
        self.rpc = JsonRpcClient(url, timeout=timeout)
        try:
            self.rpc.call("eth_chainId", [])  # the cheapest call that proves a node answers
        except RpcUnreachableError as exc:
            why = exc.__cause__.__class__.__name__ if exc.__cause__ is not None else str(exc)
            raise RpcUnreachableError(f"no EVM JSON-RPC node answers at {url}: {why}") from exc
        except ChainError as exc:
            raise RpcUnreachableError(f"{url} is not an EVM JSON-RPC endpoint: {exc}") from exc
        session = requests.Session()
        # Proxy variables do not apply to a node on this machine, and looking them up on every request
        # costs more CPU than the request itself.
        session.trust_env = False
        # web3 serves the contract calls (views). A node's chain id never changes, but web3 asks for it
        # before every call (its validation middleware): cache that one answer, nothing else.
        provider = HTTPProvider(
            url,
            request_kwargs={"timeout": timeout},
            session=session,
            cache_allowed_requests=True,
            cacheable_requests={RPCEndpoint("eth_chainId")},
        )
        funder = Account.from_key(private_key)
        super().__init__(Web3(provider), funder)
        self._sync_send = True

    def head(self) -> int:
        """eth_blockNumber, sent as it is."""
        return int(self.rpc.call("eth_blockNumber", []), 16)

    def balance(self, address: str) -> int:
        return self._w3.eth.get_balance(to_checksum_address(address))

    def logs(self, addresses: list[str], from_block: int, to_block: int) -> list[DecodedEvent]:
        """One eth_getLogs, which also sees other clients' transactions, through the lean client: web3's
        result formatters would rebuild every log only for the decoder to take it apart again."""
        logs = self.rpc.call(
            "eth_getLogs", [{"fromBlock": hex(from_block), "toBlock": hex(to_block), "address": [a.lower() for a in addresses]}]
        )
        return sorted(self._receipts.decode(list(logs)), key=lambda e: (e.block_number, e.log_index))

    def _as_revert(self, exc: BaseException) -> ChainError:
        if isinstance(exc, RpcError) and not revert_data(exc):  # refused: insufficient funds, a stale nonce...
            return TransactionRevertedError(f"the node refused {exc}")
        return super()._as_revert(exc)

    # -- sending --------------------------------------------------------------------------------

    def _send(self, tx: dict[str, Any], sender: LocalAccount) -> TxResult:
        """Estimate, read the pending block and the nonce (one batched request), sign, send, take the receipt."""
        tx = self._prepare(tx, sender)
        rpc = self.rpc
        call = {"from": sender.address, "value": hex(tx.get("value", 0))}
        if tx.get("to"):
            call["to"] = tx["to"]
        if tx.get("data"):
            call["data"] = tx["data"]
        estimate, pending, nonce = rpc.batch(
            [
                ("eth_estimateGas", [call, "pending"]),
                ("eth_getBlockByNumber", ["pending", False]),
                ("eth_getTransactionCount", [sender.address, "pending"]),
            ]
        )
        if isinstance(estimate, Exception):
            raise self._as_revert(estimate) from estimate
        for answer in (pending, nonce):
            if isinstance(answer, Exception):
                raise answer
        tx["gas"] = min(int(int(estimate, 16) * GAS_MARGIN), int(pending["gasLimit"], 16))
        tx["nonce"] = int(nonce, 16)
        self._set_fees(tx, int(pending.get("baseFeePerGas") or "0x0", 16))
        signed = sign_dynamic_fee(sender, tx)
        tx_hash = "0x" + signed.hash.hex()
        receipt = self._submit("0x" + signed.raw.hex(), tx_hash)
        contract_address = receipt.get("contractAddress")
        return self._record(
            Receipt(
                tx_hash,
                int(receipt["status"], 16),
                int(receipt["blockNumber"], 16),
                int(receipt["gasUsed"], 16),
                int(receipt["effectiveGasPrice"], 16),
                receipt["logs"],
                to_checksum_address(contract_address) if contract_address else None,
            )
        )

    def _submit(self, raw: str, tx_hash: str) -> dict[str, Any]:
        """Send a signed transaction and return its receipt as the node wrote it.

        `eth_sendRawTransactionSync` (EIP-7966: anvil answers it) returns the receipt in the reply,
        which saves the polling; a node that does not know it gets the plain send and the poll from
        then on. If the connection fails during a send, whether the node took the transaction is
        unknown: `_resend_if_lost` asks for it by hash before sending it again.
        """
        rpc = self.rpc
        if self._sync_send:
            try:
                return dict(rpc.call("eth_sendRawTransactionSync", [raw], retry=False))
            except RpcUnreachableError:
                return self._resend_if_lost(raw, tx_hash)
            except RpcError as exc:
                if exc.code == SYNC_SEND_TIMEOUT:  # taken, not yet mined within the node's wait
                    return self._wait_for_receipt(tx_hash)
                if not _unknown_method(exc):
                    raise self._as_revert(exc) from exc
                self._sync_send = False
        try:
            rpc.call("eth_sendRawTransaction", [raw], retry=False)
        except RpcUnreachableError:
            return self._resend_if_lost(raw, tx_hash)
        except RpcError as exc:
            raise self._as_revert(exc) from exc
        return self._wait_for_receipt(tx_hash)

    def _resend_if_lost(self, raw: str, tx_hash: str) -> dict[str, Any]:
        """The receipt of a transaction whose send lost its connection: sent again only if the node does not have it.

        A signed transaction is its own idempotency key: its hash names it and its nonce lets it run at
        most once, so sending it twice cannot pay twice. If the node cannot be reached at all,
        `RpcUnreachableError` propagates and the caller must treat the transaction as maybe sent.
        """
        rpc = self.rpc
        if rpc.call("eth_getTransactionByHash", [tx_hash]) is None:
            try:
                rpc.call("eth_sendRawTransaction", [raw], retry=False)
            except RpcError as exc:
                if rpc.call("eth_getTransactionByHash", [tx_hash]) is None:  # not a late arrival of the first
                    raise self._as_revert(exc) from exc
        return self._wait_for_receipt(tx_hash)

    def _wait_for_receipt(self, tx_hash: str, timeout: float = 60.0) -> dict[str, Any]:
        """The receipt of `tx_hash`, polled with a backoff from half a millisecond up to 50 ms.

        A local node mines within a few milliseconds, but not always before it answers the send
        (anvil mines asynchronously once its chain has a few hundred blocks): a fixed 5 ms poll made
        the wait most of a transaction's time, and web3's default 0.1 s twenty times that.
        """
        deadline = time.monotonic() + timeout
        delay = 0.0005
        while True:
            receipt = self.rpc.call("eth_getTransactionReceipt", [tx_hash])
            if receipt:
                return dict(receipt)
            if time.monotonic() > deadline:
                raise ChainError(f"no receipt for {tx_hash} after {timeout:.0f} s")
            time.sleep(delay)
            delay = min(2 * delay, 0.05)

    # -- time and snapshots ---------------------------------------------------------------------

    def _set_next_timestamp(self, timestamp: int) -> None:
        # As on eth-tester: an empty block at timestamp - 1, so that the latest block (what now()
        # reads and timelocks are counted from) sits right before the next transaction.
        if timestamp - 1 > self.now():
            self.rpc.call("evm_setNextBlockTimestamp", [timestamp - 1])
            self.rpc.call("evm_mine", [])
        self.rpc.call("evm_setNextBlockTimestamp", [timestamp])

    def _take_snapshot(self) -> Any:
        return self.rpc.call("evm_snapshot", [])

    def _revert_to(self, snapshot_id: Any) -> None:
        self.rpc.call("evm_revert", [snapshot_id])


def _unknown_method(exc: RpcError) -> bool:
    """Whether a node's error says that it does not have the method (codes and wording vary)."""
    text = exc.message.lower()
    return exc.code == METHOD_NOT_FOUND or any(
        words in text for words in ("not found", "does not exist", "not supported", "unsupported", "not available")
    )
