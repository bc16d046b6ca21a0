"""The `aigc-market` command.

Errors a user can cause (a bad argument, an unreachable RPC URL) print one line on stderr and exit
with code 2; other failures print one line and exit 1. No traceback reaches the user.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from typer._click import exceptions as click  # Typer vendors click; its errors live here

from market.chain.anvil import AnvilError, AnvilNode
from market.chain.connection import Chain
from market.chain.errors import ChainError, RpcUnreachableError
from market.offload_cli import app as offload_app
from market.reputation_cli import app as reputation_app

app = typer.Typer(
    name="aigc-market",
    help="Blockchain-backed marketplace and lifecycle manager for edge AIGC.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
chain_app = typer.Typer(help="Run a local chain, compile and deploy the contracts.", no_args_is_help=True)
app.add_typer(chain_app, name="chain")
app.add_typer(offload_app, name="offload")
app.add_typer(reputation_app, name="reputation")

console = Console()

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


class UserError(Exception):
    """A mistake of the caller's: printed as one line, exit code 2."""


def _connect(rpc: str | None, private_key: str | None) -> Chain:
    if rpc is None:
        return Chain.embedded()
    try:
        return Chain.connect(rpc, private_key)
    except RpcUnreachableError as exc:
        raise UserError(str(exc)) from exc
    except ValueError as exc:  # a malformed private key
        raise UserError(f"invalid --private-key: {exc}") from exc


@chain_app.command("node")
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


@chain_app.command("deploy")
def chain_deploy(
    rpc: RpcOption = None,
    out: Annotated[Path, typer.Option(help="Where to write the deployment JSON.")] = Path("deployment.json"),
    private_key: KeyOption = None,
) -> None:
    """Deploy AIGCRegistry, AIGCExchange and ReputationLedger and write their addresses."""
    from market.chain.deploy import deploy_market

    chain = _connect(rpc, private_key)
    if rpc is None:
        console.print("[yellow]no --rpc given: deploying to a fresh embedded eth-tester chain, "
                      "which ends with this command[/yellow]", highlight=False)
    market, receipts = deploy_market(chain)
    market.deployment.write(out)
    for name, receipt in receipts.items():
        console.print(f"{name:<17} {market.deployment.contracts[name]}  gas {receipt.gas_used:,}", highlight=False)
    console.print(f"chain {market.deployment.chain_id}, block {market.deployment.block}: wrote {out}", highlight=False)


@chain_app.command("compile")
def chain_compile(
    check: Annotated[bool, typer.Option("--check", help="Only compare with contracts/build; exit 1 if stale.")] = False,
) -> None:
    """Compile contracts/*.sol with solc-js (or SOLC_BINARY) into contracts/build/."""
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


@app.command("demo")
def demo(
    rpc: RpcOption = None,
    private_key: KeyOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the steps as one JSON object at the end.")] = False,
) -> None:
    """Deploy the contracts and walk one whole AIGC lifecycle, printing each step with its gas."""
    from market.chain.deploy import deploy_market
    from market.demo import Step, walk_lifecycle

    chain = _connect(rpc, private_key)
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
        print(json.dumps({"chain_id": chain.chain_id, "steps": [asdict(s) for s in report.steps],
                          "invariants": report.invariants}))
    if not all(report.invariants.values()):
        raise click.ClickException("an invariant failed")


