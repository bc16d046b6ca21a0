"""Exceptions for chain access, and decoding of revert data into custom-error names.

eth-tester raises `TransactionFailed` whose message carries the raw revert bytes as a Python
bytes literal; JSON-RPC nodes return the revert data as hex. Both are turned into one
`ContractRevert` that names the custom error and its arguments, whichever backend ran.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any

from eth_abi import decode as abi_decode
from eth_utils import function_signature_to_4byte_selector, to_checksum_address
from hexbytes import HexBytes

ERROR_STRING_SELECTOR = bytes.fromhex("08c379a0")  # Error(string)
PANIC_SELECTOR = bytes.fromhex("4e487b71")  # Panic(uint256)


class ChainError(Exception):
    """Base of every error raised by the chain-access layer."""


class RpcUnreachableError(ChainError):
    """The JSON-RPC endpoint does not answer."""


class TransactionRevertedError(ChainError):
    """A transaction reverted and its revert data could not be decoded."""


@dataclass
class ContractRevert(ChainError):
    """A call reverted with a known custom error (or Error(string) / Panic(uint256)).

    `error` is the error's name (e.g. `AIGCExchangeWrongPreimage`), `params` its decoded arguments
    by parameter name, and `contract` the contract whose ABI declares it.
    """

    error: str
    params: dict[str, Any] = field(default_factory=dict)
    contract: str | None = None
    data: bytes = b""

    def __post_init__(self) -> None:
        super().__init__(str(self))

    def __str__(self) -> str:
        rendered = ", ".join(f"{k}={_render(v)}" for k, v in self.params.items())
        where = f"{self.contract}." if self.contract else ""
        return f"{where}{self.error}({rendered})"


def _render(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return repr(value)


@dataclass(frozen=True)
class _ErrorSpec:
    contract: str
    name: str
    types: list[str]
    names: list[str]


def _abi_type(param: dict[str, Any]) -> str:
    if param["type"].startswith("tuple"):
        inner = ",".join(_abi_type(c) for c in param["components"])
        return f"({inner}){param['type'][5:]}"
    return str(param["type"])


class ErrorDecoder:
    """Maps 4-byte selectors to the custom errors declared in a set of ABIs."""

    def __init__(self, abis: dict[str, list[dict[str, Any]]]) -> None:
        self._specs: dict[bytes, _ErrorSpec] = {}
        for contract, abi in abis.items():
            for entry in abi:
                if entry.get("type") != "error":
                    continue
                types = [_abi_type(p) for p in entry["inputs"]]
                selector = function_signature_to_4byte_selector(f"{entry['name']}({','.join(types)})")
                self._specs.setdefault(selector, _ErrorSpec(contract, entry["name"], types, [p["name"] for p in entry["inputs"]]))

    def decode(self, data: bytes) -> ContractRevert | None:
        """The custom error encoded in `data`, or None when the selector is unknown."""
        selector, payload = data[:4], data[4:]
        if selector == ERROR_STRING_SELECTOR:
            (message,) = abi_decode(["string"], payload)
            return ContractRevert("Error", {"message": message}, data=data)
        if selector == PANIC_SELECTOR:
            (code,) = abi_decode(["uint256"], payload)
            return ContractRevert("Panic", {"code": code}, data=data)
        spec = self._specs.get(selector)
        if spec is None:
            return None
        values = [
            to_checksum_address(value) if kind == "address" else value
            for kind, value in zip(spec.types, abi_decode(spec.types, payload), strict=True)
        ]
        return ContractRevert(spec.name, dict(zip(spec.names, values, strict=True)), spec.contract, data)


def revert_data(exc: BaseException) -> bytes | None:
    """The raw revert bytes carried by a web3 or eth-tester exception, if any."""
    data = getattr(exc, "data", None)
    if isinstance(data, (bytes, bytearray)):
        return bytes(data)
    if isinstance(data, str) and data.startswith("0x"):
        return bytes(HexBytes(data))
    if isinstance(data, dict) and isinstance(data.get("data"), str):
        return bytes(HexBytes(data["data"]))
    for arg in exc.args:
        if isinstance(arg, str) and arg.startswith("execution reverted: b"):
            literal = arg.removeprefix("execution reverted: ")
            try:
                parsed = ast.literal_eval(literal)
            except (ValueError, SyntaxError):
                return None
            return parsed if isinstance(parsed, bytes) else None
        if isinstance(arg, str) and arg.startswith("0x"):
            return bytes(HexBytes(arg))
    return None
