"""Interactive panels for the book: knobs that re-run a small computation or experiment and redraw.

Widgets need a live kernel (Binder, Jupyter, Colab). A static web page cannot run code, so the book places every
panel next to a *precomputed sweep figure* (:func:`run_sweep` + :func:`sweep_figure`) that shows the same knob's
effect at a few settings; the panel lets a reader with a kernel try any other setting.

Two kinds of panel, one class:

* :func:`function_panel` redraws ``fn(**knobs)`` (a function returning a matplotlib figure) whenever a knob
  moves: for instant computations, e.g. PPO's clipped surrogate against the ratio for a clip range;
* :func:`experiment_panel` re-runs a registered experiment (:mod:`rl4llm.experiments`) with the knobs as config
  overrides when the reader presses *Run* (experiments take seconds), then draws its figure and a few metrics.

Either way the newest result is kept on the panel (``panel.result``, ``panel.figure``), so code (and the tests)
can use a panel without a browser: ``panel.run()`` does what the button does.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any


from rl4llm.plotting import label, new_figure, plot_sweep, sweep_columns

__all__ = ["slider", "Panel", "function_panel", "experiment_panel", "run_sweep", "sweep_figure"]


def slider(description: str, value: float, low: float, high: float, step: float | None = None, *,
           log: bool = False, integer: bool = False, options: Sequence[Any] | None = None):
    """A labelled slider for a panel.

    Args:
        description: the label shown left of the slider (e.g. ``"KL coef β"``).
        value: initial value, inside ``[low, high]``.
        low, high: the range. With ``log=True`` both must be > 0 and the slider moves in powers of ten.
        step: increment (linear sliders; default: 1/100 of the range, or 1 for integers).
        integer: an integer slider.
        options: instead of a range, a fixed list of values (a ``SelectionSlider``); ``low``/``high`` are ignored.
    """
    import ipywidgets as w

    style = {"description_width": "initial"}
    layout = w.Layout(width="420px")
    if options is not None:
        options = list(options)
        if value not in options:
            raise ValueError(f"value must be one of options {options}, got {value!r}")
        return w.SelectionSlider(options=options, value=value, description=description, style=style,
                                 layout=layout, continuous_update=False)
    if not low <= value <= high:
        raise ValueError(f"value must be in [{low}, {high}], got {value}")
    if log:
        if low <= 0:
            raise ValueError(f"low must be > 0 for a log slider, got {low}")
        return w.FloatLogSlider(value=value, base=10, min=math.log10(low), max=math.log10(high),
                                step=step or 0.05, description=description, style=style, layout=layout,
                                continuous_update=False)
    if integer:
        return w.IntSlider(value=int(value), min=int(low), max=int(high), step=int(step or 1),
                           description=description, style=style, layout=layout, continuous_update=False)
    return w.FloatSlider(value=value, min=low, max=high, step=step or (high - low) / 100,
                         description=description, style=style, layout=layout, continuous_update=False,
                         readout_format=".3g")


class Panel:
    """Knobs, an optional *Run* button and an output area; ``run()`` computes and redraws.

    Attributes:
        widget: the ipywidgets box to display (a notebook cell that ends with the panel shows it).
        result: what the last ``run()`` computed (a figure for function panels, a ``Result`` for experiments).
        figure: the last figure drawn.
    """

    def __init__(self, compute: Callable[..., Any], draw: Callable[[Any], Any], controls: Mapping[str, Any],
                 *, button: bool, describe: Callable[[Any], str] | None = None, title: str | None = None) -> None:
        import ipywidgets as w

        if not controls:
            raise ValueError("controls must name at least one knob")
        self._compute, self._draw, self._describe = compute, draw, describe
        self.controls = dict(controls)
        self.output = w.Output()
        self.result: Any = None
        self.figure: Any = None
        children: list[Any] = [w.HTML(f"<b>{title}</b>")] if title else []
        children += list(self.controls.values())
        if button:
            self.button = w.Button(description="Run", button_style="primary", icon="play")
            self.button.on_click(lambda _b: self.run())
            children.append(self.button)
        else:
            self.button = None
            for c in self.controls.values():
                c.observe(lambda _change: self.run(), names="value")
        children.append(self.output)
        self.widget = w.VBox(children)

    def values(self) -> dict[str, Any]:
        """The knobs' current values, by parameter name."""
        return {name: c.value for name, c in self.controls.items()}

    def run(self) -> Any:
        """Compute with the current knob values and redraw; return the result."""
        from IPython.display import display

        if self.button is not None:
            self.button.disabled, self.button.description = True, "Running..."
        try:
            self.result = self._compute(**self.values())
            self.figure = self._draw(self.result)
        finally:
            if self.button is not None:
                self.button.disabled, self.button.description = False, "Run"
        self.output.clear_output(wait=True)
        with self.output:
            if self.figure is not None:
                display(self.figure)
            if self._describe is not None:
                print(self._describe(self.result))
        return self.result

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


