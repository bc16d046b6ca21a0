"""MWSL at scale: ingest 1,000,000 ratings and recompute every reputation of 10,000 producers x 1,000 ESPs.

The vectorized recompute (reputation.MWSL.reputation, all P x E pairs) is compared with a naive
per-pair pure-Python implementation of the same formulas (docs/reputation.md), timed on a random sample
of pairs in the same run and extrapolated to all pairs; the sample also checks that both agree.
Target: the full recompute under 1 s on this CPU.

    python benchmarks/reputation_scale.py [--producers 10000] [--esps 1000] [--ratings 1000000]
        [--sample-pairs 50] [--repeats 3] [--dtype float64|float32] [--seed 0] [--json]

With --json the last line is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from collections import defaultdict

import torch
from rich.console import Console
from rich.table import Table

from reputation import MWSL, MWSLConfig

TARGET_RECOMPUTE_S = 1.0


def make_ratings(n_producers: int, n_esps: int, n_ratings: int, periods: float, seed: int) -> dict[str, torch.Tensor]:
    """Random ratings: uniform producers and ESPs, uniform times in [0, periods), per-ESP positive rates."""
    gen = torch.Generator().manual_seed(seed)
    producer = torch.randint(n_producers, (n_ratings,), generator=gen)  # [R]
    esp = torch.randint(n_esps, (n_ratings,), generator=gen)  # [R]
    t = torch.rand(n_ratings, generator=gen, dtype=torch.float64) * periods  # [R]
    quality = 0.5 + 0.45 * torch.rand(n_esps, generator=gen)  # [E]
    positive = torch.rand(n_ratings, generator=gen) < quality[esp]  # [R]
    return {"producer": producer, "esp": esp, "t": t, "positive": positive}


class NaiveMWSL:
    """The formulas of docs/reputation.md, one (producer, ESP) pair at a time, in pure Python."""

    def __init__(self, config: MWSLConfig, ratings: dict[str, torch.Tensor]) -> None:
        self.c = config
        self.by_pair: dict[tuple[int, int], list[tuple[float, bool]]] = defaultdict(list)
        self.raters: dict[int, set[int]] = defaultdict(set)
        self.total: dict[int, int] = defaultdict(int)
        for p, e, t, pos in zip(
            ratings["producer"].tolist(), ratings["esp"].tolist(), ratings["t"].tolist(), ratings["positive"].tolist(), strict=True
        ):
            self.by_pair[(p, e)].append((t, pos))
            self.raters[e].add(p)
            self.total[p] += 1
        self.used = defaultdict(int)
        for p, _ in self.by_pair:
            self.used[p] += 1

    def local(self, i: int, j: int, now: float) -> tuple[float, float, float]:
        c = self.c
        alpha = beta = 0.0
        for t, pos in self.by_pair.get((i, j), ()):
            theta = c.z ** ((now - t) / c.period)
            if pos:
                alpha += c.kappa * theta
            else:
                beta += c.eta * theta
        if alpha + beta == 0:
            return 0.0, 0.0, 1.0
        u = c.prior_weight / (alpha + beta + c.prior_weight) if c.uncertainty == "evidence" else 1 - c.link_quality
        return (1 - u) * alpha / (alpha + beta), (1 - u) * beta / (alpha + beta), u

    def reputation(self, i: int, j: int, now: float) -> float:
        c = self.c
        bl, dl, ul = self.local(i, j, now)
        wsum = bs = ds = us = 0.0
        for y in self.raters.get(j, ()):
            if y == i:
                continue
            history = self.by_pair[(y, j)]
            familiarity = len(history) / (self.total[y] / self.used[y])
            timeliness = c.z ** ((now - max(t for t, _ in history)) / c.period)
            w = c.delta1 * familiarity + c.delta2 * timeliness
            b, d, u = self.local(y, j, now)
            wsum += w
            bs, ds, us = bs + w * b, ds + w * d, us + w * u
        br, dr, ur = (bs / wsum, ds / wsum, us / wsum) if wsum > 0 else (0.0, 0.0, 1.0)
        k = ul + ur - ul * ur
        if k == 0:
            b, u = (bl + br) / 2, (ul + ur) / 2
        else:
            b, u = (bl * ur + br * ul) / k, ul * ur / k
        return b + c.base_rate * u


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--producers", type=int, default=10_000)
    parser.add_argument("--esps", type=int, default=1_000)
    parser.add_argument("--ratings", type=int, default=1_000_000)
    parser.add_argument("--periods", type=float, default=100.0, help="ratings spread uniformly over this many periods")
    parser.add_argument("--batch", type=int, default=100_000, help="ratings per observe() call")
    parser.add_argument("--sample-pairs", type=int, default=50, help="pairs timed with the naive implementation")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object on the last line")
    args = parser.parse_args()
    console = Console(stderr=False)
    dtype = getattr(torch, args.dtype)
    config = MWSLConfig()
    ratings = make_ratings(args.producers, args.esps, args.ratings, args.periods, args.seed)
    now = args.periods

    start = time.perf_counter()
    model = MWSL(config, args.producers, args.esps, dtype=dtype)
    for lo in range(0, args.ratings, args.batch):
        hi = min(lo + args.batch, args.ratings)
        model.observe(ratings["producer"][lo:hi], ratings["esp"][lo:hi], ratings["positive"][lo:hi], ratings["t"][lo:hi])
    ingest_s = time.perf_counter() - start

    reputation = model.reputation(now)  # warm-up
    extra = make_ratings(args.producers, args.esps, 1000 * args.repeats, args.periods, args.seed + 2)
    times = []
    for k in range(args.repeats):
        # A few new ratings between queries, as in a running market: each recompute starts from scratch
        # (finding the rated pairs included).
        lo, hi = 1000 * k, 1000 * (k + 1)
        model.observe(extra["producer"][lo:hi], extra["esp"][lo:hi], extra["positive"][lo:hi], extra["t"][lo:hi])
        start = time.perf_counter()
        reputation = model.reputation(now)  # [P, E]
        times.append(time.perf_counter() - start)
    recompute_s = statistics.median(times)

    everything = {key: torch.cat([ratings[key], extra[key]]) for key in ratings}
    start = time.perf_counter()
    naive = NaiveMWSL(config, everything)
    naive_index_s = time.perf_counter() - start
    gen = torch.Generator().manual_seed(args.seed + 1)
    pairs = list(
        zip(
            torch.randint(args.producers, (args.sample_pairs,), generator=gen).tolist(),
            torch.randint(args.esps, (args.sample_pairs,), generator=gen).tolist(),
            strict=True,
        )
    )
    start = time.perf_counter()
    naive_values = [naive.reputation(i, j, now) for i, j in pairs]
    naive_sample_s = time.perf_counter() - start
    n_pairs = args.producers * args.esps
    naive_full_s = naive_sample_s / len(pairs) * n_pairs
    max_abs_diff = max(abs(v - float(reputation[i, j])) for v, (i, j) in zip(naive_values, pairs, strict=True))

    figures = {
        "producers": args.producers,
        "esps": args.esps,
        "ratings": args.ratings + len(extra["t"]),
        "dtype": args.dtype,
        "threads": torch.get_num_threads(),
        "ingest_s": round(ingest_s, 4),
        "ingest_ratings_per_s": round(args.ratings / ingest_s),
        "recompute_s": round(recompute_s, 4),
        "recompute_runs_s": [round(t, 4) for t in times],
        "target_recompute_s": TARGET_RECOMPUTE_S,
        "meets_target": recompute_s < TARGET_RECOMPUTE_S,
        "naive_sample_pairs": len(pairs),
        "naive_sample_s": round(naive_sample_s, 4),
        "naive_per_pair_ms": round(1000 * naive_sample_s / len(pairs), 4),
        "naive_index_build_s": round(naive_index_s, 4),
        "naive_full_extrapolated_s": round(naive_full_s, 1),
        "speedup": round(naive_full_s / recompute_s, 1),
        "max_abs_diff_vs_naive": max_abs_diff,
    }
    table = Table("figure", "value", title=f"MWSL: {args.ratings:,} ratings, {args.producers:,} producers x {args.esps:,} ESPs")
    rate = args.ratings / ingest_s
    per_pair_ms = 1000 * naive_sample_s / len(pairs)
    table.add_row(f"ingest (observe, batches of {args.batch:,})", f"{ingest_s:.3f} s ({rate:,.0f} ratings/s)")
    table.add_row(f"full recompute, median of {args.repeats}", f"{recompute_s:.3f} s (target < {TARGET_RECOMPUTE_S} s)")
    table.add_row(f"naive Python, {len(pairs)} sampled pairs", f"{naive_sample_s:.3f} s ({per_pair_ms:.2f} ms/pair)")
    table.add_row(f"naive, extrapolated to {n_pairs:,} pairs", f"{naive_full_s:,.0f} s ({naive_full_s / 3600:.2f} h)")
    table.add_row("ratio naive / vectorized", f"{naive_full_s / recompute_s:,.0f}x")
    table.add_row("max |T_vectorized - T_naive| on the sample", f"{max_abs_diff:.2e}")
    console.print(table)
    verdict = "[green]meets[/green]" if recompute_s < TARGET_RECOMPUTE_S else "[red]misses[/red]"
    console.print(
        f"full recompute {recompute_s:.3f} s {verdict} the {TARGET_RECOMPUTE_S} s target "
        f"on {torch.get_num_threads()} threads ({args.dtype})"
    )
    if not math.isfinite(max_abs_diff) or max_abs_diff > 1e-6:
        console.print("[red]the vectorized and naive reputations disagree[/red]")
    if args.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
