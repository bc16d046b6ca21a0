"""Static analysis in `make test`: slither finds no High (but the triaged false positives listed in
contracts/SECURITY.md), every Medium is explained there; solhint passes the checked-in
contracts/.solhint.json with no warning.

slither lives in its own venv (it needs web3 < 8): `make slither-venv` creates .venv-slither;
SLITHER names another binary. It compiles through the solc-js shim with --solc-standard-json.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from market.chain.paths import CONTRACTS_DIR, NODE_MODULES, REPO_ROOT, SOLC_SHIM

SLITHER = Path(os.environ.get("SLITHER", REPO_ROOT / ".venv-slither" / "bin" / "slither"))
SOLHINT = NODE_MODULES / ".bin" / "solhint"
SECURITY_NOTES = CONTRACTS_DIR / "SECURITY.md"
#: The section of SECURITY.md that lists High findings verified to be false positives.
FALSE_POSITIVES = re.compile(r"^## False positives\b.*?(?=^## )", re.MULTILINE | re.DOTALL)


def _tool(path: Path, how: str) -> str:
    if not path.exists():
        pytest.fail(f"{path} is missing: {how}")
    return str(path)


@pytest.fixture(scope="module")
def slither_findings() -> list[dict]:
    slither = _tool(SLITHER, "run `make slither-venv` (or set SLITHER)")
    proc = subprocess.run(
        [
            slither,
            "contracts/",
            "--solc-standard-json",
            "--solc",
            str(SOLC_SHIM),
            "--solc-remaps",
            "@openzeppelin/=node_modules/@openzeppelin/",
            "--exclude-dependencies",
            "--filter-paths",
            "node_modules|contracts/test/|contracts/foundry/",
            "--json",
            "-",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    report = json.loads(proc.stdout)
    assert report["success"], report.get("error")
    return report["results"].get("detectors", [])


def _where(finding: dict) -> str:
    first = finding["elements"][0] if finding["elements"] else {}
    return f"`{finding['check']}` in `{first.get('name', '')}`"


def test_slither_finds_no_high_and_every_medium_is_explained(slither_findings):
    counts = Counter(f["impact"] for f in slither_findings)
    print(f"\nslither findings by severity: {dict(sorted(counts.items()))}")
    notes = SECURITY_NOTES.read_text()
    section = FALSE_POSITIVES.search(notes)
    triaged = section.group(0) if section else ""
    # A High passes only as a false positive that SECURITY.md names in its "False positives" section.
    highs = [_where(f) for f in slither_findings if f["impact"] == "High" and _where(f) not in triaged]
    assert highs == [], f"slither High findings (fix them, or show in SECURITY.md that they are false): {highs}"
    unexplained = [_where(f) for f in slither_findings if f["impact"] == "Medium" and _where(f) not in notes]
    assert unexplained == [], f"Medium findings neither fixed nor explained in contracts/SECURITY.md: {unexplained}"


def test_solhint_passes_with_the_checked_in_config():
    solhint = _tool(SOLHINT, "run `npm ci` (solhint is a devDependency)")
    proc = subprocess.run(
        [solhint, "-c", "contracts/.solhint.json", "--max-warnings", "0", "contracts/*.sol"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
