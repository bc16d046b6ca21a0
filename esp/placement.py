"""The node's engine: one offloading-core engine for the life of the node, one step per job.

The API's placement (api/placement.py) builds a fresh engine per task, so its costs ignore load and
caches. A node owns its servers for as long as it runs: every job is one step of the same engine, so
the queues a job leaves behind and the models it cached are there for the next (the MATO system of
[Wang 2025] with this node's N servers, one device: the producer of the job in hand).
"""

from __future__ import annotations

import torch

from market.flows import Placement, TaskCost, cost_tasks
from offload_core.config import preset
from offload_core.engine import EdgeEngine
from offload_core.names import CachingPolicy, PresetName, SchedulerName

_PRODUCER, _THIS_ESP = 0, 0
"""The engine's one device is the job's producer; this node is ESP 0, the owner of every server."""


class NodeEngine:
    """Places each job on the node's `servers` edge servers and predicts its cost (`TaskCost`)."""

    def __init__(self, servers: int, caching: CachingPolicy, seed: int, scheduler: SchedulerName = SchedulerName.EDGE) -> None:
        if servers < 1:
            raise ValueError(f"servers must be at least 1, got {servers}")
        self.servers = servers
        edge = preset(PresetName.MATO, n_devices=1, n_servers=servers).config
        self.engine = EdgeEngine(edge, 1, caching, dtype=torch.float64)
        self.engine.reset(seed)
        self.placement = Placement(scheduler)
        self._rng = torch.Generator().manual_seed(seed)

    def place(self) -> TaskCost:
        """One step of the engine: the next job placed on this node's servers, with the core's prediction."""
        return cost_tasks(self.engine, self.placement, self.servers, {_PRODUCER: _THIS_ESP}, self._rng)[_PRODUCER]
