"""Render time of the explorer's product and ESP pages with many products in the database (docs/explorer.md).

Builds the API app on an embedded chain with a temporary SQLite database, serves it with uvicorn on
127.0.0.1 (a thread, a free port), and makes a small real market over HTTP: `--esps` staked ESPs, a
producer and one product per ESP, each rated. Then it inserts `--products` more products straight
into the database, as the indexer would have (a `products` row and its ProductRegistered and mint
Transfer events in `chain_events`), with `--ratings` Rated events and `--challenges` verdicts among
them, at blocks the chain has. Then it asks, `--requests` times each, interleaved, from one
keep-alive httpx client:

- GET /explore/products/{id} of a random product, beside its JSON twin GET /products/{id};
- GET /explore/esps/{address} of a random ESP, beside its JSON twin GET /esps/{address}/reputation
  (the same MWSL over every rating, which the page also charts over time).

It prints p50 and p99 of each and the page's p50 over its twin's p50 (the baseline, measured in the
same run). With --json the last line is one JSON object with every figure.

    python benchmarks/explorer_render.py [--products 10000] [--requests 200] [--esps 4] [--ratings 2000] [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import insert

from api import models
from api.launcher import serve_in_thread
from api.main import create_app
from api.settings import Settings
from market.chain.connection import Chain
from market.terms import ETHER

SETTINGS: dict[str, Any] = {
    "faucet_wei": 10 * ETHER,
    "faucet_client_budget_wei": 10**6 * ETHER,
    "faucet_budget_wei": 10**6 * ETHER,
    "rate_limit_per_s": 0,
    "account_rate_limit_per_s": 0,
    "account_creations_per_hour": 0,
    "simulated_esps": True,
}


def serving(app: FastAPI) -> AbstractContextManager[str]:
    return serve_in_thread(app)


def small_market(http: httpx.Client, esps: int) -> list[str]:
    """`esps` ESPs over HTTP, one product each by one producer, each rated: the ESPs' addresses."""
    producer = http.post("/accounts").json()
    headers = {"Authorization": f"Bearer {producer['api_key']}"}
    addresses = []
    for i in range(esps):
        esp = http.post("/accounts").json()
        registered = http.post("/esps", json={"name": f"edge {i}"}, headers={"Authorization": f"Bearer {esp['api_key']}"})
        assert registered.status_code == 201, registered.text
        task = http.post("/tasks", json={"prompt": f"seed {i}", "esp": esp["address"]}, headers=headers).json()
        assert http.post("/products", json={"task_id": task["id"]}, headers=headers).status_code == 201
        assert http.post(f"/tasks/{task['id']}/rating", json={"positive": True, "score": 70}, headers=headers).status_code == 200
        addresses.append(esp["address"])
    return addresses


