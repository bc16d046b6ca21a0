"""The engine's environment API: the typed step result, the read-only view, the names, self-checking configs."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import typing
from enum import StrEnum
from pathlib import Path

import pytest
import torch
from offload_core_helpers import random_action, references_for, scalar_tasks

import offload_core
from cli import offload as cli_offload
from offload_core.compare import ASP_SCHEDULERS, COMPARED_SCHEDULERS, CompareSettings, variants
from offload_core.config import CACHING_POLICIES, DEFAULT_PRESET, PRESETS, EdgeConfig, Preset, preset
from offload_core.engine import EdgeEngine, EngineView, StepResult
from offload_core.maddpg import VARIANTS, MADDPGConfig
from offload_core.mappo import MAPPOConfig
from offload_core.names import Algorithm, Backend, CachingPolicy, PresetName, SchedulerName, SweepAxis
from offload_core.observations import observation_size, observe
from offload_core.reference import BREAKDOWN_KEYS
from offload_core.result import FLAG_KEYS
from offload_core.schedulers import SCHEDULERS, least_loaded, scheduler
from offload_core.training import (
    ALGORITHMS,
    LEARNED,
    SCHEDULED,
    SWEEP_VALUES,
    EvalSettings,
    SweepSettings,
    TrainSettings,
    load_checkpoint,
    make_agent,
    save_checkpoint,
)

# The breakdown's names before the result was typed, then the terms added since (issue 15: the lc system cost):
# the compiled kernel writes its output in this order.
OLD_BREAKDOWN_KEYS = (
    "T_up",
    "T_wait",
    "T_sw",
    "T_es",
    "T_down",
    "T_loc",
    "T_cloud",
    "T",
    "E_up",
    "E_sw",
    "E_es",
    "E_loc",
    "E_cloud",
    "E",
    "completed",
    "model_hit",
    "offloaded",
    "failed",
    "crashed",
    "quality",
    "edge_share",
)
ADDED_KEYS = ("T_fwd", "edge_quality")


# -- StepResult ----------------------------------------------------------------------------------------------


def test_the_result_has_one_field_per_breakdown_term_in_the_kernels_order():
    from offload_core.kernel import OUTPUT_COLUMNS

    assert tuple(f.name for f in dataclasses.fields(StepResult)) == OLD_BREAKDOWN_KEYS + ADDED_KEYS == BREAKDOWN_KEYS
    assert len(BREAKDOWN_KEYS) == OUTPUT_COLUMNS
    assert {"completed", "model_hit", "offloaded", "failed", "crashed"} == FLAG_KEYS
    source = inspect.getsource(StepResult)
    for name in BREAKDOWN_KEYS:  # every field is documented with its shape
        assert f"    {name}: torch.Tensor  # [B, M]" in source, name


@pytest.mark.parametrize(
    "name,backend", [("mato", "torch"), ("mato", "numba"), ("lc", "numba"), ("asp", "torch"), ("asp", "numba")]
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_every_field_is_a_b_by_m_tensor_floats_in_the_engines_dtype_flags_bool(name, backend, dtype):
    config = preset(name).config
    engine = EdgeEngine(config, 3, dtype=dtype, backend=backend)
    engine.reset(0)
    out = engine.step(engine.sample_tasks(), random_action(engine, torch.Generator().manual_seed(0)))
    assert isinstance(out, StepResult)
    for key, value in out.as_dict().items():
        assert tuple(value.shape) == (3, config.n_devices), key
        assert value.dtype == (torch.bool if key in FLAG_KEYS else dtype), key
        assert value is getattr(out, key)
    assert list(out.as_dict()) == list(BREAKDOWN_KEYS)


def test_the_result_is_frozen():
    engine = EdgeEngine(EdgeConfig(), 1)
    engine.reset(0)
    out = engine.step(engine.sample_tasks(), random_action(engine, torch.Generator().manual_seed(0)))
    with pytest.raises(dataclasses.FrozenInstanceError):
        out.T = out.E  # type: ignore[misc]


def test_the_scalar_reference_names_its_terms_as_the_result_does():
    engine = EdgeEngine(preset("mato").config, 1, dtype=torch.float64)
    engine.reset(0)
    reference = references_for(engine)[0]
    tasks = engine.sample_tasks()
    action = random_action(engine, torch.Generator().manual_seed(1))
    rows = reference.step(scalar_tasks(tasks, 0), action.split[0].tolist(), action.download[0].tolist())
    out = engine.step(tasks, action)
    for m, row in enumerate(rows):
        assert set(row) == set(BREAKDOWN_KEYS)
        assert row["T"] == pytest.approx(float(out.T[0, m]), rel=1e-9)
        assert row["completed"] == float(out.completed[0, m])


# -- EngineView ----------------------------------------------------------------------------------------------


def _slowed(batch: int = 4, factor: float = 4.0, server: int = 0) -> EdgeEngine:
    """A mato engine with one server slowed down the way the market slows a slow ESP's server."""
    engine = EdgeEngine(preset("mato").config, batch, dtype=torch.float64)
    engine.reset(0)
    engine.topology.server_freq[:, server] /= factor
    return engine


