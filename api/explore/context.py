"""What the explorer keeps beside the app's state: the templates, block timestamps and the chain's constants.

A block's timestamp never changes once mined, and neither do the registry's challenge window and
royalty, so each is read from the chain once per process; `chain_now` is read on every page that
shows a countdown or finality.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from fastapi import Request
from jinja2 import Environment, FileSystemLoader, select_autoescape

from api.simulations import SimulationRunner
from api.state import AppState
from market.terms import ETHER

TEMPLATES = Path(__file__).parent / "templates"

#: Timestamps kept per process (a block's never changes); past this many the oldest half is dropped.
MAX_TIMESTAMPS = 100_000


def utc(timestamp: int | None) -> str:
    """A chain timestamp as `YYYY-MM-DD HH:MM:SS UTC` ("unknown" for None)."""
    if timestamp is None:
        return "unknown"
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def short(value: str | None, keep: int = 10) -> str:
    """A hash or address cut to its first `keep` and last 4 characters for tables (the full value is in the title)."""
    if not value:
        return ""
    return value if len(value) <= keep + 6 else f"{value[:keep]}…{value[-4:]}"


def ether(wei: int | str | None) -> str:
    """Wei as ether with up to 6 decimals (`0.01 ETH`)."""
    if wei is None:
        return ""
    text = f"{int(wei) / ETHER:.6f}".rstrip("0").rstrip(".")
    return f"{text} ETH"


def environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]), auto_reload=False)
    env.filters.update(utc=utc, short=short, ether=ether)
    return env


@dataclass
class Explorer:
    state: AppState
    simulations: SimulationRunner
    templates: Environment = field(default_factory=environment)
    timestamps: dict[int, int] = field(default_factory=dict)
    constants: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def block_time(self, number: int) -> int | None:
        """Timestamp of block `number` (None when the chain has no such block)."""
        cached = self.timestamps.get(number)
        if cached is not None:
            return cached
        try:
            stamp = self.state.chain.block_timestamp(number)
        except Exception:  # a block the node does not have: shown as unknown, not a failed page
            return None
        with self.lock:
            if len(self.timestamps) >= MAX_TIMESTAMPS:
                for key in list(self.timestamps)[: MAX_TIMESTAMPS // 2]:
                    del self.timestamps[key]
            self.timestamps[number] = stamp
        return stamp

    def constant(self, name: str) -> int:
        """`challenge_window`, `royalty_bps`, `registration_bond` or `challenge_deposit` of the registry (read once)."""
        value = self.constants.get(name)
        if value is None:
            value = int(getattr(self.state.market.registry, name)())
            self.constants[name] = value
        return value

    def chain_now(self) -> int:
        return self.state.chain.now()

    def last_block_before(self, moment: int, head: int) -> int:
        """The highest block up to `head` stamped at or before `moment` (0 when none): a binary search on timestamps."""
        low, high = 0, head
        first = self.block_time(0)
        if first is None or first > moment:
            return 0
        while low < high:
            middle = (low + high + 1) // 2
            stamp = self.block_time(middle)
            if stamp is not None and stamp <= moment:
                low = middle
            else:
                high = middle - 1
        return low


def explorer_of(request: Request) -> Explorer:
    """The app's explorer, made on its first page."""
    app_state = request.app.state
    explorer: Explorer | None = getattr(app_state, "explorer", None)
    if explorer is None:
        explorer = Explorer(state=app_state.market, simulations=app_state.simulations)
        app_state.explorer = explorer
    return explorer
