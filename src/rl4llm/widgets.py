"""Interactive panels for the book: knobs that re-run a small computation or experiment and redraw.

A page has one cell per panel, and that cell shows the panel in the form its reader can use:

* with a live kernel (Binder, JupyterLab) it is an ipywidgets :class:`Panel`: any value, redrawn or re-run;
* in the book's static build (:func:`rl4llm.utils.static_build`) it is a :class:`StaticPanel`: a slider over a
  precomputed grid of values (at least five per knob where a grid makes sense) that swaps the figure and the
  printed metrics in the browser. Its HTML is self-contained (PNG images inlined, a few lines of inline
  JavaScript, nothing fetched), so it works from ``file://`` and the static site shows no control that cannot act.

The grid of a knob is the ``grid`` argument's list of values for it, or by default derived from its slider (all
its options, or five values across its range, the initial value included); a knob given a single value in
``grid`` is shown as fixed text on the static page. Heavy experiments keep each grid point on disk
(:mod:`rl4llm.cache`), and a page that already ran a sweep passes it as ``sweep`` so that nothing runs twice.

Two kinds of panel, one class:

* :func:`function_panel` redraws ``fn(**knobs)`` (a function returning a matplotlib figure) whenever a knob
  moves: for instant computations, e.g. PPO's clipped surrogate against the ratio for a clip range;
* :func:`experiment_panel` re-runs a registered experiment (:mod:`rl4llm.experiments`) with the knobs as config
  overrides when the reader presses *Run* (experiments take seconds), then draws its figure and a few metrics.

Either way the newest result is kept on the panel (``panel.result``, ``panel.figure``), so code (and the tests)
can use a panel without a browser: ``panel.run()`` does what the button does.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import html
import itertools
import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from rl4llm.plotting import label, new_figure, plot_sweep, sweep_columns
from rl4llm.utils import static_build

__all__ = [
    "slider",
    "Knob",
    "Panel",
    "StaticPanel",
    "function_panel",
    "experiment_panel",
    "run_sweep",
    "sweep_figure",
    "default_grid",
]

#: number of values a range slider gets in the static build when the page gives no ``grid``
STATIC_POINTS = 5


@dataclasses.dataclass(frozen=True)
class Knob:
    """A slider's settings without the widget (what :func:`slider` returns in the static build)."""

    description: str
    value: Any
    low: float
    high: float
    step: float | None = None
    log: bool = False
    integer: bool = False
    options: tuple[Any, ...] | None = None


def slider(
    description: str,
    value: float,
    low: float,
    high: float,
    step: float | None = None,
    *,
    log: bool = False,
    integer: bool = False,
    options: Sequence[Any] | None = None,
):
    """A labelled slider for a panel.

    Args:
        description: the label shown left of the slider (e.g. ``"KL coef β"``).
        value: initial value, inside ``[low, high]``.
        low, high: the range. With ``log=True`` both must be > 0 and the slider moves in powers of ten.
        step: increment (linear sliders; default: 1/100 of the range, or 1 for integers).
        integer: an integer slider.
        options: instead of a range, a fixed list of values (a ``SelectionSlider``); ``low``/``high`` are ignored.

    In the static build (:func:`rl4llm.utils.static_build`) the result is a :class:`Knob` holding the same
    settings, not a widget: a static page gets no widget state, so no widget JavaScript either.
    """
    if static_build():
        knob = Knob(
            description,
            value,
            low,
            high,
            step,
            log=log,
            integer=integer,
            options=None if options is None else tuple(options),
        )
        if options is not None and value not in knob.options:
            raise ValueError(f"value must be one of options {list(options)}, got {value!r}")
        if options is None and not low <= value <= high:
            raise ValueError(f"value must be in [{low}, {high}], got {value}")
        if options is None and log and low <= 0:
            raise ValueError(f"low must be > 0 for a log slider, got {low}")
        return knob
    import ipywidgets as w

    style = {"description_width": "initial"}
    layout = w.Layout(width="420px")
    if options is not None:
        options = list(options)
        if value not in options:
            raise ValueError(f"value must be one of options {options}, got {value!r}")
        return w.SelectionSlider(
            options=options, value=value, description=description, style=style, layout=layout, continuous_update=False
        )
    if not low <= value <= high:
        raise ValueError(f"value must be in [{low}, {high}], got {value}")
    if log:
        if low <= 0:
            raise ValueError(f"low must be > 0 for a log slider, got {low}")
        return w.FloatLogSlider(
            value=value,
            base=10,
            min=math.log10(low),
            max=math.log10(high),
            step=step or 0.05,
            description=description,
            style=style,
            layout=layout,
            continuous_update=False,
        )
    if integer:
        return w.IntSlider(
            value=int(value),
            min=int(low),
            max=int(high),
            step=int(step or 1),
            description=description,
            style=style,
            layout=layout,
            continuous_update=False,
        )
    return w.FloatSlider(
        value=value,
        min=low,
        max=high,
        step=step or (high - low) / 100,
        description=description,
        style=style,
        layout=layout,
        continuous_update=False,
        readout_format=".3g",
    )


