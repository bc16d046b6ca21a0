"""The `--device` option of the commands that run the offloading core."""

from __future__ import annotations

import typer


def checked_device(device: str) -> str:
    """`device` if it is `cpu`, or `cuda` with a CUDA device present; else a usage error (exit 2)."""
    if device not in ("cpu", "cuda"):
        raise typer.BadParameter(f"must be cpu or cuda, got {device!r}", param_hint="--device")
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise typer.BadParameter("cuda requested but no CUDA device is available", param_hint="--device")
    return device
