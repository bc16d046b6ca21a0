"""`EmbeddedChain`: the `Chain` backend of an in-process eth-tester (py-evm) chain.

Every transaction of the chain goes through this object (nothing else can reach it), so its own
book of decoded events is the chain's complete log. eth-tester mines each transaction as it is sent.
"""

from __future__ import annotations

from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_tester import EthereumTester
from eth_utils.address import to_checksum_address
from hexbytes import HexBytes
from web3 import EthereumTesterProvider, Web3

from market.chain.connection import Chain
from market.chain.events import DecodedEvent
from market.chain.receipts import Receipt, TxResult

#: Gas limit of every transaction on the embedded chain (enough for any deployment here).
EMBEDDED_GAS_LIMIT = 5_000_000


class EmbeddedChain(Chain):
    """A fresh eth-tester chain; it lives as long as this object."""

    backend = "eth-tester"

    def __init__(self) -> None:
        self.tester = EthereumTester()
        w3 = Web3(EthereumTesterProvider(self.tester))
        super().__init__(w3, Account.from_key(self.tester.backend.account_keys[0]))

    def head(self) -> int:
        return int(self._w3.eth.block_number)

    def balance(self, address: str) -> int:
        # Straight from eth-tester: web3's formatters cost several times the lookup itself.
        return int(self.tester.get_balance(to_checksum_address(address)))

    def logs(self, addresses: list[str], from_block: int, to_block: int) -> list[DecodedEvent]:
        """From this connection's own book (eth-tester's get_logs, which re-reads every receipt, takes seconds)."""
        wanted = {to_checksum_address(address) for address in addresses}
        return [e for e in self._receipts.events if e.address in wanted and from_block <= e.block_number <= to_block]

    def _send(self, tx: dict[str, Any], sender: LocalAccount) -> TxResult:
        signed = sender.sign_transaction(self._fill(self._prepare(tx, sender)))
        return self._send_signed(bytes(signed.raw_transaction))

    def _fill(self, tx: dict[str, Any]) -> dict[str, Any]:
        try:
            # py-evm estimates by binary search (a dozen executions); one eth_call on the pending
            # block finds a revert as surely, and the fee depends on the gas used, not the limit.
            self._w3.eth.call(tx, "pending")  # type: ignore[arg-type]
        except Exception as exc:
            raise self._as_revert(exc) from exc
        pending = self._w3.eth.get_block("pending")
        tx["gas"] = min(EMBEDDED_GAS_LIMIT, int(pending["gasLimit"]))
        tx["nonce"] = self._w3.eth.get_transaction_count(tx["from"], "pending")
        self._set_fees(tx, pending.get("baseFeePerGas", 0))
        return tx

    def _send_signed(self, raw: bytes) -> TxResult:
        try:
            tx_hash = self._w3.eth.send_raw_transaction(raw)
        except Exception as exc:
            raise self._as_revert(exc) from exc
        receipt = self._w3.eth.get_transaction_receipt(tx_hash)  # eth-tester mines on send
        return self._record(
            Receipt(
                HexBytes(tx_hash).to_0x_hex(),
                int(receipt["status"]),
                int(receipt["blockNumber"]),
                int(receipt["gasUsed"]),
                int(receipt["effectiveGasPrice"]),
                list(receipt["logs"]),
                receipt.get("contractAddress"),
            )
        )

    def _set_next_timestamp(self, timestamp: int) -> None:
        # eth-tester estimates gas in a block stamped latest + 1, but mines into its pending header.
        # Its backend's time_travel mines an empty block at timestamp - 1 so that both agree. We call
        # the backend directly: EthereumTester.time_travel validates against the pending header, which
        # after a snapshot revert comes from the wall clock and can lie ahead of the chain, refusing a
        # valid forward move.
        backend = self.tester.backend
        if timestamp - 1 > self.now():
            backend.time_travel(timestamp)
        # The new pending header may again take the wall clock; pin it to the target.
        backend.chain.header = backend.chain.header.copy(timestamp=timestamp)

    def _hold_time(self, held: bool) -> None:
        # eth-tester stamps each block from the wall clock unless a timestamp was set: nothing to hold.
        return None

    def _take_snapshot(self) -> Any:
        return self.tester.take_snapshot()

    def _revert_to(self, snapshot_id: Any) -> None:
        self.tester.revert_to_snapshot(snapshot_id)
