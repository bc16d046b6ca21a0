"""Configuration of the edge offloading and caching simulator, and the named presets.

Units: bits, Hz (cycles/s), cycles/bit, W, s, J, m. Every field documents its unit.
Presets: `mato` ([Wang 2025]), `lc` ([Xu 2023]), `asp` ([Xu 2024, sec. V-A]).

Every config checks its fields when it is built (`__post_init__`): an invalid one is never made,
and the ValueError names the field. `dataclasses.replace` builds a new config, so it checks too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Literal

from offload_core.names import CachingPolicy, PresetName, SchedulerName, parse

MB = 8e6  # bits in a megabyte

CACHING_POLICIES: tuple[str, ...] = tuple(policy.value for policy in CachingPolicy)
"""The caching policies' names as plain strings (for field choices outside the core)."""


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
    output_bits: float = 1 * MB
    """Result size y_out returned to the device (e.g. the generated image), in bits."""
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
    """Cloud-to-server rate r_cn for model downloads and forwarded tasks, in bit/s."""
    backhaul_power_w: float = 2.0
    """Power p_cn drawn while downloading a model over the backhaul, in W."""
    model_download_bps: float = 400e6
    """Rate at which a server fetches a missing model (from the cloud, or a local store), in bit/s."""
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
        if self.server_memory_bits < self.model_size_bits[0]:
            raise ValueError(
                f"server_memory_bits ({self.server_memory_bits:g}) is smaller than every model "
                f"(smallest {self.model_size_bits[0]:g} bits)"
            )
        if not 0 < self.context_decay <= 1:
            raise ValueError(f"context_decay must lie in (0, 1], got {self.context_decay}")
        if self.server_capacity is not None and not 0 < self.server_capacity[0] <= self.server_capacity[1]:
            raise ValueError(f"server_capacity must satisfy 0 < low <= high, got {self.server_capacity}")
        if self.task_demand[0] < 0 or self.task_demand[0] > self.task_demand[1]:
            raise ValueError(f"task_demand must satisfy 0 <= low <= high, got {self.task_demand}")
        return self


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


def _mato() -> Preset:
    return Preset(
        name=PresetName.MATO,
        config=EdgeConfig(),
        compares="scheduler",
        caching=CachingPolicy.LFU,
        description="[Wang 2025]: 1 CC 40 GHz, 3 ES 7 GHz, 10 ED 1-3 GHz, tasks 2-20 MB, models 90-250 MB",
    )


def _lc() -> Preset:
    # One edge server in front of the cloud, six models of which about two fit, popular ones more
    # requested (Zipf): the regime where model caching decides the cost ([Xu 2023]). Models
    # are loaded from the server's own store; a miss not loaded goes over a congested core network.
    return Preset(
        name=PresetName.LC,
        config=EdgeConfig(
            n_devices=10,
            n_servers=1,
            n_models=6,
            model_popularity_zipf=1.0,
            step_s=10.0,
            server_memory_bits=500 * MB,
            task_size_bits=(0.5 * MB, 2 * MB),
            task_density_cpb=(200.0, 600.0),
            deadline_s=(4.0, 12.0),
            model_download_bps=10e9,
            wan_latency_s=0.5,
            accuracy_zero_shot=0.6,
            accuracy_gain=0.08,
        ),
        compares="caching",
        scheduler=SchedulerName.EDGE,
        description="[Xu 2023]: one ES, six models, GPU memory for about two, Zipf popularity",
    )


def _asp() -> Preset:
    # 20 ASPs with 600-1500 diffusion steps of capacity; tasks of 100-250 steps (survey V-A).
    return Preset(
        name=PresetName.ASP,
        config=EdgeConfig(
            n_devices=10,
            n_servers=20,
            n_models=1,
            model_size_bits=(90 * MB, 90 * MB),
            server_memory_bits=400 * MB,
            task_size_bits=(0.1 * MB, 0.5 * MB),
            task_density_cpb=(1.0, 1.0),
            deadline_s=(30.0, 60.0),
            server_capacity=(600.0, 1500.0),
            task_demand=(100.0, 250.0),
            cycles_per_demand=0.35e9,
            server_quality=(0.5, 1.0),
            step_s=1.0,
        ),
        compares="scheduler",
        caching=CachingPolicy.LFU,
        description="survey V-A: 20 ASPs, capacity 600-1500 steps, tasks 100-250 steps, 1000 tasks",
    )


PRESETS: dict[PresetName, Callable[[], Preset]] = {PresetName.MATO: _mato, PresetName.LC: _lc, PresetName.ASP: _asp}
DEFAULT_PRESET = PresetName.MATO
"""The preset of a run that names none (the command line's default)."""


def preset(name: PresetName | str, **overrides: object) -> Preset:
    """The named preset; `overrides` replace fields of its EdgeConfig (checked when built)."""
    chosen = PRESETS[parse(PresetName, name, "preset")]()
    if overrides:
        chosen = replace(chosen, config=replace(chosen.config, **overrides))  # type: ignore[arg-type]
    return chosen
