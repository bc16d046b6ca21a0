"""Figures of the commands: matplotlib on the Agg backend (no display), saved and closed in one place."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def figure(path: Path, ncols: int = 1, size: tuple[float, float] = (7, 4), dpi: int = 120) -> Iterator[Any]:
    """Yield the axes of a new figure (one, or a row of `ncols`), then save it to `path` and close it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, ncols, figsize=size)
    try:
        yield axes
        fig.tight_layout()
        fig.savefig(path, dpi=dpi)
    finally:
        plt.close(fig)