class Panel:
    """Knobs, an optional *Run* button and an output area; ``run()`` computes and redraws.

    Attributes:
        widget: the ipywidgets box to display (a notebook cell that ends with the panel shows it).
        result: what the last ``run()`` computed (a figure for function panels, a ``Result`` for experiments).
        figure: the last figure drawn.
    """

    def __init__(
        self,
        compute: Callable[..., Any],
        draw: Callable[[Any], Any],
        controls: Mapping[str, Any],
        *,
        button: bool,
        describe: Callable[[Any], str] | None = None,
        title: str | None = None,
    ) -> None:
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


def _nice(x: float) -> float:
    """``x`` to three significant digits (grid values that read well on a slider)."""
    return float(f"{x:.3g}")


def default_grid(control: Any, n: int = STATIC_POINTS) -> list[Any]:
    """The values a knob takes in the static build when the page names none: a slider's options, else ``n``
    values spread across its range (evenly; in powers of ten for a log slider; on the slider's step), its
    initial value included, sorted."""
    if n < 2:
        raise ValueError(f"n must be >= 2, got {n}")
    if isinstance(control, Knob):
        if control.options is not None:
            return list(control.options)
        low, high, value = control.low, control.high, control.value
        if control.log:
            points = [_nice(x) for x in np.geomspace(low, high, n)]
        elif control.integer:
            points = sorted({int(round(v)) for v in np.linspace(low, high, n)})
        else:
            step = control.step or (high - low) / 100
            points = [_nice(low + round((v - low) / step) * step) for v in np.linspace(low, high, n)]
        return sorted(set(points) | {value})
    values = getattr(control, "_options_values", None)
    if values is not None:  # a SelectionSlider: its options, in their order
        return list(values)
    value = control.value
    if hasattr(control, "base"):  # FloatLogSlider: min and max are exponents
        points = [_nice(control.base**e) for e in np.linspace(control.min, control.max, n)]
    elif isinstance(value, int) and isinstance(control.step, int):
        points = sorted({int(round(v)) for v in np.linspace(control.min, control.max, n)})
    else:
        step = control.step or (control.max - control.min) / 100
        points = [
            _nice(control.min + round((v - control.min) / step) * step)
            for v in np.linspace(control.min, control.max, n)
        ]
    return sorted(set(points) | {value})


