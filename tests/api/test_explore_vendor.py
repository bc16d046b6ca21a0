"""The explorer's vendored JS is exactly what package-lock.json pins: byte-identical to node_modules' copies,
at the locked versions, and served by the app from /explore/static (no CDN: the pages work offline)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))

from vendor_js import FILES, VENDOR  # noqa: E402


@pytest.mark.parametrize("name", sorted(FILES))
def test_each_vendored_file_is_byte_identical_to_node_modules(name: str) -> None:
    source = ROOT / "node_modules" / FILES[name]
    if not source.exists():
        pytest.skip(f"{source} is not installed (npm ci)")
    assert (VENDOR / name).read_bytes() == source.read_bytes()


def test_the_vendored_packages_are_the_versions_the_lockfile_pins() -> None:
    lock = json.loads((ROOT / "package-lock.json").read_text())["packages"]
    declared = json.loads((ROOT / "package.json").read_text())
    pinned = declared["dependencies"] | declared["devDependencies"]
    for package in {path.split("/")[0] for path in FILES.values()}:
        assert re.fullmatch(r"\d+\.\d+\.\d+", pinned[package]), f"{package} is not pinned exactly"
        assert lock[f"node_modules/{package}"]["version"] == pinned[package]
    assert "chart.js v" + pinned["chart.js"] in (VENDOR / "chart.umd.min.js").read_text()[:200].lower()
    assert "axe v" + pinned["axe-core"] in (VENDOR / "axe.min.js").read_text()[:200]


def test_no_template_loads_anything_from_another_host() -> None:
    templates = (ROOT / "api" / "explore" / "templates").glob("*.html")
    remote = [t.name for t in templates if re.search(r"""(src|href)=["'](https?:)?//""", t.read_text())]
    assert remote == []
