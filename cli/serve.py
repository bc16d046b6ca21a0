"""`aigc-market serve`: run the REST API with uvicorn on 127.0.0.1 by default."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli.errors import UserError


def serve(
    host: Annotated[str, typer.Option(help="Interface to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port of the API.")] = 8000,
    rpc: Annotated[
        str | None, typer.Option("--rpc", help="JSON-RPC URL; default: a supervised anvil node with its state under --data.")
    ] = None,
    db: Annotated[str | None, typer.Option("--db", help="SQLAlchemy URL; default: SQLite under --data.")] = None,
    data: Annotated[Path, typer.Option("--data", help="Data directory.")] = Path("data"),
    anvil_port: Annotated[int, typer.Option(min=1, max=65535, help="Port of the supervised anvil node.")] = 8545,
    private_key: Annotated[
        str | None,
        typer.Option("--private-key", envvar="AIGC_MARKET_PRIVATE_KEY", help="Key that deploys and funds accounts on --rpc."),
    ] = None,
    access_log: Annotated[
        bool,
        typer.Option(
            "--access-log/--no-access-log",
            help="Log a line per request (off by default, as in gunicorn: it costs ~15% of the CPU of a small "
            "read). Errors are always logged.",
        ),
    ] = False,
) -> None:
    """Serve the REST API: accounts, ESPs, tasks, products, trades, credits, simulations."""
    import uvicorn

    from api.main import create_app
    from api.node import ChainMismatchError
    from api.settings import Settings
    from market.chain.anvil import AnvilError
    from market.chain.errors import RpcUnreachableError

    settings = Settings(data_dir=data, db_url=db, rpc_url=rpc, anvil_port=anvil_port, private_key=private_key)
    try:
        application = create_app(settings)
    except (ChainMismatchError, RpcUnreachableError, AnvilError, ValueError) as exc:
        raise UserError(str(exc)) from exc
    uvicorn.run(application, host=host, port=port, log_level="info", access_log=access_log)
