"""`Chain`: one connection to an EVM chain, whatever the backend (in the manner of ape's provider API).

Every caller talks to a `Chain`; two backends implement it, each in its own module:

- `EmbeddedChain` (`market/chain/embedded.py`): an in-process eth-tester (py-evm) chain;
- `RpcChain` (`market/chain/node.py`): any JSON-RPC node (anvil, a remote node), through the lean
  client of `rpc.py` and `transactions.py` for everything on a transaction's path.

`Chain.embedded()` and `Chain.connect(url)` build them. Every transaction is signed locally by an
`eth_account` key and sent raw, so the same code runs on eth-tester, anvil and a remote node. A
revert surfaces as `ContractRevert` naming the custom error, on both backends; events in receipts
come back decoded. What both backends share lives here (accounts, contracts and views, time steps,
snapshots of the books) and in `receipts.py` (fees, blocks and events of receipts); a backend
supplies only sending, reading the head, balances and logs, moving time and snapshots.

`send_many` sends a phase's transactions together: one by one here and on eth-tester, and pipelined
on a JSON-RPC node (signed with per-account nonces, sent in batches, mined in blocks, receipts read
in batches: `RpcChain._send_many`, docs/scale.md), with each result the same either way.
"""

from __future__ import annotations

import hashlib
import secrets
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractConstructor, ContractFunction
from web3.types import Nonce, TxParams, Wei

from market.chain.artifacts import Artifact, all_abis
from market.chain.errors import ChainError, ContractRevert, ErrorDecoder, TransactionRevertedError, revert_data
from market.chain.events import DecodedEvent, EventDecoder
from market.chain.receipts import BookMark, Receipt, ReceiptBook, TxResult
from market.terms import ETHER

__all__ = ["ANVIL_DEV_KEY", "PRIORITY_FEE_WEI", "Backend", "Call", "Chain", "Outcome", "TxResult"]

#: The first development account of anvil's default mnemonic ("test test ... junk"); it is funded
#: with 10,000 ether on every fresh anvil node. Public knowledge: never use it on a real network.
ANVIL_DEV_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"

#: Priority fee (tip) of every transaction; the fee cap is twice the base fee plus this.
PRIORITY_FEE_WEI = 10**9

Backend = Literal["eth-tester", "rpc"]


@dataclass(frozen=True)
class Call:
    """A transaction to send: the contract (or account) `to`, its calldata (0x-hex) and `value` wei."""

    to: str
    data: str = "0x"
    value: int = 0


Outcome = TxResult | ContractRevert | TransactionRevertedError
"""What one transaction of `Chain.send_many` came to: its receipt, or its revert (decoded when it can be)."""


