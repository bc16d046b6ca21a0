"""`aigc-market esp ...`: run an ESP node with its own key (`esp run`), or make that key (`esp keygen`).

The key never leaves the node's machine: the node signs in to the market with it (SIWE) and signs its
own transactions (docs/esp-node.md).
"""

from __future__ import annotations

import logging
import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cli.errors import UserError
from offload_core.names import CachingPolicy

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

app = typer.Typer(help="An ESP node: takes the market's jobs and claims its fees on chain with its own key.", no_args_is_help=True)


class LogLevel(StrEnum):
    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


def read_key(path: Path) -> LocalAccount:
    """The account of the hex private key in `path`; UserError naming the file when it holds none."""
    from eth_account import Account

    try:
        text = path.read_text().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read the key file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        account: LocalAccount = Account.from_key(text)
    except (ValueError, TypeError):
        raise UserError(f"the key file {path} holds no hex private key (make one with `aigc-market esp keygen`)") from None
    return account


@app.command("keygen")
def keygen(
    out: Annotated[Path, typer.Option("--out", help="Where to write the new key (hex; mode 0600; never overwritten).")],
) -> None:
    """Make a new ESP key and print its address."""
    from eth_account import Account

    account = Account.create()
    try:
        descriptor = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise UserError(f"{out} exists: refusing to overwrite a key") from None
    except OSError as exc:
        raise UserError(f"cannot write {out}: {exc.strerror}") from None
    with os.fdopen(descriptor, "w") as file:
        file.write(account.key.hex() + "\n")
    print(account.address)


@app.command("run")
def run(
    api: Annotated[str, typer.Option("--api", help="Base URL of the market API.")],
    key_file: Annotated[Path, typer.Option("--key-file", help="The ESP's private key (hex), e.g. from `esp keygen`.")],
    generator: Annotated[
        str, typer.Option("--generator", help="NAME[:ARG]: deterministic[:SIZE] or diffusers:PATH (docs/generators.md).")
    ] = "deterministic",
    servers: Annotated[int, typer.Option("--servers", min=1, help="Edge servers this ESP runs (the offloading core's N).")] = 1,
    caching: Annotated[CachingPolicy, typer.Option("--caching", help="Caching policy of the servers' model caches.")] = (
        CachingPolicy.LFU
    ),
    db: Annotated[
        Path | None, typer.Option("--db", help="SQLite file of the node's jobs (default: esp-ADDRESS.sqlite here).")
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="Name the market shows (default: esp-ADDRESS).")] = None,
    rpc: Annotated[str | None, typer.Option("--rpc", help="JSON-RPC URL of the chain (default: the market's).")] = None,
    wait: Annotated[float, typer.Option("--wait", min=0.0, help="Seconds one long-poll for jobs waits.")] = 20.0,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the node's offloading engine.")] = 0,
    log_level: Annotated[LogLevel, typer.Option("--log-level", help="Lines on stderr: one per job step at info.")] = (
        LogLevel.INFO
    ),
    withhold_key: Annotated[bool, typer.Option("--withhold-key", hidden=True)] = False,
) -> None:
    """Run an ESP node until Ctrl-C or SIGTERM (it finishes the job in hand and exits 0)."""
    from esp.node import EspNode, NodeConfig, NodeError

    account = read_key(key_file)
    logging.basicConfig(
        stream=sys.stderr, level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True
    )
    if log_level != LogLevel.DEBUG:  # httpx logs every request at info: a line per long-poll would drown the job lines
        for noisy in ("httpx", "httpx2", "httpcore"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    config = NodeConfig(
        api_url=api,
        account=account,
        db_path=db or Path(f"esp-{account.address}.sqlite"),
        name=name or f"esp-{account.address}",
        generator=generator,
        servers=servers,
        caching=caching,
        seed=seed,
        wait_s=wait,
        rpc_url=rpc,
        withhold_key=withhold_key,
    )
    node = EspNode(config)
    node.install_signal_handlers()
    try:
        node.start()
        node.run()
    except NodeError as exc:
        node.close()
        raise UserError(str(exc)) from None
