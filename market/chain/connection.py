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
from web3.exceptions import TransactionNotFound
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

#: The first development account of anvil's default mnemonic ("test test ... junk"); it is funded
#: with 10,000 ether on every fresh anvil node. Public knowledge: never use it on a real network.
ANVIL_DEV_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"

#: Headroom over eth_estimateGas: refunds and the 63/64 rule make estimates a little tight.
GAS_MARGIN = 1.2

#: Gas limit of every transaction on the embedded chain (enough for any deployment here).
EMBEDDED_GAS_LIMIT = 5_000_000

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
        self, w3: Web3, backend: Backend, funder: LocalAccount, tester: EthereumTester | None = None
    ) -> None:
        self.w3 = w3
        self.backend = backend
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
        session = requests.Session()
        # Proxy variables do not apply to a node on this machine, and looking them up on every request
        # costs more CPU than the request itself.
        session.trust_env = False
        # A node's chain id never changes, but web3 asks for it before every call and transaction
        # (its validation middleware): cache that one answer, nothing else.
        provider = HTTPProvider(url, request_kwargs={"timeout": timeout}, session=session,
                                cache_allowed_requests=True, cacheable_requests={RPCEndpoint("eth_chainId")})
        w3 = Web3(provider)
        try:
            _ = w3.eth.chain_id  # the cheapest call that proves a node answers
        except (requests.exceptions.RequestException, OSError) as exc:
            raise RpcUnreachableError(f"no EVM JSON-RPC node answers at {url}: {exc.__class__.__name__}") from exc
        except ValueError as exc:
            raise RpcUnreachableError(f"{url} is not an EVM JSON-RPC endpoint: {exc}") from exc
        return cls(w3, "rpc", Account.from_key(private_key or ANVIL_DEV_KEY))

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
        if self.tester is not None:
            return int(self.w3.eth.block_number)
        return int(self._raw_request("eth_blockNumber", []), 16)

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

    def _send(self, tx: dict[str, Any], sender: LocalAccount) -> TxResult:
        tx = dict(tx, **{"from": sender.address, "chainId": self.chain_id})
        try:
            if self.tester is not None:
                # py-evm estimates by binary search (a dozen executions); one eth_call on the pending
                # block finds a revert as surely, and the fee depends on the gas used, not the limit.
                self.w3.eth.call(tx, "pending")  # type: ignore[arg-type]
                gas = EMBEDDED_GAS_LIMIT
            else:
                gas = int(self.w3.eth.estimate_gas(tx, "pending") * GAS_MARGIN)  # type: ignore[arg-type]
        except Exception as exc:
            raise self._as_revert(exc) from exc
        pending = self.w3.eth.get_block("pending")
        tx["gas"] = min(gas, int(pending["gasLimit"]))
        tx["nonce"] = self.w3.eth.get_transaction_count(sender.address, "pending")
        base_fee = pending.get("baseFeePerGas", 0)
        tip = 10**9
        tx["maxPriorityFeePerGas"] = tip
        tx["maxFeePerGas"] = 2 * base_fee + tip
        signed = sender.sign_transaction(tx)
        try:
            tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        except Exception as exc:
            raise self._as_revert(exc) from exc
        receipt = self._wait_for_receipt(tx_hash)
        fee = receipt["gasUsed"] * receipt["effectiveGasPrice"]
        self.fees_paid_wei += fee
        self.last_block = max(self.last_block, int(receipt["blockNumber"]))
        if receipt["status"] != 1:
            raise TransactionRevertedError(f"transaction {HexBytes(tx_hash).to_0x_hex()} reverted on chain")
        events = self._decode_logs(receipt["logs"])
        self._event_log.extend(events)
        return TxResult(
            tx_hash=HexBytes(tx_hash).to_0x_hex(),
            block_number=receipt["blockNumber"],
            gas_used=receipt["gasUsed"],
            fee_wei=fee,
            events=events,
            contract_address=receipt.get("contractAddress"),
        )

    def _wait_for_receipt(self, tx_hash: bytes, timeout: float = 60.0) -> Any:
        """The receipt of `tx_hash`, polled with a backoff from half a millisecond up to 50 ms.

        A local node mines within a few milliseconds, but not always before it answers the send
        (anvil mines asynchronously once its chain has a few hundred blocks): a fixed 5 ms poll made
        the wait most of a transaction's time, and web3's default 0.1 s twenty times that.
        """
        deadline = time.monotonic() + timeout
        delay = 0.0005
        while True:
            try:
                return self.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
            except TransactionNotFound:
                if time.monotonic() > deadline:
                    raise ChainError(f"no receipt for {HexBytes(tx_hash).to_0x_hex()} after {timeout:.0f} s") from None
                time.sleep(delay)
                delay = min(2 * delay, 0.05)

    def logs(self, addresses: list[str], from_block: int, to_block: int) -> list[DecodedEvent]:
        """The decoded events of the contracts at `addresses` in blocks [from_block, to_block], in chain order.

        On the embedded chain every transaction goes through this object, so its own log is complete
        (and eth-tester's get_logs, which re-reads every receipt, takes seconds). On a node, one
        eth_getLogs, which also sees other clients' transactions, sent to the provider as it is: web3's
        result formatters would rebuild every log only for the decoder to take it apart again.
        """
        if self.tester is not None:
            wanted = {to_checksum_address(address) for address in addresses}
            return [e for e in self._event_log if e.address in wanted and from_block <= e.block_number <= to_block]
        logs = self._raw_request("eth_getLogs", [{
            "fromBlock": hex(from_block), "toBlock": hex(to_block), "address": [a.lower() for a in addresses]}])
        return sorted(self._decode_logs(list(logs)), key=lambda e: (e.block_number, e.log_index))

    def _raw_request(self, method: str, params: list[Any]) -> Any:
        """The result of one JSON-RPC call sent to the provider as it is (no web3 formatting)."""
        reply = self.w3.provider.make_request(RPCEndpoint(method), params)
        if "error" in reply:
            raise ChainError(f"{method} failed: {reply['error']}")
        return reply["result"]

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
        if isinstance(exc, ChainError):
            return exc
        return TransactionRevertedError(f"{exc.__class__.__name__}: {exc}")

    def _decode_logs(self, logs: list[Any]) -> list[DecodedEvent]:
        return self._event_decoder.decode_all(logs)

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
                self.w3.provider.make_request("evm_setNextBlockTimestamp", [timestamp - 1])  # type: ignore[arg-type]
                self.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
            self.w3.provider.make_request("evm_setNextBlockTimestamp", [timestamp])  # type: ignore[arg-type]

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
            snapshot_id = self.w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
        self._books[snapshot_id] = (self.fees_paid_wei, len(self.accounts), len(self.deployed), len(self._event_log),
                                    self.last_block)
        return snapshot_id

    def revert(self, snapshot_id: Any) -> None:
        """Revert to `snapshot_id`: fees paid, accounts and deployments made since are undone too."""
        if self.tester is not None:
            self.tester.revert_to_snapshot(snapshot_id)
        else:
            self.w3.provider.make_request("evm_revert", [snapshot_id])  # type: ignore[arg-type]
        fees, accounts, deployed, events, self.last_block = self._books.pop(snapshot_id)
        self.fees_paid_wei = fees
        del self.accounts[accounts:]
        del self.deployed[deployed:]
        del self._event_log[events:]
