"""Options shared by the commands that talk to a chain, and the connection they make."""

from __future__ import annotations

from typing import Annotated

import typer

from cli.errors import UserError
from market.chain.connection import Chain
from market.chain.errors import RpcUnreachableError

RpcOption = Annotated[
    str | None, typer.Option("--rpc", help="JSON-RPC URL of an EVM node; default: a fresh embedded eth-tester chain.")
]
KeyOption = Annotated[
    str | None,
    typer.Option(
        "--private-key", envvar="AIGC_MARKET_PRIVATE_KEY",
        help="Key that pays for deployment on --rpc chains (default: anvil's first dev account).",
    ),
]


def connect(rpc: str | None, private_key: str | None) -> Chain:
    if rpc is None:
        return Chain.embedded()
    try:
        return Chain.connect(rpc, private_key)
    except RpcUnreachableError as exc:
        raise UserError(str(exc)) from exc
    except ValueError as exc:  # a malformed private key
        raise UserError(f"invalid --private-key: {exc}") from exc
