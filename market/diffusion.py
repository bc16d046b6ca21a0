"""A real text-to-image generator: a diffusers pipeline loaded from a local directory (docs/generators.md).

The optional extra `aigc-market[diffusion]` installs diffusers and transformers. Nothing is ever
downloaded: the pipeline is read with `local_files_only=True` and the Hugging Face hub is put offline
before diffusers is imported. The ESP's secret per-job seed (`market.content.Generator`) seeds the
pipeline's initial noise, so the same (seed, prompt) gives the same image and a fresh seed a fresh one,
which is what Proof-of-AIGC's priority rests on (docs/protocol.md).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from market.content import png_bytes

DEFAULT_STEPS = 20
"""Denoising steps per image (Stable Diffusion's schedulers are usually run for 20-50)."""
DEFAULT_SIZE = 512
"""Image side in pixels (Stable Diffusion 1.x's native 512)."""
DEFAULT_GUIDANCE = 7.5
"""Classifier-free guidance scale (diffusers' default for Stable Diffusion)."""


class GeneratorUnavailable(ValueError):
    """The generator cannot be built: the extra is not installed, or the directory holds no pipeline."""


def _load_pipeline(directory: Path, device: str) -> Any:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # before diffusers reads it: never reach for the hub
    try:
        from diffusers import DiffusionPipeline
    except ImportError as exc:
        raise GeneratorUnavailable("the diffusers generator needs the extra: pip install 'aigc-market[diffusion]'") from exc
    if not (directory / "model_index.json").is_file():
        raise GeneratorUnavailable(f"{directory} is not a diffusers pipeline directory (no model_index.json)")
    try:
        pipeline = DiffusionPipeline.from_pretrained(directory, local_files_only=True)  # type: ignore[no-untyped-call]
    except (OSError, ValueError, TypeError, KeyError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise GeneratorUnavailable(f"cannot load the pipeline in {directory}: {reason}") from exc
    pipeline.set_progress_bar_config(disable=True)
    return pipeline.to(device)


def noise_seed(seed: bytes, prompt: str) -> int:
    """The pipeline's noise seed: the first 63 bits of sha256(seed || prompt)."""
    return int.from_bytes(hashlib.sha256(seed + prompt.encode()).digest()[:8], "big") >> 1


@dataclass
class DiffusersImageGenerator:
    """`generate(prompt, seed)` -> PNG bytes from the text-to-image pipeline saved in `directory`."""

    directory: Path
    steps: int = DEFAULT_STEPS
    size: int = DEFAULT_SIZE
    guidance_scale: float = DEFAULT_GUIDANCE
    device: str = "cpu"
    _pipeline: Any = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise GeneratorUnavailable(f"steps must be at least 1, got {self.steps}")
        if self.size < 8 or self.size % 8:
            raise GeneratorUnavailable(f"size must be a positive multiple of 8 (the VAE's stride), got {self.size}")
        self.directory = Path(self.directory).expanduser()
        self._pipeline = _load_pipeline(self.directory, self.device)  # at once: a bad directory fails at start

    def generate(self, prompt: str, seed: bytes = b"") -> bytes:
        import torch

        noise = torch.Generator(device=self.device).manual_seed(noise_seed(seed, prompt))
        result = self._pipeline(
            prompt,
            num_inference_steps=self.steps,
            height=self.size,
            width=self.size,
            guidance_scale=self.guidance_scale,
            generator=noise,
            output_type="pil",
        )
        return png_bytes(result.images[0])
