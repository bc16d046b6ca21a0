"""Revert data decodes to the custom error's name and arguments, whatever the backend."""

from __future__ import annotations

from eth_abi import encode
from eth_tester.exceptions import TransactionFailed
from eth_utils import function_signature_to_4byte_selector

from market.chain.artifacts import all_abis
from market.chain.errors import ErrorDecoder, revert_data

DECODER = ErrorDecoder(all_abis())


def _error(signature: str, types: list[str], values: list[object]) -> bytes:
    return function_signature_to_4byte_selector(signature) + encode(types, values)


def test_custom_error_decodes_to_its_name_contract_and_named_arguments():
    data = _error("AIGCRegistryWrongBond(uint256,uint256)", ["uint256", "uint256"], [1, 2])
    revert = DECODER.decode(data)
    assert revert is not None
    assert (revert.contract, revert.error, revert.params) == ("AIGCRegistry", "AIGCRegistryWrongBond", {"sent": 1, "required": 2})
    assert str(revert) == "AIGCRegistry.AIGCRegistryWrongBond(sent=1, required=2)"


def test_inherited_openzeppelin_errors_are_known():
    data = _error("ERC721NonexistentToken(uint256)", ["uint256"], [7])
    revert = DECODER.decode(data)
    assert revert is not None and revert.error == "ERC721NonexistentToken" and revert.params == {"tokenId": 7}


def test_error_string_and_panic_decode():
    message = DECODER.decode(_error("Error(string)", ["string"], ["boom"]))
    panic = DECODER.decode(_error("Panic(uint256)", ["uint256"], [0x11]))
    assert message is not None and message.params == {"message": "boom"}
    assert panic is not None and panic.error == "Panic" and panic.params == {"code": 0x11}


def test_unknown_selector_decodes_to_none():
    assert DECODER.decode(bytes.fromhex("deadbeef")) is None


def test_revert_bytes_are_recovered_from_an_eth_tester_failure_message():
    raw = _error("AIGCExchangeZeroAmount()", [], [])
    exc = TransactionFailed(f"execution reverted: {raw!r}")
    assert revert_data(exc) == raw


def test_revert_bytes_are_recovered_from_json_rpc_hex_data():
    class RpcError(Exception):
        data = "0x" + _error("AIGCExchangeZeroAmount()", [], []).hex()

    assert revert_data(RpcError()) == bytes.fromhex(RpcError.data[2:])


def test_exception_without_revert_data_yields_none():
    assert revert_data(ValueError("nonce too low")) is None
