"""The papers' numbers behind the presets, and where every value of every preset comes from.

Plain data (no simulator types; `offload_core.config` builds the presets from it):

- `MATO_SOURCES`: the source of every `EdgeConfig` field of preset `mato`, whose values are the
  `EdgeConfig` defaults ([Wang 2025, sec. IV-A]; the rest ours, each with its reason).
- For the other presets, `OVERRIDES[name]`: {field: (value, source)} for the fields whose value differs
  from `mato`'s, and `KEPT[name]`: {field: source} for the fields that keep `mato`'s value (the reason
  it fits this preset too). Every field is in exactly one of the two (a test holds it so).
- `EXPERIMENT_SOURCES[name]`: the sources of the `Preset` fields (what `offload compare` runs).
- `LC_MODELS`: the six PFMs of [Xu 2023, Table I], with `fit_accuracy_curve`, the fit of the
  in-context accuracy curve a(K) of [Xu 2023, Fig. 4] to the Table's zero-, one- and few-shot scores.

A source is either a paper and its part ("[Wang 2025, sec. IV-A]: ..."), "derived: ..." (computed from
other sourced values), or "our assumption: <reason>" / "our extension: <reason>" where no paper states it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from offload_core.names import PresetName

MB = 8e6  # bits in a megabyte
GB = 8e9  # bits in a gigabyte
BYTES_PER_PARAMETER = 2
"""fp16 weights (our assumption: [Xu 2023] gives parameter counts, not the runtime precision)."""
LC_SERVER_FLOPS = 312e12
"""FLOP/s of the `lc` edge server: one NVIDIA A100's dense fp16 tensor peak (our assumption; the paper gives none)."""


@dataclass(frozen=True)
class DownstreamScore:
    """One row of [Xu 2023, Table I]: a downstream task's scores without, with one and with K examples."""

    task: str
    zero_shot: float
    one_shot: float | None = None
    few_shot: float | None = None
    k: int | None = None


@dataclass(frozen=True)
class PaperModel:
    """One PFM of [Xu 2023, Table I]."""

    name: str
    kind: str  # "LFM", "VFM" or "MFM"
    parameters_millions: float  # "Model Size (M)"
    gflops: float  # "GFLOPs" (for the UniFormers: the image-classification row, the backbone alone)
    scores: tuple[DownstreamScore, ...]

    @property
    def size_bits(self) -> float:
        """Weights in GPU memory and over the backhaul: parameters x BYTES_PER_PARAMETER, in bits."""
        return self.parameters_millions * 1e6 * BYTES_PER_PARAMETER * 8

    @property
    def work(self) -> float:
        """Work of one request (one forward pass, our assumption): GFLOPs x 1e9, in FLOPs."""
        return float(round(self.gflops * 1e9))


LC_MODELS: tuple[PaperModel, ...] = (
    PaperModel(
        "GPT3-13B",
        "LFM",
        12850,
        26.54,
        (
            DownstreamScore("Translation", 15.45, 26.12, 30.83, 64),
            DownstreamScore("Basic arithmetic", 3.79, 15.98, 14.34, 50),
            DownstreamScore("SuperGLUE", 54.4, 64.3, 66.9, 32),
        ),
    ),
    PaperModel(
        "GPT3-175B",
        "LFM",
        174600,
        354.03,
        (
            DownstreamScore("Translation", 22.03, 29.63, 33.77, 64),
            DownstreamScore("Basic arithmetic", 25.99, 40.71, 49.55, 50),
            DownstreamScore("SuperGLUE", 58.2, 68.9, 73.2, 32),
        ),
    ),
    PaperModel("UniFormer-S", "VFM", 22, 3.6, (DownstreamScore("Image classification", 82.9),)),
    PaperModel("UniFormer-B", "VFM", 50, 8.3, (DownstreamScore("Image classification", 83.9),)),
    PaperModel(
        "CLIP-ViT-L/14",
        "MFM",
        428,
        175.5,
        (
            DownstreamScore("Classification", 75.20),
            DownstreamScore("Image retrieval", 71.08),
            DownstreamScore("Text retrieval", 84.00),
        ),
    ),
    PaperModel(
        "CLIP-ViT-H/14",
        "MFM",
        986,
        381.9,
        (
            DownstreamScore("Classification", 77.97),
            DownstreamScore("Image retrieval", 73.43),
            DownstreamScore("Text retrieval", 86.04),
        ),
    ),
)
"""[Xu 2023, Table I], in its row order (which is also the `lc` preset's popularity order)."""