def test_the_view_shows_shapes_and_the_state_of_the_moment():
    engine = EdgeEngine(preset("mato").config, 4, dtype=torch.float64)
    engine.reset(0)
    view = engine.view
    c = engine.config
    b, m, n, i = 4, c.n_devices, c.n_servers, c.n_models
    shapes = {
        "cache": (b, n, i),
        "busy_until": (b, n),
        "server_freq": (b, n),
        "server_capacity": (b, n),
        "occupied": (b, n),
        "distance": (b, m, n),
        "device_pos": (b, m, 2),
        "server_pos": (b, n, 2),
        "device_freq": (b, m),
        "dropped": (b,),
        "dropped_quality": (b,),
    }
    for name, shape in shapes.items():
        assert tuple(getattr(view, name).shape) == shape, name
    assert view.cache.dtype == torch.bool and view.busy_until.dtype == torch.float64
    assert (view.config, view.batch, view.dtype, view.policy, view.backend) == (c, 4, torch.float64, "lfu", "torch")
    assert not view.concurrent and view.steps == 0 and view.time == 0.0
    assert torch.equal(view.server_freq, torch.full((b, n), c.server_freq_hz, dtype=torch.float64))
    assert bool((view.busy_until == 0).all())
    engine.step(engine.sample_tasks(), random_action(engine, torch.Generator().manual_seed(0)))
    # The same view object reads the new state: it is a window, not a copy.
    assert view.steps == 1 and view.time == c.step_s and bool((view.busy_until > 0).any())
    assert view.cache is engine.view.cache


def test_the_view_cannot_be_written_through():
    view = EdgeEngine(EdgeConfig(), 1).view
    with pytest.raises(AttributeError):
        view.busy_until = torch.zeros(1, 3)  # type: ignore[misc]


def test_an_asp_view_counts_the_capacity_held_by_running_parts():
    engine = EdgeEngine(preset("asp").config, 2, dtype=torch.float64)
    engine.reset(0)
    assert engine.view.concurrent
    engine.step(engine.sample_tasks(), scheduler("round-robin")(engine, engine.sample_tasks(), torch.Generator(), None))
    occupied = engine.view.occupied
    assert bool((occupied >= 0).all()) and bool((occupied <= engine.view.server_capacity).all())


def test_the_view_shows_the_effective_frequency_of_a_slowed_server_which_the_step_uses():
    engine = _slowed()
    f = engine.config.server_freq_hz
    assert torch.equal(engine.view.server_freq[:, 0], torch.full((4,), f / 4, dtype=torch.float64))
    assert torch.equal(engine.view.server_freq[:, 1:], torch.full((4, 2), f, dtype=torch.float64))
    # A task whole on the slowed server that finds its model computes at the frequency the view shows.
    tasks = engine.sample_tasks()
    split = torch.zeros((4, engine.config.n_devices, engine.config.n_servers + 2), dtype=torch.float64)
    split[..., 1] = 1.0
    from offload_core.engine import Action

    out = engine.step(tasks, Action(split, torch.zeros((4, engine.config.n_devices), dtype=torch.bool)))
    ran = out.edge_share > 0
    assert bool(ran.any())
    expected = tasks.size * tasks.density / engine.view.server_freq[:, :1]
    torch.testing.assert_close(out.T_es[ran], expected[ran])


def test_observations_show_a_slowed_servers_effective_frequency():
    engine = _slowed()
    c = engine.config
    obs = observe(engine, engine.sample_tasks())
    assert obs.shape[-1] == observation_size(c)
    freq = obs[..., c.n_models + 4 : c.n_models + 4 + c.n_servers]  # the servers' compute block, [B, M, N]
    assert torch.allclose(freq[..., 0], torch.tensor(c.server_freq_hz / 4 / c.cloud_freq_hz, dtype=torch.float64))
    assert torch.allclose(freq[..., 1:], torch.tensor(c.server_freq_hz / c.cloud_freq_hz, dtype=torch.float64))