@app.command("simulate")
def simulate(
    producers: Annotated[int, typer.Option(min=1, help="Producers.")] = 3,
    esps: Annotated[int, typer.Option(min=1, help="ESPs (profiles honest, honest, cheating, cycled).")] = 3,
    consumers: Annotated[int, typer.Option(min=0, help="Consumers.")] = 3,
    attackers: Annotated[int, typer.Option(min=0, help="Attackers.")] = 1,
    periods: Annotated[int, typer.Option(min=1, help="Simulated periods.")] = 100,
    seed: Annotated[int, typer.Option(help="Seed of every random choice.")] = 0,
    rpc: RpcOption = None,
    private_key: KeyOption = None,
    out: Annotated[Path, typer.Option(help="Directory of the report.")] = Path("out/simulation"),
    selection: Annotated[str, typer.Option(help="softmax, argmax, random, familiar or round-robin.")] = "softmax",
    caching: Annotated[str, typer.Option(help="lc, lfu, lru, fifo, random or cloud.")] = "lfu",
    profiles: Annotated[str, typer.Option(help="Comma-separated ESP profiles (honest, slow, delaying, cheating).")]
    = "honest,honest,cheating",
    as_json: Annotated[bool, typer.Option("--json", help="Print summary.json as the last line.")] = False,
) -> None:
    """Run the marketplace: producers, ESPs, consumers and attackers through the whole lifecycle."""
    from rich.progress import Progress

    from market.report import write_report
    from market.simulation import SimulationConfig, run_simulation

    try:
        config = SimulationConfig(
            producers=producers, esps=esps, consumers=consumers, attackers=attackers, periods=periods, seed=seed,
            selection=selection, caching=caching, esp_profiles=tuple(p.strip() for p in profiles.split(",")),  # type: ignore[arg-type]
        ).validate()
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    chain = _connect(rpc, private_key)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task(f"simulating {periods} periods on {rpc or 'the embedded chain'}", total=periods)
        result = run_simulation(config, chain, out, on_period=lambda _: progress.advance(task))
    paths = write_report(result, out)
    summary = result.summary
    table = Table("metric", "value", title=f"simulation ({periods} periods, seed {seed})")
    for key in ("tasks", "completed", "refunded", "products", "trades", "challenges_upheld", "challenges_rejected",
                "plagiarism_detected_rate", "mean_latency_s", "mean_energy_j"):
        value = summary[key]
        table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    for name, counts in summary["attacks"].items():
        table.add_row(f"attack {name}", f"{counts['failed']} of {counts['attempts']} failed")
    for name, value in summary["reputation_final"].items():
        table.add_row(f"reputation {name}", f"{value:.3f}")
    for name, value in summary["workload"].items():
        table.add_row(f"workload {name}", str(value))
    for name, holds in summary["invariants"].items():
        table.add_row(f"invariant {name}", "[green]holds[/green]" if holds else "[red]FAILS[/red]")
    console.print(table)
    console.print(f"report: {out / 'summary.json'} (+ {len(paths) - 1} more files in {out})", highlight=False)
    if as_json:
        print(json.dumps(summary, default=str))
    if not all(summary["invariants"].values()):
        raise click.ClickException("an invariant failed (see the report)")


import market.offload_train_cli  # noqa: E402,F401  (registers offload train/evaluate/sweep)
from market.serve_cli import register as register_serve  # noqa: E402

register_serve(app)


def main(argv: list[str] | None = None) -> int:
    """Entry point: runs the Typer app and turns errors into one line and an exit code."""
    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="aigc-market", standalone_mode=False)
    except click.NoArgsIsHelpError as exc:
        print(exc.format_message(), file=sys.stderr)
        return 2
    except click.UsageError as exc:
        print(f"aigc-market: error: {exc.format_message()}", file=sys.stderr)
        return 2
    except UserError as exc:
        print(f"aigc-market: error: {exc}", file=sys.stderr)
        return 2
    except click.ClickException as exc:
        print(f"aigc-market: error: {exc.format_message()}", file=sys.stderr)
        return exc.exit_code
    except ChainError as exc:
        print(f"aigc-market: error: {exc}", file=sys.stderr)
        return 1
    except (typer.Abort, KeyboardInterrupt):
        print("aigc-market: interrupted", file=sys.stderr)
        return 130
    return result if isinstance(result, int) else 0


def run() -> None:
    sys.exit(main())


if __name__ == "__main__":
    run()