def fit_accuracy_curve(model: PaperModel) -> tuple[float, float, float]:
    """(a0, a1, alpha) of a(K) = a0 + a1 log2(1 + K^alpha) ([Xu 2023, Fig. 4]) for `model`, relative to the cloud.

    Accuracy is measured relative to the cloud, which keeps the full context: each downstream task's scores are
    divided by its few-shot score (the score with K examples), then averaged over the model's tasks. The
    curve then passes exactly through the three averaged points: a(0) = zero-shot, so a0 = zero-shot;
    a(1) = a0 + a1 log2(2) = one-shot, so a1 = one-shot - zero-shot; a(K) = 1 at K the mean of the tasks' K
    (48.7), so alpha = log(2^((1 - a0) / a1) - 1) / log K. (Fig. 4's caption calls a1 "the one-shot
    accuracy"; with a(1) = one-shot the fit needs a1 = one-shot - zero-shot.) A model without one- and
    few-shot scores (the VFMs and MFMs: "only LFMs are large enough to have in-context learning ability",
    sec. V-A) has no gain from context: it is as accurate at the edge as in the cloud, a0 = 1, a1 = 0.
    """
    rows = [row for row in model.scores if row.one_shot is not None and row.few_shot is not None and row.k]
    if not rows:
        return 1.0, 0.0, 1.0
    zero = sum(row.zero_shot / row.few_shot for row in rows if row.few_shot) / len(rows)
    one = sum(row.one_shot / row.few_shot for row in rows if row.one_shot is not None and row.few_shot) / len(rows)
    k = sum(row.k for row in rows if row.k) / len(rows)
    a1 = one - zero
    alpha = math.log(2 ** ((1.0 - zero) / a1) - 1.0) / math.log(k)
    return zero, a1, alpha


# -- mato: [Wang 2025] -----------------------------------------------------------------------------------

_UNUSED_WITHOUT_CLOUD = "our assumption: unused in mato (no cloud execution: [Wang 2025, sec. II-A]'s cloud only supplies models)"
_NO_QUALITY = (
    "our assumption: [Wang 2025] scores no content quality; used by the quality-aware learner (MAPPO, [Guo 2025]) and the market"
)

