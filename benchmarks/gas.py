"""Gas per contract operation, measured on a fresh deployment.

Each operation runs REPEATS times on the same chain; the table shows the first call (which may
pay one-time storage initialisation) and the steady-state median. The HTLC round trip
(lockGeneration + generation withdraw, steady state) is compared with the reference HTLC
chatch/hashed-timelock-contract-ethereum, whose newContract + withdraw takes 229,106 gas on the
same EVM with the optimizer on; the target is <= 150,000 gas (<= 0.65x).

    python benchmarks/gas.py [--rpc URL] [--repeats 3] [--json]

With --json the last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
from collections import defaultdict

from eth_account.signers.local import LocalAccount
from rich.console import Console
from rich.table import Table

from market.chain.connection import Chain
from market.chain.contracts import Registered
from market.chain.deploy import Market, deploy_market
from market.chain.hashlocks import hashlock_of, new_secret
from market.chain.signing import sign_generation

ETHER = 10**18
REFERENCE_HTLC_ROUND_TRIP = 229_106
TARGET_HTLC_ROUND_TRIP = 150_000
URI = "ipfs://bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"  # a CIDv1: 66 bytes


def _register(market: Market, producer: LocalAccount, esp: LocalAccount, label: str, phash: int) -> Registered:
    content_hash = hashlib.sha256(label.encode()).digest()
    prompt_hash = hashlib.sha256(b"prompt " + label.encode()).digest()
    signature = sign_generation(
        esp, chain_id=market.chain.chain_id, registry=market.registry.address, producer=producer.address,
        content_hash=content_hash, prompt_hash=prompt_hash, perceptual_hash=phash,
    )
    return market.registry.register(
        producer, content_hash=content_hash, perceptual_hash=phash, prompt_hash=prompt_hash,
        esp=esp.address, signature=signature, uri=URI,
    )


def measure(chain: Chain, repeats: int) -> dict[str, list[int]]:
    """Run every operation `repeats` times; returns the gas of each call, in order."""
    market, deployments = deploy_market(chain)
    gas: dict[str, list[int]] = defaultdict(list)
    for name, receipt in deployments.items():
        gas[f"deploy {name}"].append(receipt.gas_used)
    producer = chain.new_account(100 * ETHER, "producer")
    esp = chain.new_account(10 * ETHER, "esp")
    buyer = chain.new_account(100 * ETHER, "buyer")
    reseller_buyer = chain.new_account(100 * ETHER, "buyer")
    attacker = chain.new_account(10 * ETHER, "attacker")
    exchange, registry, ledger = market.exchange, market.registry, market.ledger

    for i in range(repeats):
        key = new_secret()
        lock = exchange.lock_generation(producer, esp.address, hashlock_of(key), chain.now() + 3600, ETHER // 100)
        gas["lockGeneration"].append(lock.tx.gas_used)
        gas["withdraw (generation)"].append(exchange.withdraw(esp, lock.lock_id, key).gas_used)
        gas["rate"].append(ledger.rate(producer, lock.lock_id, True, 40).gas_used)

        unpaid = exchange.lock_generation(
            producer, esp.address, hashlock_of(new_secret()), chain.now() + 120, ETHER // 100
        )
        chain.advance_time(121)
        gas["refund"].append(exchange.refund(producer, unpaid.lock_id).gas_used)

        phash = (0x9E3779B97F4A7C15 * (i + 1)) % 2**64
        original = _register(market, producer, esp, f"original {i}", phash)
        gas["register"].append(original.tx.gas_used)

        # Primary sale (seller is the producer: no royalty split), then a resale with royalty.
        for seller, to, price in ((producer, buyer, ETHER // 10), (buyer, reseller_buyer, ETHER // 5)):
            registry.approve(seller, exchange.address, original.token_id)
            secret = new_secret()
            purchase = exchange.lock_purchase(to, original.token_id, hashlock_of(secret), chain.now() + 3600, price)
            gas["lockPurchase"].append(purchase.tx.gas_used)
            key_name = "withdraw (sale)" if seller is producer else "withdraw (resale with royalty)"
            gas[key_name].append(exchange.withdraw(seller, purchase.lock_id, secret).gas_used)

        chain.advance_time(1)
        far = _register(market, attacker, esp, f"unrelated {i}", phash ^ 0xFFFF_FFFF)  # distance 32
        gas["challenge (rejected)"].append(registry.challenge(reseller_buyer, original.token_id, far.token_id).tx.gas_used)
        near = _register(market, attacker, esp, f"copy {i}", phash ^ 0b111)  # distance 3
        gas["challenge (upheld)"].append(registry.challenge(reseller_buyer, original.token_id, near.token_id).tx.gas_used)
    return dict(gas)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rpc", help="JSON-RPC URL (default: embedded eth-tester chain)")
    parser.add_argument("--repeats", type=int, default=3, help="calls per operation (>= 2)")
    parser.add_argument("--json", action="store_true", help="end with one JSON object of all figures")
    args = parser.parse_args(argv)
    if args.repeats < 2:
        parser.error("--repeats must be at least 2 (the steady state needs a second call)")

    chain = Chain.connect(args.rpc) if args.rpc else Chain.embedded()
    gas = measure(chain, args.repeats)
    steady = {op: int(statistics.median(calls[1:])) if len(calls) > 1 else calls[0] for op, calls in gas.items()}
    first = {op: calls[0] for op, calls in gas.items()}
    round_trip = steady["lockGeneration"] + steady["withdraw (generation)"]
    ratio = round_trip / REFERENCE_HTLC_ROUND_TRIP

    table = Table("operation", "first call", "steady state", title=f"gas per operation ({args.rpc or 'eth-tester'})")
    for op in gas:
        table.add_row(op, f"{first[op]:,}", f"{steady[op]:,}")
    console = Console()
    console.print(table)
    console.print(
        f"HTLC round trip (lockGeneration + withdraw): {round_trip:,} gas; reference {REFERENCE_HTLC_ROUND_TRIP:,}; "
        f"ratio {ratio:.3f}x; target <= {TARGET_HTLC_ROUND_TRIP:,}: {'met' if round_trip <= TARGET_HTLC_ROUND_TRIP else 'MISSED'}",
        highlight=False,
    )
    if args.json:
        print(json.dumps({
            "backend": args.rpc or "eth-tester",
            "gas": steady,
            "first_call_gas": first,
            "htlc_round_trip": round_trip,
            "reference_htlc_round_trip": REFERENCE_HTLC_ROUND_TRIP,
            "ratio_to_reference": round(ratio, 4),
            "target": TARGET_HTLC_ROUND_TRIP,
            "meets_target": round_trip <= TARGET_HTLC_ROUND_TRIP,
        }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
