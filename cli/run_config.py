"""Every run writes the full configuration it used beside its results (`config.json`)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)  # enums (their value), devices, paths


def write_run_config(out: Path, **parts: Any) -> Path:
    """Write `out/config.json`: each named part (a config dataclass or a plain value), every field included."""
    path = out / "config.json"
    path.write_text(json.dumps({name: _plain(part) for name, part in parts.items()}, indent=2) + "\n")
    return path
