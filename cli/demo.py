"""`aigc-market demo`: deploy and walk one whole lifecycle of protocol v2, with the gas of each step."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated

import typer
from rich.table import Table
from typer._click import exceptions as click  # Typer vendors click; its errors live here

from cli.console import console
from cli.options import KeyOption, RpcOption, connect


def demo(
    rpc: RpcOption = None,
    private_key: KeyOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the steps as one JSON object at the end.")] = False,
) -> None:
    """Deploy the contracts and walk one whole AIGC lifecycle, printing each step with its gas."""
    from market.chain.deploy import deploy_market
    from market.demo import Step, walk_lifecycle

    chain = connect(rpc, private_key)
    where = rpc or "the embedded eth-tester chain"
    console.print(f"[bold]AIGC market lifecycle on {where}[/bold] (chain id {chain.chain_id})", highlight=False)
    market, receipts = deploy_market(chain)
    table = Table("step", "gas", "what happened", show_lines=False)
    for name, receipt in receipts.items():
        table.add_row(f"deploy {name}", f"{receipt.gas_used:,}", market.deployment.contracts[name])

    def show(step: Step) -> None:
        table.add_row(step.operation, f"{step.gas:,}" if step.gas is not None else "-", step.detail)

    report = walk_lifecycle(market, show)
    console.print(table)
    for name, holds in report.invariants.items():
        console.print(f"invariant {name}: {'[green]holds[/green]' if holds else '[red]FAILS[/red]'}")
    if as_json:
        print(json.dumps({"chain_id": chain.chain_id, "steps": [asdict(s) for s in report.steps], "invariants": report.invariants}))
    if not all(report.invariants.values()):
        raise click.ClickException("an invariant failed")
