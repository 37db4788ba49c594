"""The package's drawing discipline: ``plots.py`` modules only draw, one sweep overlay serves every chapter, and
no two public names mean different things.

* every ``<chapter>/plots.py`` imports nothing of the package but :mod:`rl4llm.plotting` and :mod:`rl4llm.utils`
  (type-only imports under ``TYPE_CHECKING`` aside), and no torch: numbers come in as arguments, computed by
  the chapter's ``analysis.py`` or an experiment;
* :func:`rl4llm.plotting.plot_sweep` draws one line per swept value, in the book's colours, labelled with the
  knob, against hand-made data;
* a name in the ``__all__`` of two modules is the same object in both (a re-export), apart from the listed
  exceptions.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import rl4llm
from rl4llm.plotting import COLORS, format_value, new_figure, plot_sweep, sweep_columns

PACKAGE = Path(rl4llm.__file__).parent
PLOTS = sorted(PACKAGE.glob("*/plots.py"))
ALLOWED_IMPORTS = {"rl4llm.plotting", "rl4llm.utils"}


def _runtime_imports(path: Path) -> set[str]:
    """Modules that ``path`` imports when it runs (anywhere, functions included; ``TYPE_CHECKING`` blocks skipped)."""
    tree = ast.parse(path.read_text())
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for stmt in node.body for n in ast.walk(stmt))
    found = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
    return found


def test_the_import_scan_sees_function_level_imports_and_skips_type_checking(tmp_path):
    src = tmp_path / "plots.py"
    src.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from rl4llm.rl.ppo import train_ppo\n"
        "def f():\n    from rl4llm.experiments import run_experiment\n    import torch\n"
    )
    assert _runtime_imports(src) == {"typing", "rl4llm.experiments", "torch"}


def test_every_chapter_has_a_plots_module():
    chapters = {p.parent.name for p in PLOTS}
    assert {"rl", "offline", "imitation", "irl", "rlhf", "lm", "prompting"} <= chapters


@pytest.mark.parametrize("path", PLOTS, ids=lambda p: f"{p.parent.name}/plots.py")
def test_plots_modules_only_draw(path):
    imports = _runtime_imports(path)
    package = sorted(m for m in imports if m.split(".")[0] == "rl4llm" and m not in ALLOWED_IMPORTS)
    assert not package, (
        f"{path.parent.name}/plots.py imports {package}: compute in the chapter's analysis.py "
        "(or the experiment) and pass the numbers in"
    )
    assert not {m for m in imports if m.split(".")[0] == "torch"}, f"{path.parent.name}/plots.py imports torch"


# names exported by several modules with a meaning that is the same in each (the two pretraining CLIs)
SAME_MEANING = {"PretrainConfig", "train", "main", "add_arguments", "CHECKPOINT_DIR"}
PENDING_ELSEWHERE: set[str] = set()


def _exports() -> dict[str, dict[int, list[str]]]:
    out: dict[str, dict[int, list[str]]] = {}
    for info in pkgutil.walk_packages(rl4llm.__path__, "rl4llm."):
        module = importlib.import_module(info.name)
        for name in getattr(module, "__all__", ()):
            out.setdefault(name, {}).setdefault(id(getattr(module, name)), []).append(info.name)
    return out


def test_public_names_are_unique_across_modules():
    clashes = {
        name: sorted(m[0] for m in by_object.values())
        for name, by_object in _exports().items()
        if len(by_object) > 1 and name not in SAME_MEANING | PENDING_ELSEWHERE
    }
    assert not clashes, f"public names defined by several modules with different meanings: {clashes}"


def test_the_listed_exceptions_still_exist():
    # an exception that no longer clashes must leave the list, so that the list cannot hide a new clash
    exports = _exports()
    resolved = sorted(n for n in SAME_MEANING | PENDING_ELSEWHERE if len(exports.get(n, {})) < 2)
    assert not resolved, f"no longer defined twice, remove from the exceptions: {resolved}"


def test_plot_sweep_draws_one_labelled_line_per_value():
    fig, ax = new_figure()
    xs = np.arange(4.0)
    lines = plot_sweep(ax, [(0.1, xs, xs), (0.2, xs, 2 * xs), (float("inf"), xs, 3 * xs)], param="clip ε")
    assert len(lines) == len(ax.get_lines()) == 3
    assert [ln.get_label() for ln in lines] == ["clip ε = 0.1", "clip ε = 0.2", "clip ε = inf"]
    assert [ln.get_color() for ln in lines] == COLORS[:3]
    np.testing.assert_array_equal(lines[1].get_ydata(), [0.0, 2.0, 4.0, 6.0])
    legend = ax.get_legend()
    assert legend is not None and [t.get_text() for t in legend.get_texts()] == [ln.get_label() for ln in lines]


def test_plot_sweep_labels_style_and_no_legend():
    fig, ax = new_figure()
    xs = np.arange(3.0)
    lines = plot_sweep(
        ax, [("a", xs, xs), ("b", xs, xs)], param="β", labels={"b": "adaptive"}, legend=None, fmt="o--", ms=2
    )
    assert [ln.get_label() for ln in lines] == ["β = a", "adaptive"]
    assert lines[0].get_marker() == "o" and lines[0].get_linestyle() == "--" and lines[0].get_markersize() == 2
    assert ax.get_legend() is None
    lines = plot_sweep(ax, [(1, xs, xs)], param="n", labels=["first"])
    assert lines[0].get_label() == "first"
    with pytest.raises(ValueError, match="lines"):
        plot_sweep(ax, [], param="β")


def test_format_value_and_sweep_columns():
    assert [format_value(v) for v in (0.2, 1e-4, float("inf"), 3, "adaptive")] == [
        "0.2",
        "0.0001",
        "inf",
        "3",
        "adaptive",
    ]
    result = SimpleNamespace(
        curves=[{"it": 0, "kl": 1.0}, {"it": 1, "kl": None}, {"it": 2, "kl": ""}, {"it": 3}, {"it": 4, "kl": 2.5}]
    )
    [(value, x, y)] = sweep_columns([("v", result)], "it", "kl")
    assert value == "v" and x.tolist() == [0.0, 4.0] and y.tolist() == [1.0, 2.5]
    with pytest.raises(KeyError, match="gold"):
        sweep_columns([("v", result)], "it", "gold")