class Chain(ABC):
    """A connection with a funded deployer, local signing, error decoding and time control.

    The public methods below are the whole interface callers may use; the abstract ones are what a
    backend implements.
    """

    #: Which backend this is ("eth-tester" or "rpc"), for reports.
    backend: ClassVar[Backend]
    #: Whether `send_many` sends a phase's transactions together (JSON-RPC nodes) or one by one.
    pipelined: bool = False
    #: The JSON-RPC endpoint of a node's chain (None: an in-process chain that nothing else can reach).
    rpc_url: str | None = None

    def __init__(self, w3: Web3, funder: LocalAccount) -> None:
        #: web3 serves the views (contract calls, blocks, code) and builds contract calldata.
        self._w3 = w3
        self.funder = funder
        self.chain_id: int = w3.eth.chain_id
        self.errors = ErrorDecoder(all_abis())
        self.accounts: list[LocalAccount] = [funder]
        #: Addresses of every contract deployed through this connection (for balance accounting).
        self.deployed: list[str] = []
        self._receipts = ReceiptBook(EventDecoder(w3.codec))
        self._account_counter = 0
        # Two connections to one node (a test fixture and a simulation, say) must not derive the
        # same keys: an account that already holds ether would break the conservation check.
        self._salt = secrets.token_hex(8)
        self._books: dict[Any, tuple[BookMark, int, int]] = {}

    # -- construction ---------------------------------------------------------------------------

    @staticmethod
    def embedded() -> Chain:
        """A fresh in-process eth-tester (py-evm) chain; it lives as long as this object."""
        from market.chain.embedded import EmbeddedChain

        return EmbeddedChain()

    @staticmethod
    def connect(url: str, private_key: str | None = None, timeout: float = 10.0, pipelined: bool = True) -> Chain:
        """Connect to a JSON-RPC node; `private_key` funds and deploys (default: anvil's dev key).

        With `pipelined` (the default), `send_many` sends a phase's transactions together; without, one by one.
        """
        from market.chain.node import RpcChain

        chain = RpcChain(url, private_key or ANVIL_DEV_KEY, timeout)
        chain.pipelined = pipelined
        return chain

    # -- what a backend implements --------------------------------------------------------------

    @abstractmethod
    def head(self) -> int:
        """Number of the latest block."""

    @abstractmethod
    def balance(self, address: str) -> int:
        """Wei held by `address` at the latest block."""

    @abstractmethod
    def logs(self, addresses: list[str], from_block: int, to_block: int) -> list[DecodedEvent]:
        """The decoded events of the contracts at `addresses` in blocks [from_block, to_block], in chain order."""

    @abstractmethod
    def _send(self, tx: dict[str, Any], sender: LocalAccount) -> TxResult:
        """Fill in gas, fees and nonce, sign `tx` (to, data, value, from, chainId) with `sender`, send it and
        record its receipt (`_record`); a revert raises `ContractRevert` (see `_as_revert`)."""

    @abstractmethod
    def _fill(self, tx: dict[str, Any]) -> dict[str, Any]:
        """Fill in gas, fees and nonce of `tx` (to, data, value, from, chainId) from the node; a transaction that
        would revert raises its `ContractRevert` instead."""

    @abstractmethod
    def _send_signed(self, raw: bytes) -> TxResult:
        """Send a signed transaction and record its receipt (`_record`)."""

    def _send_many(self, txs: list[tuple[dict[str, Any], LocalAccount]]) -> list[Outcome]:
        """Send `txs` in order, each as `_send` would; a backend that can do better overrides this."""
        outcomes: list[Outcome] = []
        for tx, sender in txs:
            try:
                outcomes.append(self._send(tx, sender))
            except (ContractRevert, TransactionRevertedError) as exc:
                outcomes.append(exc)
        return outcomes

    @abstractmethod
    def _set_next_timestamp(self, timestamp: int) -> None:
        """Stamp the next block `timestamp` (not before the latest block: checked by the caller)."""

    @abstractmethod
    def _take_snapshot(self) -> Any:
        """Snapshot the chain; returns the id that `_revert_to` takes."""

    @abstractmethod
    def _revert_to(self, snapshot_id: Any) -> None:
        """Return the chain to the snapshot `snapshot_id`."""

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

    def fund(self, payments: list[tuple[str, int]]) -> None:
        """Send each (address, wei) from the funder, all in one phase (`send_many`); raise if one fails."""
        calls = [(Call(to_checksum_address(address), value=amount), self.funder) for address, amount in payments if amount]
        needed, held = sum(call.value for call, _ in calls), self.balance(self.funder.address)
        if needed > held:
            raise ChainError(f"the funder {self.funder.address} holds {held / ETHER:g} ether; {needed / ETHER:g} are needed")
        for outcome in self.send_many(calls):
            if not isinstance(outcome, TxResult):
                raise outcome

    def balances(self, addresses: Sequence[str]) -> list[int]:
        """Wei held by each of `addresses` at the latest block (a node backend asks in JSON-RPC batches)."""
        return [self.balance(address) for address in addresses]

    def nonce(self, address: str) -> int:
        """The nonce of `address`'s next transaction (pending transactions counted)."""
        return int(self._w3.eth.get_transaction_count(address, "pending"))  # type: ignore[arg-type]

    def code(self, address: str) -> bytes:
        """The runtime code at `address` (empty where no contract lives)."""
        return bytes(self._w3.eth.get_code(to_checksum_address(address)))

    def send_ether(self, sender: LocalAccount, to: str, amount_wei: int) -> TxResult:
        return self._send({"to": to_checksum_address(to), "value": amount_wei}, sender)

    @property
    def fees_paid_wei(self) -> int:
        """Wei paid in fees by every transaction sent through this connection (since its last revert)."""
        return self._receipts.fees_paid_wei

    @property
    def last_block(self) -> int:
        """Highest block of a receipt this connection has seen (0 before its first transaction)."""
        return self._receipts.last_block

    # -- contracts ------------------------------------------------------------------------------

    def contract(self, artifact: Artifact, address: str) -> Contract:
        """A web3 contract object at `address`, whose events this chain will decode."""
        address = to_checksum_address(address)
        self._receipts.decoder.register(address, artifact.contract_name, artifact.abi)
        return self._w3.eth.contract(address=address, abi=artifact.abi)

    def deploy(self, artifact: Artifact, sender: LocalAccount, *args: Any) -> tuple[Contract, TxResult]:
        """Deploy `artifact` with constructor `args`; returns the contract and the receipt."""
        factory = self._w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
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

    def call_raw(self, to: str, data: str, sender: str | None = None) -> bytes:
        """eth_call of the contract at `to` with ready calldata (0x-hex), from `sender`: the returned bytes.

        The exact check a mined transaction would run, without sending one; a revert raises `ContractRevert`.
        """
        call: dict[str, Any] = {"to": to_checksum_address(to), "data": data}
        if sender is not None:
            call["from"] = to_checksum_address(sender)
        try:
            return bytes(self._w3.eth.call(call))  # type: ignore[arg-type]
        except Exception as exc:
            raise self._as_revert(exc) from exc

    def transact(self, fn: ContractFunction | ContractConstructor, sender: LocalAccount, value: int = 0) -> TxResult:
        """Sign and send a contract call (or constructor) from `sender`, with `value` wei."""
        # Every field web3 would fill from the node is given (placeholders): only the calldata is wanted
        # here, and _send asks the node for the real gas, fees and nonce once.
        params: TxParams = {
            "from": sender.address,
            "value": Wei(value),
            "gas": 1,
            "chainId": self.chain_id,
            "maxFeePerGas": Wei(1),
            "maxPriorityFeePerGas": Wei(1),
            "nonce": Nonce(0),
        }
        tx: dict[str, Any] = dict(fn.build_transaction(params))
        return self._send({k: tx[k] for k in ("data", "to") if k in tx} | {"value": value}, sender)

    def send_call(self, to: str, data: str, sender: LocalAccount, value: int = 0) -> TxResult:
        """Sign and send a call of the contract at `to` with ready calldata (see `calldata`), with `value` wei."""
        return self._send({"to": to, "data": data, "value": value}, sender)

    def unsigned_transaction(self, call: Call, sender: str) -> dict[str, Any]:
        """The EIP-1559 transaction of `call` from `sender`, ready to sign by a key this process never sees: chain id,
        nonce (the sender's next, pending block), gas (estimated), fees, to, value, data. A call that would revert
        raises its `ContractRevert` here, before anyone signs it."""
        tx = {"to": to_checksum_address(call.to), "data": call.data, "value": call.value}
        return self._fill(dict(tx, **{"from": to_checksum_address(sender), "chainId": self.chain_id}))

    def send_raw(self, raw: bytes) -> TxResult:
        """Send a transaction that its sender signed elsewhere (`unsigned_transaction`), and book it as any other.

        A transaction that reverts on chain raises `TransactionRevertedError` after its fee is booked."""
        return self._send_signed(raw)

    def send_many(self, calls: list[tuple[Call, LocalAccount]]) -> list[Outcome]:
        """Send a phase's transactions, `(call, sender)` each, and return what each came to, in order.

        The transactions must not depend on one another (each is checked against the state before the
        phase). A revert is returned, not raised, and costs nothing: like `_send`, the transaction is
        checked first and not sent. On a JSON-RPC node with `pipelined` on, the phase is signed with
        per-account nonces, sent in batches, mined in as few blocks as the gas limit allows and its
        receipts read in batches (`RpcChain._send_many`); elsewhere one by one. Both book the same
        receipts in the same order (docs/scale.md).
        """
        return self._send_many([({"to": c.to, "data": c.data, "value": c.value}, sender) for c, sender in calls])

    def events(self, contract: Contract, name: str, from_block: int = 0) -> list[DecodedEvent]:
        """Events `name` of `contract` since `from_block` (see `logs`)."""
        return [e for e in self.logs([str(contract.address)], from_block, self.head()) if e.name == name]

    # -- shared by the backends ----------------------------------------------------------------

    def _prepare(self, tx: dict[str, Any], sender: LocalAccount) -> dict[str, Any]:
        """`tx` with its sender and chain id."""
        return dict(tx, **{"from": sender.address, "chainId": self.chain_id})

    @staticmethod
    def _set_fees(tx: dict[str, Any], base_fee: int) -> None:
        """EIP-1559 fees: the fixed tip, and a cap of twice the base fee plus the tip."""
        tx["maxPriorityFeePerGas"] = PRIORITY_FEE_WEI
        tx["maxFeePerGas"] = 2 * base_fee + PRIORITY_FEE_WEI

    def _record(self, receipt: Receipt) -> TxResult:
        """Book a mined transaction; a failed one raises after its fee is booked."""
        return self._receipts.record(receipt)

    def _as_revert(self, exc: BaseException) -> ChainError:
        """The chain error an exception of a call or send stands for: the decoded custom error if it carries one."""
        data = revert_data(exc)
        if data:
            decoded = self.errors.decode(data)
            if decoded is not None:
                return decoded
            return TransactionRevertedError(f"reverted with unknown error data 0x{data.hex()}")
        if isinstance(exc, ChainError):
            return exc
        return TransactionRevertedError(f"{exc.__class__.__name__}: {exc}")

    # -- time and snapshots ---------------------------------------------------------------------

    def now(self) -> int:
        """Timestamp of the latest block."""
        return int(self._w3.eth.get_block("latest")["timestamp"])

    def block_timestamp(self, number: int) -> int:
        """Timestamp of block `number`."""
        return int(self._w3.eth.get_block(number)["timestamp"])

    def set_next_block_timestamp(self, timestamp: int) -> None:
        """Make the next transaction run in a block stamped exactly `timestamp` (never backwards).

        anvil accepts the latest block's own timestamp (two blocks in the same second); py-evm
        requires a later one. Both backends mine an empty block at `timestamp - 1` first (when it lies
        after the latest block), so that the latest block (what `now()` reads and timelocks are
        counted from) sits right before the next transaction.
        """
        if timestamp < self.now():
            raise ValueError(f"time only moves forward: {timestamp} is before the latest block {self.now()}")
        self._set_next_timestamp(timestamp)

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

    @contextmanager
    def time_held(self) -> Iterator[None]:
        """Within it, chain time moves only when it is set (`set_next_block_timestamp`, `advance_time`):
        each new block has its parent's timestamp, however long the wall clock takes between them.

        A simulation runs within it, so that its results do not depend on how fast it runs (one by one
        or pipelined, on a loaded machine or not). On anvil; elsewhere blocks keep their node's clock.
        """
        self._hold_time(True)
        try:
            yield
        finally:
            self._hold_time(False)

    @abstractmethod
    def _hold_time(self, held: bool) -> None:
        """Stop (or restart) the node's clock between blocks; a backend that cannot does nothing."""

    def snapshot(self) -> Any:
        """Take a chain snapshot; `revert` returns the chain and this object's books to it."""
        snapshot_id = self._take_snapshot()
        self._books[snapshot_id] = (self._receipts.mark(), len(self.accounts), len(self.deployed))
        return snapshot_id

    def revert(self, snapshot_id: Any) -> None:
        """Revert to `snapshot_id`: fees paid, accounts and deployments made since are undone too."""
        self._revert_to(snapshot_id)
        mark, accounts, deployed = self._books.pop(snapshot_id)
        self._receipts.rewind(mark)
        del self.accounts[accounts:]
        del self.deployed[deployed:]
