"""Decoding of contract logs into `DecodedEvent`s, from receipts or from raw eth_getLogs results.

The topic of every event of a contract is hashed once, when the contract is registered, and a log
is decoded with eth_abi directly: web3's `get_event_data` re-derives the topic of every event in
the ABI for each log and normalises every value through its formatter pipeline, which made
decoding the largest cost of indexing. Values come out as web3 gives them: addresses checksummed,
`bytesN` as bytes, integers as int; an indexed dynamic value (string, bytes, array) is its 32-byte
topic hash.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from eth_abi.codec import ABICodec
from eth_utils import event_abi_to_log_topic
from hexbytes import HexBytes

from market.chain.abi_words import checksum, decode_words


@dataclass(frozen=True)
class DecodedEvent:
    """One log of a receipt, decoded against the ABI of the contract that emitted it."""

    contract: str
    name: str
    args: dict[str, Any]
    address: str
    block_number: int
    log_index: int


@dataclass(frozen=True)
class EventSpec:
    """One event of one contract: where each argument comes from and how it is typed."""

    contract: str
    name: str
    indexed: tuple[tuple[str, str], ...]
    """(name, ABI type) of the indexed arguments, in topic order."""
    data: tuple[tuple[str, str], ...]
    """(name, ABI type) of the arguments ABI-encoded in the log's data."""

    @cached_property
    def data_types(self) -> tuple[str, ...]:
        return tuple(abi_type for _, abi_type in self.data)

    @cached_property
    def data_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.data)

    @classmethod
    def from_abi(cls, contract: str, entry: dict[str, Any]) -> EventSpec:
        inputs = entry.get("inputs", [])
        return cls(
            contract,
            entry["name"],
            tuple((i["name"], i["type"]) for i in inputs if i.get("indexed")),
            tuple((i["name"], i["type"]) for i in inputs if not i.get("indexed")),
        )


def _as_bytes(value: Any) -> bytes:
    return bytes(HexBytes(value))


def _as_int(value: Any) -> int:
    return int(value, 16) if isinstance(value, str) else int(value)


def _is_static(abi_type: str) -> bool:
    return not (abi_type in ("string", "bytes") or abi_type.endswith("]") or abi_type.startswith("("))


def _normalise(abi_type: str, value: Any) -> Any:
    if abi_type == "address":
        return checksum(value)
    return value


def _decode_topic(codec: ABICodec, abi_type: str, topic: bytes) -> Any:
    """An indexed static argument from its 32-byte topic (the common types without the codec's dispatch)."""
    if abi_type == "address":
        return checksum("0x" + topic[12:].hex())
    if abi_type == "bytes32":
        return topic
    if abi_type.startswith("uint"):
        return int.from_bytes(topic, "big")
    return _normalise(abi_type, codec.decode([abi_type], topic)[0])


class EventDecoder:
    """Decodes the logs of the contracts registered with it; other logs are skipped."""

    def __init__(self, codec: ABICodec) -> None:
        self.codec = codec
        self._specs: dict[str, dict[bytes, EventSpec]] = {}
        """Lower-case address -> topic0 -> event."""

    def register(self, address: str, contract: str, abi: list[dict[str, Any]]) -> None:
        self._specs[address.lower()] = {
            event_abi_to_log_topic(entry): EventSpec.from_abi(contract, entry)  # type: ignore[arg-type]
            for entry in abi
            if entry.get("type") == "event" and not entry.get("anonymous")
        }

    def decode(self, log: Any) -> DecodedEvent | None:
        """`log` as web3 formats it (a receipt's logs) or as a node sends it (hex strings)."""
        topics = [_as_bytes(topic) for topic in log["topics"]]
        events = self._specs.get(str(log["address"]).lower())
        spec = events.get(topics[0]) if events and topics else None
        if spec is None or len(topics) != len(spec.indexed) + 1:
            return None
        args: dict[str, Any] = {}
        for (name, abi_type), topic in zip(spec.indexed, topics[1:], strict=True):
            args[name] = _decode_topic(self.codec, abi_type, topic) if _is_static(abi_type) else topic
        if spec.data:
            data, types = _as_bytes(log["data"]), spec.data_types
            words = decode_words(types, data)  # a flat run of one-word values, read by hand
            if words is not None:
                args.update(zip(spec.data_names, words, strict=True))
            else:
                for (name, abi_type), value in zip(spec.data, self.codec.decode(list(types), data), strict=True):
                    args[name] = _normalise(abi_type, value)
        return DecodedEvent(
            contract=spec.contract,
            name=spec.name,
            args=args,
            address=checksum(str(log["address"])),
            block_number=_as_int(log["blockNumber"]),
            log_index=_as_int(log["logIndex"]),
        )

    def decode_all(self, logs: list[Any]) -> list[DecodedEvent]:
        return [event for event in map(self.decode, logs) if event is not None]
