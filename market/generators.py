"""Generators behind one interface (`market.content.Generator`), chosen by a spec `NAME[:ARG]`.

- `deterministic[:SIZE]`: `market.content.DeterministicImageGenerator` (the default; no model).
- `diffusers:PATH[,steps=N][,size=N]`: `market.diffusion.DiffusersImageGenerator`, a text-to-image pipeline
  saved in the local directory PATH (optional extra `aigc-market[diffusion]`; nothing is downloaded).

`timed_generate` returns the content with the measured generation time, which a task records beside
the offloading core's predicted latency (docs/generators.md).
"""

from __future__ import annotations

import time
from enum import StrEnum
from pathlib import Path

from market.content import IMAGE_SIZE, DeterministicImageGenerator, Generator


class GeneratorName(StrEnum):
    DETERMINISTIC = "deterministic"
    DIFFUSERS = "diffusers"


DEFAULT_GENERATOR = GeneratorName.DETERMINISTIC.value
#: The options of `diffusers:PATH,steps=N,size=N` (market.diffusion.DiffusersImageGenerator's fields).
DIFFUSERS_OPTIONS = ("steps", "size")


def make_generator(spec: str = DEFAULT_GENERATOR, device: str = "cpu") -> Generator:
    """The generator that `spec` names; ValueError with a one-line reason when it names none."""
    name, _, arg = spec.partition(":")
    if name == GeneratorName.DETERMINISTIC:
        if not arg:
            return DeterministicImageGenerator()
        if not arg.isdigit() or not 8 <= int(arg) <= 4096:
            raise ValueError(f"generator deterministic:SIZE needs a size of 8-4096 pixels, got {arg!r}")
        return DeterministicImageGenerator(size=int(arg))
    if name == GeneratorName.DIFFUSERS:
        path, *options = arg.split(",")
        if not path:
            raise ValueError("generator diffusers:PATH[,steps=N][,size=N] needs the directory of a saved pipeline")
        settings: dict[str, int] = {}
        for option in options:
            key, _, value = option.partition("=")
            if key not in DIFFUSERS_OPTIONS or not value.isdigit():
                raise ValueError(f"generator diffusers: option {option!r} is not steps=N or size=N")
            settings[key] = int(value)
        from market.diffusion import DiffusersImageGenerator

        return DiffusersImageGenerator(Path(path), device=device, **settings)
    names = ", ".join(g.value for g in GeneratorName)
    raise ValueError(f"unknown generator {name!r}: one of {names} (as NAME[:ARG])")


def timed_generate(generator: Generator, prompt: str, seed: bytes = b"") -> tuple[bytes, float]:
    """The content and the wall-clock seconds its generation took."""
    started = time.perf_counter()
    content = generator.generate(prompt, seed)
    return content, time.perf_counter() - started


__all__ = ["DEFAULT_GENERATOR", "IMAGE_SIZE", "GeneratorName", "make_generator", "timed_generate"]
