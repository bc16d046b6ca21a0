"""What a chain connection keeps of its own transactions, the same on every backend.

Each backend mines a transaction its own way and hands the receipt over as a `Receipt` (numbers
already parsed); `ReceiptBook` books its fee, notes its block, decodes its events and keeps them in
order, and rewinds all of that to a mark when the chain reverts to a snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from market.chain.errors import TransactionRevertedError
from market.chain.events import DecodedEvent, EventDecoder


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


@dataclass(frozen=True)
class Receipt:
    """A mined transaction's receipt, as each backend parses it from its own form."""

    tx_hash: str
    status: int
    block_number: int
    gas_used: int
    gas_price: int
    logs: list[Any]
    """The raw logs (web3's form or the node's hex strings: the decoder reads both)."""
    contract_address: str | None = None


@dataclass(frozen=True)
class BookMark:
    """Where the books stood (see `ReceiptBook.mark`)."""

    fees_paid_wei: int
    last_block: int
    events: int


class ReceiptBook:
    """Fees paid, the highest block seen and every decoded event of one connection's transactions."""

    def __init__(self, decoder: EventDecoder) -> None:
        self.decoder = decoder
        self.fees_paid_wei = 0
        #: Highest block of a receipt this connection has seen (0 before its first transaction).
        self.last_block = 0
        #: Every decoded event of the transactions sent through this connection, in order.
        self.events: list[DecodedEvent] = []

    def record(self, receipt: Receipt) -> TxResult:
        """Book a mined transaction's fee and events; a failed one raises after its fee is booked."""
        fee = receipt.gas_used * receipt.gas_price
        self.fees_paid_wei += fee
        self.last_block = max(self.last_block, receipt.block_number)
        if receipt.status != 1:
            raise TransactionRevertedError(f"transaction {receipt.tx_hash} reverted on chain")
        events = self.decode(receipt.logs)
        self.events.extend(events)
        return TxResult(
            tx_hash=receipt.tx_hash,
            block_number=receipt.block_number,
            gas_used=receipt.gas_used,
            fee_wei=fee,
            events=events,
            contract_address=receipt.contract_address,
        )

    def decode(self, logs: list[Any]) -> list[DecodedEvent]:
        """The logs of the registered contracts, decoded (others are skipped)."""
        return self.decoder.decode_all(logs)

    def mark(self) -> BookMark:
        return BookMark(self.fees_paid_wei, self.last_block, len(self.events))

    def rewind(self, mark: BookMark) -> None:
        """Forget what was booked after `mark` (the chain went back to a snapshot taken there)."""
        self.fees_paid_wei, self.last_block = mark.fees_paid_wei, mark.last_block
        del self.events[mark.events :]
