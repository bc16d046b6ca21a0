"""`aigc-market chain ...`: run a local anvil node, compile and deploy the contracts."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Annotated

import typer
from typer._click import exceptions as click  # Typer vendors click; its errors live here

from cli.console import console
from cli.errors import UserError
from cli.options import KeyOption, RpcOption, connect
from market.chain.anvil import AnvilError, AnvilNode

app = typer.Typer(help="Run a local chain, compile and deploy the contracts.", no_args_is_help=True)


@app.command("node")
def chain_node(
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port on 127.0.0.1.")] = 8545,
    state: Annotated[Path | None, typer.Option(help="Load and save the chain state in this file.")] = None,
) -> None:
    """Start an anvil node on 127.0.0.1, print its URL and run until interrupted."""
    node = AnvilNode(port=port, state_path=state)
    try:
        node.start()
    except AnvilError as exc:
        raise UserError(str(exc)) from exc
    print(node.url, flush=True)
    # SIGTERM stops the node as Ctrl-C does, so that anvil can save --state on the way out.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        while node.process is not None and node.process.poll() is None:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        node.stop()


@app.command("deploy")
def chain_deploy(
    rpc: RpcOption = None,
    out: Annotated[Path, typer.Option(help="Where to write the deployment JSON.")] = Path("deployment.json"),
    private_key: KeyOption = None,
) -> None:
    """Deploy AIGCRegistry, AIGCExchange and ReputationLedger and write their addresses."""
    from market.chain.deploy import deploy_market

    chain = connect(rpc, private_key)
    if rpc is None:
        console.print(
            "[yellow]no --rpc given: deploying to a fresh embedded eth-tester chain, which ends with this command[/yellow]",
            highlight=False,
        )
    market, receipts = deploy_market(chain)
    market.deployment.write(out)
    for name, receipt in receipts.items():
        console.print(f"{name:<17} {market.deployment.contracts[name]}  gas {receipt.gas_used:,}", highlight=False)
    console.print(f"chain {market.deployment.chain_id}, block {market.deployment.block}: wrote {out}", highlight=False)


@app.command("compile")
def chain_compile(
    check: Annotated[bool, typer.Option("--check", help="Only compare with market/chain/build; exit 1 if stale.")] = False,
) -> None:
    """Compile contracts/*.sol with solc-js (or SOLC_BINARY) into market/chain/build/."""
    from market.chain.artifacts import load_artifact
    from market.chain.compiler import compile_sources, write_artifacts

    artifacts = compile_sources()
    if check:
        stale = []
        for name, fresh in sorted(artifacts.items()):
            try:
                committed = load_artifact(name)
            except FileNotFoundError:
                stale.append(name)
                continue
            if (committed.abi, committed.bytecode) != (fresh.abi, fresh.bytecode):
                stale.append(name)
        if stale:
            raise click.ClickException(f"stale artifacts (run `aigc-market chain compile`): {', '.join(stale)}")
        console.print(f"{len(artifacts)} artifacts match a fresh compile")
        return
    for path in write_artifacts(artifacts):
        console.print(f"wrote {path}")
