"""Copy the explorer's front-end files from node_modules (pinned in package-lock.json) into api/explore/static/vendor/.

The copies are committed, so that an installed package serves its pages without node_modules;
tests/api/test_explore_vendor.py checks that they are byte-identical to node_modules' files. Run after
changing a version in package.json (`npm install --save-exact`, then `.venv/bin/python tools/vendor_js.py`).
See docs/explorer.md.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENDOR = ROOT / "api" / "explore" / "static" / "vendor"

#: vendored name -> path under node_modules (the npm package is the first part).
FILES = {
    "chart.umd.min.js": "chart.js/dist/chart.umd.min.js",
    "chart.js.LICENSE.md": "chart.js/LICENSE.md",
    "axe.min.js": "axe-core/axe.min.js",
    "axe-core.LICENSE": "axe-core/LICENSE",
}


def main() -> int:
    VENDOR.mkdir(parents=True, exist_ok=True)
    for name, source in FILES.items():
        path = ROOT / "node_modules" / source
        if not path.is_file():
            print(f"{path} is missing: run `make install` (npm ci) first", file=sys.stderr)
            return 2
        shutil.copyfile(path, VENDOR / name)
        print(f"{source} -> {(VENDOR / name).relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
