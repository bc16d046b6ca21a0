"""One transaction of an account, whoever holds its key (docs/api.md#self-custodied-accounts).

An API-key account's key is sealed on the server, which signs for it. A self-custodied account (Sign-In
with Ethereum) keeps its key: a route that must send one of its transactions answers 428
`signature_required` with the unsigned transaction (`Chain.unsigned_transaction`: chain id, nonce, gas,
fees, to, value, data); the client signs it and sends the same request again with
`signed_transaction`. The server relays it only if it is exactly that call from that account (chain,
sender, to, value, calldata): a client cannot slip another call in under a route's checks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_account.typed_transactions.typed_transaction import TypedTransaction
from eth_utils.address import to_checksum_address
from hexbytes import HexBytes

from api import models
from api.errors import ApiError
from api.state import AppState
from api.states import Custody
from market.chain.connection import Call
from market.chain.receipts import TxResult

T = TypeVar("T")

#: The largest signed transaction a client may send (calldata of the protocol's calls is under 1 KiB).
MAX_SIGNED_BYTES = 16 * 1024


def sender(
    state: AppState,
    account: models.Account,
    signed_transaction: str | None,
    *,
    call: Call,
    parse: Callable[[TxResult], T],
    as_server: Callable[[LocalAccount], T],
) -> Callable[[], T]:
    """What sends `call` as `account`, checked now and sent when called: signed by the server (`as_server` with the
    account's key) for an API-key account; else the client's `signed_transaction` of exactly `call`, relayed and
    read by `parse`. Raises at once (before a route records anything) 428 with the transaction to sign when a
    self-custodied account sent none, 422 when what it sent is not that transaction."""
    if account.custody == Custody.SERVER:
        if signed_transaction is not None:
            raise ApiError(422, "signed_transaction_unexpected", "the server signs for this account: send no signed_transaction")
        key = state.signer(account)
        return lambda: as_server(key)
    if signed_transaction is None:
        raise signature_required(state, account, call)
    raw = decode_hex(signed_transaction)
    check_signed(raw, call, sender=account.address, chain_id=state.chain.chain_id)
    return lambda: parse(state.chain.send_raw(raw))


def never(_: LocalAccount) -> NoReturn:
    """`as_server` of a route that serves self-custodied accounts only."""
    raise AssertionError("the server signs for no self-custodied account")


def signature_required(state: AppState, account: models.Account, call: Call) -> ApiError:
    """428 with the unsigned transaction of `call` from `account` (a call that would revert reverts here instead)."""
    tx = state.chain.unsigned_transaction(call, account.address)
    transaction = {key: (hex(value) if isinstance(value, int) else value) for key, value in tx.items()}
    return ApiError(
        428,
        "signature_required",
        "this account keeps its own key: sign `transaction` and send the request again with signed_transaction",
        extra={"transaction": transaction},
    )


def decode_hex(value: str) -> bytes:
    if len(value) > 2 * MAX_SIGNED_BYTES + 2 or not value.startswith("0x"):
        raise ApiError(422, "malformed_transaction", "signed_transaction must be 0x-hex, at most 16 KiB")
    try:
        return bytes.fromhex(value[2:])
    except ValueError:
        raise ApiError(422, "malformed_transaction", "signed_transaction is not hex") from None


def check_signed(raw: bytes, call: Call, *, sender: str, chain_id: int) -> None:
    """422 `transaction_mismatch` unless `raw` is an EIP-1559 transaction of `call` signed by `sender` on `chain_id`."""
    try:
        fields: dict[str, Any] = dict(TypedTransaction.from_bytes(HexBytes(raw)).as_dict())
        signer = Account.recover_transaction(raw)
    except Exception:  # not RLP, not type 2, a signature that recovers nothing: the library's many ways of saying no
        raise ApiError(422, "malformed_transaction", "signed_transaction is not a signed EIP-1559 transaction") from None
    data = fields.get("data", b"")
    checks = {
        "chain id": int(fields.get("chainId", -1)) == chain_id,
        "sender": signer == to_checksum_address(sender),
        "recipient": fields.get("to") is not None and to_checksum_address(fields["to"]) == to_checksum_address(call.to),
        "value": int(fields.get("value", -1)) == call.value,
        "calldata": (bytes(data) if not isinstance(data, str) else bytes.fromhex(data.removeprefix("0x")))
        == bytes.fromhex(call.data.removeprefix("0x")),
    }
    wrong = [name for name, ok in checks.items() if not ok]
    if wrong:
        raise ApiError(
            422, "transaction_mismatch", f"the signed transaction is not the one this request sends: its {', '.join(wrong)} differ"
        )
