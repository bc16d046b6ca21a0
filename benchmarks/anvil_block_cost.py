"""What one block costs anvil as its state grows: why a long market slows down on anvil (docs/scale.md).

anvil's in-memory backend works out the state root over the whole state when it mines a block, so
an empty block costs time in proportion to the accounts and storage the chain holds. This benchmark
funds `--step` fresh accounts at a time (pipelined transfers) and, after each step, times ten empty
blocks (`evm_mine`). It prints each step's time per block and its ratio to the first, which was
measured in the same run on the same node.

    python benchmarks/anvil_block_cost.py [--steps 5] [--step 4000] [--json]
"""

from __future__ import annotations

import argparse
import json
import time

from eth_account import Account
from rich.console import Console
from rich.table import Table

from market.chain.anvil import AnvilNode, free_port
from market.chain.connection import Call, Chain
from market.terms import ETHER

SENDERS = 20
BLOCKS_TIMED = 10


def empty_block_ms(chain: Chain) -> float:
    """Mean wall time of `BLOCKS_TIMED` empty blocks, in ms."""
    started = time.perf_counter()
    for _ in range(BLOCKS_TIMED):
        chain.rpc.call("evm_mine", [])  # type: ignore[attr-defined]  # an RpcChain: Chain.connect
    return (time.perf_counter() - started) / BLOCKS_TIMED * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--step", type=int, default=4000, help="fresh accounts funded per step")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows: list[dict[str, float]] = []
    with AnvilNode(port=free_port(), order="fifo", balance_ether=10**9) as node:
        chain = Chain.connect(node.url)
        senders = [chain.new_account(label="sender") for _ in range(SENDERS)]
        chain.fund([(sender.address, 100 * ETHER) for sender in senders])
        accounts = 0
        for step in range(args.steps + 1):
            rows.append({"accounts": accounts, "empty_block_ms": empty_block_ms(chain)})
            if step < args.steps:
                calls = [(Call(Account.create().address, value=1), senders[i % SENDERS]) for i in range(args.step)]
                chain.send_many(calls)
                accounts += args.step
    first = rows[0]["empty_block_ms"]
    table = Table(title="anvil: one empty block as the state grows")
    for column in ("fresh accounts", "ms per empty block", "ratio to the first"):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(f"{row['accounts']:,.0f}", f"{row['empty_block_ms']:.2f}", f"{row['empty_block_ms'] / first:.1f}x")
    Console().print(table)
    if args.json:
        print(json.dumps({"rows": rows}))


if __name__ == "__main__":
    main()
