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


def test_differences_flags_changed_numbers_only():
    diff = _tool().differences
    assert diff({"a": 1.0, "b": "x"}, {"a": 1.0 + 1e-12, "b": "x"}) == []
    assert diff({"a": 37.0}, {"a": 38.0}) == ["a: recorded 37.0, now 38.0"]
    assert diff({"b": "x"}, {"b": "y"}) == ["b: recorded 'x', now 'y'"]


@pytest.mark.slow
@pytest.mark.book_runs
@pytest.mark.parametrize("path", FILES, ids=lambda p: p.relative_to(ROOT / "book").as_posix())
def test_quoted_runs_reproduce(path):
    tool = _tool()
    for name, entry in json.loads(path.read_text())["runs"].items():
        diff = tool.differences(entry["metrics"], tool.rerun(entry))
        assert not diff, f"{path.name}: run {name!r} changed; re-record it and re-read the page:\n" + "\n".join(diff)
