"""Configuration of the edge offloading and caching simulator, and the named presets.

Units: bits, Hz (cycles/s), cycles/bit, W, s, J, m. Every field documents its unit.
Presets: `mato` ([Wang 2025]), `mato-cloud` (our extension: `mato` with cloud execution), `lc`
([Xu 2023]), `asp` ([Xu 2024, sec. V-A]). The defaults of `EdgeConfig` are `mato`'s; every value of
every preset has its source (paper and part, or our assumption and why) in `offload_core.presets`,
listed by `preset_sources(name)`.

Every config checks its fields when it is built (`__post_init__`): an invalid one is never made,
and the ValueError names the field. `dataclasses.replace` builds a new config, so it checks too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from offload_core.names import CachingPolicy, PresetName, SchedulerName, parse
from offload_core.presets import EXPERIMENT_SOURCES, KEPT, OVERRIDES, PaperModel, fit_accuracy_curve

MB = 8e6  # bits in a megabyte

CACHING_POLICIES: tuple[str, ...] = tuple(policy.value for policy in CachingPolicy)
"""The caching policies' names as plain strings (for field choices outside the core)."""


@dataclass(frozen=True)
class ModelSpec:
    """One generative model of a preset that names its models ([Xu 2023, Table I])."""

    name: str
    size_bits: float
    """X_i: the model's size in GPU memory and over the backhaul, in bits."""
    work_cycles: float
    """Work of one request, in cycles (a task's compute is its model's work: density = work / x)."""
    accuracy_zero_shot: float
    """a0 of a(K) = min(1, a0 + a1 log2(1 + K^alpha)): accuracy without context, relative to the cloud's."""
    accuracy_gain: float = 0.0
    """a1: gain of the first in-context example (0: no in-context learning)."""
    accuracy_alpha: float = 1.0
    """alpha: how the gain grows with more examples."""

    def __post_init__(self) -> None:
        if not self.size_bits > 0:
            raise ValueError(f"models: {self.name} size_bits must be positive, got {self.size_bits}")
        if not self.work_cycles > 0:
            raise ValueError(f"models: {self.name} work_cycles must be positive, got {self.work_cycles}")
        if not 0 <= self.accuracy_zero_shot <= 1 or self.accuracy_gain < 0 or not self.accuracy_alpha > 0:
            raise ValueError(f"models: {self.name} needs 0 <= a0 <= 1, a1 >= 0, alpha > 0")