MATO_SOURCES: dict[str, str] = {
    "n_devices": "[Wang 2025, sec. IV-A]: 10 EDs (5-20 in Fig. 4)",
    "n_servers": "[Wang 2025, sec. IV-A]: 3 ESs",
    "n_models": "[Wang 2025, sec. IV-C, Fig. 3]: 3 to 6 models; 3, the smallest",
    "area_m": "[Wang 2025, sec. IV-A]: 1 km x 1 km",
    "step_s": "our assumption: one task per device per step; 20 s lets a server drain a step's tasks (no rate is given)",
    "device_freq_hz": "[Wang 2025, sec. IV-A]: ED a random value in [1, 3] GHz",
    "server_freq_hz": "[Wang 2025, sec. IV-A]: ES 7 GHz",
    "cloud_freq_hz": "[Wang 2025, sec. IV-A]: CC 40 GHz",
    "task_size_bits": "[Wang 2025, sec. IV-A]: tasks of [2, 20] MB (read as megabytes, 8e6 bits; eq. 1 says Mbits)",
    "task_density_cpb": "our assumption: [Wang 2025] gives no computation density rho; 100-300 cycles/bit",
    "output_bits": "[Wang 2025, eq. 11]: the edge latency has no result-return term, so none is returned",
    "deadline_s": "our assumption: [Wang 2025] has no deadline; 4-16 s, the limits behind eq. 18's penalty P_e",
    "model_size_bits": "[Wang 2025, sec. IV-A]: models of [90, 250] MB",
    "model_popularity_zipf": "[Wang 2025, sec. II-A]: task generation follows a uniform distribution (exponent 0)",
    "server_memory_bits": "our assumption: [Wang 2025] states no ES memory; 400 MB holds about two of the 90-250 MB models",
    "bandwidth_hz": "our assumption: [Wang 2025] gives no rate formula; a 20 MHz channel for the Shannon rate",
    "max_rate_bps": "[Wang 2025, constraint c5] caps r_m^n at B_n^max; the value 100 Mbit/s is our assumption",
    "device_power_w": "[Wang 2025, eq. 6] p_m^n; the value 0.5 W is our assumption",
    "server_power_w": "our assumption: the ES's downlink power, 1 W (only sets the return rate)",
    "channel_gain": "our assumption: path gain g0 = 1e-4 at 1 m",
    "path_loss_exponent": "our assumption: path-loss exponent 3 (urban)",
    "noise_w": "our assumption: noise power 1e-13 W",
    "backhaul_bps": "[Wang 2025, eq. 7] r_c^n of the model download; the value 400 Mbit/s is our assumption",
    "backhaul_power_w": "[Wang 2025, eq. 8] p_c^n; the value 2 W is our assumption",
    "load_bps": "our assumption: host-to-GPU loading at 1 GB/s ([Xu 2023, sec. III-A]: size drives loading latency)",
    "load_power_w": "our assumption: 50 W while loading a model ([Xu 2023, sec. III-D]: switching costs energy)",
    "cloud_rate_bps": _UNUSED_WITHOUT_CLOUD,
    "wan_latency_s": _UNUSED_WITHOUT_CLOUD,
    "device_kappa": "[Wang 2025, eq. 4] c, read as kappa f^2 per cycle (eq. 10's form); the value 1e-28 is our assumption",
    "server_kappa": "[Wang 2025, eq. 10] c_n; the value 1e-29 is our assumption",
    "cloud_energy_per_cycle_j": _UNUSED_WITHOUT_CLOUD,
    "light_quality": _NO_QUALITY,
    "cloud_quality": _NO_QUALITY,
    "accuracy_zero_shot": _NO_QUALITY + " (form of [Xu 2023, Fig. 4])",
    "accuracy_gain": _NO_QUALITY + " (form of [Xu 2023, Fig. 4])",
    "accuracy_alpha": _NO_QUALITY + " (form of [Xu 2023, Fig. 4])",
    "context_decay": "our assumption: Age of Context's non-increasing utility ([Xu 2023, sec. V-B]) as 0.9 per step",
    "latency_weight": "[Wang 2025, eq. 18] w1 with w1 + w2 = 1; 0.5 is our assumption",
    "energy_weight": "[Wang 2025, eq. 18] w2 with w1 + w2 = 1; 0.5 is our assumption",
    "reward_scale": "our assumption: divides eq. 18's cost so that a step's reward is about -1 to -10",
    "deadline_penalty": "[Wang 2025, eq. 18] P_e; the value 1 is our assumption",
    "server_capacity": "[Wang 2025, sec. II-A]: FIFO servers, no capacity (None)",
    "task_demand": "[Wang 2025, sec. II-A]: FIFO servers, no ASP demand",
    "cycles_per_demand": "[Wang 2025, sec. II-A]: FIFO servers, no ASP demand",
    "server_quality": _NO_QUALITY + "; every ES alike",
    "cloud_execution": "[Wang 2025, sec. II-A]: a task runs on the ED or an ES; the CC only supplies models (eqs. 7-8)",
    "models": "[Wang 2025, sec. IV-A]: models are drawn per episode from model_size_bits; one accuracy curve",
}

# -- mato-cloud: our extension ---------------------------------------------------------------------------

_CLOUD_EXTENSION = "our extension: mato with a cloud execution path (the simulator's behaviour before issue 15)"

MATO_CLOUD_OVERRIDES: dict[str, tuple[object, str]] = {
    "cloud_execution": (True, _CLOUD_EXTENSION),
    "output_bits": (1 * MB, "our extension: one generated image (1 MB) returned, as before issue 15"),
}

# -- lc: [Xu 2023] ---------------------------------------------------------------------------------------

_LC_MIN_X, _LC_MAX_X = 0.5 * MB, 2 * MB

