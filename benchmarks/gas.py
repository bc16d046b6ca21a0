"""Gas per contract operation of protocol v2, measured on a fresh deployment.

Each operation runs REPEATS times on the same chain; the table shows the first call (which may
pay one-time storage initialisation) and the steady-state median of the calls after it. The HTLC
round trip (lockGeneration with the ESP's signed offer + withdrawGeneration, steady state) is
compared with the reference HTLC chatch/hashed-timelock-contract-ethereum, whose newContract +
withdraw takes 229,106 gas on the same EVM with the optimizer on; the target is <= 150,000 gas.

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
from collections.abc import Callable
from itertools import count

from eth_account.signers.local import LocalAccount
from rich.console import Console
from rich.table import Table

from market.chain.connection import Chain, TxResult
from market.chain.deploy import Market, deploy_market
from market.chain.hashlocks import hashlock_of
from market.chain.offers import Offer, Opening, SignedOffer, sign_offer
from market.terms import ETHER

REFERENCE_HTLC_ROUND_TRIP = 229_106
TARGET_HTLC_ROUND_TRIP = 150_000
FEE = ETHER // 100
URI = "ipfs://bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"  # a CIDv1: 66 bytes
ROUND_TRIP = ("lockGeneration", "withdrawGeneration")


def _sha(*parts: object) -> bytes:
    return hashlib.sha256(" ".join(map(str, parts)).encode()).digest()


class _Jobs:
    """Signed offers with deterministic keys, salts and nonces (so that calldata, and gas, repeat)."""

    def __init__(self, market: Market) -> None:
        self.market = market
        self._nonces = count(1)

    def offer(
        self, esp: LocalAccount, producer: str, label: str, phash: int, duration: int = 3600, salt: str = ""
    ) -> tuple[SignedOffer, Opening, bytes]:
        """`esp`'s signed offer to `producer` for content `label`: the offer, its opening and the key."""
        key = _sha("key", label, salt)
        opening = Opening(_sha("content", label), phash, _sha("prompt", label), _sha("salt", label, salt))
        now = self.market.chain.now()
        offer = Offer(
            esp=esp.address,
            producer=producer,
            hashlock=hashlock_of(key),
            fee=FEE,
            timelock=now + duration,
            expiry=now + 300,
            nonce=next(self._nonces),
            commitment=opening.commitment(),
        )
        signed = sign_offer(esp, offer, chain_id=self.market.chain.chain_id, exchange=self.market.exchange.address)
        return signed, opening, key


