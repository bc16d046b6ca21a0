"""The one console every command prints through (rich)."""

from __future__ import annotations

from rich.console import Console

console = Console()
