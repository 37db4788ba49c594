"""The kernel-free form of the panels (static build): a slider over a precomputed grid, self-contained HTML.

These tests read the HTML without a browser; tests/browser/ moves the sliders in Chromium.
"""

import re

import pytest

from rl4llm.experiments import run_experiment
from rl4llm.plotting import new_figure
from rl4llm.widgets import Knob, Panel, StaticPanel, default_grid, experiment_panel, function_panel, run_sweep, slider


@pytest.fixture
def static(monkeypatch, tmp_path):
    """Pretend to be the book's static build, with an empty cache of our own."""
    monkeypatch.setenv("RL4LLM_STATIC_BUILD", "1")
    monkeypatch.setenv("RL4LLM_CACHE_DIR", str(tmp_path / "cache"))


def _frames(page: str) -> list[tuple[str, bool, str]]:
    """(data-key, hidden, inner HTML) of every frame of a panel's HTML."""
    return [
        (key, bool(hidden), body)
        for key, hidden, body in re.findall(
            r'<div class="rl4llm-frame" data-key="([^"]*)"( hidden)?>(.*?)</div>', page, re.S
        )
    ]


def test_default_grid_spreads_five_values_and_keeps_the_initial_one():
    log = slider("τ", 1.0, 0.1, 10.0, log=True)
    assert default_grid(log) == [0.1, 0.316, 1.0, 3.16, 10.0]
    lin = slider("β", 0.1, 0.0, 0.5, step=0.01)
    assert default_grid(lin) == [0.0, 0.1, 0.12, 0.25, 0.38, 0.5]  # on the step grid, 0.1 added
    ints = slider("T", 100, 10, 500, integer=True, step=10)
    assert default_grid(ints) == [10, 100, 132, 255, 378, 500]
    opts = slider("ε", 0.2, 0, 0, options=[0.05, 0.2, 1.0])
    assert default_grid(opts) == [0.05, 0.2, 1.0]
    with pytest.raises(ValueError, match="n must be >= 2"):
        default_grid(lin, n=1)


def test_function_panel_in_the_static_build_draws_every_grid_point(static):
    calls = []

    def draw(a, b):
        calls.append((a, b))
        fig, ax = new_figure()
        ax.plot([0, 1], [a, b])
        return fig

    controls = {"a": slider("knob a", 1.0, 0.0, 2.0), "b": slider("knob b", 3, 0, 5, integer=True)}
    panel = function_panel(draw, controls, grid={"a": [0.0, 0.5, 1.0, 1.5, 2.0], "b": [1, 3]}, title="two knobs")
    assert isinstance(panel, StaticPanel)
    assert sorted(calls) == sorted((a, b) for a in [0.0, 0.5, 1.0, 1.5, 2.0] for b in [1, 3])
    page = panel._repr_html_()
    frames = _frames(page)
    assert len(frames) == 10 and page.count("<img ") == 10
    assert all('src="data:image/png;base64,' in body for _, _, body in frames)
    # the sliders: one per knob, over indices, with the values to show; the initial setting a=1.0, b=3
    assert re.findall(r'<input type="range"[^>]*name="(\w)" min="0" max="(\d)" step="1" value="(\d)"', page) == [
        ("a", "4", "2"),
        ("b", "1", "1"),
    ]
    assert 'data-values="[&quot;0&quot;, &quot;0.5&quot;, &quot;1&quot;, &quot;1.5&quot;, &quot;2&quot;]"' in page
    visible = [key for key, hidden, _ in frames if not hidden]
    assert visible == ["2-1"]  # exactly one frame shows without JavaScript: the initial one
    assert {key for key, _, _ in frames} == {f"{i}-{j}" for i in range(5) for j in range(2)}
    assert "<b>two knobs</b>" in page and "Precomputed at 10 settings" in page


def test_static_html_is_self_contained(static):
    panel = function_panel(lambda x: new_figure()[0], {"x": slider("x", 1.0, 0.0, 2.0)})
    page = panel._repr_html_()
    assert "<script>" in page and "addEventListener" in page
    assert page.count('src="data:image/png;base64,') == len(panel)  # every image inline
    rest = re.sub(r'src="data:image/png;base64,[A-Za-z0-9+/=]*"', "", page)
    assert not re.search(r"https?:|//[a-z]|\bsrc=|\bhref=|import\(|fetch\(|XMLHttpRequest", rest)
    assert "<input" in page and "ipywidgets" not in page


def test_a_knob_with_one_grid_value_is_fixed_text_not_a_slider(static):
    panel = function_panel(
        lambda x, y: None, {"x": slider("x", 1.0, 0.0, 2.0), "y": slider("y", 1, 0, 4, integer=True)}, grid={"y": [2]}
    )
    page = panel._repr_html_()
    assert page.count('type="range"') == 1
    assert '<div class="rl4llm-fixed">y: 2</div>' in page
    assert len(panel) == len(default_grid(slider("x", 1.0, 0.0, 2.0))) and page.count("<img ") == 0