@dataclass(frozen=True)
class EdgeConfig:
    """One edge system: a cloud, N edge servers (ES), M end devices (ED) and I generative models."""

    n_devices: int = 10
    """M: end devices, each generating one task per step."""
    n_servers: int = 3
    """N: edge servers (one per ESP)."""
    n_models: int = 3
    """I: generative models a task may require."""
    area_m: float = 1000.0
    """Side of the square area in which devices and servers are placed, in m."""
    step_s: float = 20.0
    """Time between two task arrivals of the same device, in s."""
    device_freq_hz: tuple[float, float] = (1e9, 3e9)
    """Range of device CPU frequencies f_m, in Hz (drawn per device)."""
    server_freq_hz: float = 7e9
    """Edge server compute f_n, in Hz."""
    cloud_freq_hz: float = 40e9
    """Cloud compute f_c, in Hz."""
    task_size_bits: tuple[float, float] = (2 * MB, 20 * MB)
    """Range of task input sizes x, in bits."""
    task_density_cpb: tuple[float, float] = (100.0, 300.0)
    """Range of computation densities rho, in cycles/bit."""
    output_bits: float = 0.0
    """Result size y_out returned to the device (e.g. the generated image), in bits; a part returns its share."""
    deadline_s: tuple[float, float] = (4.0, 16.0)
    """Range of task deadlines, in s after arrival."""
    model_size_bits: tuple[float, float] = (90 * MB, 250 * MB)
    """Range of model sizes X_i, in bits (drawn per model)."""
    model_popularity_zipf: float = 0.0
    """Zipf exponent of the model a task requires (0: uniform)."""
    server_memory_bits: float = 400 * MB
    """GPU memory per edge server for cached models, in bits."""
    bandwidth_hz: float = 20e6
    """Uplink/downlink bandwidth B_n of each edge server, in Hz."""
    max_rate_bps: float = 100e6
    """Cap B_n^max on any device-server rate, in bit/s."""
    device_power_w: float = 0.5
    """Device transmit power p_m, in W."""
    server_power_w: float = 1.0
    """Server transmit power for the downlink, in W."""
    channel_gain: float = 1e-4
    """Path gain g0 at 1 m (dimensionless)."""
    path_loss_exponent: float = 3.0
    """Path-loss exponent pl."""
    noise_w: float = 1e-13
    """Noise power sigma^2, in W."""
    backhaul_bps: float = 400e6
    """Cloud-to-server rate r_cn ([Wang 2025, eq. 7]) of every model download and forwarded part, in bit/s."""
    backhaul_power_w: float = 2.0
    """Power p_cn drawn while downloading a model over the backhaul ([Wang 2025, eq. 8]), in W."""
    load_bps: float = 8e9
    """Host-to-GPU model loading bandwidth, in bit/s."""
    load_power_w: float = 50.0
    """Power P_load drawn while loading a model into GPU memory, in W."""
    cloud_rate_bps: float = 20e6
    """Device-to-cloud rate r_mc (cellular to the core), in bit/s."""
    wan_latency_s: float = 0.1
    """Core-network latency added to every cloud path, in s."""
    device_kappa: float = 1e-28
    """Effective switched capacitance of device chips (E = kappa f^2 cycles)."""
    server_kappa: float = 1e-29
    """Effective switched capacitance of edge server chips."""
    cloud_energy_per_cycle_j: float = 1e-10
    """Energy the cloud spends per cycle, in J."""
    light_quality: float = 0.6
    """Content quality of the lightweight on-device model tier ([Guo 2025])."""
    cloud_quality: float = 0.95
    """Content quality of the cloud's models, which keep full context."""
    accuracy_zero_shot: float = 0.7
    """a0 of a(K) = a0 + a1 log2(1 + K^alpha): quality of a cached heavy model without context."""
    accuracy_gain: float = 0.05
    """a1 of the in-context accuracy curve [Xu 2023, Fig. 4]."""
    accuracy_alpha: float = 0.5
    """alpha of the in-context accuracy curve."""
    context_decay: float = 0.9
    """nu: an example of age a (in steps) counts nu**a in the effective context K."""
    latency_weight: float = 0.5
    """w1 of the reward -(w1 T + w2 E)/scale - penalty."""
    energy_weight: float = 0.5
    """w2 of the reward."""
    reward_scale: float = 10.0
    """Divides the weighted cost in the reward."""
    deadline_penalty: float = 1.0
    """P_e subtracted from the reward of a task that misses its deadline or fails."""
    server_capacity: tuple[float, float] | None = None
    """ASP semantics: range of capacity (work units, e.g. diffusion steps) per server; None: FIFO servers.

    With a capacity, a server runs its tasks concurrently (no queue) while their demands fit, and
    crashes, dropping every running task, when an arriving task's demand exceeds its free capacity."""
    task_demand: tuple[float, float] = (0.0, 0.0)
    """ASP semantics: range of capacity a task occupies until it finishes (e.g. diffusion steps)."""
    cycles_per_demand: float = 0.0
    """ASP semantics: extra cycles per demand unit (work of one diffusion step), in cycles."""
    server_quality: tuple[float, float] = (1.0, 1.0)
    """Range of per-server quality factors (an ASP's model capability)."""
    cloud_execution: bool = False
    """Can a task run in the cloud: the split's cloud column, and a server forwarding a part whose model it
    lacks. False ([Wang 2025, sec. II-A]: the cloud only supplies models): the cloud share must be 0, and a
    part on a server without its model downloads it (action's download flag set) or fails."""
    models: tuple[ModelSpec, ...] | None = None
    """The I models, each with its own size, work per request and accuracy curve ([Xu 2023, Table I]);
    None: sizes drawn from `model_size_bits`, work from `task_density_cpb`, one accuracy curve for all."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> EdgeConfig:
        """Return self, or raise ValueError naming the first field out of range (done when built)."""
        positive = {
            "n_devices": self.n_devices,
            "n_servers": self.n_servers,
            "n_models": self.n_models,
            "area_m": self.area_m,
            "step_s": self.step_s,
            "server_freq_hz": self.server_freq_hz,
            "cloud_freq_hz": self.cloud_freq_hz,
            "bandwidth_hz": self.bandwidth_hz,
            "max_rate_bps": self.max_rate_bps,
            "backhaul_bps": self.backhaul_bps,
            "load_bps": self.load_bps,
            "cloud_rate_bps": self.cloud_rate_bps,
            "noise_w": self.noise_w,
            "channel_gain": self.channel_gain,
        }
        for name, value in positive.items():
            if not value > 0:
                raise ValueError(f"{name} must be positive, got {value}")
        ranges = {
            "device_freq_hz": self.device_freq_hz,
            "task_size_bits": self.task_size_bits,
            "task_density_cpb": self.task_density_cpb,
            "deadline_s": self.deadline_s,
            "model_size_bits": self.model_size_bits,
        }
        for name, (low, high) in ranges.items():
            if not 0 < low <= high:
                raise ValueError(f"{name} must satisfy 0 < low <= high, got ({low}, {high})")
        nonnegative = {
            "output_bits": self.output_bits,
            "wan_latency_s": self.wan_latency_s,
            "model_popularity_zipf": self.model_popularity_zipf,
            "device_power_w": self.device_power_w,
            "cycles_per_demand": self.cycles_per_demand,
        }
        for name, value in nonnegative.items():
            if value < 0:
                raise ValueError(f"{name} must not be negative, got {value}")
        if self.models is not None:
            if len(self.models) != self.n_models:
                raise ValueError(f"models must list n_models ({self.n_models}) models, got {len(self.models)}")
            for spec in self.models:
                if not isinstance(spec, ModelSpec):
                    raise ValueError(f"models must hold ModelSpec entries, got {type(spec).__name__}")
        smallest = self.model_size_bits[0] if self.models is None else min(spec.size_bits for spec in self.models)
        if self.server_memory_bits < smallest:
            raise ValueError(
                f"server_memory_bits ({self.server_memory_bits:g}) is smaller than every model (smallest {smallest:g} bits)"
            )
        if not 0 < self.context_decay <= 1:
            raise ValueError(f"context_decay must lie in (0, 1], got {self.context_decay}")
        if self.server_capacity is not None and not 0 < self.server_capacity[0] <= self.server_capacity[1]:
            raise ValueError(f"server_capacity must satisfy 0 < low <= high, got {self.server_capacity}")
        if self.task_demand[0] < 0 or self.task_demand[0] > self.task_demand[1]:
            raise ValueError(f"task_demand must satisfy 0 <= low <= high, got {self.task_demand}")
        if not isinstance(self.cloud_execution, bool):
            raise ValueError(f"cloud_execution must be a bool, got {self.cloud_execution!r}")
        return self

    def accuracy_curves(self) -> tuple[tuple[float, float, float], ...]:
        """(a0, a1, alpha) of a(K) = min(1, a0 + a1 log2(1 + K^alpha)) for each of the I models."""
        if self.models is None:
            return ((self.accuracy_zero_shot, self.accuracy_gain, self.accuracy_alpha),) * self.n_models
        return tuple((spec.accuracy_zero_shot, spec.accuracy_gain, spec.accuracy_alpha) for spec in self.models)


@dataclass(frozen=True)
class Preset:
    """A named experiment: the system and what `aigc-market offload compare` varies on it."""

    name: PresetName
    config: EdgeConfig
    compares: Literal["caching", "scheduler"]
    scheduler: SchedulerName = SchedulerName.GREEDY
    """Scheduler used when caching policies are compared."""
    caching: CachingPolicy = CachingPolicy.LFU
    """Caching policy used when schedulers are compared."""
    steps: int = 100
    """Default number of steps of one comparison run."""
    description: str = ""
    extra: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Plain strings are accepted and stored as the members they name.
        object.__setattr__(self, "name", parse(PresetName, self.name, "name"))
        object.__setattr__(self, "scheduler", parse(SchedulerName, self.scheduler, "scheduler"))
        object.__setattr__(self, "caching", parse(CachingPolicy, self.caching, "caching"))
        if self.compares not in ("caching", "scheduler"):
            raise ValueError(f"compares must be 'caching' or 'scheduler', got {self.compares!r}")
        if not isinstance(self.config, EdgeConfig):
            raise ValueError(f"config must be an EdgeConfig, got {type(self.config).__name__}")
        if self.steps < 1:
            raise ValueError(f"steps must be at least 1, got {self.steps}")


def _model_spec(model: PaperModel) -> ModelSpec:
    """A model of [Xu 2023, Table I] as the simulator's ModelSpec (curve fitted by `fit_accuracy_curve`)."""
    a0, a1, alpha = fit_accuracy_curve(model)
    return ModelSpec(model.name, model.size_bits, model.work, a0, a1, alpha)