def test_least_loaded_scheduling_sends_less_work_to_a_slowed_server():
    normal = EdgeEngine(preset("mato").config, 4, dtype=torch.float64)
    normal.reset(0)
    slowed = _slowed()
    tasks = normal.sample_tasks()
    generator = torch.Generator()
    on_slowed = least_loaded(slowed, tasks, generator).split[..., 1].sum(-1)  # [B] tasks sent to server 0
    on_normal = least_loaded(normal, tasks, generator).split[..., 1].sum(-1)
    assert bool((on_slowed < on_normal).all()), (on_slowed, on_normal)
    # Far slower still: once the first device (all servers idle, the first wins the tie) is on it, no other is.
    very_slow = least_loaded(_slowed(factor=1e6), tasks, generator).split[..., 1]  # [B, M]
    assert bool((very_slow[:, 0] == 1).all()) and bool((very_slow[:, 1:] == 0).all())


POLICY_MODULES = ("schedulers", "observations", "maddpg", "mappo", "training", "compare")
ENGINE_API = {"view", "reset", "step", "sample_tasks"}


@pytest.mark.parametrize("module", POLICY_MODULES)
def test_policies_touch_the_engine_only_through_its_view_reset_and_step(module):
    """No scheduler, observation, learner or loop reads engine.cache, .busy_until, .running, .topology, ..."""
    path = Path(offload_core.__file__).parent / f"{module}.py"
    tree = ast.parse(path.read_text())
    used = {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "engine"
    }
    assert used <= ENGINE_API, f"{module}.py reads engine.{sorted(used - ENGINE_API)}"


# -- names ---------------------------------------------------------------------------------------------------


def test_every_name_equals_the_string_it_replaced():
    assert tuple(CachingPolicy) == ("random", "fifo", "lru", "lfu", "lc", "cloud") == CACHING_POLICIES
    assert all(type(name) is str for name in CACHING_POLICIES)  # plain strings for field choices outside the core
    assert tuple(SchedulerName) == (
        "local",
        "cloud",
        "edge",
        "random",
        "random-server",
        "round-robin",
        "greedy",
        "least-loaded",
        "parallel-split",
        "reputation",
    )
    assert set(SCHEDULERS) == set(SchedulerName)
    assert tuple(PresetName) == ("mato", "mato-cloud", "lc", "asp") and tuple(PRESETS) == tuple(PresetName)
    assert DEFAULT_PRESET == "mato"
    assert VARIANTS == ("maddpg-mato", "maddpg-nomodel", "saddpg")
    assert LEARNED == ("maddpg-mato", "maddpg-nomodel", "saddpg", "mappo")
    assert SCHEDULED == ("random", "greedy") and ALGORITHMS == LEARNED + SCHEDULED
    assert tuple(Algorithm) == ALGORITHMS
    assert tuple(Backend) == ("torch", "numba", "cuda")
    assert tuple(SweepAxis) == ("models", "eds") and tuple(SWEEP_VALUES) == tuple(SweepAxis)
    assert COMPARED_SCHEDULERS == ("local", "cloud", "random", "round-robin", "greedy", "least-loaded", "parallel-split")
    assert ASP_SCHEDULERS == ("random-server", "round-robin", "least-loaded", "parallel-split")
    for member in CachingPolicy:  # a member is its string: equal, same hash, same text
        assert member == member.value and hash(member) == hash(member.value) and f"{member}" == str(member) == member.value


def test_plain_strings_are_accepted_wherever_a_name_is():
    engine = EdgeEngine(EdgeConfig(), 1, "lru", backend="numba")
    assert engine.policy is CachingPolicy.LRU and engine.backend is Backend.NUMBA
    assert scheduler("least-loaded") is SCHEDULERS[SchedulerName.LEAST_LOADED]
    assert preset("lc").name is PresetName.LC and preset("lc").scheduler is SchedulerName.EDGE
    assert TrainSettings(algo="mappo", policy="fifo").algo is Algorithm.MAPPO
    assert MADDPGConfig(variant="saddpg").variant is Algorithm.SADDPG
    assert [label for label, _, _ in variants(preset("lc"))] == ["random", "cloud", "fifo", "lfu", "lc"]


