"""`RpcChain`: the `Chain` backend of a JSON-RPC node (anvil, or any EVM node).

Everything on a transaction's path (estimate, pending block, nonce, send, receipt) and the logs go
through the lean client (`rpc.py`, signing in `transactions.py`): web3's middlewares and result
formatters cost several times the request itself. web3 serves the views.

A phase of transactions (`Chain.send_many`) is pipelined: estimated, signed with per-account nonces,
sent and its receipts read in JSON-RPC batches, and mined with automine off and `evm_mine` on anvil
(or waited for on a node that mines by itself); see `_send_many` and docs/scale.md.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import requests
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import event_abi_to_log_topic, keccak
from web3 import HTTPProvider, Web3
from web3.contract import Contract
from web3.types import RPCEndpoint

from market.chain.abi_words import checksum
from market.chain.connection import Chain, Outcome
from market.chain.errors import ChainError, ContractRevert, RpcUnreachableError, TransactionRevertedError, revert_data
from market.chain.events import DecodedEvent
from market.chain.receipts import Receipt, TxResult
from market.chain.rpc import METHOD_NOT_FOUND, JsonRpcClient, RpcError
from market.chain.transactions import sign_dynamic_fee

#: Headroom over eth_estimateGas: refunds and the 63/64 rule make estimates a little tight.
GAS_MARGIN = 1.2

#: Headroom of a pipelined phase's transactions over the gas each used in its trial run. Each is tried
#: against the state before the phase; one that runs after another of the phase can cost more (a storage
#: slot that an earlier one emptied costs 20,000 gas to fill again, not 5,000). The trial's figure is the
#: gas used after refunds, which EIP-3529 caps at a fifth of it, so the limit a transaction needs is at
#: most 1.25x that. The fee is paid on the gas used, not on the limit.
PIPELINE_GAS_MARGIN = 2.0

#: Calls per JSON-RPC batch request of a pipelined phase (anvil takes far more; a remote node may not).
BATCH_SIZE = 500


#: Error code of `eth_sendRawTransactionSync` when the node took the transaction but did not mine it
#: within its wait (EIP-7966).
SYNC_SEND_TIMEOUT = 4


class RpcChain(Chain):
    """A connection to the node at `url`; `private_key` is the funder (see `Chain.connect`)."""

    backend = "rpc"

    def __init__(self, url: str, private_key: str, timeout: float = 10.0) -> None:
        #: The lean client that sends transactions and reads logs.
        self.rpc = JsonRpcClient(url, timeout=timeout)
        self.rpc_url = url
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
        self.pipelined = True
        #: Whether the node answers evm_setAutomine (None: not asked yet).
        self._automine_control: bool | None = None
        #: Whether the node answers eth_getBlockReceipts (None: not asked yet).
        self._block_receipts: bool | None = None
        #: Whether the node answers eth_createAccessList (None: not asked yet).
        self._access_lists: bool | None = None

    def head(self) -> int:
        """eth_blockNumber, sent as it is."""
        return int(self.rpc.call("eth_blockNumber", []), 16)

    def balance(self, address: str) -> int:
        return int(self.rpc.call("eth_getBalance", [checksum(address), "latest"]), 16)

    def balances(self, addresses: Sequence[str]) -> list[int]:
        """The balances of `addresses`, in order, read in JSON-RPC batches (what `balance` reads for one)."""
        answers = self._batch([("eth_getBalance", [checksum(address), "latest"]) for address in addresses])
        for answer in answers:
            if isinstance(answer, Exception):
                raise answer
        return [int(answer, 16) for answer in answers]

    def now(self) -> int:
        """The latest block's timestamp, through the lean client (the simulation asks for it often)."""
        return int(self.rpc.call("eth_getBlockByNumber", ["latest", False])["timestamp"], 16)

    def block_timestamp(self, number: int) -> int:
        """Timestamp of block `number`, through the lean client."""
        block = self.rpc.call("eth_getBlockByNumber", [hex(number), False])
        if block is None:
            raise ChainError(f"no block {number}")
        return int(block["timestamp"], 16)

    def call_raw(self, to: str, data: str, sender: str | None = None) -> bytes:
        """eth_call through the lean client (the contract wrappers' views come here); a revert raises `ContractRevert`."""
        call = {"to": checksum(to), "data": data}
        if sender is not None:
            call["from"] = checksum(sender)
        try:
            result = self.rpc.call("eth_call", [call, "latest"])
        except RpcError as exc:
            raise self._as_revert(exc) from exc
        return bytes.fromhex(str(result)[2:])

    def call_raw_many(self, calls: Sequence[tuple[str, str]]) -> list[bytes | ChainError]:
        """`call_raw` of every `(to, data)`, against the latest block, in JSON-RPC batches of `BATCH_SIZE`.

        The answers come back in order; a call that reverts comes back as its decoded revert (what
        `call_raw` would raise), not raised. Any other error of the node is raised.
        """
        answers = self._batch([("eth_call", [{"to": checksum(to), "data": data}, "latest"]) for to, data in calls])
        results: list[bytes | ChainError] = []
        for answer in answers:
            if isinstance(answer, RpcError):
                results.append(self._as_revert(answer))
            elif isinstance(answer, Exception):
                raise answer
            else:
                results.append(bytes.fromhex(str(answer)[2:]))
        return results

    def logs(self, addresses: list[str], from_block: int, to_block: int) -> list[DecodedEvent]:
        """One eth_getLogs, which also sees other clients' transactions, through the lean client: web3's
        result formatters would rebuild every log only for the decoder to take it apart again."""
        logs = self.rpc.call(
            "eth_getLogs", [{"fromBlock": hex(from_block), "toBlock": hex(to_block), "address": [a.lower() for a in addresses]}]
        )
        return sorted(self._receipts.decode(list(logs)), key=lambda e: (e.block_number, e.log_index))

    def events(self, contract: Contract, name: str, from_block: int = 0) -> list[DecodedEvent]:
        """Events `name` of `contract` since `from_block`, as `Chain.events` returns them: the node filters them
        by their topic, so that only those are sent and decoded, not every log of the contract."""
        topic = _event_topic(contract, name)
        if topic is None:  # no such event, or an overloaded name: every log of the contract, filtered here
            return super().events(contract, name, from_block)
        address = str(contract.address).lower()
        query = {"fromBlock": hex(from_block), "toBlock": hex(self.head()), "address": [address], "topics": [topic]}
        logs = self.rpc.call("eth_getLogs", [query])
        events = self._receipts.decode(list(logs))
        return sorted((e for e in events if e.name == name), key=lambda e: (e.block_number, e.log_index))

    def _as_revert(self, exc: BaseException) -> ChainError:
        if isinstance(exc, RpcError) and not revert_data(exc):  # refused: insufficient funds, a stale nonce...
            return TransactionRevertedError(f"the node refused {exc}")
        return super()._as_revert(exc)

    # -- sending --------------------------------------------------------------------------------

    def _send(self, tx: dict[str, Any], sender: LocalAccount) -> TxResult:
        """Estimate, read the pending block and the nonce (one batched request), sign, send, take the receipt."""
        signed = sign_dynamic_fee(sender, self._fill(self._prepare(tx, sender)))
        return self._send_signed(signed.raw)

    def _fill(self, tx: dict[str, Any]) -> dict[str, Any]:
        rpc = self.rpc
        estimate, pending, nonce = rpc.batch(
            [
                ("eth_estimateGas", [_call_of(tx), "pending"]),
                ("eth_getBlockByNumber", ["pending", False]),
                ("eth_getTransactionCount", [tx["from"], "pending"]),
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
        return tx

    def _send_signed(self, raw: bytes) -> TxResult:
        tx_hash = "0x" + keccak(raw).hex()
        receipt = self._submit("0x" + raw.hex(), tx_hash)
        return self._record(_receipt(tx_hash, receipt))

    def _send_many(self, txs: list[tuple[dict[str, Any], LocalAccount]]) -> list[Outcome]:
        """A phase pipelined: trial runs, pending block and nonces in batches; every transaction signed with
        its sender's next nonce; sent in batches with automine off; mined by `evm_mine` (anvil) or waited
        for; receipts read in batches and booked in the phase's order.

        Each transaction is tried once with `eth_createAccessList` (one execution; `eth_estimateGas` searches
        for the limit with several, about 4x the node's CPU), which gives its gas used and its revert; a node
        without that method gets the estimates, and so does a trial that a node answers with an `error` field
        instead of a JSON-RPC error (geth does), so that its revert comes back decoded. A transaction whose
        trial reverts is not sent, and its revert comes back decoded (as `_send` raises it); one that reverts
        on chain (it depended on another of the phase) books its fee and comes back as
        `TransactionRevertedError`, as `_send` would. One transaction goes through `_send`.
        """
        if not self.pipelined or len(txs) <= 1:
            return super()._send_many(txs)
        prepared = [self._prepare(tx, sender) for tx, sender in txs]
        senders = list(dict.fromkeys(sender.address for _, sender in txs))
        trial = "eth_estimateGas" if self._access_lists is False else "eth_createAccessList"
        answers = self._batch(
            [(trial, [_call_of(tx), "pending"]) for tx in prepared]
            + [("eth_getBlockByNumber", ["pending", False])]
            + [("eth_getTransactionCount", [address, "pending"]) for address in senders]
        )
        estimates, pending, counts = answers[: len(txs)], answers[len(txs)], answers[len(txs) + 1 :]
        if trial == "eth_createAccessList" and any(isinstance(a, RpcError) and _unknown_method(a) for a in estimates):
            self._access_lists = False  # a node without the method: the estimates, as one by one
            return self._send_many(txs)
        if trial == "eth_createAccessList":
            self._access_lists = True
            failed = [i for i, answer in enumerate(estimates) if isinstance(answer, dict) and answer.get("error")]
            if failed:
                retried = self._batch([("eth_estimateGas", [_call_of(prepared[i]), "pending"]) for i in failed])
                for index, answer in zip(failed, retried, strict=True):
                    estimates[index] = answer
        for answer in (pending, *counts):
            if isinstance(answer, Exception):
                raise answer
        nonces = {address: int(count, 16) for address, count in zip(senders, counts, strict=True)}
        gas_limit, base_fee = int(pending["gasLimit"], 16), int(pending.get("baseFeePerGas") or "0x0", 16)
        outcomes: list[Outcome | None] = [None] * len(txs)
        signed: dict[int, str] = {}  # index in the phase -> transaction hash
        raws: list[str] = []
        for index, ((_, sender), tx, estimate) in enumerate(zip(txs, prepared, estimates, strict=True)):
            if isinstance(estimate, Exception):
                revert = self._as_revert(estimate)
                if not isinstance(revert, ContractRevert | TransactionRevertedError):
                    raise revert
                outcomes[index] = revert
                continue
            used = estimate["gasUsed"] if isinstance(estimate, dict) else estimate
            tx["gas"] = min(int(int(used, 16) * PIPELINE_GAS_MARGIN), gas_limit)
            tx["nonce"] = nonces[sender.address]
            nonces[sender.address] += 1
            self._set_fees(tx, base_fee)
            transaction = sign_dynamic_fee(sender, tx)
            signed[index] = "0x" + transaction.hash.hex()
            raws.append("0x" + transaction.raw.hex())
        receipts = self._mine(raws, list(signed.values()))
        for index, tx_hash in signed.items():
            receipt = receipts[tx_hash]
            try:
                outcomes[index] = self._record(_receipt(tx_hash, receipt))
            except TransactionRevertedError as exc:
                outcomes[index] = exc
        return [outcome for outcome in outcomes if outcome is not None]

    def _batch(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        """`rpc.batch` in requests of at most `BATCH_SIZE` calls."""
        results: list[Any] = []
        for start in range(0, len(calls), BATCH_SIZE):
            results += self.rpc.batch(calls[start : start + BATCH_SIZE])
        return results

    def _mine(self, raws: list[str], hashes: list[str], timeout: float = 120.0) -> dict[str, dict[str, Any]]:
        """Send signed transactions in batches and return their receipts by hash once all are mined.

        On anvil (and any node with `evm_setAutomine`), automine is off while they are sent and each
        `evm_mine` mines a block of them (as many as its gas limit holds), so that the phase takes a few
        blocks instead of one each; elsewhere the node mines them by itself and the receipts are polled.
        """
        if not raws:
            return {}
        manual = self._set_automine(False)
        try:
            seen = self.head()
            for start in range(0, len(raws), BATCH_SIZE):
                for answer in self.rpc.batch([("eth_sendRawTransaction", [raw]) for raw in raws[start : start + BATCH_SIZE]]):
                    if isinstance(answer, Exception):
                        raise self._as_revert(answer)
            wanted = set(hashes)
            receipts: dict[str, dict[str, Any]] = {}
            deadline, delay, idle_blocks = time.monotonic() + timeout, 0.0005, 0
            while len(receipts) < len(hashes):
                if manual:
                    self.rpc.call("evm_mine", [])
                before, head = len(receipts), self.head()
                if head > seen:
                    receipts.update(self._receipts_of(range(seen + 1, head + 1), wanted - receipts.keys()))
                    seen = head
                if len(receipts) < len(hashes):
                    idle_blocks = idle_blocks + 1 if manual and len(receipts) == before else 0
                    if idle_blocks >= 3:  # blocks mined, none of ours in them: the node dropped them
                        lost = len(hashes) - len(receipts)
                        raise ChainError(f"the node dropped {lost} of {len(hashes)} transactions (could their senders pay?)")
                    if time.monotonic() > deadline:
                        lost = len(hashes) - len(receipts)
                        raise ChainError(f"{lost} of {len(hashes)} transactions not mined after {timeout:.0f} s")
                    if not manual:
                        time.sleep(delay)
                        delay = min(2 * delay, 0.05)
            return receipts
        finally:
            if manual:
                self._set_automine(True)

    def _receipts_of(self, blocks: range, wanted: set[str]) -> dict[str, dict[str, Any]]:
        """The receipts of the `wanted` transactions among those of `blocks`, by hash.

        One eth_getBlockReceipts per block: anvil answers eth_getTransactionReceipt in time that grows
        with its block's size, so a block of thousands read one receipt at a time takes seconds. A node
        without that method is asked for each wanted receipt.
        """
        found: dict[str, dict[str, Any]] = {}
        if self._block_receipts is not False:
            answers = self._batch([("eth_getBlockReceipts", [hex(number)]) for number in blocks])
            if not any(isinstance(a, RpcError) and _unknown_method(a) for a in answers):
                self._block_receipts = True
                for answer in answers:
                    if isinstance(answer, Exception):
                        raise answer
                    for receipt in answer or []:
                        if receipt["transactionHash"] in wanted:
                            found[receipt["transactionHash"]] = receipt
                return found
            self._block_receipts = False
        missing = sorted(wanted)
        for tx_hash, receipt in zip(missing, self._batch([("eth_getTransactionReceipt", [h]) for h in missing]), strict=True):
            if isinstance(receipt, dict):
                found[tx_hash] = receipt
        return found

    def _set_automine(self, on: bool) -> bool:
        """Turn the node's automine on or off; False if it has no such control (it mines by itself)."""
        if self._automine_control is False:
            return False
        try:
            self.rpc.call("evm_setAutomine", [on])
        except RpcError as exc:
            if not _unknown_method(exc):
                raise
            self._automine_control = False
            return False
        self._automine_control = True
        return True

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

    def _hold_time(self, held: bool) -> None:
        # anvil: an interval of 0 s between blocks; removing it returns the node to its clock.
        try:
            if held:
                self.rpc.call("anvil_setBlockTimestampInterval", [0])
            else:
                self.rpc.call("anvil_removeBlockTimestampInterval", [])
        except RpcError as exc:
            if not _unknown_method(exc):
                raise

    def _take_snapshot(self) -> Any:
        return self.rpc.call("evm_snapshot", [])

    def _revert_to(self, snapshot_id: Any) -> None:
        self.rpc.call("evm_revert", [snapshot_id])


def _event_topic(contract: Contract, name: str) -> str | None:
    """The topic (0x-hex) of `contract`'s one non-anonymous event called `name`; None if it has none or several."""
    entries = [e for e in contract.abi if e.get("type") == "event" and e.get("name") == name]
    if len(entries) != 1 or entries[0].get("anonymous"):
        return None
    return "0x" + event_abi_to_log_topic(entries[0]).hex()  # type: ignore[arg-type]  # web3's TypedDict is a dict


def _call_of(tx: dict[str, Any]) -> dict[str, Any]:
    """The eth_call / eth_estimateGas object of a prepared transaction."""
    call = {"from": tx["from"], "value": hex(tx.get("value", 0))}
    if tx.get("to"):
        call["to"] = tx["to"]
    if tx.get("data"):
        call["data"] = tx["data"]
    return call


def _receipt(tx_hash: str, receipt: dict[str, Any]) -> Receipt:
    """A receipt as the node wrote it (hex strings), parsed."""
    contract_address = receipt.get("contractAddress")
    return Receipt(
        tx_hash,
        int(receipt["status"], 16),
        int(receipt["blockNumber"], 16),
        int(receipt["gasUsed"], 16),
        int(receipt["effectiveGasPrice"], 16),
        receipt["logs"],
        checksum(contract_address) if contract_address else None,
    )


def _unknown_method(exc: RpcError) -> bool:
    """Whether a node's error says that it does not have the method (codes and wording vary)."""
    text = exc.message.lower()
    return exc.code == METHOD_NOT_FOUND or any(
        words in text for words in ("not found", "does not exist", "not supported", "unsupported", "not available")
    )