LC_OVERRIDES: dict[str, tuple[object, str]] = {
    "n_devices": (10, "our assumption: [Xu 2023, sec. V-A] says 'multiple vehicles'; 10 requests per step"),
    "n_servers": (1, "[Xu 2023, sec. V-A]: a remote cloud center and an edge server"),
    "n_models": (len(LC_MODELS), "[Xu 2023, Table I]: six PFMs"),
    "models": (LC_MODELS, "[Xu 2023, Table I]: sizes (parameters x 2 bytes, fp16: our assumption), GFLOPs, scores"),
    "step_s": (10.0, "our assumption: one request per vehicle every 10 s"),
    "task_size_bits": ((_LC_MIN_X, _LC_MAX_X), "our assumption: a prompt with an image, 0.5-2 MB uploaded"),
    "task_density_cpb": (
        (
            min(model.work for model in LC_MODELS) / _LC_MAX_X,
            max(model.work for model in LC_MODELS) / _LC_MIN_X,
        ),
        "derived: a task's work is its model's GFLOPs ([Xu 2023, Table I]) over its size: the range of work / x",
    ),
    "output_bits": (
        8e3,
        "our assumption: Table I's downstream tasks (translation, arithmetic, SuperGLUE, classification, retrieval) "
        "return text or labels: 1 kB",
    ),
    "deadline_s": ((4.0, 12.0), "our assumption: [Xu 2023] has no deadline (not in its system cost)"),
    "model_popularity_zipf": (1.0, "our assumption: Zipf(1) popularity over Table I's rows, in the Table's order"),
    "server_memory_bits": (
        28 * GB,
        "our assumption: holds GPT3-13B (25.7 GB) beside one CLIP model but not both, so the policy chooses "
        "between reloading a small model and the 13B one; GPT3-175B (349 GB) never fits and runs in the cloud "
        "(the regime of [Xu 2023, sec. I]: an edge server cannot load all PFMs)",
    ),
    "server_freq_hz": (LC_SERVER_FLOPS, "our assumption: one A100's fp16 peak, 312 TFLOP/s (a cycle is a FLOP in lc)"),
    "cloud_freq_hz": (8 * LC_SERVER_FLOPS, "our assumption: an 8-GPU cloud node, 2.5 PFLOP/s"),
    "backhaul_bps": (10e9, "our assumption: [Xu 2023] gives no rate; 10 Gbit/s metro fibre for r_cn (downloads, forwarding)"),
    "load_bps": (200e9, "our assumption: PCIe 4.0 x16, 25 GB/s host-to-GPU ([Xu 2023, sec. III-A]: model size drives loading)"),
    "load_power_w": (300.0, "our assumption: a data-centre GPU's board power while loading"),
    "wan_latency_s": (0.5, "our assumption: [Xu 2023, sec. III-C] 'extra core network latency', congested: 0.5 s"),
    "server_kappa": (1.3e-41, "our assumption: 400 W at 312 TFLOP/s, 1.3e-12 J per FLOP (kappa f^2)"),
    "cloud_energy_per_cycle_j": (1.3e-12, "our assumption: the same energy per FLOP as the edge GPU"),
    "cloud_quality": (1.0, "[Xu 2023, Table II]: the Cloud column's accuracy cost is 0 (full context)"),
    "cloud_execution": (True, "[Xu 2023, sec. III-C]: on a miss the ES migrates the request to the cloud"),
}
_LC_AS_MATO = "our assumption: [Xu 2023] gives none; as mato ([Wang 2025])"
LC_KEPT: dict[str, str] = {
    "area_m": _LC_AS_MATO + ", 1 km x 1 km",
    "device_freq_hz": _LC_AS_MATO + " (local execution is not compared in lc)",
    "model_size_bits": "unused in lc: the models' sizes are Table I's",
    "bandwidth_hz": _LC_AS_MATO,
    "max_rate_bps": _LC_AS_MATO,
    "device_power_w": _LC_AS_MATO,
    "server_power_w": _LC_AS_MATO,
    "channel_gain": _LC_AS_MATO,
    "path_loss_exponent": _LC_AS_MATO,
    "noise_w": _LC_AS_MATO,
    "backhaul_power_w": _LC_AS_MATO + " (energy is not in lc's system cost)",
    "cloud_rate_bps": "our assumption: device-to-cloud cellular rate 20 Mbit/s (only a direct cloud share uses it)",
    "device_kappa": _LC_AS_MATO + " (local execution is not compared in lc)",
    "light_quality": "our assumption: unused in lc (no local execution)",
    "accuracy_zero_shot": "unused in lc: each model's curve is fitted to Table I (fit_accuracy_curve)",
    "accuracy_gain": "unused in lc: each model's curve is fitted to Table I (fit_accuracy_curve)",
    "accuracy_alpha": "unused in lc: each model's curve is fitted to Table I (fit_accuracy_curve)",
    "context_decay": "our assumption: Age of Context ([Xu 2023, sec. V-B]) gives only the shape; 0.9 per step",
    "latency_weight": "unused in lc's system cost; as mato",
    "energy_weight": "unused in lc's system cost; as mato",
    "reward_scale": "unused in lc's system cost; as mato",
    "deadline_penalty": "unused in lc's system cost; as mato",
    "server_capacity": "[Xu 2023, sec. V-A]: an edge server with a queue, no ASP capacity",
    "task_demand": "[Xu 2023, sec. V-A]: no ASP demand",
    "cycles_per_demand": "[Xu 2023, sec. V-A]: no ASP demand",
    "server_quality": "our assumption: the edge runs the same models as the cloud (quality factor 1)",
}

# -- asp: [Xu 2024, sec. V-A] ------------------------------------------------------------------------------

