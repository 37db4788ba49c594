"""The book's panels work without a browser: knobs drive the computation, errors name the parameter."""

import pytest

from rl4llm.plotting import new_figure
from rl4llm.widgets import experiment_panel, function_panel, run_sweep, slider, sweep_figure


def test_function_panel_redraws_when_a_knob_moves():
    calls = []

    def draw(a, b):
        calls.append((a, b))
        fig, ax = new_figure()
        ax.plot([0, 1], [a, b])
        return fig

    panel = function_panel(draw, {"a": slider("a", 1.0, 0.0, 2.0), "b": slider("b", 3, 0, 5, integer=True)})
    assert calls == [(1.0, 3)]  # drawn once at once
    panel.controls["a"].value = 1.5
    assert calls[-1] == (1.5, 3)
    assert panel.figure is panel.result


def test_experiment_panel_runs_the_experiment_with_the_knobs_on_demand():
    panel = experiment_panel(
        "bandit",
        {"lr": slider("lr", 0.1, 0.01, 1.0, log=True)},
        fixed={"steps": 50, "runs": 2},
        metrics=["optimal_rate_baseline"],
    )
    assert panel.result is None  # nothing runs until asked
    panel.controls["lr"].value = 0.5
    result = panel.run()
    assert result.metrics["steps"] == 50 and result.metrics["runs"] == 2
    assert panel.figure is result.figure
    panel.button.click()  # the button does the same
    assert panel.result is not result


def test_panels_reject_bad_knobs_with_the_valid_names():
    with pytest.raises(ValueError, match="bandit has no parameter kl_coef; valid parameters: .*lr"):
        experiment_panel("bandit", {"kl_coef": slider("β", 0.1, 0.0, 1.0)})
    with pytest.raises(ValueError, match="both knobs and fixed"):
        experiment_panel("bandit", {"lr": slider("lr", 0.1, 0.0, 1.0)}, fixed={"lr": 0.2})
    with pytest.raises(ValueError, match="unknown experiment"):
        experiment_panel("no-such", {"lr": slider("lr", 0.1, 0.0, 1.0)})
    with pytest.raises(ValueError, match=r"value must be in \[0.0, 1.0\]"):
        slider("x", 2.0, 0.0, 1.0)
    with pytest.raises(ValueError, match="low must be > 0"):
        slider("x", 0.5, 0.0, 1.0, log=True)


def test_sweep_overlays_one_curve_per_value():
    sweep = run_sweep("bandit", "lr", [0.05, 0.4], steps=30, runs=2)
    assert [v for v, _ in sweep] == [0.05, 0.4]
    fig = sweep_figure(sweep, "step", "optimal_baseline", param="lr")
    ax = fig.axes[0]
    assert len(ax.lines) == 2
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["lr = 0.05", "lr = 0.4"]
    with pytest.raises(KeyError, match="no columns"):
        sweep_figure(sweep, "step", "nope", param="lr")
    with pytest.raises(ValueError, match="swept parameter"):
        run_sweep("bandit", "lr", [0.1], lr=0.2)
