"""The book's figure helpers: one style, labelled axes, colour-blind-safe colours.

Experiments build their figures with :func:`new_figure` and the palette below, so every chapter looks alike.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

#: Okabe-Ito colours (readable with every common colour-vision deficiency).
PALETTE: dict[str, str] = {
    "blue": "#0072B2",
    "orange": "#E69F00",
    "green": "#009E73",
    "red": "#D55E00",
    "purple": "#CC79A7",
    "sky": "#56B4E9",
    "yellow": "#F0E442",
    "black": "#000000",
    "grey": "#999999",
}
COLORS: list[str] = [PALETTE[k] for k in ("blue", "orange", "green", "red", "purple", "sky", "black", "grey")]

STYLE: dict[str, object] = {
    "figure.dpi": 100,
    "savefig.dpi": 120,
    "savefig.bbox": "tight",
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.prop_cycle": matplotlib.cycler(color=COLORS),
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "legend.frameon": False,
    "font.size": 10,
}


def apply_style() -> None:
    """Apply the book's matplotlib style globally (idempotent)."""
    plt.rcParams.update(STYLE)


class BookFigure(Figure):
    """A matplotlib figure that notebooks display as a PNG image without pyplot.

    IPython shows a plain :class:`~matplotlib.figure.Figure` as an image only once pyplot's inline backend has
    been activated; a figure that renders itself (``_repr_png_``) shows wherever it is a cell's value, in Jupyter,
    in the book build and in widget output areas alike.
    """

    def _repr_png_(self) -> bytes:
        buf = io.BytesIO()
        self.savefig(buf, format="png")
        return buf.getvalue()


def new_figure(ncols: int = 1, nrows: int = 1, *, width: float = 5.0, height: float = 3.5, **kwargs):
    """A figure and its axes in the book's style; ``width``/``height`` are per panel, in inches.

    The figure is a standalone :class:`BookFigure`, not registered with pyplot: experiments can make many
    without leaking memory, and a notebook shows it only where a cell displays it (e.g. as the cell's last
    expression ``result.figure``), so a figure cell has exactly one output to caption.
    """
    apply_style()
    fig = BookFigure(figsize=(width * ncols, height * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False, **kwargs)
    return fig, (axes[0, 0] if nrows * ncols == 1 else axes)


def label(ax, xlabel: str, ylabel: str, title: str | None = None) -> None:
    """Set axis labels (always) and the title (optional)."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)


def band(ax, x: Sequence[float], runs: np.ndarray, *, label: str | None = None, color: str | None = None) -> None:
    """Plot the mean over runs (rows of ``runs``) with a shaded +/- one standard deviation band."""
    runs = np.atleast_2d(np.asarray(runs, dtype=float))
    mean = np.nanmean(runs, axis=0)
    std = np.nanstd(runs, axis=0)
    (line,) = ax.plot(x, mean, label=label, color=color)
    ax.fill_between(x, mean - std, mean + std, alpha=0.2, color=line.get_color(), linewidth=0)


def smooth(y: Sequence[float], window: int = 10) -> np.ndarray:
    """Trailing moving average (the first points average over what is available)."""
    y = np.asarray(y, dtype=float)
    if window <= 1 or y.size == 0:
        return y
    c = np.cumsum(np.insert(y, 0, 0.0))
    out = np.empty_like(y)
    for i in range(y.size):
        lo = max(0, i + 1 - window)
        out[i] = (c[i + 1] - c[lo]) / (i + 1 - lo)
    return out


def format_value(value: Any) -> str:
    """A swept value as a legend shows it: a float in ``%g`` form (``0.2``, ``inf``), anything else as ``str``."""
    return f"{value:g}" if isinstance(value, float) else str(value)


def sweep_columns(sweep: Sequence[tuple[Any, Any]], x: str, y: str) -> list[tuple[Any, np.ndarray, np.ndarray]]:
    """``[(value, xs, ys)]``: columns ``x`` and ``y`` of each ``(value, result)`` pair's ``result.curves`` rows.

    Rows missing either column (or holding ``None`` or ``""`` there, as in a CSV) are skipped; ``KeyError`` if a
    result has no such row at all.
    """
    out = []
    for value, result in sweep:
        rows = [r for r in result.curves if r.get(x) not in (None, "") and r.get(y) not in (None, "")]
        if not rows:
            raise KeyError(f"the results' curves have no columns {x!r} and {y!r}")
        out.append((value, np.array([r[x] for r in rows], dtype=float), np.array([r[y] for r in rows], dtype=float)))
    return out


def plot_sweep(
    ax,
    lines: Sequence[tuple[Any, Sequence[float], Sequence[float]]],
    *,
    param: str,
    labels: Mapping[Any, str] | Sequence[str] | None = None,
    legend: str | None = "best",
    **style: Any,
) -> list:
    """Overlay one curve of y against x for each value of a swept knob, in the book's colours.

    Args:
        ax: the axes to draw on.
        lines: ``[(value, xs, ys)]``, one entry per swept value, in legend order (e.g. :func:`sweep_columns`).
        param: the knob's name as the legend shows it, e.g. ``"clip ε"``: line ``i`` is labelled
            ``"clip ε = 0.2"`` and drawn in ``COLORS[i]``.
        labels: instead, each line's label (a sequence, or a mapping from value to label for some values).
        legend: where the legend goes (a matplotlib ``loc``), or ``None`` for no legend.
        style: passed to every ``ax.plot`` call (e.g. ``marker="o", ms=3.5``; a ``fmt`` key gives the format
            string such as ``"o-"``).

    Returns the lines drawn.
    """
    if not lines:
        raise ValueError("lines must hold at least one (value, xs, ys) entry")
    fmt = style.pop("fmt", None)
    drawn = []
    for i, (value, xs, ys) in enumerate(lines):
        if labels is None:
            name = f"{param} = {format_value(value)}"
        elif isinstance(labels, Mapping):
            name = labels.get(value, f"{param} = {format_value(value)}")
        else:
            name = labels[i]
        args = (xs, ys) if fmt is None else (xs, ys, fmt)
        (line,) = ax.plot(*args, color=COLORS[i % len(COLORS)], label=name, **style)
        drawn.append(line)
    if legend is not None:
        ax.legend(loc=legend)
    return drawn
