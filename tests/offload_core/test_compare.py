"""The comparison experiments: orderings on fixed seeds, what disagrees with the seeds, and what the 95%
confidence intervals of `compare` mean."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from offload_core.compare import compare, confidence_interval, metric_names, run_variant, variants
from offload_core.config import preset

torch.set_num_threads(1)

ENVS, SEED = 32, 0


@pytest.fixture(scope="module")
def lc_rows():
    return compare(preset("lc"), envs=ENVS, steps=100, seed=SEED)


@pytest.fixture(scope="module")
def asp_rows():
    return compare(preset("asp"), envs=ENVS, steps=100, seed=SEED)


def cost(rows, variant):
    return rows[variant]["system_cost"].mean


def overlap(a, b) -> bool:
    """Whether two 95% intervals (mean ± half-width) share a point."""
    return abs(a.mean - b.mean) <= a.half_width + b.half_width


# -- orderings on fixed seeds -----------------------------------------------------------------------------


def test_lc_compares_the_policies_of_xu_2023_table_2(lc_rows):
    assert list(lc_rows) == ["random", "cloud", "fifo", "lfu", "lc"]


def test_cloud_only_runs_nothing_at_the_edge_and_costs_only_the_cloud_path(lc_rows):
    """[Xu 2023, Table II]'s Cloud column: 0% edge execution, no switching, accuracy, inference or offloading cost."""
    cloud = lc_rows["cloud"]
    assert cloud["edge_execution_ratio"].mean == 0.0
    for term in ("switching_cost", "accuracy_cost", "inference_latency", "offloading_latency"):
        assert cloud[term].mean == 0.0, term
    assert cloud["system_cost"].mean == pytest.approx(cloud["cloud_cost"].mean)


def test_least_context_and_lfu_keep_the_big_model_and_cost_least(lc_rows):
    """LC and LFU rarely evict GPT3-13B (25.7 GB), FIFO and random often do: their switching cost is several
    times higher, and LC and LFU have the lowest system cost, below cloud-only, as in [Xu 2023, Table II]
    (LC 4.88 < LFU 5.93 < Cloud 7.29 < Random 25.67 < FIFO 27.51). Ours differs in two places, recorded here:
    LC and LFU tie within 1% (each caches the popular model), and FIFO is not above random."""
    assert (
        max(cost(lc_rows, "lc"), cost(lc_rows, "lfu"))
        < cost(lc_rows, "cloud")
        < min(cost(lc_rows, "fifo"), cost(lc_rows, "random"))
    )
    assert cost(lc_rows, "lc") == pytest.approx(cost(lc_rows, "lfu"), rel=0.01)
    for policy in ("fifo", "random"):
        assert lc_rows[policy]["switching_cost"].mean > 4 * lc_rows["lfu"]["switching_cost"].mean
    # GPT3-175B (a fifth of the requests under Zipf(1)) never fits the edge server: it always runs in the cloud.
    for policy in ("random", "fifo", "lfu", "lc"):
        assert lc_rows[policy]["edge_execution_ratio"].mean < 0.85


def test_mato_compares_no_scheduler_that_needs_the_cloud():
    """[Wang 2025]'s cloud only supplies models: cloud-only is not a mato variant, and running it is refused."""
    labels = [label for label, _, _ in variants(preset("mato"))]
    assert "cloud" not in labels and "greedy" in labels
    assert "cloud" in [label for label, _, _ in variants(preset("mato-cloud"))]
    with pytest.raises(ValueError, match="cloud execution"):
        run_variant(preset("mato"), "lfu", "cloud", 2, 1, SEED)


def test_asp_utility_rises_from_random_to_round_robin_to_least_loaded(asp_rows):
    utility = {name: asp_rows[name]["utility"].mean for name in asp_rows}
    assert utility["random-server"] < utility["round-robin"] < utility["least-loaded"]


