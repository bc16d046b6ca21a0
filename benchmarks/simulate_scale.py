"""How fast `aigc-market simulate` settles a market on anvil, against anvil's own pipelined rate.

Issue 20, "Must show": settled transactions/s and tasks/s of the simulation on one anvil node for
3, 30 and 300 producers (ESPs and consumers scaled alike) over a fixed number of periods, next to
the ceiling measured in the same run on the same node: signed ether transfers sent as the pipelined
phases send them (`Chain.send_many`: per-account nonces, JSON-RPC batches, automine off and
`evm_mine`), Python signing included. The ratio of the two is the figure that matters; the
absolute rates depend on the machine and its load. `--market P,T` also times one market of P
producers over T periods (the issue's 100 producers, 100 periods by default with `--market`), and
`--one-by-one` adds the same sizes sent one transaction at a time, for the speed-up. Each run also
reports the CPU time of the simulation's process and of anvil per transaction, which other jobs on the
machine disturb much less than the rates.

    python benchmarks/simulate_scale.py [--sizes 3,30,300] [--periods 3] [--market 100,100] [--one-by-one] [--json]

Transactions are the market's own (every protocol step the summary books in gas_by_operation);
the deployment and the funding of the accounts are not counted, their time is. See docs/scale.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from market.chain.anvil import AnvilNode, free_port
from market.chain.connection import Call, Chain
from market.simulation import SimulationConfig, run_simulation
from market.terms import ETHER

#: What `aigc-market simulate --node anvil` starts: transactions in the order sent, ether for thousands of
#: parties, anvil's default block gas limit (30M: larger blocks make anvil slower to hand out receipts).
NODE: dict[str, Any] = {"order": "fifo", "balance_ether": 10**9}
CEILING_TRANSFERS = 3000
CEILING_SENDERS = 30

console = Console(width=150)


def node_ceiling(chain: Chain, transfers: int = CEILING_TRANSFERS, senders: int = CEILING_SENDERS) -> float:
    """Signed ether transfers per second, `transfers` of them from `senders` accounts in one pipelined phase."""
    accounts = [chain.new_account(label="ceiling") for _ in range(senders)]
    chain.fund([(a.address, ETHER) for a in accounts])
    calls = [(Call(accounts[(i + 1) % senders].address, value=1), accounts[i % senders]) for i in range(transfers)]
    started = time.perf_counter()
    outcomes = chain.send_many(calls)
    elapsed = time.perf_counter() - started
    assert len(outcomes) == transfers and all(not isinstance(o, Exception) for o in outcomes)
    return transfers / elapsed


def own_cpu_s() -> float:
    """CPU seconds this process has used (user and system)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def node_cpu_s(node: AnvilNode | None) -> float | None:
    """CPU seconds the node's process has used (user and system), where /proc tells it; else None."""
    if node is None or node.process is None:
        return None
    try:
        fields = Path(f"/proc/{node.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def market_run(url: str, producers: int, periods: int, pipelined: bool = True, node: AnvilNode | None = None) -> dict[str, Any]:
    """One market of `producers` producers, ESPs and consumers over `periods` periods on the node at `url`.

    Besides the wall clock, the CPU time of this process and of `node` during the run: on a machine that
    other jobs share, CPU per transaction moves much less with the load than transactions per second.
    """
    config = SimulationConfig(producers=producers, esps=producers, consumers=producers, periods=periods, random_periods=1)
    chain = Chain.connect(url, pipelined=pipelined)
    with tempfile.TemporaryDirectory() as workdir:
        node_before, own_before = node_cpu_s(node), own_cpu_s()
        started = time.perf_counter()
        summary = run_simulation(config, chain, Path(workdir)).summary
        elapsed = time.perf_counter() - started
        own, node_after = own_cpu_s() - own_before, node_cpu_s(node)
    transactions = sum(op["calls"] for op in summary["gas_by_operation"].values())
    node_used = node_after - node_before if node_after is not None and node_before is not None else None
    return {
        "producers": producers,
        "periods": periods,
        "pipelined": pipelined,
        "seconds": elapsed,
        "tasks": summary["tasks"],
        "transactions": transactions,
        "tx_per_s": transactions / elapsed,
        "tasks_per_s": summary["tasks"] / elapsed,
        "python_cpu_s": own,
        "node_cpu_s": node_used,
        "cpu_ms_per_tx": 1000 * (own + (node_used or 0.0)) / transactions if transactions else None,
        "invariants_hold": all(summary["invariants"].values()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="3,30,300", help="Producers (= ESPs = consumers) of each market, comma-separated.")
    parser.add_argument("--periods", type=int, default=3, help="Periods of each market.")
    parser.add_argument("--market", nargs="?", const="100,100", default=None, help="Also time one market of P,T (default 100,100).")
    parser.add_argument("--one-by-one", action="store_true", help="Also run each size one transaction at a time.")
    parser.add_argument("--transfers", type=int, default=CEILING_TRANSFERS, help="Transfers of the ceiling's phase.")
    parser.add_argument("--json", action="store_true", help="End with one JSON line of every figure.")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]

    runs: list[dict[str, Any]] = []
    with AnvilNode(port=free_port(), **NODE) as node:
        ceiling = node_ceiling(Chain.connect(node.url), args.transfers)
        for size in sizes:
            runs.append(market_run(node.url, size, args.periods, node=node))
            if args.one_by_one:
                runs.append(market_run(node.url, size, args.periods, pipelined=False, node=node))
        if args.market:
            producers, periods = (int(x) for x in args.market.split(","))
            runs.append(market_run(node.url, producers, periods, node=node))

    table = Table(title=f"simulate on anvil: settled transactions against anvil's pipelined transfers ({ceiling:,.0f}/s)")
    columns = ("producers", "periods", "sending", "tasks", "transactions", "seconds", "tx/s", "tasks/s", "tx/s / ceiling")
    for column in (*columns, "CPU ms/tx (Python + anvil)"):
        table.add_column(column, justify="right")
    for run in runs:
        table.add_row(
            str(run["producers"]),
            str(run["periods"]),
            "pipelined" if run["pipelined"] else "one by one",
            str(run["tasks"]),
            str(run["transactions"]),
            f"{run['seconds']:.1f}",
            f"{run['tx_per_s']:,.0f}",
            f"{run['tasks_per_s']:,.1f}",
            f"{run['tx_per_s'] / ceiling:.2f}",
            "" if run["cpu_ms_per_tx"] is None else f"{run['cpu_ms_per_tx']:.2f}",
        )
    console.print(table)
    if not all(run["invariants_hold"] for run in runs):
        console.print("[red]an invariant failed in a run[/red]")
    if args.json:
        print(json.dumps({"ceiling_transfers_per_s": ceiling, "runs": runs}))


if __name__ == "__main__":
    main()