def function_panel(fn: Callable[..., Any], controls: Mapping[str, Any], *, title: str | None = None,
                   run_now: bool = True) -> Panel:
    """A panel that redraws ``fn(**knobs)`` (which returns a matplotlib figure) each time a knob moves.

    ``controls`` maps ``fn``'s keyword names to widgets (see :func:`slider`). With ``run_now`` the first figure is
    drawn at once.
    """
    if not callable(fn):
        raise ValueError(f"fn must be callable, got {type(fn).__name__}")
    panel = Panel(fn, lambda fig: fig, controls, button=False, title=title)
    if run_now:
        panel.run()
    return panel


def experiment_panel(name: str, controls: Mapping[str, Any], *, fixed: Mapping[str, Any] | None = None,
                     draw: Callable[[Any], Any] | None = None, metrics: Sequence[str] | None = None,
                     title: str | None = None) -> Panel:
    """A panel that re-runs experiment ``name`` with the knobs as config overrides when *Run* is pressed.

    Args:
        name: a registered experiment (``rl4llm list``).
        controls: config field name -> widget (see :func:`slider`).
        fixed: further config overrides, the same for every run (e.g. a smaller budget for interactive use).
        draw: ``draw(result) -> figure``; default: the experiment's own figure.
        metrics: names of ``result.metrics`` to print under the figure (default: none).
        title: a bold line above the knobs.

    Nothing runs until the button is pressed (or ``panel.run()`` is called), so a static build stays fast.
    """
    from rl4llm.experiments import get_experiment, run_experiment

    exp = get_experiment(name)
    fields = {f.name for f in dataclasses.fields(exp.config_cls)}
    fixed = dict(fixed or {})
    unknown = sorted((set(controls) | set(fixed)) - fields)
    if unknown:
        raise ValueError(f"{name} has no parameter {', '.join(unknown)}; valid parameters: {', '.join(sorted(fields))}")
    overlap = sorted(set(controls) & set(fixed))
    if overlap:
        raise ValueError(f"parameters {', '.join(overlap)} are both knobs and fixed; give each one place")

    def compute(**knobs: Any):
        return run_experiment(name, **fixed, **knobs)

    def describe(result) -> str:
        keys = list(metrics or [])
        missing = [k for k in keys if k not in result.metrics]
        if missing:
            raise KeyError(f"{name} reports no metric {', '.join(missing)}; it reports {', '.join(result.metrics)}")
        return "   ".join(f"{k} = {_fmt(result.metrics[k])}" for k in keys)

    return Panel(compute, draw or (lambda r: r.figure), controls, button=True,
                 describe=describe if metrics else None, title=title)


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def run_sweep(name: str, param: str, values: Sequence[Any], **fixed: Any) -> list[tuple[Any, Any]]:
    """Run experiment ``name`` once per value of ``param`` (other overrides in ``fixed``); ``[(value, Result)]``.

    This is what the static pages show beside a panel: the same knob at a few settings, precomputed.
    """
    from rl4llm.experiments import run_experiment

    if len(values) == 0:
        raise ValueError("values must not be empty")
    if param in fixed:
        raise ValueError(f"{param} is the swept parameter; do not also fix it")
    return [(v, run_experiment(name, **{param: v}, **fixed)) for v in values]


def sweep_figure(sweep: Sequence[tuple[Any, Any]], x: str, y: str, *, param: str, xlabel: str | None = None,
                 ylabel: str | None = None, title: str | None = None, ax=None):
    """Overlay the curve ``y`` against ``x`` (columns of each ``Result.curves``) for every swept value.

    ``param`` names the swept knob in the legend (e.g. ``"clip ε"``); the drawing is
    :func:`rl4llm.plotting.plot_sweep`. Returns the figure.
    """
    if ax is None:
        fig, ax = new_figure()
    else:
        fig = ax.figure
    plot_sweep(ax, sweep_columns(sweep, x, y), param=param, legend=None)
    label(ax, xlabel or x, ylabel or y, title)
    ax.legend()
    return fig