class StaticPanel:
    """A panel for a page without a kernel: sliders over a precomputed grid, swapping figures and metrics.

    ``knobs`` lists ``(name, label, values)`` in slider order and ``initial`` the starting value of each (the
    nearest grid value when it is not on the grid);
    ``frames`` maps every combination of values (a tuple in knob order) to ``(png, text)``: the figure as PNG
    bytes (or None) and the metrics printed under it. Knobs with one value are shown as fixed text, not as a
    slider. ``_repr_html_`` is the whole panel as self-contained HTML: images inlined as ``data:`` URIs and a
    short inline script that shows the frame of the sliders' positions; without JavaScript the initial frame
    shows. Attributes ``knobs``, ``frames`` and ``initial`` let code and tests read the grid.
    """

    _count = 0

    def __init__(
        self,
        knobs: Sequence[tuple[str, str, Sequence[Any]]],
        frames: Mapping[tuple, tuple[bytes | None, str]],
        *,
        initial: Mapping[str, Any] | None = None,
        title: str | None = None,
        note: str | None = None,
    ) -> None:
        if not knobs:
            raise ValueError("knobs must name at least one knob")
        self.knobs = [(name, text, list(values)) for name, text, values in knobs]
        for name, _, values in self.knobs:
            if not values:
                raise ValueError(f"knob {name} has no values")
        expected = set(itertools.product(*(values for _, _, values in self.knobs)))
        missing = expected - set(frames)
        if missing:
            raise ValueError(
                f"frames miss {len(missing)} of {len(expected)} grid points, e.g. {sorted(missing, key=str)[0]}"
            )
        self.frames = {k: frames[k] for k in itertools.product(*(values for _, _, values in self.knobs))}
        initial = dict(initial or {})
        self.initial = tuple(_nearest(values, initial.get(name, values[0])) for name, _, values in self.knobs)
        self.title, self.note = title, note
        StaticPanel._count += 1
        digest = hashlib.sha1(repr((self.title, [k[:2] for k in self.knobs])).encode()).hexdigest()[:8]
        self.id = f"rl4llm-panel-{digest}-{StaticPanel._count}"

    def __len__(self) -> int:
        return len(self.frames)

    def _repr_html_(self) -> str:
        pid = self.id
        parts = [
            f'<div class="rl4llm-static-panel" id="{pid}" style="border:1px solid #ccc;'
            f'border-radius:4px;padding:0.5em 0.8em;margin:0.5em 0">'
        ]
        if self.title:
            parts.append(f'<div class="rl4llm-panel-title"><b>{html.escape(self.title)}</b></div>')
        index = {}  # knob position -> index of its initial value
        for i, ((name, text, values), start) in enumerate(zip(self.knobs, self.initial)):
            shown = json.dumps([_fmt(v) for v in values])
            if len(values) == 1:
                parts.append(f'<div class="rl4llm-fixed">{html.escape(text)}: {html.escape(_fmt(values[0]))}</div>')
                continue
            index[i] = values.index(start)
            parts.append(
                f'<div class="rl4llm-knob" style="display:flex;align-items:center;gap:0.6em">'
                f'<label for="{pid}-k{i}" style="min-width:11em">{html.escape(text)}</label>'
                f'<input type="range" id="{pid}-k{i}" name="{html.escape(name)}" min="0" max="{len(values) - 1}" '
                f'step="1" value="{index[i]}" data-values="{html.escape(shown)}" style="width:260px" '
                f'aria-valuetext="{html.escape(_fmt(start))}">'
                f'<output id="{pid}-k{i}-out" for="{pid}-k{i}">{html.escape(_fmt(start))}</output></div>'
            )
        for key, (png, text) in self.frames.items():
            code = "-".join(str(values.index(v)) for (_, _, values), v in zip(self.knobs, key) if len(values) > 1)
            setting = ", ".join(f"{t} = {_fmt(v)}" for (_, t, _), v in zip(self.knobs, key))
            hidden = "" if key == self.initial else " hidden"
            parts.append(f'<div class="rl4llm-frame" data-key="{code}"{hidden}>')
            if png is not None:
                data = base64.b64encode(png).decode("ascii")
                parts.append(
                    f'<img src="data:image/png;base64,{data}" alt="{html.escape(setting)}" style="max-width:100%">'
                )
            if text:
                parts.append(
                    f'<pre class="rl4llm-metrics" style="white-space:pre-wrap;margin:0.3em 0">{html.escape(text)}</pre>'
                )
            parts.append("</div>")
        note = self.note or (
            "Precomputed at {n} settings for the page without a kernel; open the page with a kernel "
            "(the launch button at the top) to try any value."
        ).format(n=len(self.frames))
        parts.append(f'<div class="rl4llm-note" style="font-size:0.85em;color:#555">{html.escape(note)}</div></div>')
        parts.append(
            "<script>(function () {\n"
            f'  var root = document.getElementById("{pid}");\n'
            '  var inputs = root.querySelectorAll("input[type=range]");\n'
            "  function show() {\n"
            "    var key = [];\n"
            "    inputs.forEach(function (inp) {\n"
            "      var shown = JSON.parse(inp.dataset.values)[Number(inp.value)];\n"
            '      document.getElementById(inp.id + "-out").textContent = shown;\n'
            '      inp.setAttribute("aria-valuetext", shown);\n'
            "      key.push(inp.value);\n"
            "    });\n"
            '    var code = key.join("-");\n'
            '    root.querySelectorAll(".rl4llm-frame").forEach(function (f) {\n'
            "      f.hidden = f.dataset.key !== code;\n"
            "    });\n"
            "  }\n"
            '  inputs.forEach(function (inp) { inp.addEventListener("input", show); });\n'
            "  show();\n"
            "})();</script>"
        )
        return "\n".join(parts)

    def __repr__(self) -> str:
        return f"StaticPanel({self.title!r}, {len(self.frames)} precomputed settings)"


