"""Every name the offloading core accepts, defined once, as StrEnums.

A member equals its string (`CachingPolicy.LFU == "lfu"`), hashes like it and prints as it, so code
and files that use the plain strings keep working; new code names members, and the command line takes
its choices from these classes (`cli/offload.py`).

- `CachingPolicy`: `EdgeEngine(policy=...)`, `caching.py`, `kernel.py`, presets.
- `SchedulerName`: `schedulers.scheduler(name)`, `compare.py`, presets.
- `PresetName`: `config.preset(name)`.
- `Algorithm`: `training.py` (learned and scheduled policies), `MADDPGConfig.variant`.
- `Backend`: `EdgeEngine(backend=...)`.
- `SweepAxis`: `training.sweep(vary=...)`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TypeVar


class CachingPolicy(StrEnum):
    """Eviction order of the servers' GPU model caches (`offload_core.caching`)."""

    RANDOM = "random"
    FIFO = "fifo"
    LRU = "lru"
    LFU = "lfu"
    LC = "lc"
    """Least context: the effective number of in-context examples ([Xu 2023])."""
    CLOUD = "cloud"
    """Never caches: a missing model's part is forwarded to the cloud."""


class SchedulerName(StrEnum):
    """Rule-based schedulers of `offload_core.schedulers`."""

    LOCAL = "local"
    CLOUD = "cloud"
    EDGE = "edge"
    RANDOM = "random"
    RANDOM_SERVER = "random-server"
    ROUND_ROBIN = "round-robin"
    GREEDY = "greedy"
    LEAST_LOADED = "least-loaded"
    PARALLEL_SPLIT = "parallel-split"
    REPUTATION = "reputation"


class PresetName(StrEnum):
    """Named experiments of `offload_core.config.preset`."""

    MATO = "mato"
    """[Wang 2025]: the cloud only supplies models."""
    MATO_CLOUD = "mato-cloud"
    """Our extension of `mato`: tasks may also run in the cloud."""
    LC = "lc"
    """[Xu 2023]."""
    ASP = "asp"
    """[Xu 2024, sec. V-A]."""


class Algorithm(StrEnum):
    """Offloading policies that `offload_core.training` trains or evaluates."""

    MADDPG_MATO = "maddpg-mato"
    MADDPG_NOMODEL = "maddpg-nomodel"
    SADDPG = "saddpg"
    MAPPO = "mappo"
    RANDOM = SchedulerName.RANDOM.value
    """The `random` scheduler as a policy (a reference, not learned)."""
    GREEDY = SchedulerName.GREEDY.value
    """The `greedy` scheduler as a policy (a reference, not learned)."""


class Backend(StrEnum):
    """How `EdgeEngine.step` runs."""

    TORCH = "torch"
    """Batched tensor operations, on any torch device."""
    NUMBA = "numba"
    """The compiled CPU kernel of `offload_core.kernel` (FIFO servers; ASP presets fall back to torch)."""
    CUDA = "cuda"
    """The CUDA kernel of `offload_core.kernel` (compiled for CUDA by `offload_core.cuda_kernel`), one thread per
    environment (FIFO servers; ASP presets fall back to the torch path)."""


class SweepAxis(StrEnum):
    """What a sweep varies ([Wang 2025, Figs. 3 and 4])."""

    MODELS = "models"
    EDS = "eds"


Name = TypeVar("Name", bound=StrEnum)


def parse(kind: type[Name], value: str, field: str) -> Name:
    """`value` as a member of `kind`, or ValueError naming `field` and the allowed values."""
    try:
        return kind(value)
    except ValueError:
        raise ValueError(f"{field} must be one of {[member.value for member in kind]}, got {value!r}") from None


def parse_among(allowed: tuple[Name, ...], value: str, field: str) -> Name:
    """`value` as one of `allowed` (members of one StrEnum), or ValueError naming `field`."""
    for member in allowed:
        if member == value:
            return member
    raise ValueError(f"{field} must be one of {[member.value for member in allowed]}, got {value!r}")
