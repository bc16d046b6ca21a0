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


def test_a_cloud_share_is_refused_without_cloud_execution():
    engine = EdgeEngine(EdgeConfig(), 2)  # the defaults are mato's: the cloud only supplies models
    engine.reset(0)
    split = torch.zeros((2, 10, 5))
    split[..., 4] = 1.0
    with pytest.raises(ValueError, match="cloud_execution"):
        engine.step(engine.sample_tasks(), Action(split, torch.ones((2, 10), dtype=torch.bool)))


@pytest.mark.parametrize("backend", ["torch", "numba"])
def test_the_cloud_policy_is_refused_without_cloud_execution(backend):
    with pytest.raises(ValueError, match="cloud_execution"):
        EdgeEngine(preset("mato").config, 1, policy="cloud", backend=backend)
    EdgeEngine(preset("mato-cloud").config, 1, policy="cloud", backend=backend)  # accepted with it


def test_the_cloud_scheduler_is_refused_without_cloud_execution():
    engine = EdgeEngine(preset("mato").config, 1)
    engine.reset(0)
    with pytest.raises(ValueError, match="cloud execution"):
        scheduler("cloud", preset("mato").config)
    with pytest.raises(ValueError, match="cloud execution"):
        scheduler("cloud")(engine, engine.sample_tasks(), torch.Generator(), None)
    assert scheduler("cloud", preset("mato-cloud").config) is scheduler("cloud")


def test_named_models_must_match_n_models_and_be_valid():
    from offload_core.config import ModelSpec

    spec = ModelSpec("m", size_bits=8e8, work_cycles=1e9, accuracy_zero_shot=0.9)
    with pytest.raises(ValueError, match="models"):
        EdgeConfig(n_models=2, models=(spec,))
    with pytest.raises(ValueError, match="size_bits"):
        ModelSpec("m", size_bits=0.0, work_cycles=1e9, accuracy_zero_shot=0.9)
    with pytest.raises(ValueError, match="a0"):
        ModelSpec("m", size_bits=1.0, work_cycles=1e9, accuracy_zero_shot=1.5)
    with pytest.raises(ValueError, match="cloud_execution"):
        EdgeConfig(cloud_execution=1)  # type: ignore[arg-type]


@pytest.mark.parametrize("backend", ["torch", "numba"])
@pytest.mark.parametrize(
    "edit,message",
    [
        (lambda split: split.__setitem__((0, 0, 0), -0.5), "negative"),
        (lambda split: split.__setitem__((1, 2, 0), 0.5), "sum to 1"),
        (lambda split: split.__setitem__((1, 2, 0), float("nan")), "sum to 1"),
        (lambda split: (split.__setitem__((0, 1, 0), 0.0), split.__setitem__((0, 1, 4), 1.0)), "cloud_execution"),
    ],
)
def test_both_backends_refuse_the_same_bad_splits(backend, edit, message):
    engine = EdgeEngine(EdgeConfig(), 2, backend=backend)
    engine.reset(0)
    split = torch.zeros((2, 10, 5))
    split[..., 0] = 1.0
    edit(split)
    with pytest.raises(ValueError, match=message):
        engine.step(engine.sample_tasks(), Action(split, torch.ones((2, 10), dtype=torch.bool)))