def _nearest(values: Sequence[Any], value: Any) -> Any:
    """``value`` if it is one of ``values``, else the numerically nearest of them (else the first)."""
    if value in values:
        return value
    numbers = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    if isinstance(value, (int, float)) and numbers:
        return min(numbers, key=lambda v: abs(v - value))
    return values[0]


def _grids(controls: Mapping[str, Any], grid: Mapping[str, Sequence[Any]] | None) -> list[tuple[str, str, list]]:
    """``(name, label, values)`` of every knob for the static build (see :func:`default_grid`)."""
    grid = dict(grid or {})
    unknown = sorted(set(grid) - set(controls))
    if unknown:
        raise ValueError(f"grid names {', '.join(unknown)}, which are not knobs; knobs: {', '.join(controls)}")
    knobs = []
    for name, control in controls.items():
        values = list(grid[name]) if name in grid else default_grid(control)
        if not values:
            raise ValueError(f"grid[{name!r}] must hold at least one value")
        knobs.append((name, getattr(control, "description", name) or name, values))
    return knobs


#: resolution of the static panels' images (below the book's 120 dpi: many frames per page, drawn at build time)
STATIC_DPI = 90


def _png(fig: Any) -> bytes | None:
    """PNG bytes of a figure at :data:`STATIC_DPI` (None for None); closed afterwards if pyplot knows it."""
    if fig is None:
        return None
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=STATIC_DPI)
    png = buf.getvalue()

    if plt.fignum_exists(getattr(fig, "number", -1)):
        plt.close(fig)
    return png


def _static_panel(
    frame: Callable[..., tuple[bytes | None, str]],
    controls: Mapping[str, Any],
    grid: Mapping[str, Sequence[Any]] | None,
    title: str | None,
) -> StaticPanel:
    """Compute ``frame(**knobs)`` at every grid point (a progress bar over the points) and wrap it."""
    from rl4llm.utils import progress

    knobs = _grids(controls, grid)
    names = [name for name, _, _ in knobs]
    points = list(itertools.product(*(values for _, _, values in knobs)))
    frames = {p: frame(**dict(zip(names, p))) for p in progress(points, desc=title or "panel grid")}
    initial = {name: c.value for name, c in controls.items()}
    return StaticPanel(knobs, frames, initial=initial, title=title)


def function_panel(
    fn: Callable[..., Any],
    controls: Mapping[str, Any],
    *,
    title: str | None = None,
    run_now: bool = True,
    grid: Mapping[str, Sequence[Any]] | None = None,
) -> Panel | StaticPanel:
    """A panel that redraws ``fn(**knobs)`` (which returns a matplotlib figure) each time a knob moves.

    ``controls`` maps ``fn``'s keyword names to widgets (see :func:`slider`). With ``run_now`` the first figure is
    drawn at once. In the static build the result is a :class:`StaticPanel` with ``fn`` drawn at every point of
    the grid (``grid``: knob name -> values; default :func:`default_grid` of each knob), the settings printed
    under each figure.
    """
    if not callable(fn):
        raise ValueError(f"fn must be callable, got {type(fn).__name__}")
    if static_build():

        def frame(**knobs: Any) -> tuple[bytes | None, str]:
            return _png(fn(**knobs)), ""

        return _static_panel(frame, controls, grid, title)
    panel = Panel(fn, lambda fig: fig, controls, button=False, title=title)
    if run_now:
        panel.run()
    return panel