def test_asp_crash_rate_falls_from_random_to_round_robin_to_least_loaded(asp_rows):
    crashes = {name: asp_rows[name]["crash_rate"].mean for name in asp_rows}
    assert crashes["random-server"] > crashes["round-robin"] > crashes["least-loaded"]


# -- what the confidence interval means -------------------------------------------------------------------


def test_the_half_width_of_a_known_sample_is_the_t_quantile_times_the_standard_error():
    """[1, 2, 3, 4, 5]: mean 3, s^2 = (4 + 1 + 0 + 1 + 4) / 4 = 2.5, standard error sqrt(2.5 / 5) = 0.7071,
    t(0.975, 4 df) = 2.7764, half-width 1.9632; the same as scipy's t.interval around the mean."""
    summary = confidence_interval(torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0]))
    assert summary.mean == 3.0
    assert summary.half_width == pytest.approx(2.7764451 * math.sqrt(2.5 / 5), rel=1e-7)
    assert summary.half_width == pytest.approx(1.9632432, rel=1e-7)
    low, high = stats.t.interval(0.95, 4, loc=3.0, scale=stats.sem([1, 2, 3, 4, 5]))
    assert (summary.mean - summary.half_width, summary.mean + summary.half_width) == pytest.approx((low, high), rel=1e-12)


def test_one_environment_gives_no_interval():
    """With one value there is no sample variance: the half-width is NaN, not 0 (which would claim certainty)."""
    summary = confidence_interval(torch.tensor([0.7]))
    assert summary.mean == pytest.approx(0.7) and math.isnan(summary.half_width)


def test_the_interval_covers_the_true_mean_95_percent_of_the_time_even_for_few_environments():
    """4,000 normal samples of n = 3 (the t quantile is 4.30 against the normal 1.96): the t interval covers
    the true mean in 95% ± 1.5% of them (binomial sd 0.34%); a normal-quantile interval would cover only
    about 80%, so this tells the two apart."""
    generator = torch.Generator().manual_seed(0)
    samples = torch.randn((4000, 3), generator=generator, dtype=torch.float64)
    covered = [abs(s.mean) <= s.half_width for s in map(confidence_interval, samples)]
    assert sum(covered) / len(covered) == pytest.approx(0.95, abs=0.015)
    normal = (samples.mean(1).abs() <= 1.96 * samples.std(1) / math.sqrt(3)).double().mean()
    assert float(normal) < 0.85


def test_compare_reports_the_t_interval_of_the_per_environment_values_for_every_metric():
    """Each summary compare() reports is the mean and the t half-width of the per-environment values that
    run_variant gives for the same streams, recomputed here with numpy and scipy."""
    asp = preset("asp")
    rows = compare(asp, envs=8, steps=20, seed=SEED)
    for label in ("random-server", "least-loaded"):
        per_env = run_variant(asp, "lfu", label, 8, 20, SEED)
        for metric in metric_names(asp):
            values = per_env[metric].numpy()
            expected = stats.t.ppf(0.975, 7) * np.std(values, ddof=1) / math.sqrt(8)
            assert rows[label][metric].mean == pytest.approx(float(np.mean(values)), rel=1e-12, abs=1e-15)
            assert rows[label][metric].half_width == pytest.approx(expected, rel=1e-9, abs=1e-15), (label, metric)
        assert rows[label]["utility"].half_width > 0  # environments differ, so the interval has width


def test_the_interval_shrinks_about_as_one_over_root_n_with_more_environments():
    """From 8 to 32 environments t(0.975, df) / sqrt(n) goes from 0.836 to 0.361, a factor 2.32; the
    sample standard deviation also varies, so the simulated utility's half-width must shrink by a factor
    between 1.5 and 3.5 (observed 2.15), and again from 32 to 128 (predicted 2.06, observed 1.85)."""
    asp = preset("asp")
    widths = [
        confidence_interval(run_variant(asp, "lfu", "least-loaded", envs, 50, SEED)["utility"]).half_width for envs in (8, 32, 128)
    ]
    predicted = [stats.t.ppf(0.975, n - 1) / math.sqrt(n) for n in (8, 32, 128)]
    assert predicted[0] / predicted[1] == pytest.approx(2.32, abs=0.01)
    assert 1.5 < widths[0] / widths[1] < 3.5
    assert 1.5 < widths[1] / widths[2] < 3.5


