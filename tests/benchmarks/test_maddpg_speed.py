"""The convergence rule of benchmarks/maddpg_speed.py."""

from __future__ import annotations

import importlib.util

from market.chain.paths import REPO_ROOT

spec = importlib.util.spec_from_file_location("maddpg_speed", REPO_ROOT / "benchmarks" / "maddpg_speed.py")
assert spec is not None and spec.loader is not None
maddpg_speed = importlib.util.module_from_spec(spec)
spec.loader.exec_module(maddpg_speed)


def test_a_curve_that_settles_converges_where_its_moving_mean_enters_the_band():
    rewards = [-20.0, -15.0, -12.0, -10.0, -10.1, -9.9, -10.0, -10.05]
    assert maddpg_speed.convergence_episode(rewards) == 5  # moving means: ..., -10.7, -10.0, -10.0, -9.98


def test_a_curve_still_improving_at_the_end_converges_only_at_its_last_episodes():
    rewards = [-20.0 + 2 * e for e in range(8)]
    assert maddpg_speed.convergence_episode(rewards) == 7


def test_a_flat_curve_has_converged_from_the_start():
    assert maddpg_speed.convergence_episode([-5.0] * 6) == 0