def experiment_panel(
    name: str,
    controls: Mapping[str, Any],
    *,
    fixed: Mapping[str, Any] | None = None,
    draw: Callable[[Any], Any] | None = None,
    metrics: Sequence[str] | None = None,
    title: str | None = None,
    grid: Mapping[str, Sequence[Any]] | None = None,
    sweep: Sequence[tuple[Any, Any]] | None = None,
) -> Panel | StaticPanel:
    """A panel that re-runs experiment ``name`` with the knobs as config overrides when *Run* is pressed.

    Args:
        name: a registered experiment (``rl4llm list``).
        controls: config field name -> widget (see :func:`slider`).
        fixed: further config overrides, the same for every run (e.g. a smaller budget for interactive use).
        draw: ``draw(result) -> figure``; default: the experiment's own figure.
        metrics: names of ``result.metrics`` to print under the figure (default: none).
        title: a bold line above the knobs.
        grid: for the static build, knob name -> values to precompute (default :func:`default_grid`).
        sweep: results the page already has, ``[(value, Result)]`` from :func:`run_sweep` over the panel's only
            knob with the same ``fixed`` overrides: the static build uses them instead of running those values.

    With a live kernel nothing runs until the button is pressed (or ``panel.run()`` is called). In the static
    build the result is a :class:`StaticPanel` over the grid; each grid point's figure and metrics are kept on
    disk (:mod:`rl4llm.cache`, keyed by the configuration and the experiment's code), so a rebuild reruns nothing.
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

    drawer = draw or (lambda r: r.figure)
    if static_build():
        return _static_experiment_panel(
            name, exp, controls, fixed, drawer, describe if metrics else None, title, grid, sweep, custom_draw=draw
        )
    if sweep is not None:
        _check_sweep(sweep, controls)
    return Panel(compute, drawer, controls, button=True, describe=describe if metrics else None, title=title)


def _check_sweep(sweep: Sequence[tuple[Any, Any]], controls: Mapping[str, Any]) -> None:
    if len(controls) != 1:
        raise ValueError(f"sweep needs a panel with exactly one knob, got {len(controls)}: {', '.join(controls)}")
    for item in sweep:
        if not (isinstance(item, tuple) and len(item) == 2 and hasattr(item[1], "metrics")):
            raise TypeError("sweep must be a list of (value, Result) pairs, as run_sweep returns")


def _static_experiment_panel(
    name: str,
    exp: Any,
    controls: Mapping[str, Any],
    fixed: Mapping[str, Any],
    draw: Callable[[Any], Any],
    describe: Callable[[Any], str] | None,
    title: str | None,
    grid: Mapping[str, Sequence[Any]] | None,
    sweep: Sequence[tuple[Any, Any]] | None,
    *,
    custom_draw: Any,
) -> StaticPanel:
    """The static form of :func:`experiment_panel`: every grid point from ``sweep``, the disk cache, or a run."""
    from rl4llm import cache
    from rl4llm.experiments import run_experiment

    known: dict[Any, Any] = {}
    if sweep is not None:
        _check_sweep(sweep, controls)
        known = {value: result for value, result in sweep}
        if grid is None:  # the sweep's values, plus the default grid's, so that the slider has enough of them
            ((knob, control),) = controls.items()
            grid = {knob: sorted(set(known) | set(default_grid(control)), key=_order)}
    modules = [exp.module.__name__]
    if custom_draw is not None and getattr(custom_draw, "__module__", "").startswith("rl4llm"):
        modules.append(custom_draw.__module__)

    def frame(**knobs: Any) -> tuple[bytes | None, str]:
        if len(knobs) == 1 and next(iter(knobs.values())) in known:
            result = known[next(iter(knobs.values()))]
            return _png(draw(result)), describe(result) if describe else ""
        description = {
            "static-panel": name,
            "overrides": {**fixed, **knobs},
            "metrics": describe is not None,
            "draw": getattr(custom_draw, "__qualname__", None),
        }
        path = cache.cache_dir("panels", name) / f"{cache.cache_key(description, modules)}.pt"
        state = cache.load(path)
        if state is None:
            result = run_experiment(name, **fixed, **knobs)
            state = {"png": _png(draw(result)), "text": describe(result) if describe else ""}
            cache.save(path, state)
        return state["png"], state["text"]

    return _static_panel(frame, controls, grid, title)


def _order(v: Any) -> tuple[int, Any]:
    """Sort key for grid values of mixed kinds (numbers in order, then anything else by its text)."""
    return (0, float(v)) if isinstance(v, (int, float)) else (1, str(v))


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


def sweep_figure(
    sweep: Sequence[tuple[Any, Any]],
    x: str,
    y: str,
    *,
    param: str,
    xlabel: str | None = None,
    ylabel: str | None = None,
    title: str | None = None,
    ax=None,
):
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
