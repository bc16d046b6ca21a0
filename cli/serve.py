"""`aigc-market serve`: run the REST API with uvicorn on 127.0.0.1 by default; `--workers N` (PostgreSQL) runs N processes."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli.errors import UserError

if TYPE_CHECKING:
    from api.settings import Settings


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
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Server processes sharing the port (PostgreSQL only; SQLite serves one). One indexer leads at a time; "
            "rate limits are shared out (docs/api.md#several-workers).",
        ),
    ] = 1,
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

    settings = Settings(data_dir=data, db_url=db, rpc_url=rpc, anvil_port=anvil_port, private_key=private_key, workers=workers)
    proxies = [address.strip() for address in (forwarded_allow_ips or "").split(",") if address.strip()]
    if proxies:
        settings.trusted_proxies = proxies
    # uvicorn's own proxy headers stay off: it would believe X-Forwarded-For from 127.0.0.1, so that any local
    # client could pose as many; the app reads the header itself, from `trusted_proxies` only.
    options: dict[str, Any] = {"host": host, "port": port, "log_level": "info", "access_log": access_log, "proxy_headers": False}
    if workers > 1:
        serve_workers(settings, options)
        return
    try:
        application = create_app(settings)
    except (ChainMismatchError, RpcUnreachableError, AnvilError, ValueError) as exc:
        raise UserError(str(exc)) from exc
    uvicorn.run(application, **options)


def serve_workers(settings: Settings, options: dict[str, Any]) -> None:
    """`--workers N`: start once (migrations, node, deployment, recoveries), then N worker processes on one port,
    a dead one replaced; a node started here is stopped at the end (api/workers.py)."""
    from api.node import ChainMismatchError
    from api.workers import serve_workers as run_workers
    from market.chain.anvil import AnvilError
    from market.chain.errors import RpcUnreachableError

    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(message)s")  # the supervisor's lines, as uvicorn's
    try:
        code = run_workers(settings, options["host"], options["port"], options["access_log"])
    except (ChainMismatchError, RpcUnreachableError, AnvilError, ValueError) as exc:
        raise UserError(str(exc)) from exc
    if code:
        raise typer.Exit(code)
