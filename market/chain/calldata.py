"""Calldata of a contract's functions, encoded from its ABI with selectors and types worked out once.

web3's `contract.functions.f(...).build_transaction()` finds the function by validating the whole
ABI and hashing every signature in it on each call (~3 ms of CPU per transaction, more than the
node takes to run it); the wrappers in `contracts` send the same calldata from here instead, and
call their views with it and decode the results here (web3's view path costs ~10 ms of CPU each).
Flat runs of one-word arguments and results are laid out and read by hand (`abi_words`); the rest by eth_abi.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils.abi import function_abi_to_4byte_selector, get_abi_input_types, get_abi_output_types

from market.chain.abi_words import checksum, decode_words, encode_words


@dataclass(frozen=True)
class FunctionCoder:
    """One function: its 4-byte selector and the ABI types of its inputs."""

    name: str
    selector: bytes
    input_types: tuple[str, ...]
    output_types: tuple[str, ...] = ()

    def encode(self, args: tuple[Any, ...]) -> str:
        """The calldata of a call with `args`, as 0x-prefixed hex."""
        if len(args) != len(self.input_types):
            raise TypeError(f"{self.name} takes {len(self.input_types)} arguments, {len(args)} given")
        body = encode_words(self.input_types, args)
        if body is None:  # a dynamic type or an unusual value: eth_abi lays it out (or refuses it)
            body = abi_encode(self.input_types, args)
        return "0x" + (self.selector + body).hex()

    def decode(self, data: bytes) -> Any:
        """A view's return data as web3 gives it: one value alone, several as a tuple; addresses checksummed."""
        words = decode_words(self.output_types, data)
        if words is not None:
            values = tuple(words)
        else:
            decoded = abi_decode(self.output_types, data)
            values = tuple(_checksummed(kind, value) for kind, value in zip(self.output_types, decoded, strict=True))
        return values[0] if len(values) == 1 else values


def _checksummed(kind: str, value: Any) -> Any:
    """`value` of ABI type `kind` with every address in it checksummed (as web3 returns them)."""
    if kind == "address":
        return checksum(value)
    if kind.endswith("]") and isinstance(value, tuple | list):
        inner = kind[: kind.rindex("[")]
        return type(value)(_checksummed(inner, item) for item in value)
    if kind.startswith("(") and isinstance(value, tuple):
        return tuple(_checksummed(part, item) for part, item in zip(_components(kind[1:-1]), value, strict=True))
    return value


def _components(inner: str) -> list[str]:
    """The component types of a tuple type's inside, split at its top-level commas."""
    parts, depth, start = [], 0, 0
    for index, char in enumerate(inner):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(inner[start:index])
            start = index + 1
    parts.append(inner[start:])
    return [part for part in parts if part]


class CalldataEncoder:
    """The functions of one contract ABI by name (overloaded names are refused: the wrappers never use one)."""

    def __init__(self, abi: list[dict[str, Any]]) -> None:
        functions = [entry for entry in abi if entry.get("type") == "function"]
        names = [entry["name"] for entry in functions]
        self._coders = {
            entry["name"]: FunctionCoder(
                entry["name"],
                function_abi_to_4byte_selector(entry),  # type: ignore[arg-type]
                tuple(get_abi_input_types(entry)),  # type: ignore[arg-type]
                tuple(get_abi_output_types(entry)),  # type: ignore[arg-type]
            )
            for entry in functions
            if names.count(entry["name"]) == 1
        }
        self._overloaded = {name for name in names if names.count(name) > 1}

    def encode(self, name: str, *args: Any) -> str:
        """The calldata of `name(*args)`."""
        return self.coder(name).encode(args)

    def coder(self, name: str) -> FunctionCoder:
        coder = self._coders.get(name)
        if coder is None:
            why = "is overloaded" if name in self._overloaded else "is not in the ABI"
            raise KeyError(f"function {name} {why}")
        return coder
