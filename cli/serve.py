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
    forwarded_allow_ips: Annotated[
        str | None,
        typer.Option(
            "--forwarded-allow-ips",
            help="Comma-separated addresses of reverse proxies whose X-Forwarded-For names the client (rate limits, "
            "faucet budgets go by it). Default: none, the TCP peer is the client.",
        ),
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
    proxies = [address.strip() for address in (forwarded_allow_ips or "").split(",") if address.strip()]
    if proxies:
        settings.trusted_proxies = proxies
    try:
        application = create_app(settings)
    except (ChainMismatchError, RpcUnreachableError, AnvilError, ValueError) as exc:
        raise UserError(str(exc)) from exc
    # uvicorn's own proxy headers stay off: it would believe X-Forwarded-For from 127.0.0.1, so that any local
    # client could pose as many; the app reads the header itself, from `trusted_proxies` only.
    uvicorn.run(application, host=host, port=port, log_level="info", access_log=access_log, proxy_headers=False)
