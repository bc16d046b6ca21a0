"""The README's Python example runs as written (on the embedded chain)."""

from __future__ import annotations

import re
import subprocess
import sys

from market.chain.paths import REPO_ROOT


def test_the_readme_python_example_runs_and_prints_the_named_revert():
    readme = (REPO_ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    assert len(blocks) == 1
    proc = subprocess.run([sys.executable, "-c", blocks[0]], capture_output=True, text=True, timeout=300, cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "AIGCRegistryGenerationNotPaid"