def _config(name: PresetName) -> EdgeConfig:
    """The EdgeConfig of preset `name`: mato's values (the defaults) with the preset's overrides."""
    values: dict[str, Any] = {}
    for key, (value, _) in OVERRIDES[name].items():
        if key == "models":
            assert isinstance(value, tuple)
            value = tuple(_model_spec(model) for model in value)
        values[key] = value
    return EdgeConfig(**values)


def _mato() -> Preset:
    return Preset(
        name=PresetName.MATO,
        config=_config(PresetName.MATO),
        compares="scheduler",
        caching=CachingPolicy.LFU,
        description="[Wang 2025]: 1 CC supplying models only, 3 ES 7 GHz, 10 ED 1-3 GHz, tasks 2-20 MB, models 90-250 MB",
    )


def _mato_cloud() -> Preset:
    return Preset(
        name=PresetName.MATO_CLOUD,
        config=_config(PresetName.MATO_CLOUD),
        compares="scheduler",
        caching=CachingPolicy.LFU,
        description="our extension of mato: tasks may also run in the cloud, results returned",
    )


def _lc() -> Preset:
    return Preset(
        name=PresetName.LC,
        config=_config(PresetName.LC),
        compares="caching",
        scheduler=SchedulerName.EDGE,
        description="[Xu 2023]: one ES in front of a cloud, the six PFMs of Table I, Zipf popularity",
    )