def measure(chain: Chain, repeats: int) -> dict[str, list[int]]:
    """Run every operation `repeats` times; returns the gas of each call, in order."""
    market, deployments = deploy_market(chain)
    gas: dict[str, list[int]] = defaultdict(list)
    for name, receipt in deployments.items():
        gas[f"deploy {name}"].append(receipt.gas_used)

    def book(operation: str, tx: TxResult) -> TxResult:
        gas[operation].append(tx.gas_used)
        return tx

    exchange, registry, ledger = market.exchange, market.registry, market.ledger
    stake, window = exchange.min_stake(), registry.challenge_window()
    jobs = _Jobs(market)
    producer = chain.new_account(100 * ETHER, "producer")
    esp = chain.new_account(10 * ETHER, "esp")
    buyer = chain.new_account(100 * ETHER, "buyer")
    collector = chain.new_account(100 * ETHER, "collector")
    copyist = chain.new_account(10 * ETHER, "copyist")
    book("registerEsp", exchange.register_esp(esp, stake))

    def paid(who: LocalAccount, label: str, phash: int, record: Callable[[str, TxResult], object] = book):
        """A generation of `label` for `who` by the main ESP: locked and withdrawn (booked via `record`)."""
        signed, opening, key = jobs.offer(esp, who.address, label, phash)
        record("lockGeneration", exchange.lock_generation(who, signed).tx)
        record("withdrawGeneration", exchange.withdraw_generation(esp, signed.offer, key))
        return signed.offer, opening

    def unbooked(operation: str, tx: TxResult) -> None:
        return None

    for i in range(repeats):
        # An ESP that will leave at the end of the round.
        leaving = chain.new_account(10 * ETHER, "leaving esp")
        book("registerEsp", exchange.register_esp(leaving, stake))
        book("announceExit", exchange.announce_exit(leaving))

        # HTLC round trip, registration of its content, rating.
        phash = (0x9E3779B97F4A7C15 * (i + 1)) % 2**64
        offer, opening = paid(producer, f"original {i}", phash)
        original = registry.register(producer, offer, opening, URI)
        book("register", original.tx)
        book("rate", ledger.rate(producer, offer, True, 40))

        # A job the ESP never delivers: the producer refunds at the timelock.
        signed, _, _ = jobs.offer(esp, producer.address, f"undelivered {i}", phash ^ 1, duration=120)
        exchange.lock_generation(producer, signed)
        chain.set_next_block_timestamp(signed.offer.timelock)
        book("refundGeneration", exchange.refund_generation(producer, signed.offer))

        # Finality: the bond comes back as a credit.
        chain.set_next_block_timestamp(registry.product(original.token_id).registered_at + window)
        book("claimBond", registry.claim_bond(producer, original.token_id))
        book("withdrawCredit (registry)", registry.withdraw_credit(producer))

        # Primary sale (the seller is the producer: no royalty), then a resale with royalty.
        for seller, to, price, name in (
            (producer, buyer, ETHER // 10, "withdrawPurchase (sale)"),
            (buyer, collector, ETHER // 5, "withdrawPurchase (resale with royalty)"),
        ):
            registry.approve(seller, exchange.address, original.token_id)
            secret = _sha("secret", i, name)
            purchase = exchange.lock_purchase(to, original.token_id, hashlock_of(secret), chain.now() + 3600, price)
            book("lockPurchase", purchase.tx)
            book(name, exchange.withdraw_purchase(seller, purchase.terms, secret))
        book("withdrawCredit (exchange)", exchange.withdraw_credit(producer))

        # A purchase its seller never claims: the buyer refunds at the timelock.
        unclaimed = exchange.lock_purchase(
            buyer, original.token_id, hashlock_of(_sha("unclaimed", i)), chain.now() + 120, ETHER // 5
        )
        chain.set_next_block_timestamp(unclaimed.terms.timelock)
        book("refundPurchase", exchange.refund_purchase(buyer, unclaimed.terms))

        # Challenges by the original's owner against later generations, far and near.
        far = registry.register(copyist, *paid(copyist, f"unrelated {i}", phash ^ 0xFFFF_FFFF, unbooked), URI)
        book("challenge (rejected)", registry.challenge(collector, original.token_id, far.token_id).tx)
        near = registry.register(copyist, *paid(copyist, f"copy {i}", phash ^ 0b111, unbooked), URI)
        book("challenge (upheld)", registry.challenge(collector, original.token_id, near.token_id).tx)

        # An ESP that commits one content to two producers, proven by a third party.
        cheat = chain.new_account(10 * ETHER, "equivocating esp")
        book("registerEsp", exchange.register_esp(cheat, stake))
        first, first_opening, _ = jobs.offer(cheat, producer.address, f"sold twice {i}", phash, salt="to one")
        second, second_opening, _ = jobs.offer(cheat, buyer.address, f"sold twice {i}", phash, salt="to another")
        exchange.lock_generation(producer, first)
        exchange.lock_generation(buyer, second)
        book("proveEquivocation", exchange.prove_equivocation(collector, first.offer, first_opening, second.offer, second_opening))

        # The leaving ESP takes its stake back after the unbonding delay.
        chain.set_next_block_timestamp(exchange.esp_info(leaving.address).available_at)
        book("withdrawStake", exchange.withdraw_stake(leaving))
    return dict(gas)


def summarise(gas: dict[str, list[int]]) -> tuple[dict[str, int], dict[str, int]]:
    """(steady state, first call) per operation: the median of the calls after the first, and the first."""
    steady = {op: int(statistics.median(calls[1:])) if len(calls) > 1 else calls[0] for op, calls in gas.items()}
    first = {op: calls[0] for op, calls in gas.items()}
    return steady, first


def htlc_round_trip(steady: dict[str, int]) -> int:
    return sum(steady[op] for op in ROUND_TRIP)


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
    steady, first = summarise(gas)
    round_trip = htlc_round_trip(steady)
    ratio = round_trip / REFERENCE_HTLC_ROUND_TRIP
    met = round_trip <= TARGET_HTLC_ROUND_TRIP

    table = Table("operation", "first call", "steady state", title=f"gas per operation ({args.rpc or 'eth-tester'})")
    for op in gas:
        table.add_row(op, f"{first[op]:,}", f"{steady[op]:,}")
    console = Console()
    console.print(table)
    console.print(
        f"HTLC round trip (lockGeneration + withdrawGeneration): {round_trip:,} gas; "
        f"reference HTLC {REFERENCE_HTLC_ROUND_TRIP:,}; ratio {ratio:.3f}x; "
        f"target <= {TARGET_HTLC_ROUND_TRIP:,}: {'met' if met else 'not met'}",
        highlight=False,
    )
    if args.json:
        print(
            json.dumps(
                {
                    "backend": args.rpc or "eth-tester",
                    "gas": steady,
                    "first_call_gas": first,
                    "htlc_round_trip": round_trip,
                    "reference_htlc_round_trip": REFERENCE_HTLC_ROUND_TRIP,
                    "ratio_to_reference": round(ratio, 4),
                    "target": TARGET_HTLC_ROUND_TRIP,
                    "meets_target": met,
                }
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