@pytest.mark.parametrize(
    "make,field",
    [
        (lambda: EdgeEngine(EdgeConfig(), 1, policy="belady"), "policy"),
        (lambda: EdgeEngine(EdgeConfig(), 1, backend="jax"), "backend"),
        (lambda: scheduler("oracle"), "scheduler"),
        (lambda: preset("nope"), "preset"),
        (lambda: TrainSettings(algo="greedy"), "algo"),
        (lambda: MADDPGConfig(variant="mappo"), "variant"),
        (lambda: make_agent("random", EdgeConfig(), 0), "algo"),
        (lambda: SweepSettings(vary="servers"), "vary"),
    ],
)
def test_an_unknown_name_is_refused_naming_the_field(make, field):
    with pytest.raises(ValueError, match=field):
        make()


def test_a_checkpoint_stores_names_as_plain_strings(tmp_path: Path):
    config = preset("mato", n_devices=2).config
    settings = TrainSettings(algo="saddpg", envs=1, episodes=1, steps=1, policy="lru")
    path = save_checkpoint(tmp_path / "c.pt", make_agent(settings.algo, config, 0), config, settings)
    blob = torch.load(path, weights_only=False)
    assert type(blob["settings"]["algo"]) is str and type(blob["settings"]["policy"]) is str
    assert type(blob["agent"]["hp"]["variant"]) is str
    _, loaded_config, loaded = load_checkpoint(path)
    assert loaded == settings and loaded_config == config


# -- configs check themselves when built ------------------------------------------------------------------------


INVALID = [
    (EdgeConfig, {"n_devices": 0}, "n_devices"),
    (EdgeConfig, {"step_s": -1.0}, "step_s"),
    (EdgeConfig, {"task_size_bits": (-1.0, 10.0)}, "task_size_bits"),
    (EdgeConfig, {"deadline_s": (5.0, 1.0)}, "deadline_s"),
    (EdgeConfig, {"server_memory_bits": 1.0}, "server_memory_bits"),
    (EdgeConfig, {"context_decay": 1.5}, "context_decay"),
    (EdgeConfig, {"server_capacity": (10.0, 1.0)}, "server_capacity"),
    (EdgeConfig, {"task_demand": (-1.0, 1.0)}, "task_demand"),
    (EdgeConfig, {"output_bits": -1.0}, "output_bits"),
    (MADDPGConfig, {"tau": 0.0}, "tau"),
    (MADDPGConfig, {"gamma": 1.0}, "gamma"),
    (MADDPGConfig, {"batch_size": 0}, "batch_size"),
    (MADDPGConfig, {"buffer_size": 0}, "buffer_size"),
    (MADDPGConfig, {"hidden": 0}, "hidden"),
    (MADDPGConfig, {"actor_lr": 0.0}, "actor_lr"),
    (MADDPGConfig, {"download_epsilon": 2.0}, "download_epsilon"),
    (MADDPGConfig, {"learning_starts": -1}, "learning_starts"),
    (MAPPOConfig, {"lr": -1e-3}, "lr"),
    (MAPPOConfig, {"clip": 0.0}, "clip"),
    (MAPPOConfig, {"epochs": 0}, "epochs"),
    (MAPPOConfig, {"gae_lambda": 1.5}, "gae_lambda"),
    (MAPPOConfig, {"step_levels": ()}, "step_levels"),
    (MAPPOConfig, {"step_levels": (10, 2.5)}, "step_levels"),
    (MAPPOConfig, {"quality_scale": 0.0}, "quality_scale"),
    (TrainSettings, {"envs": 0}, "envs"),
    (TrainSettings, {"episodes": 0}, "episodes"),
    (TrainSettings, {"steps": 0}, "steps"),
    (TrainSettings, {"policy": "belady"}, "policy"),
    (EvalSettings, {"envs": 0}, "envs"),
    (SweepSettings, {"seeds": 0}, "seeds"),
    (SweepSettings, {"algos": ("maddpg-mato", "oracle")}, "algos"),
    (SweepSettings, {"algos": ()}, "algos"),
    (CompareSettings, {"envs": 0}, "envs"),
    (CompareSettings, {"preset": "nope"}, "preset"),
]


@pytest.mark.parametrize("cls,fields,name", INVALID, ids=[f"{c.__name__}.{n}" for c, _, n in INVALID])
def test_an_invalid_config_is_refused_when_built_naming_the_field(cls, fields, name):
    with pytest.raises(ValueError, match=name):
        cls(**fields)
    with pytest.raises(ValueError, match=name):  # also when derived from a valid one
        dataclasses.replace(cls(), **fields)


