"""Chapter 5's comparisons over seeds: the seeds that flip an ordering, and the figure that draws every seed."""

import numpy as np
import pytest

from rl4llm.rlhf.analysis import seed_flips
from rl4llm.rlhf.plots import plot_seed_spread


def test_seed_flips_finds_the_seeds_that_reverse_an_ordering_hand_computed():
    # means: z 5, x 2, y 4/3. z is above both on every seed; x is above y on average, but not on seed 1 (2 < 3)
    values = {"x": [1.0, 2.0, 3.0], "y": [0.0, 3.0, 1.0], "z": [5.0, 5.0, 5.0]}
    assert seed_flips(values) == [{"higher": "x", "lower": "y", "seeds": [1]}]
    # a tie on one seed does not order the pair the way the means do: it counts as a flip
    assert seed_flips({"a": [2.0, 1.0], "b": [1.0, 1.0]}) == [{"higher": "a", "lower": "b", "seeds": [1]}]
    # every seed agrees: nothing to report; equal means order nothing
    assert seed_flips({"a": [3.0, 4.0], "b": [1.0, 2.0]}) == []
    assert seed_flips({"a": [1.0, 2.0], "b": [2.0, 1.0]}) == []


def test_seed_flips_orders_rows_by_the_means_highest_first():
    values = {"low": [0.0, 0.0], "high": [3.0, -1.0], "mid": [1.0, 0.5]}  # means 0, 1, 0.75
    rows = seed_flips(values)
    assert [(r["higher"], r["lower"]) for r in rows] == [("high", "mid"), ("high", "low")]
    assert [r["seeds"] for r in rows] == [[1], [1]]


def test_seed_flips_checks_its_argument():
    with pytest.raises(ValueError, match="values"):
        seed_flips({})
    with pytest.raises(ValueError, match="same, non-zero number of seeds"):
        seed_flips({"a": [1.0, 2.0], "b": [1.0]})


def test_plot_seed_spread_draws_every_seed_and_the_mean_and_sd():
    gold = {0.0: [1.0, 2.0, 3.0], 0.1: [2.0, 2.0, 5.0]}
    kl = {0.0: [9.0, 8.0, 7.0], 0.1: [1.0, 2.0, 3.0]}
    fig = plot_seed_spread({"gold": gold, "KL": kl}, xlabel="β", seeds=[0, 1, 2], zero_line=["gold"])
    ax = fig.axes[0]
    seed_lines = [ln for ln in ax.get_lines() if ln.get_label().startswith("seed")]
    assert len(seed_lines) == 3  # one line per seed, through both settings
    np.testing.assert_allclose(seed_lines[1].get_ydata(), [2.0, 2.0])
    bars = ax.containers[0]  # the errorbar: the mean at each setting, +/- the sd over seeds
    np.testing.assert_allclose(bars.lines[0].get_ydata(), [2.0, 3.0])
    segments = bars.lines[2][0].get_segments()
    np.testing.assert_allclose(
        [s[1][1] - s[0][1] for s in segments], 2 * np.array([np.std(gold[0.0]), np.std(gold[0.1])])
    )
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "0.1"]
    assert ax.get_xlabel() == "β" and ax.get_ylabel() == "gold"
    with pytest.raises(ValueError, match="seeds"):
        plot_seed_spread({"gold": gold}, xlabel="β", seeds=[0, 1])
