"""One connection to an EVM chain: the embedded eth-tester chain or any JSON-RPC node.

Every transaction is signed locally by an `eth_account` key and sent raw, so the same code runs on
eth-tester, anvil and a remote node. A revert surfaces as `ContractRevert` naming the custom error,
on both backends; events in receipts come back decoded.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import requests
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_tester import EthereumTester
from eth_utils import to_checksum_address
from hexbytes import HexBytes
from web3 import EthereumTesterProvider, HTTPProvider, Web3
from web3.contract import Contract
from web3.contract.contract import ContractConstructor, ContractFunction
from web3.types import RPCEndpoint

from market.chain.artifacts import Artifact, all_abis
from market.chain.errors import (
    ChainError,
    ErrorDecoder,
    RpcUnreachableError,
    TransactionRevertedError,
    revert_data,
)
from market.chain.events import DecodedEvent, EventDecoder
from market.chain.rpc import METHOD_NOT_FOUND, JsonRpcClient, RpcError
from market.chain.transactions import sign_dynamic_fee

#: The first development account of anvil's default mnemonic ("test test ... junk"); it is funded
#: with 10,000 ether on every fresh anvil node. Public knowledge: never use it on a real network.
ANVIL_DEV_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"

#: Headroom over eth_estimateGas: refunds and the 63/64 rule make estimates a little tight.
GAS_MARGIN = 1.2

#: Gas limit of every transaction on the embedded chain (enough for any deployment here).
EMBEDDED_GAS_LIMIT = 5_000_000

#: Priority fee (tip) of every transaction; the fee cap is twice the base fee plus this.
PRIORITY_FEE_WEI = 10**9

#: Error code of `eth_sendRawTransactionSync` when the node took the transaction but did not mine it
#: within its wait (EIP-7966).
SYNC_SEND_TIMEOUT = 4

Backend = Literal["eth-tester", "rpc"]


@dataclass(frozen=True)
class TxResult:
    """A mined, successful transaction."""

    tx_hash: str
    block_number: int
    gas_used: int
    fee_wei: int
    events: list[DecodedEvent] = field(default_factory=list)
    contract_address: str | None = None

    def event(self, name: str) -> DecodedEvent:
        """The only event called `name` in this receipt."""
        matches = [e for e in self.events if e.name == name]
        if len(matches) != 1:
            raise LookupError(f"expected one {name} event, found {len(matches)}")
        return matches[0]


class Chain:
    """A connection with a funded deployer, local signing, error decoding and time control."""

    def __init__(
        self, w3: Web3, backend: Backend, funder: LocalAccount, tester: EthereumTester | None = None,
        rpc: JsonRpcClient | None = None,
    ) -> None:
        self.w3 = w3
        self.backend = backend
        #: The lean client that sends transactions and reads logs on a node (None on eth-tester).
        self.rpc = rpc
        self._sync_send = True
        self.funder = funder
        self.tester = tester
        self.chain_id: int = w3.eth.chain_id
        self.errors = ErrorDecoder(all_abis())
        self.fees_paid_wei = 0
        #: Highest block of a receipt this connection has seen (0 before its first transaction).
        self.last_block = 0
        self.accounts: list[LocalAccount] = [funder]
        #: Addresses of every contract deployed through this connection (for balance accounting).
        self.deployed: list[str] = []
        self._event_decoder = EventDecoder(w3.codec)
        self._account_counter = 0
        # Two connections to one node (a test fixture and a simulation, say) must not derive the
        # same keys: an account that already holds ether would break the conservation check.
        self._salt = secrets.token_hex(8)
        self._books: dict[Any, tuple[int, int, int, int, int]] = {}
        #: Every decoded event of the transactions sent through this connection, in order.
        self._event_log: list[DecodedEvent] = []

    # -- construction ---------------------------------------------------------------------------

    @classmethod
    def embedded(cls) -> Chain:
        """A fresh in-process eth-tester (py-evm) chain; it lives as long as this object."""
        tester = EthereumTester()
        w3 = Web3(EthereumTesterProvider(tester))
        funder = Account.from_key(tester.backend.account_keys[0])
        return cls(w3, "eth-tester", funder, tester)

    @classmethod
    def connect(cls, url: str, private_key: str | None = None, timeout: float = 10.0) -> Chain:
        """Connect to a JSON-RPC node; `private_key` funds and deploys (default: anvil's dev key)."""
        rpc = JsonRpcClient(url, timeout=timeout)
        try:
            rpc.call("eth_chainId", [])  # the cheapest call that proves a node answers
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
        provider = HTTPProvider(url, request_kwargs={"timeout": timeout}, session=session,
                                cache_allowed_requests=True, cacheable_requests={RPCEndpoint("eth_chainId")})
        w3 = Web3(provider)
        return cls(w3, "rpc", Account.from_key(private_key or ANVIL_DEV_KEY), rpc=rpc)

    # -- accounts and balances ------------------------------------------------------------------

    def new_account(self, funds_wei: int = 0, label: str = "account") -> LocalAccount:
        """A fresh key (unique to this connection), funded by the funder."""
        self._account_counter += 1
        seed = f"aigc-market/{self.chain_id}/{self._salt}/{label}/{self._account_counter}".encode()
        account: LocalAccount = Account.from_key(hashlib.sha256(seed).digest())
        self.accounts.append(account)
        if funds_wei:
            self.send_ether(self.funder, account.address, funds_wei)
        return account

    def head(self) -> int:
        """Number of the latest block (on a node, eth_blockNumber sent to the provider as it is)."""
        if self.rpc is None:
            return int(self.w3.eth.block_number)
        return int(self.rpc.call("eth_blockNumber", []), 16)

    def nonce(self, address: str) -> int:
        """The nonce of `address`'s next transaction (pending transactions counted)."""
        return int(self.w3.eth.get_transaction_count(address, "pending"))  # type: ignore[arg-type]

    def balance(self, address: str) -> int:
        return self.w3.eth.get_balance(to_checksum_address(address))

    def send_ether(self, sender: LocalAccount, to: str, amount_wei: int) -> TxResult:
        return self._send({"to": to_checksum_address(to), "value": amount_wei}, sender)

    # -- contracts ------------------------------------------------------------------------------

    def contract(self, artifact: Artifact, address: str) -> Contract:
        """A web3 contract object at `address`, whose events this chain will decode."""
        address = to_checksum_address(address)
        self._event_decoder.register(address, artifact.contract_name, artifact.abi)
        return self.w3.eth.contract(address=address, abi=artifact.abi)

    def deploy(self, artifact: Artifact, sender: LocalAccount, *args: Any) -> tuple[Contract, TxResult]:
        """Deploy `artifact` with constructor `args`; returns the contract and the receipt."""
        factory = self.w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
        result = self.transact(factory.constructor(*args), sender)
        if result.contract_address is None:
            raise ChainError(f"deployment of {artifact.contract_name} returned no address")
        self.deployed.append(result.contract_address)
        return self.contract(artifact, result.contract_address), result

    def call(self, fn: ContractFunction) -> Any:
        """Run a view function, translating a revert into `ContractRevert`."""
        try:
            return fn.call()
        except Exception as exc:  # web3 and eth-tester raise many types; the data decides
            raise self._as_revert(exc) from exc

    def transact(self, fn: ContractFunction | ContractConstructor, sender: LocalAccount, value: int = 0) -> TxResult:
        """Sign and send a contract call (or constructor) from `sender`, with `value` wei."""
        # Every field web3 would fill from the node is given (placeholders): only the calldata is wanted
        # here, and _send asks the node for the real gas, fees and nonce once.
        tx = fn.build_transaction({"from": sender.address, "value": value, "gas": 1, "chainId": self.chain_id,
                                   "maxFeePerGas": 1, "maxPriorityFeePerGas": 1, "nonce": 0})
        return self._send({k: tx[k] for k in ("data", "to") if k in tx} | {"value": value}, sender)

    def send_call(self, to: str, data: str, sender: LocalAccount, value: int = 0) -> TxResult:
        """Sign and send a call of the contract at `to` with ready calldata (see `calldata`), with `value` wei."""
        return self._send({"to": to, "data": data, "value": value}, sender)

    def _send(self, tx: dict[str, Any], sender: LocalAccount) -> TxResult:
        tx = dict(tx, **{"from": sender.address, "chainId": self.chain_id})
        if self.rpc is not None:
            return self._send_to_node(tx, sender, self.rpc)
        try:
            # py-evm estimates by binary search (a dozen executions); one eth_call on the pending
            # block finds a revert as surely, and the fee depends on the gas used, not the limit.
            self.w3.eth.call(tx, "pending")  # type: ignore[arg-type]
        except Exception as exc:
            raise self._as_revert(exc) from exc
        pending = self.w3.eth.get_block("pending")
        tx["gas"] = min(EMBEDDED_GAS_LIMIT, int(pending["gasLimit"]))
        tx["nonce"] = self.w3.eth.get_transaction_count(sender.address, "pending")
        base_fee = pending.get("baseFeePerGas", 0)
        tx["maxPriorityFeePerGas"] = PRIORITY_FEE_WEI
        tx["maxFeePerGas"] = 2 * base_fee + PRIORITY_FEE_WEI
        signed = sender.sign_transaction(tx)
        try:
            tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        except Exception as exc:
            raise self._as_revert(exc) from exc
        receipt = self.w3.eth.get_transaction_receipt(tx_hash)  # eth-tester mines on send
        return self._record(HexBytes(tx_hash).to_0x_hex(), int(receipt["status"]), int(receipt["blockNumber"]),
                            int(receipt["gasUsed"]), int(receipt["effectiveGasPrice"]), receipt["logs"],
                            receipt.get("contractAddress"))

    def _send_to_node(self, tx: dict[str, Any], sender: LocalAccount, rpc: JsonRpcClient) -> TxResult:
        """Estimate, read the pending block and the nonce (one batched request), sign, send, take the receipt."""
        call = {"from": sender.address, "value": hex(tx.get("value", 0))}
        if tx.get("to"):
            call["to"] = tx["to"]
        if tx.get("data"):
            call["data"] = tx["data"]
        estimate, pending, nonce = rpc.batch([("eth_estimateGas", [call, "pending"]),
                                              ("eth_getBlockByNumber", ["pending", False]),
                                              ("eth_getTransactionCount", [sender.address, "pending"])])
        if isinstance(estimate, Exception):
            raise self._as_revert(estimate) from estimate
        for answer in (pending, nonce):
            if isinstance(answer, Exception):
                raise answer
        tx["gas"] = min(int(int(estimate, 16) * GAS_MARGIN), int(pending["gasLimit"], 16))
        tx["nonce"] = int(nonce, 16)
        base_fee = int(pending.get("baseFeePerGas") or "0x0", 16)
        tx["maxPriorityFeePerGas"] = PRIORITY_FEE_WEI
        tx["maxFeePerGas"] = 2 * base_fee + PRIORITY_FEE_WEI
        signed = sign_dynamic_fee(sender, tx)
        tx_hash = "0x" + signed.hash.hex()
        receipt = self._submit(rpc, "0x" + signed.raw.hex(), tx_hash)
        contract_address = receipt.get("contractAddress")
        return self._record(tx_hash, int(receipt["status"], 16), int(receipt["blockNumber"], 16),
                            int(receipt["gasUsed"], 16), int(receipt["effectiveGasPrice"], 16), receipt["logs"],
                            to_checksum_address(contract_address) if contract_address else None)

    def _submit(self, rpc: JsonRpcClient, raw: str, tx_hash: str) -> dict[str, Any]:
        """Send a signed transaction and return its receipt as the node wrote it.

        `eth_sendRawTransactionSync` (EIP-7966: anvil answers it) returns the receipt in the reply,
        which saves the polling; a node that does not know it gets the plain send and the poll from
        then on. If the connection fails during a send, whether the node took the transaction is
        unknown: `_resend_if_lost` asks for it by hash before sending it again.
        """
        if self._sync_send:
            try:
                return dict(rpc.call("eth_sendRawTransactionSync", [raw], retry=False))
            except RpcUnreachableError:
                return self._resend_if_lost(rpc, raw, tx_hash)
            except RpcError as exc:
                if exc.code == SYNC_SEND_TIMEOUT:  # taken, not yet mined within the node's wait
                    return self._wait_for_receipt(rpc, tx_hash)
                if not _unknown_method(exc):
                    raise self._as_revert(exc) from exc
                self._sync_send = False
        try:
            rpc.call("eth_sendRawTransaction", [raw], retry=False)
        except RpcUnreachableError:
            return self._resend_if_lost(rpc, raw, tx_hash)
        except RpcError as exc:
            raise self._as_revert(exc) from exc
        return self._wait_for_receipt(rpc, tx_hash)

    def _resend_if_lost(self, rpc: JsonRpcClient, raw: str, tx_hash: str) -> dict[str, Any]:
        """The receipt of a transaction whose send lost its connection: sent again only if the node does not have it.

        A signed transaction is its own idempotency key: its hash names it and its nonce lets it run at
        most once, so sending it twice cannot pay twice. If the node cannot be reached at all,
        `RpcUnreachableError` propagates and the caller must treat the transaction as maybe sent.
        """
        if rpc.call("eth_getTransactionByHash", [tx_hash]) is None:
            try:
                rpc.call("eth_sendRawTransaction", [raw], retry=False)
            except RpcError as exc:
                if rpc.call("eth_getTransactionByHash", [tx_hash]) is None:  # not a late arrival of the first
                    raise self._as_revert(exc) from exc
        return self._wait_for_receipt(rpc, tx_hash)

    def _record(self, tx_hash: str, status: int, block_number: int, gas_used: int, gas_price: int,
                logs: list[Any], contract_address: str | None) -> TxResult:
        """Book a mined transaction's fee and events; a failed one raises after its fee is booked."""
        fee = gas_used * gas_price
        self.fees_paid_wei += fee
        self.last_block = max(self.last_block, block_number)
        if status != 1:
            raise TransactionRevertedError(f"transaction {tx_hash} reverted on chain")
        events = self._decode_logs(logs)
        self._event_log.extend(events)
        return TxResult(tx_hash=tx_hash, block_number=block_number, gas_used=gas_used, fee_wei=fee, events=events,
                        contract_address=contract_address)

    def _wait_for_receipt(self, rpc: JsonRpcClient, tx_hash: str, timeout: float = 60.0) -> dict[str, Any]:
        """The receipt of `tx_hash`, polled with a backoff from half a millisecond up to 50 ms.

        A local node mines within a few milliseconds, but not always before it answers the send
        (anvil mines asynchronously once its chain has a few hundred blocks): a fixed 5 ms poll made
        the wait most of a transaction's time, and web3's default 0.1 s twenty times that.
        """
        deadline = time.monotonic() + timeout
        delay = 0.0005
        while True:
            receipt = rpc.call("eth_getTransactionReceipt", [tx_hash])
            if receipt:
                return dict(receipt)
            if time.monotonic() > deadline:
                raise ChainError(f"no receipt for {tx_hash} after {timeout:.0f} s")
            time.sleep(delay)
            delay = min(2 * delay, 0.05)

    def logs(self, addresses: list[str], from_block: int, to_block: int) -> list[DecodedEvent]:
        """The decoded events of the contracts at `addresses` in blocks [from_block, to_block], in chain order.

        On the embedded chain every transaction goes through this object, so its own log is complete
        (and eth-tester's get_logs, which re-reads every receipt, takes seconds). On a node, one
        eth_getLogs, which also sees other clients' transactions, through the lean client: web3's
        result formatters would rebuild every log only for the decoder to take it apart again.
        """
        if self.rpc is None:
            wanted = {to_checksum_address(address) for address in addresses}
            return [e for e in self._event_log if e.address in wanted and from_block <= e.block_number <= to_block]
        logs = self.rpc.call("eth_getLogs", [{
            "fromBlock": hex(from_block), "toBlock": hex(to_block), "address": [a.lower() for a in addresses]}])
        return sorted(self._decode_logs(list(logs)), key=lambda e: (e.block_number, e.log_index))

    def events(self, contract: Contract, name: str, from_block: int = 0) -> list[DecodedEvent]:
        """Events `name` of `contract` since `from_block` (see `logs`)."""
        return [e for e in self.logs([str(contract.address)], from_block, self.head()) if e.name == name]

    def _as_revert(self, exc: BaseException) -> ChainError:
        data = revert_data(exc)
        if data:
            decoded = self.errors.decode(data)
            if decoded is not None:
                return decoded
            return TransactionRevertedError(f"reverted with unknown error data 0x{data.hex()}")
        if isinstance(exc, RpcError):  # refused without revert data: insufficient funds, a stale nonce...
            return TransactionRevertedError(f"the node refused {exc}")
        if isinstance(exc, ChainError):
            return exc
        return TransactionRevertedError(f"{exc.__class__.__name__}: {exc}")

    def _decode_logs(self, logs: list[Any]) -> list[DecodedEvent]:
        return self._event_decoder.decode_all(logs)

    @property
    def _node(self) -> JsonRpcClient:
        if self.rpc is None:
            raise ChainError("this call needs a JSON-RPC node, not the embedded chain")
        return self.rpc

    # -- time and snapshots ---------------------------------------------------------------------

    def now(self) -> int:
        """Timestamp of the latest block."""
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def set_next_block_timestamp(self, timestamp: int) -> None:
        """Make the next transaction run in a block stamped exactly `timestamp` (never backwards).

        anvil accepts the latest block's own timestamp (two blocks in the same second); py-evm
        requires a later one.
        """
        if timestamp < self.now():
            raise ValueError(f"time only moves forward: {timestamp} is before the latest block {self.now()}")
        if self.tester is not None:
            # eth-tester estimates gas in a block stamped latest + 1, but mines into its pending
            # header. Its backend's time_travel mines an empty block at timestamp - 1 so that both
            # agree. We call the backend directly: EthereumTester.time_travel validates against the
            # pending header, which after a snapshot revert comes from the wall clock and can lie
            # ahead of the chain, refusing a valid forward move.
            backend = self.tester.backend
            if timestamp - 1 > self.now():
                backend.time_travel(timestamp)
            # The new pending header may again take the wall clock; pin it to the target.
            backend.chain.header = backend.chain.header.copy(timestamp=timestamp)
        else:
            # As on eth-tester: an empty block at timestamp - 1, so that the latest block (what
            # now() reads and timelocks are counted from) sits right before the next transaction.
            if timestamp - 1 > self.now():
                self._node.call("evm_setNextBlockTimestamp", [timestamp - 1])
                self._node.call("evm_mine", [])
            self._node.call("evm_setNextBlockTimestamp", [timestamp])

    def advance_time(self, seconds: int) -> int:
        """Move chain time forward: the next transaction runs `seconds` after the latest block.

        Counted from the latest block (not wall-clock time), which stays right after a snapshot
        revert. Returns the next block's timestamp.
        """
        if seconds < 1:
            raise ValueError("time only moves forward: seconds must be >= 1")
        target = self.now() + seconds
        self.set_next_block_timestamp(target)
        return target

    def snapshot(self) -> Any:
        """Take a chain snapshot; `revert` returns the chain and this object's books to it."""
        if self.tester is not None:
            snapshot_id = self.tester.take_snapshot()
        else:
            snapshot_id = self._node.call("evm_snapshot", [])
        self._books[snapshot_id] = (self.fees_paid_wei, len(self.accounts), len(self.deployed), len(self._event_log),
                                    self.last_block)
        return snapshot_id

    def revert(self, snapshot_id: Any) -> None:
        """Revert to `snapshot_id`: fees paid, accounts and deployments made since are undone too."""
        if self.tester is not None:
            self.tester.revert_to_snapshot(snapshot_id)
        else:
            self._node.call("evm_revert", [snapshot_id])
        fees, accounts, deployed, events, self.last_block = self._books.pop(snapshot_id)
        self.fees_paid_wei = fees
        del self.accounts[accounts:]
        del self.deployed[deployed:]
        del self._event_log[events:]


def _unknown_method(exc: RpcError) -> bool:
    """Whether a node's error says that it does not have the method (codes and wording vary)."""
    text = exc.message.lower()
    return exc.code == METHOD_NOT_FOUND or any(
        words in text for words in ("not found", "does not exist", "not supported", "unsupported", "not available"))