def test_a_large_difference_between_schedulers_is_reported_significant(asp_rows):
    """Random-server crashes about 9.6% of tasks, least-loaded about 1.1%: the 95% intervals are disjoint,
    and so far apart that the interval of the paired per-environment difference (same topologies and
    tasks for both) is more than 10 half-widths away from 0."""
    crash = {name: asp_rows[name]["crash_rate"] for name in ("random-server", "least-loaded")}
    assert not overlap(crash["random-server"], crash["least-loaded"])
    asp = preset("asp")
    diff = (
        run_variant(asp, "lfu", "random-server", ENVS, 100, SEED)["crash_rate"]
        - run_variant(asp, "lfu", "least-loaded", ENVS, 100, SEED)["crash_rate"]
    )
    paired = confidence_interval(diff)
    assert paired.mean > 10 * paired.half_width > 0


@pytest.fixture(scope="module")
def least_loaded_on_sixteen_seeds():
    """Per-environment utility of least-loaded on 16 independent seeds (new topologies and tasks each)."""
    asp = preset("asp")
    return [run_variant(asp, "lfu", "least-loaded", ENVS, 25, seed)["utility"] for seed in range(16)]


def test_the_reported_standard_error_matches_the_spread_between_independent_runs(least_loaded_on_sixteen_seeds):
    """The interval treats a run's environments as independent draws. If they were correlated (a draw
    shared by the batch), the run means would scatter more than the reported standard error s / sqrt(n).
    Over 16 runs the standard deviation of the run means is within a factor [0.6, 1.6] of the RMS standard
    error (observed 1.18; the sampling error of that ratio with 15 degrees of freedom is about 0.18)."""
    runs = least_loaded_on_sixteen_seeds
    means = torch.tensor([float(values.mean()) for values in runs], dtype=torch.float64)
    standard_errors = torch.tensor([float(values.std()) / math.sqrt(ENVS) for values in runs], dtype=torch.float64)
    ratio = float(means.std() / standard_errors.pow(2).mean().sqrt())
    assert 0.6 < ratio < 1.6


def test_the_same_scheduler_on_independent_streams_is_rarely_reported_significant(least_loaded_on_sixteen_seeds):
    """The true difference between two runs of one scheduler is 0. Two calibrated 95% intervals of equal
    width miss each other only when the means differ by more than 1.96 * sqrt(2) = 2.77 standard errors of
    their difference, 0.6% of the time; at most 5% of the 120 pairs of runs may be disjoint (observed 2;
    a single pair is a poor test: seeds 0 and 3 happen to be one of them)."""
    summaries = [confidence_interval(values) for values in least_loaded_on_sixteen_seeds]
    pairs = [(i, j) for i in range(16) for j in range(i + 1, 16)]
    disjoint = sum(not overlap(summaries[i], summaries[j]) for i, j in pairs)
    assert disjoint <= 0.05 * len(pairs)


def test_variants_that_behave_alike_get_identical_numbers_because_they_share_the_streams():
    """In the asp preset the single model always fits, so the caching policy cannot matter: LFU, LRU and
    FIFO with the same scheduler must give identical per-environment values, which holds only because
    every variant gets the same topologies, tasks and scheduler draws (the module's claim); a different
    seed gives different values."""
    asp = preset("asp")
    runs = [run_variant(asp, policy, "random-server", 8, 20, SEED) for policy in ("lfu", "lru", "fifo")]
    for other in runs[1:]:
        assert all(torch.equal(runs[0][key], other[key]) for key in runs[0])
    assert not torch.equal(runs[0]["utility"], run_variant(asp, "lfu", "random-server", 8, 20, SEED + 1)["utility"])