def test_an_invalid_preset_is_refused_when_built():
    with pytest.raises(ValueError, match="steps"):
        dataclasses.replace(preset("mato"), steps=0)
    with pytest.raises(ValueError, match="scheduler"):
        dataclasses.replace(preset("lc"), scheduler="oracle")
    with pytest.raises(ValueError, match="caching"):
        Preset(name="mato", config=EdgeConfig(), compares="scheduler", caching="belady")
    with pytest.raises(ValueError, match="n_servers"):
        preset("mato", n_servers=0)


def test_valid_configs_are_built_unchanged():
    assert MAPPOConfig(step_levels=(10.0, 25, 50)).step_levels == (10, 25, 50)
    assert EdgeConfig().validate() == EdgeConfig()
    for name in PresetName:
        assert preset(name).name == name


# -- the command line takes its choices from the names and its defaults from the settings ----------------------------


def _defaults(command: typing.Callable[..., None]) -> dict[str, object]:
    return {name: p.default for name, p in inspect.signature(command).parameters.items()}


def _option_type(command: typing.Callable[..., None], name: str) -> object:
    return typing.get_args(typing.get_type_hints(command, include_extras=True)[name])[0]


def test_cli_defaults_are_the_settings_defaults():
    compare, train, evaluate, sweep = (
        cli_offload.compare_command,
        cli_offload.train_command,
        cli_offload.evaluate_command,
        cli_offload.sweep_command,
    )
    run, hp, held_out, plan, comparison = TrainSettings(), MADDPGConfig(), EvalSettings(), SweepSettings(), CompareSettings()
    assert {k: v for k, v in _defaults(compare).items() if k in {"preset_name", "envs", "steps", "seed"}} == {
        "preset_name": comparison.preset,
        "envs": comparison.envs,
        "steps": comparison.steps,
        "seed": comparison.seed,
    }
    assert {k: v for k, v in _defaults(train).items() if k in {"algo", "episodes", "steps", "envs", "batch_size", "seed"}} == {
        "algo": run.algo,
        "episodes": run.episodes,
        "steps": run.steps,
        "envs": run.envs,
        "batch_size": hp.batch_size,
        "seed": run.seed,
    }
    assert _defaults(train)["preset_name"] == DEFAULT_PRESET
    assert {k: v for k, v in _defaults(evaluate).items() if k in {"envs", "steps", "seed"}} == {
        "envs": held_out.envs,
        "steps": held_out.steps,
        "seed": held_out.seed,
    }
    sweep_defaults = _defaults(sweep)
    assert {k: sweep_defaults[k] for k in ("vary", "seeds", "episodes", "batch_size", "eval_envs")} == {
        "vary": plan.vary,
        "seeds": plan.seeds,
        "episodes": plan.episodes,
        "batch_size": plan.batch_size,
        "eval_envs": plan.eval_envs,
    }
    assert sweep_defaults["algos"] == ",".join(plan.algos) and sweep_defaults["preset_name"] == DEFAULT_PRESET
    assert (sweep_defaults["steps"], sweep_defaults["envs"]) == (run.steps, run.envs)


def test_cli_choices_are_the_enums():
    for command in (cli_offload.compare_command, cli_offload.train_command, cli_offload.sweep_command):
        assert _option_type(command, "preset_name") is PresetName
    assert _option_type(cli_offload.train_command, "algo") is Algorithm
    assert _option_type(cli_offload.sweep_command, "vary") is SweepAxis


@pytest.mark.parametrize(
    "argv,option",
    [
        (["offload", "train", "--algo", "oracle"], "--algo"),
        (["offload", "train", "--algo", "greedy"], "--algo"),  # a name, but not a learned one
        (["offload", "train", "--preset", "nope"], "--preset"),
        (["offload", "sweep", "--vary", "servers"], "--vary"),
        (["offload", "sweep", "--algos", "mappo,oracle"], "--algos"),
    ],
)
def test_a_bad_choice_is_one_line_and_exit_2(argv, option, capsys: pytest.CaptureFixture[str]):
    from cli.main import main

    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and option in err[0]


def test_every_enum_is_a_strenum():
    for kind in (CachingPolicy, SchedulerName, PresetName, Algorithm, Backend, SweepAxis):
        assert issubclass(kind, StrEnum)
    assert isinstance(EdgeEngine(EdgeConfig(), 1).view, EngineView)


