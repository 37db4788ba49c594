"""Takeaway 2 on tokens: one-word expert labels for DAgger, and the token-horizon experiment's measurements."""

import math

import numpy as np
import pytest

from rl4llm.experiments import config_from_overrides, run_experiment
from rl4llm.experiments.token_horizon import costs_by_horizon, plot_cost_vs_horizon, slope_of
from rl4llm.imitation import TokenDataset, stream_expert, token_dagger
from rl4llm.lm import build_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer()


def test_sampled_labels_are_one_hot_draws_from_the_expert(tokenizer):
    words = "the phone is great . <eos> it".split()
    rng = np.random.default_rng(0)
    data = TokenDataset.from_words([words] * 4000, tokenizer, labels="sampled", rng=rng)
    vocab = tokenizer.get_vocab()
    assert data.n_labels == 4000 * len(words)
    rows = data.targets[:, :, :]
    assert np.allclose(rows.sum(-1).numpy(), 1.0) and set(np.unique(rows.numpy())) == {0.0, 1.0}
    # position 2 (after "the phone") and position 6 (a new review after <eos>): frequencies match the expert's
    for t, prefix in ((2, ["the", "phone"]), (6, [])):
        expert = stream_expert(prefix)
        freq = rows[:, t, :].mean(0).numpy()
        support = {vocab[w] for w in expert}
        assert set(np.flatnonzero(freq)) <= support  # never a word the expert would not write
        for w, p in expert.items():
            assert abs(freq[vocab[w]] - p) < 4 * math.sqrt(p * (1 - p) / 4000) + 1e-9, (t, w)


def test_sampled_labels_need_a_generator_and_known_modes(tokenizer):
    with pytest.raises(ValueError, match="rng"):
        TokenDataset.from_words([["the", "phone"]], tokenizer, labels="sampled")
    with pytest.raises(ValueError, match="labels"):
        token_dagger([["the", "phone"]], tokenizer, labels="demonstrated", steps=4)


def test_slope_of_recovers_a_power_law_and_skips_zero_costs():
    t = [8, 16, 32, 63]
    assert slope_of(t, [0.01 * x**2 for x in t]) == pytest.approx(2.0)
    assert slope_of(t, [0.0, 0.3 * 16, 0.3 * 32, 0.3 * 63]) == pytest.approx(1.0)
    assert math.isnan(slope_of(t, [0.0, 0.0, 0.0, 1.0]))


@pytest.mark.parametrize(
    "overrides, field",
    [
        (dict(horizons=(8,)), "horizons"),
        (dict(length=20, horizons=(8, 32)), "horizons"),
        (dict(n_labelled=8, demo_fraction=0.9), "demo_fraction"),
        (dict(steps=2), "steps"),
    ],
)
def test_config_rejects_inconsistent_values(overrides, field):
    with pytest.raises(ValueError, match=field):
        config_from_overrides("token-horizon", **overrides)


def test_costs_are_read_back_from_flat_metrics_and_drawn():
    metrics = {
        f"{k}_cost_T{t}_seed{s}": 10 * s + t + (100 if k == "sft" else 0)
        for k in ("sft", "dagger")
        for t in (8, 16)
        for s in (0, 1)
    }
    metrics.update({f"{k}_slope_seed{s}": 1.0 for k in ("sft", "dagger") for s in (0, 1)})
    costs = costs_by_horizon(metrics, [8, 16], [0, 1])
    assert costs["sft"].tolist() == [[108, 116], [118, 126]] and costs["dagger"][1, 0] == 18
    ax = plot_cost_vs_horizon(metrics, [8, 16], [0, 1]).axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log" and "slope" in ax.get_legend_handles_labels()[1][0]


@pytest.mark.slow
def test_token_horizon_runs_end_to_end_and_costs_grow_with_the_horizon():
    r = run_experiment(
        "token-horizon", length=16, horizons=(4, 8, 16), n_labelled=16, steps=20, n_eval=40, n_seeds=2, seed=5
    )
    for k in ("sft", "dagger"):
        for s in (5, 6):
            costs = [r.metrics[f"{k}_cost_T{t}_seed{s}"] for t in (4, 8, 16)]
            assert costs == sorted(costs)  # a cumulative cost never falls
            assert r.metrics[f"{k}_falls_T16_seed{s}"] <= r.metrics[f"{k}_cost_T16_seed{s}"] + 1e-9
