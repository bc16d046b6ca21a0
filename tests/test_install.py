"""The project installs as a package (not editable) and its commands work outside the source tree.

The wheel is built from the local source without network (no build isolation) and installed without
dependencies into a fresh venv; the dependencies come from this session's environment through a
`.pth` path (so nothing is downloaded), after the fresh venv's own site-packages, which hold the
package: the commands below therefore run the installed copy, with the contract artifacts it ships.
"""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

from market.chain.paths import REPO_ROOT


def run(*args: str | Path, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout, cwd=cwd)


def test_a_non_editable_install_deploys_and_simulates_outside_the_source_tree(tmp_path: Path):
    wheels = tmp_path / "wheels"
    built = run(
        sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", wheels, REPO_ROOT, cwd=tmp_path
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = wheels.glob("aigc_market-*.whl")

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    site = Path(run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=tmp_path).stdout.strip())
    (site / "zz_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    installed = run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "-q", wheel, cwd=tmp_path)
    assert installed.returncode == 0, installed.stderr

    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    where = run(python, "-c", "import market.chain.paths as p; print(p.BUILD_DIR)", cwd=workdir)
    assert where.stdout.strip().startswith(str(site)), where.stdout  # the installed copy, not the checkout

    deployed = run(env_dir / "bin" / "aigc-market", "chain", "deploy", "--out", workdir / "deployment.json", cwd=workdir)
    assert deployed.returncode == 0, deployed.stderr
    contracts = json.loads((workdir / "deployment.json").read_text())["contracts"]
    assert set(contracts) == {"AIGCRegistry", "AIGCExchange", "ReputationLedger"}

    simulated = run(env_dir / "bin" / "aigc-market", "simulate", "--periods", "2", "--out", workdir / "sim", "--json", cwd=workdir)
    assert simulated.returncode == 0, simulated.stderr
    summary = json.loads(simulated.stdout.strip().splitlines()[-1])
    assert summary["tasks"] == 2 * 3 and all(summary["invariants"].values())