# -- every value of every preset has a source (issue 15) ---------------------------------------------------------

SOURCE_FORMS = ("[Wang 2025", "[Xu 2023", "[Xu 2024", "[Zeng 2025", "[Guo 2025", "derived: ", "our assumption: ", "our extension: ")


@pytest.mark.parametrize("name", list(PresetName))
def test_every_field_of_every_preset_has_a_source(name):
    from offload_core.config import preset_sources
    from offload_core.presets import KEPT, OVERRIDES

    sources = preset_sources(name)
    config_fields = {f.name for f in dataclasses.fields(EdgeConfig)}
    preset_fields = {f"preset.{f.name}" for f in dataclasses.fields(Preset)} - {"preset.name", "preset.config"}
    preset_fields -= {"preset.description", "preset.extra"}
    assert set(sources) == config_fields | preset_fields
    for key, source in sources.items():
        assert any(form in source for form in SOURCE_FORMS) or source.startswith("unused"), (key, source)
    # A field either keeps mato's value (the EdgeConfig default) or overrides it, never both.
    assert not set(OVERRIDES[name]) & set(KEPT[name])
    config = preset(name).config
    for key in KEPT[name]:
        assert getattr(config, key) == getattr(EdgeConfig(), key), key


def test_mato_is_wang_2025_and_mato_cloud_its_cloud_extension():
    mato, cloud = preset("mato").config, preset("mato-cloud").config
    assert mato == EdgeConfig() and not mato.cloud_execution and mato.output_bits == 0.0
    assert (mato.n_devices, mato.n_servers, mato.n_models, mato.area_m) == (10, 3, 3, 1000.0)
    assert (mato.server_freq_hz, mato.cloud_freq_hz, mato.device_freq_hz) == (7e9, 40e9, (1e9, 3e9))
    assert mato.task_size_bits == (2 * 8e6, 20 * 8e6) and mato.model_size_bits == (90 * 8e6, 250 * 8e6)
    assert dataclasses.replace(cloud, cloud_execution=False, output_bits=0.0) == mato


def test_lc_has_the_six_models_of_xu_2023_table_1_with_fitted_accuracy_curves():
    """Sizes are parameters x 2 bytes (fp16); work is Table I's GFLOPs; the LFMs' a(K) passes through the
    zero-, one- and few-shot scores (each task's scores over its few-shot one, averaged), the others gain nothing."""
    import math

    c = preset("lc").config
    assert c.models is not None and c.n_servers == 1 and c.cloud_execution and c.cloud_quality == 1.0
    assert [m.name for m in c.models] == ["GPT3-13B", "GPT3-175B", "UniFormer-S", "UniFormer-B", "CLIP-ViT-L/14", "CLIP-ViT-H/14"]
    assert [m.size_bits / 8e6 for m in c.models] == pytest.approx([25700, 349200, 44, 100, 856, 1972])
    assert [m.work_cycles / 1e9 for m in c.models] == pytest.approx([26.54, 354.03, 3.6, 8.3, 175.5, 381.9])
    zero_13b = (15.45 / 30.83 + 3.79 / 14.34 + 54.4 / 66.9) / 3
    one_13b = (26.12 / 30.83 + 15.98 / 14.34 + 64.3 / 66.9) / 3
    gpt13 = c.models[0]
    assert gpt13.accuracy_zero_shot == pytest.approx(zero_13b) and gpt13.accuracy_gain == pytest.approx(one_13b - zero_13b)

    def a(model, k: float) -> float:
        return model.accuracy_zero_shot + model.accuracy_gain * math.log2(1 + k**model.accuracy_alpha)

    for model in c.models[:2]:
        assert a(model, (64 + 50 + 32) / 3) == pytest.approx(1.0)  # the cloud's full context
        assert a(model, 0) < a(model, 1) < a(model, 10) < 1.0
    for model in c.models[2:]:
        assert (model.accuracy_zero_shot, model.accuracy_gain) == (1.0, 0.0)
    # The memory holds GPT3-13B beside one CLIP model, not both; GPT3-175B never fits.
    sizes = {m.name: m.size_bits for m in c.models}
    assert sizes["GPT3-13B"] + sizes["CLIP-ViT-H/14"] <= c.server_memory_bits
    assert sizes["GPT3-13B"] + sizes["CLIP-ViT-H/14"] + sizes["CLIP-ViT-L/14"] > c.server_memory_bits
    assert sizes["GPT3-175B"] > c.server_memory_bits
