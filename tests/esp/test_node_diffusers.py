"""A diffusers job through an ESP node (issue #17, item 3): a tiny Stable Diffusion pipeline built locally with
random weights, the node generating with it, the market API in process; the product registers with a valid
proof (the registry checks the opening against the paid lock's commitment) and the task shows the measured
generation time beside the core's predicted latency."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest
from eth_account import Account
from fastapi.testclient import TestClient
from PIL import Image

from api.main import create_app
from api.settings import Settings
from client.market_client import MarketClient
from esp.node import EspNode, NodeConfig
from market.chain.connection import Chain
from market.content import content_hash
from market.protocol import Protocol
from market.terms import ETHER

pytest.importorskip("diffusers", reason="the diffusers extra is in the dev dependencies: this runs in CI")
from tiny_diffusion import TINY_SIZE, build_tiny_pipeline  # noqa: E402  # tests/ is on the path (pyproject)

BASE = "http://testserver"


def test_a_job_generated_by_a_diffusers_pipeline_on_a_node_registers_with_a_valid_proof(tmp_path: Path) -> None:
    chain = Chain.embedded()
    pipeline = build_tiny_pipeline(tmp_path / "tiny-sd")
    settings = Settings(data_dir=tmp_path / "data", chain=chain, secret="d" * 32, faucet_wei=10**19)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        state = client.app.state.market  # type: ignore[attr-defined]
        key = Account.create()
        chain.fund([(key.address, ETHER)])
        node = EspNode(
            NodeConfig(
                api_url=BASE,
                account=key,
                db_path=tmp_path / "node.sqlite",
                generator=f"diffusers:{pipeline},steps=2,size={TINY_SIZE}",
                wait_s=0,
                protocol=Protocol(state.market, state.protocol.terms),
            ),
            connect=lambda: MarketClient.sign_in(BASE, key, http=client),
        )
        node.start()
        producer, _ = MarketClient.with_new_account(BASE, http=client)
        task = producer.create_task("a red fox at dawn")
        node.step()  # offers
        offered = producer.task(task.id)
        assert offered.state == "offered" and offered.cost is not None
        assert offered.generation_s is not None and offered.generation_s > 0  # measured on the node's machine
        assert offered.cost.latency_s > 0  # the core's prediction, beside it
        producer.lock(task.id)
        deadline = time.monotonic() + 30
        while producer.task(task.id).state != "delivered" and time.monotonic() < deadline:
            node.step()  # reveals on chain, then delivers
        product = producer.register_product(task.id)
        image_bytes = producer.content(product.token_id)
        assert Image.open(io.BytesIO(image_bytes)).size == (TINY_SIZE, TINY_SIZE)
        record = state.market.registry.product(product.token_id)
        assert record.content_hash == content_hash(image_bytes) and record.producer == producer.me().address
        node.close()
