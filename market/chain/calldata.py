"""Calldata of a contract's functions, encoded from its ABI with selectors and types worked out once.

web3's `contract.functions.f(...).build_transaction()` finds the function by validating the whole
ABI and hashing every signature in it on each call (~3 ms of CPU per transaction, more than the
node takes to run it); the wrappers in `contracts` send the same calldata from here instead. Views
still go through web3, which decodes their results.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_abi import encode as abi_encode
from eth_utils.abi import function_abi_to_4byte_selector, get_abi_input_types


@dataclass(frozen=True)
class FunctionCoder:
    """One function: its 4-byte selector and the ABI types of its inputs."""

    name: str
    selector: bytes
    input_types: tuple[str, ...]

    def encode(self, args: tuple[Any, ...]) -> str:
        """The calldata of a call with `args`, as 0x-prefixed hex."""
        if len(args) != len(self.input_types):
            raise TypeError(f"{self.name} takes {len(self.input_types)} arguments, {len(args)} given")
        return "0x" + (self.selector + abi_encode(self.input_types, args)).hex()


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
            )
            for entry in functions
            if names.count(entry["name"]) == 1
        }
        self._overloaded = {name for name in names if names.count(name) > 1}

    def encode(self, name: str, *args: Any) -> str:
        """The calldata of `name(*args)`."""
        coder = self._coders.get(name)
        if coder is None:
            why = "is overloaded" if name in self._overloaded else "is not in the ABI"
            raise KeyError(f"function {name} {why}")
        return coder.encode(args)