def test_experiment_panel_static_grid_prints_each_runs_metrics_and_caches_them(static, monkeypatch):
    controls = {"lr": slider("lr", 0.1, 0.01, 1.0, log=True)}
    fixed = {"steps": 30, "runs": 2}
    lrs = [0.05, 0.1, 0.2, 0.4, 0.8]
    panel = experiment_panel("bandit", controls, fixed=fixed, metrics=["optimal_rate_baseline"], grid={"lr": lrs})
    assert isinstance(panel, StaticPanel) and len(panel) == 5
    frames = _frames(panel._repr_html_())
    for lr, (_, _, body) in zip(lrs, frames):
        expected = run_experiment("bandit", lr=lr, **fixed).metrics["optimal_rate_baseline"]
        assert f"optimal_rate_baseline = {expected:.4g}" in body
        assert "<img " in body
    # a second build reads every point from the cache: running an experiment would fail here
    import rl4llm.experiments

    def no_run(*args, **kwargs):
        raise AssertionError("ran an experiment that is cached")

    monkeypatch.setattr(rl4llm.experiments, "run_experiment", no_run)
    again = experiment_panel("bandit", controls, fixed=fixed, metrics=["optimal_rate_baseline"], grid={"lr": lrs})
    assert again.frames == panel.frames


def test_experiment_panel_uses_the_pages_sweep_and_adds_default_values(static, monkeypatch):
    fixed = {"steps": 30, "runs": 2}
    sweep = run_sweep("bandit", "lr", [0.05, 0.4], **fixed)
    ran = []
    import rl4llm.experiments

    real = rl4llm.experiments.run_experiment
    monkeypatch.setattr(
        rl4llm.experiments, "run_experiment", lambda name, **kw: ran.append(kw["lr"]) or real(name, **kw)
    )
    panel = experiment_panel(
        "bandit",
        {"lr": slider("lr", 0.1, 0.01, 1.0, log=True)},
        fixed=fixed,
        metrics=["optimal_rate_baseline"],
        sweep=sweep,
    )
    values = panel.knobs[0][2]
    assert values == [0.01, 0.0316, 0.05, 0.1, 0.316, 0.4, 1.0]  # the sweep's and the slider's default grid
    assert sorted(ran) == [0.01, 0.0316, 0.1, 0.316, 1.0]  # the sweep's values did not run again
    with pytest.raises(ValueError, match="exactly one knob"):
        experiment_panel("bandit", {"lr": slider("lr", 0.1, 0.01, 1.0), "steps": slider("s", 30, 10, 50)}, sweep=sweep)


def test_static_grid_errors_name_the_knob(static):
    with pytest.raises(ValueError, match="grid names z, which are not knobs; knobs: x"):
        function_panel(lambda x: None, {"x": slider("x", 1.0, 0.0, 2.0)}, grid={"z": [1]})
    with pytest.raises(ValueError, match=r"grid\['x'\] must hold at least one value"):
        function_panel(lambda x: None, {"x": slider("x", 1.0, 0.0, 2.0)}, grid={"x": []})
    with pytest.raises(ValueError, match="frames miss 1 of 2 grid points"):
        StaticPanel([("x", "x", [1, 2])], {(1,): (None, "")})


def test_live_kernel_keeps_the_ipywidgets_panel(monkeypatch):
    monkeypatch.delenv("RL4LLM_STATIC_BUILD", raising=False)
    panel = function_panel(lambda x: None, {"x": slider("x", 1.0, 0.0, 2.0)}, grid={"x": [0.0, 1.0]})
    assert isinstance(panel, Panel)


def test_the_static_panel_starts_at_the_grid_value_nearest_the_sliders(static):
    panel = function_panel(lambda g: None, {"g": slider("γ", 0.95, 0.5, 1.0, step=0.01)}, grid={"g": [0.9, 0.99, 1.0]})
    assert panel.initial == (0.99,)
    assert re.search(r'name="g" min="0" max="2" step="1" value="1"', panel._repr_html_())


@pytest.mark.parametrize(
    "args, kwargs",
    [
        (("τ", 1.0, 0.1, 10.0), {"log": True}),
        (("β", 0.1, 0.0, 0.5), {"step": 0.01}),
        (("T", 100, 10, 500), {"integer": True, "step": 10}),
        (("ε", 0.2, 0, 0), {"options": [0.05, 0.2, 1.0]}),
    ],
)
def test_static_build_knobs_are_plain_settings_with_the_widgets_grid(monkeypatch, args, kwargs):
    """In the static build a slider is a Knob (no widget, so no widget state in the page), same grid."""
    monkeypatch.delenv("RL4LLM_STATIC_BUILD", raising=False)
    widget_grid = default_grid(slider(*args, **kwargs))
    monkeypatch.setenv("RL4LLM_STATIC_BUILD", "1")
    knob = slider(*args, **kwargs)
    assert isinstance(knob, Knob) and knob.description == args[0]
    assert default_grid(knob) == widget_grid
    with pytest.raises(ValueError, match=r"value must be in \[0.0, 1.0\]"):
        slider("x", 2.0, 0.0, 1.0)
