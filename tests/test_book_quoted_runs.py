"""Numbers a page quotes from runs it does not execute are re-run here and must not have changed.

Each ``book/**/<page>.runs.json`` lists experiments with their overrides and the metrics the page glues from the
file (see ``tools/quoted_runs.py``). The fast tests check that the files are well formed and that each page
reads its file; the slow one re-runs every entry (same seed, same numbers on CPU) and compares. It takes minutes
per file, so it is marked ``book_runs`` and left out of the default run: ``make test-book-runs`` (and CI) run it.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FILES = sorted(ROOT.glob("book/**/*.runs.json"))


def _tool():
    spec = importlib.util.spec_from_file_location("quoted_runs", ROOT / "tools" / "quoted_runs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_there_are_quoted_runs():
    assert FILES, "no <page>.runs.json files found: the glob no longer matches"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.relative_to(ROOT / "book").as_posix())
def test_quoted_runs_are_well_formed_and_read_by_their_page(path):
    from rl4llm.experiments import config_from_overrides

    data = json.loads(path.read_text())
    page = path.with_name(path.name.removesuffix(".runs.json") + ".md")
    assert page.exists(), f"{path} stands beside no page"
    assert path.name in page.read_text(), f"{page} does not read {path.name}"
    for name, entry in data["runs"].items():
        config_from_overrides(entry["experiment"], **entry.get("overrides", {}))  # a valid config
        assert entry["metrics"], f"{path}: run {name} records no metrics"


def test_entry_differences_compare_curves_and_artifacts():
    tool = _tool()
    entry = {"metrics": {"a": 1.0}, "curves": [{"x": 1, "y": 2.0}], "artifacts": {"r": [[1.0, 2.0]]}}
    same = {"metrics": {"a": 1.0}, "curves": [{"x": 1, "y": 2.0}], "artifacts": {"r": [[1.0, 2.0]]}}
    assert tool.entry_differences(entry, same) == []
    moved = {"metrics": {"a": 1.0}, "curves": [{"x": 1, "y": 2.5}], "artifacts": {"r": [[1.0, 2.0]]}}
    assert tool.entry_differences(entry, moved) == ["curves[0].y: recorded 2.0, now 2.5"]
    longer = {"metrics": {"a": 1.0}, "curves": [{"x": 1, "y": 2.0}] * 2, "artifacts": {"r": [[1.0, 2.0]]}}
    assert tool.entry_differences(entry, longer) == ["curves: recorded 1 rows, now 2"]
    changed = {"metrics": {"a": 1.0}, "curves": [{"x": 1, "y": 2.0}], "artifacts": {"r": [[1.0, 3.0]]}}
    assert tool.entry_differences(entry, changed) == ["artifacts.r: changed"]
    assert tool.differences({"n": float("nan")}, {"n": float("nan")}) == []


def test_recorded_result_redraws_the_run_it_records():
    import math

    from rl4llm.experiments import recorded_result, run_experiment

    tool = _tool()
    entry = {"experiment": "bandit", "overrides": {"seed": 3}, "metrics": {}, "curves": []}
    result = run_experiment("bandit", seed=3)
    entry["metrics"] = {k: v for k, v in result.metrics.items() if isinstance(v, (int, float))}
    entry.update({k: v for k, v in tool.record(entry).items() if k != "metrics"})
    shown = recorded_result(entry)
    assert shown.artifacts["recorded"] is True
    assert shown.figure is not None
    assert len(shown.curves) == len(result.curves)
    for old, new in zip(result.curves, shown.curves):
        for k, v in old.items():
            assert (isinstance(v, float) and math.isnan(v) and math.isnan(new[k])) or new[k] == v
    with pytest.raises(ValueError, match="curves"):
        recorded_result({"experiment": "bandit", "metrics": {}})


def test_recorded_sweep_takes_the_whole_runs_that_set_the_knob(tmp_path):
    from rl4llm.experiments import recorded_sweep, run_experiment

    tool = _tool()
    runs = {}
    for seed in (3, 4):
        entry = {"experiment": "bandit", "overrides": {"seed": seed}, "metrics": {}, "curves": []}
        metrics = run_experiment("bandit", seed=seed).metrics
        entry["metrics"] = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
        entry.update({k: v for k, v in tool.record(entry).items() if k != "metrics"})
        runs[f"seed{seed}"] = entry
    runs["metrics-only"] = {"experiment": "bandit", "overrides": {"seed": 5}, "metrics": {"x": 1.0}}
    path = tmp_path / "page.runs.json"
    path.write_text(json.dumps({"runs": runs}))
    sweep = recorded_sweep(path, "seed")
    assert [value for value, _ in sweep] == [3, 4]
    assert sweep[0][1].metrics == runs["seed3"]["metrics"]
    with pytest.raises(ValueError, match="n_arms"):
        recorded_sweep(path, "n_arms")


def test_differences_flags_changed_numbers_only():
    diff = _tool().differences
    assert diff({"a": 1.0, "b": "x"}, {"a": 1.0 + 1e-12, "b": "x"}) == []
    assert diff({"a": 37.0}, {"a": 38.0}) == ["a: recorded 37.0, now 38.0"]
    assert diff({"b": "x"}, {"b": "y"}) == ["b: recorded 'x', now 'y'"]


@pytest.mark.slow
@pytest.mark.book_runs
@pytest.mark.timeout(3600)  # the full why-ppo run alone takes several minutes on 2 cores
@pytest.mark.parametrize("path", FILES, ids=lambda p: p.relative_to(ROOT / "book").as_posix())
def test_quoted_runs_reproduce(path):
    tool = _tool()
    for name, entry in json.loads(path.read_text())["runs"].items():
        diff = tool.entry_differences(entry, tool.record(entry))
        assert not diff, f"{path.name}: run {name!r} changed; re-record it and re-read the page:\n" + "\n".join(diff)