def _asp() -> Preset:
    return Preset(
        name=PresetName.ASP,
        config=_config(PresetName.ASP),
        compares="scheduler",
        caching=CachingPolicy.LFU,
        description="[Xu 2024, sec. V-A]: 20 ASPs, capacity 600-1500 steps, tasks 100-250 steps, 1000 tasks",
    )


PRESETS: dict[PresetName, Callable[[], Preset]] = {
    PresetName.MATO: _mato,
    PresetName.MATO_CLOUD: _mato_cloud,
    PresetName.LC: _lc,
    PresetName.ASP: _asp,
}
DEFAULT_PRESET = PresetName.MATO
"""The preset of a run that names none (the command line's default)."""


def preset_sources(name: PresetName | str) -> dict[str, str]:
    """{field: source} for every field of preset `name`'s EdgeConfig, and "preset.<field>" for what it compares.

    A source names a paper and its part, or says "derived: ...", "our assumption: ..." or "our extension: ..."
    (`offload_core.presets`)."""
    chosen = parse(PresetName, name, "preset")
    sources = {key: source for key, (_, source) in OVERRIDES[chosen].items()}
    sources.update(KEPT[chosen])
    sources.update({f"preset.{key}": source for key, source in EXPERIMENT_SOURCES[chosen].items()})
    return sources


def preset(name: PresetName | str, **overrides: object) -> Preset:
    """The named preset; `overrides` replace fields of its EdgeConfig (checked when built)."""
    chosen = PRESETS[parse(PresetName, name, "preset")]()
    if overrides:
        chosen = replace(chosen, config=replace(chosen.config, **overrides))  # type: ignore[arg-type]
    return chosen
