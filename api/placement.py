"""Placement and cost of one generation task on the chosen ESP's server, by the offloading core.

Each task gets a fresh engine (one device, one server per registered ESP) seeded by the task's
number, so the breakdown is reproducible and requests do not share mutable simulator state.
"""

from __future__ import annotations

import torch
from eth_account.signers.local import LocalAccount

from market.actors import Esp, Producer
from market.chain.deploy import Market
from market.content import ContentStore
from market.flows import MarketContext, TaskCost, place_tasks
from offload_core.config import preset
from offload_core.engine import EdgeEngine
from offload_core.names import CachingPolicy, PresetName
from reputation import MWSL, MWSLConfig


def place(
    market: Market, store: ContentStore, producer: LocalAccount, esp: LocalAccount, esp_index: int, n_esps: int, seed: int
) -> TaskCost:
    edge = preset(PresetName.MATO, n_devices=1, n_servers=n_esps).config
    engine = EdgeEngine(edge, 1, CachingPolicy.LFU, dtype=torch.float64)
    engine.reset(seed)
    ctx = MarketContext(market=market, engine=engine, selector=MWSL(MWSLConfig(), 1, n_esps), store=store)
    the_producer, the_esp = Producer(0, producer), Esp(esp_index, esp)
    return place_tasks(ctx, [the_producer], [the_esp])[0]
