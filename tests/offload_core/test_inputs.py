"""Bad input raises ValueError naming the field."""

from __future__ import annotations

import pytest
import torch

from offload_core.config import EdgeConfig, preset
from offload_core.engine import Action, EdgeEngine
from offload_core.schedulers import scheduler


def test_a_negative_task_size_names_the_field():
    with pytest.raises(ValueError, match="task_size_bits"):
        EdgeConfig(task_size_bits=(-1.0, 10.0))  # refused when built


def test_gpu_memory_smaller_than_every_model_names_the_field():
    with pytest.raises(ValueError, match="server_memory_bits"):
        EdgeEngine(EdgeConfig(server_memory_bits=1.0), 1)


def test_zero_environments_is_refused():
    with pytest.raises(ValueError, match="batch"):
        EdgeEngine(EdgeConfig(), 0)


def test_an_unknown_preset_is_refused():
    with pytest.raises(ValueError, match="preset"):
        preset("nope")


def test_an_unknown_caching_policy_is_refused():
    with pytest.raises(ValueError, match="policy"):
        EdgeEngine(EdgeConfig(), 1, policy="belady")


def test_an_unknown_scheduler_is_refused():
    with pytest.raises(ValueError, match="scheduler"):
        scheduler("oracle")


def test_a_split_that_does_not_sum_to_one_is_refused():
    engine = EdgeEngine(EdgeConfig(), 2)
    engine.reset(0)
    split = torch.full((2, 10, 5), 0.1)
    with pytest.raises(ValueError, match="split"):
        engine.step(engine.sample_tasks(), Action(split, torch.ones((2, 10), dtype=torch.bool)))


def test_reputation_scheduler_needs_a_score_tensor_of_the_right_shape():
    engine = EdgeEngine(EdgeConfig(), 2)
    engine.reset(0)
    tasks = engine.sample_tasks()
    with pytest.raises(ValueError, match="scores"):
        scheduler("reputation")(engine, tasks, torch.Generator(), torch.ones((2, 7)))


def test_an_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="backend"):
        EdgeEngine(EdgeConfig(), 1, backend="jax")
