"""Validation helpers and plot helpers: messages name the parameter and the valid range."""

import math

import numpy as np
import pytest

from rl4llm.plotting import smooth
from rl4llm.utils import check_choice, check_positive_int, check_range, set_seed


def test_check_range_accepts_inside_and_returns_float():
    assert check_range("gamma", 1, 0.0, 1.0) == 1.0
    assert isinstance(check_range("gamma", 1, 0.0, 1.0), float)


@pytest.mark.parametrize(
    "kwargs, value, expected",
    [
        (dict(low=0.0, high=1.0), 1.5, "gamma must be in [0, 1], got 1.5"),
        (dict(low=0.0, high=None, low_inclusive=False), 0.0, "gamma must be in (0, inf), got 0.0"),
        (dict(low=None, high=1.0, high_inclusive=False), 1.0, "gamma must be in (-inf, 1), got 1.0"),
    ],
)
def test_check_range_message_names_parameter_and_range(kwargs, value, expected):
    with pytest.raises(ValueError) as e:
        check_range("gamma", value, **kwargs)
    assert str(e.value) == expected


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_check_range_rejects_non_finite(bad):
    with pytest.raises(ValueError, match="lr must be a finite number"):
        check_range("lr", bad, 0.0, None)


def test_check_range_rejects_non_numbers():
    with pytest.raises(TypeError, match="lr must be a number"):
        check_range("lr", "0.1", 0.0, 1.0)
    with pytest.raises(TypeError):
        check_range("lr", True, 0.0, 1.0)


def test_check_positive_int_and_choice():
    assert check_positive_int("n", 3) == 3
    with pytest.raises(ValueError, match="n must be an int >= 1, got 0"):
        check_positive_int("n", 0)
    with pytest.raises(TypeError, match="n must be an int"):
        check_positive_int("n", 2.0)
    assert check_choice("method", "bc", ["bc", "dagger"]) == "bc"
    with pytest.raises(ValueError, match="method must be one of 'bc', 'dagger'; got 'x'"):
        check_choice("method", "x", ["bc", "dagger"])


def test_set_seed_reproducible_and_validated():
    a = set_seed(3).normal(size=4)
    b = set_seed(3).normal(size=4)
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="seed must be >= 0"):
        set_seed(-1)


def test_smooth_is_trailing_mean():
    np.testing.assert_allclose(smooth([0, 2, 4, 6], 2), [0, 1, 3, 5])
    np.testing.assert_allclose(smooth([1, 2, 3], 1), [1, 2, 3])


def test_book_figures_display_as_png_in_notebooks():
    """A figure that is a cell's value must render as an image without pyplot (the book never uses pyplot)."""
    from IPython.core.formatters import format_display_data

    from rl4llm.plotting import new_figure

    fig, ax = new_figure()
    ax.plot([0, 1], [1, 0])
    data, _ = format_display_data(fig)
    assert data["image/png"][:8] == b"\x89PNG\r\n\x1a\n"
