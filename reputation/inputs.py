"""Validation of rating batches and query arguments: every bad input raises ValueError naming the argument."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

IndexLike = int | torch.Tensor
BoolLike = bool | torch.Tensor
FloatLike = float | int | torch.Tensor


@dataclass(frozen=True)
class Rating:
    """One rating as a plain record (e.g. adapted from an on-chain `Rated` event)."""

    producer: int
    """Index of the producer who rated, in [0, n_producers)."""
    esp: int
    """Index of the rated ESP, in [0, n_esps)."""
    positive: bool
    """Whether the rating is positive."""
    t: float
    """Time of the rating, in the same unit as the config's `period`."""
    score: float | None = None
    """Optional non-negative score that came with the rating (informational; see `mean_score`)."""


@dataclass(frozen=True)
class RatingBatch:
    """A validated batch of B ratings, all tensors of shape [B] on the store's device."""

    producer: torch.Tensor
    """[B] int64 producer indices."""
    esp: torch.Tensor
    """[B] int64 ESP indices."""
    positive: torch.Tensor
    """[B] bool."""
    t: torch.Tensor
    """[B] float64 times."""
    score: torch.Tensor | None
    """[B] float64 scores, or None when no score was given."""


def _as_1d(name: str, value: object, device: torch.device) -> torch.Tensor:
    tensor = torch.as_tensor(value, device=device)
    if tensor.dim() > 1:
        raise ValueError(f"{name} must be a scalar or a 1-D tensor, got shape {tuple(tensor.shape)}")
    return tensor.reshape(-1)


def as_index(name: str, value: IndexLike, size: int, device: torch.device) -> torch.Tensor:
    """Integer indices in [0, size) as a [B] int64 tensor, or ValueError naming `name`."""
    if isinstance(value, bool) or (isinstance(value, torch.Tensor) and value.dtype == torch.bool):
        raise ValueError(f"{name} must be integer indices, not booleans")
    if isinstance(value, float) or (isinstance(value, torch.Tensor) and value.is_floating_point()):
        raise ValueError(f"{name} must be integer indices, got a float")
    index = _as_1d(name, value, device).to(torch.int64)
    if index.numel() and (int(index.min()) < 0 or int(index.max()) >= size):
        bad = int(index.min()) if int(index.min()) < 0 else int(index.max())
        raise ValueError(f"{name} index {bad} out of range [0, {size})")
    return index


def as_time(name: str, value: FloatLike) -> float:
    """A finite scalar time, or ValueError naming `name`."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"{name} must be a scalar time")
        value = float(value.item())
    try:
        result = float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a number, got {value!r}") from exc
    if not math.isfinite(result):
        raise ValueError(f"{name} must be a finite time, got {result}")
    return result


def make_batch(
    producer: IndexLike,
    esp: IndexLike,
    positive: BoolLike,
    t: FloatLike,
    score: FloatLike | None,
    n_producers: int,
    n_esps: int,
    device: torch.device,
) -> RatingBatch:
    """Validate and broadcast one `observe` call into a RatingBatch."""
    p = as_index("producer", producer, n_producers, device)
    e = as_index("esp", esp, n_esps, device)
    if isinstance(positive, torch.Tensor) and positive.is_floating_point():
        raise ValueError("positive must be booleans (or 0/1 integers), got floats")
    pos = _as_1d("positive", positive, device)
    if pos.dtype != torch.bool:
        if pos.numel() and not bool(((pos == 0) | (pos == 1)).all()):
            raise ValueError("positive must be booleans (or 0/1 integers)")
        pos = pos.to(torch.bool)
    times = _as_1d("t", t, device).to(torch.float64)
    if not bool(torch.isfinite(times).all()):
        raise ValueError("t must be finite (got NaN or infinity)")
    scores = None
    if score is not None:
        scores = _as_1d("score", score, device).to(torch.float64)
        if not bool(torch.isfinite(scores).all()):
            raise ValueError("score must be finite (got NaN or infinity)")
        if scores.numel() and float(scores.min()) < 0:
            raise ValueError(f"score must be non-negative, got {float(scores.min())}")
    parts = [p, e, pos, times] + ([scores] if scores is not None else [])
    try:
        shape = torch.broadcast_shapes(*(x.shape for x in parts))  # type: ignore[no-untyped-call]
    except RuntimeError as exc:
        sizes = ", ".join(f"{n}={x.numel()}" for n, x in zip(("producer", "esp", "positive", "t", "score"), parts, strict=False))
        raise ValueError(f"producer, esp, positive, t and score must have one length or be scalars ({sizes})") from exc
    return RatingBatch(
        producer=p.expand(shape),
        esp=e.expand(shape),
        positive=pos.expand(shape),
        t=times.expand(shape),
        score=scores.expand(shape) if scores is not None else None,
    )


def check_strategy(strategy: str, temperature: float) -> None:
    """ValueError unless strategy is 'softmax' or 'argmax' and temperature > 0."""
    if strategy not in ("softmax", "argmax"):
        raise ValueError(f"strategy must be 'softmax' or 'argmax', got {strategy!r}")
    if not (isinstance(temperature, int | float) and math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be a positive number, got {temperature!r}")