ASP_OVERRIDES: dict[str, tuple[object, str]] = {
    "n_devices": (10, "our assumption: 10 devices x 100 steps = the 1,000 tasks of [Xu 2024, sec. V-A]"),
    "n_servers": (20, "[Xu 2024, sec. V-A]: 20 ASPs"),
    "n_models": (1, "our assumption: one diffusion model per ASP ([Xu 2024, sec. V-A] varies capability, not models)"),
    "model_size_bits": ((90 * MB, 90 * MB), "our assumption: one 90 MB model that always fits"),
    "task_size_bits": ((0.1 * MB, 0.5 * MB), "our assumption: an image and a requirement text, 0.1-0.5 MB"),
    "task_density_cpb": ((1.0, 1.0), "our assumption: the work is in the diffusion steps (cycles_per_demand)"),
    "deadline_s": ((30.0, 60.0), "our assumption: [Xu 2024] has no deadline; 30-60 s"),
    "server_capacity": ((600.0, 1500.0), "[Xu 2024, sec. V-A]: capacity of 600-1,500 diffusion steps per ASP"),
    "task_demand": ((100.0, 250.0), "[Xu 2024, sec. V-A]: tasks of 100-250 diffusion steps"),
    "cycles_per_demand": (0.35e9, "our assumption: 0.35 Gcycles per diffusion step"),
    "server_quality": ((0.5, 1.0), "our assumption: [Xu 2024, sec. V-A] ASPs differ in model capability: 0.5-1"),
    "step_s": (1.0, "our assumption: one task per device per second ([Xu 2024]: Poisson, 0.288 per hour)"),
    "cloud_execution": (True, "our assumption: [Xu 2024, sec. V-A] does not restrict it; as before issue 15"),
    "output_bits": (1 * MB, "our assumption: the generated image (1 MB) returned to the user, as before issue 15"),
}
_ASP_AS_MATO = "our assumption: [Xu 2024, sec. V-A] gives none; as mato ([Wang 2025])"
ASP_KEPT: dict[str, str] = {
    name: _ASP_AS_MATO for name in MATO_SOURCES if name not in ASP_OVERRIDES and name not in {"models", "server_memory_bits"}
}
ASP_KEPT["models"] = "our assumption: one unnamed model, its size from model_size_bits"
ASP_KEPT["server_memory_bits"] = "our assumption: 400 MB, as mato: the one model always fits"

OVERRIDES: dict[PresetName, dict[str, tuple[object, str]]] = {
    PresetName.MATO: {},
    PresetName.MATO_CLOUD: MATO_CLOUD_OVERRIDES,
    PresetName.LC: LC_OVERRIDES,
    PresetName.ASP: ASP_OVERRIDES,
}
KEPT: dict[PresetName, dict[str, str]] = {
    PresetName.MATO: MATO_SOURCES,
    PresetName.MATO_CLOUD: {name: source for name, source in MATO_SOURCES.items() if name not in MATO_CLOUD_OVERRIDES},
    PresetName.LC: LC_KEPT,
    PresetName.ASP: ASP_KEPT,
}

EXPERIMENT_SOURCES: dict[PresetName, dict[str, str]] = {
    PresetName.MATO: {
        "compares": "[Wang 2025, sec. IV-A]: offloading policies compared (Random, Greedy, learned ones)",
        "scheduler": "unused: mato compares schedulers",
        "caching": "our assumption: [Wang 2025] names no eviction policy; LFU",
        "steps": "our assumption: 100 steps per comparison run",
    },
    PresetName.MATO_CLOUD: {
        "compares": "our extension: as mato, with the cloud-only scheduler",
        "scheduler": "unused: mato-cloud compares schedulers",
        "caching": "our assumption: as mato, LFU",
        "steps": "our assumption: 100 steps per comparison run",
    },
    PresetName.LC: {
        "compares": "[Xu 2023, Table II]: caching policies random, cloud, FIFO, LFU and LC",
        "scheduler": "[Xu 2023, sec. III-C]: every request to the edge server, which loads a missing model",
        "caching": "unused: lc compares caching policies",
        "steps": "our assumption: 100 steps per comparison run",
    },
    PresetName.ASP: {
        "compares": "[Xu 2024, sec. V-A, Fig. 9]: ASP selection policies",
        "scheduler": "unused: asp compares schedulers",
        "caching": "our assumption: LFU (one model: the policy cannot matter)",
        "steps": "our assumption: 100 steps x 10 devices = the 1,000 tasks of [Xu 2024, sec. V-A]",
    },
}
