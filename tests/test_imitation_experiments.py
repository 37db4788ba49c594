"""The chapter's experiments: compounding-error (tightrope horizons) and exposure-bias (tokens)."""

import pytest

from rl4llm.experiments import config_from_overrides, run_experiment
from rl4llm.experiments.compounding_error import loglog_slope


def test_loglog_slope_of_power_laws():
    assert loglog_slope([1, 2, 4, 8], [3, 12, 48, 192]) == pytest.approx(2.0)
    assert loglog_slope([10, 100], [0.5, 5.0]) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        loglog_slope([1, 2], [0.0, 1.0])


def test_compounding_error_slopes_in_both_regimes():
    result = run_experiment(
        "compounding-error", horizons=(2, 4, 8, 16, 200, 400, 800), eps=0.01, n_rollouts=4000, seed=0
    )
    m = result.metrics
    # eps T <= 1: BC ~ eps T (T+1) / 2, whose log-log slope over T = 2..16 is that of T (T+1) (closed form):
    small = [2, 4, 8, 16]
    exact = [t - 0.99 * (1 - 0.99**t) / 0.01 for t in small]
    expected = loglog_slope(small, exact)
    assert expected == pytest.approx(loglog_slope(small, [t * (t + 1) for t in small]), abs=0.03)
    assert 1.8 < expected < 2.0
    assert m["bc_slope"] == pytest.approx(expected, abs=0.08)
    assert 0.9 < m["dagger_slope"] < 1.1  # DAgger ~ eps T
    # eps T >= 4: BC has fallen and pays one per step, linear again
    assert 0.9 < m["bc_slope_saturated"] < 1.3
    assert m["bc_cost_T800"] == pytest.approx(m["bc_exact_T800"], rel=0.03)
    assert m["bc_cost_T800"] < 800
    assert [r["horizon"] for r in result.curves] == [2, 4, 8, 16, 200, 400, 800]
    again = run_experiment(
        "compounding-error", horizons=(2, 4, 8, 16, 200, 400, 800), eps=0.01, n_rollouts=4000, seed=0
    )  # same seed, same numbers
    assert {k: v for k, v in again.metrics.items() if k != "wall_s"} == {k: v for k, v in m.items() if k != "wall_s"}


@pytest.mark.parametrize(
    "name, overrides, match",
    [
        ("compounding-error", dict(horizons=(200, 400)), "eps \\* T <= 1"),
        ("compounding-error", dict(horizons=(8, 4, 16)), "increasing"),
        ("compounding-error", dict(eps=0.0), "eps"),
        ("exposure-bias", dict(length=64), "length"),
        ("exposure-bias", dict(slip=1.0), "slip"),
        ("exposure-bias", dict(demo_fraction=1.0), "demo_fraction"),
        ("exposure-bias", dict(n_labelled=8, demo_fraction=0.9, dagger_iterations=2), "rollout"),
        ("exposure-bias", dict(dagger_iterations=0), "dagger_iterations"),
    ],
)
def test_configs_reject_bad_values(name, overrides, match):
    with pytest.raises(ValueError, match=match):
        config_from_overrides(name, **overrides)


@pytest.mark.slow
def test_token_dagger_stays_in_the_language_better_than_sft():
    # a small run (about 13 s): 96 labelled streams of 24 words per learner, learners slipping with eps = 0.1
    m = run_experiment(
        "exposure-bias", n_labelled=96, length=24, steps=300, n_eval=200, slip=0.1, compare_no_slip=False, seed=0
    ).metrics
    assert m["dagger_intact_mean"] > m["sft_intact_mean"] + 0.05
    assert m["dagger_total_cost"] < m["sft_total_cost"]
    # the state distribution, not the richer labels: with the same labels on the expert's prefixes, a mistake
    # costs SFT more words than it costs DAgger, which has been taught to end a broken review
    assert m["dagger_cost_per_fall"] < m["sft_expert_cost_per_fall"] - 0.5
    assert m["dagger_labels"] <= m["labels_per_learner"]