def seed(app: FastAPI, esps: list[str], products: int, ratings: int, challenges: int, rng: random.Random) -> list[int]:
    """Insert products (with their registration and mint events), ratings and challenges as the indexer would:
    the token ids of every product."""
    state = app.state.market
    head = state.chain.head()
    producers = [f"0x{rng.getrandbits(160):040x}" for _ in range(50)]
    zero = "0x" + "0" * 40
    with state.sessions.begin() as session:
        first = (session.query(models.Product.token_id).order_by(models.Product.token_id.desc()).limit(1).scalar() or 0) + 1
        rows, events = [], []
        for i in range(products):
            token = first + i
            block = rng.randint(1, head)
            producer, esp = rng.choice(producers), rng.choice(esps)
            content = "0x" + rng.getrandbits(256).to_bytes(32, "big").hex()
            phash = rng.getrandbits(64)
            lock = "0x" + rng.getrandbits(256).to_bytes(32, "big").hex()
            rows.append(
                {
                    "token_id": token,
                    "producer": producer,
                    "esp": esp,
                    "owner": producer,
                    "content_hash": content,
                    "perceptual_hash": f"{phash:016x}",
                    "revoked": False,
                    "block_number": block,
                    "lock_id": lock,
                    "generation_seq": token,
                    "bond_released": False,
                }
            )
            registered = {"tokenId": token, "producer": producer, "esp": esp, "contentHash": content, "perceptualHash": str(phash)}
            events.append((block, "registry", "ProductRegistered", registered | {"lockId": lock, "generationSeq": token}))
            events.append((block, "registry", "Transfer", {"from": zero, "to": producer, "tokenId": token}))
        at0 = state.chain.now() - 86_400
        for i in range(ratings):
            positive = rng.random() < 0.8
            lock = "0x" + rng.getrandbits(256).to_bytes(32, "big").hex()
            rated = {"producer": rng.choice(producers), "esp": rng.choice(esps), "lockId": lock, "positive": positive}
            events.append((rng.randint(1, head), "ledger", "Rated", rated | {"score": 60, "at": at0 + i * 30, "fee": "10"}))
        session.execute(insert(models.Product), rows)
        session.execute(
            insert(models.ChainEvent),
            [
                {"block_number": block, "log_index": 10_000 + i, "contract": contract, "name": name, "args": args}
                for i, (block, contract, name, args) in enumerate(events)
            ],
        )
        tokens = [first + i for i in range(products)]
        if tokens and challenges:
            session.execute(
                insert(models.Challenge),
                [
                    {
                        "original_id": rng.choice(tokens),
                        "duplicate_id": rng.choice(tokens),
                        "challenger": rng.choice(producers),
                        "upheld": rng.random() < 0.5,
                        "distance": rng.randint(0, 64),
                        "block_number": rng.randint(1, head),
                        "log_index": 900_000 + i,
                    }
                    for i in range(challenges)
                ],
            )
    return list(range(1, first + products))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def timed(http: httpx.Client, path: str) -> float:
    start = time.perf_counter()
    reply = http.get(path)
    elapsed = time.perf_counter() - start
    if reply.status_code != 200:
        raise RuntimeError(f"GET {path}: {reply.status_code} {reply.text[:200]}")
    return elapsed * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--esps", type=int, default=4)
    parser.add_argument("--ratings", type=int, default=2_000)
    parser.add_argument("--challenges", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.products < 0 or args.requests < 1 or args.esps < 1 or args.ratings < 0 or args.challenges < 0:
        print("--products, --ratings and --challenges must be >= 0, --requests and --esps >= 1", file=sys.stderr)
        return 2
    rng = random.Random(args.seed)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(Settings(data_dir=Path(tmp), chain=Chain.embedded(), secret="explorer-benchmark", **SETTINGS))
        with serving(app) as url, httpx.Client(base_url=url, timeout=60) as http:
            esps = small_market(http, args.esps)
            tokens = seed(app, esps, args.products, args.ratings, args.challenges, rng)
            for path in (f"/explore/products/{tokens[0]}", f"/products/{tokens[0]}", f"/explore/esps/{esps[0]}"):
                timed(http, path)  # warm-up: templates compiled, block times and constants cached
            pairs: dict[str, tuple[str, str, list[Any]]] = {
                "product": ("/explore/products/{}", "/products/{}", tokens),
                "esp": ("/explore/esps/{}", "/esps/{}/reputation", esps),
            }
            times: dict[str, dict[str, list[float]]] = {name: {"page": [], "twin": []} for name in pairs}
            for _ in range(args.requests):
                for name, (page, twin, keys) in pairs.items():
                    key = rng.choice(keys)
                    times[name]["page"].append(timed(http, page.format(key)))
                    times[name]["twin"].append(timed(http, twin.format(key)))
    result: dict[str, Any] = {
        "products": len(tokens),
        "requests": args.requests,
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(f"{len(tokens)} products, {args.ratings} ratings, {args.challenges} challenges, {args.requests} requests per page")
    print(f"{'page':<34} {'p50 ms':>8} {'p99 ms':>8}   {'JSON twin (baseline)':<28} {'p50 ms':>8} {'p99 ms':>8}   {'p50 ratio':>9}")
    for name, (page, twin, _) in pairs.items():
        figures = {
            kind: {"p50_ms": statistics.median(times[name][kind]), "p99_ms": percentile(times[name][kind], 0.99)}
            for kind in ("page", "twin")
        }
        ratio = figures["page"]["p50_ms"] / figures["twin"]["p50_ms"]
        result[name] = figures | {"ratio_p50": ratio}
        print(
            f"GET {page.format('…'):<30} {figures['page']['p50_ms']:8.1f} {figures['page']['p99_ms']:8.1f}   "
            f"GET {twin.format('…'):<24} {figures['twin']['p50_ms']:8.1f} {figures['twin']['p99_ms']:8.1f}   {ratio:8.2f}x"
        )
    print(f"in {result['seconds']} s")
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
