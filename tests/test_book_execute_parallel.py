"""tools/execute_book.py fills Jupyter Book's execution cache so that the build executes nothing.

A two-page book: the script executes both pages (two workers), a second run finds them cached, and
``jupyter-book build -W`` then uses the cached notebooks for both pages (no "Executing notebook" in its log). The
pages check that they run as the build runs them: in their own folder, marked as a static build.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

PAGE = """---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
    format_version: 0.13
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---

# Page {n}

```{{code-cell}} ipython3
:tags: [hide-input]

import os
from pathlib import Path

assert os.environ.get("RL4LLM_STATIC_BUILD") == "1"
assert Path("page{n}.md").is_file(), "runs in the page's folder"
print("page {n}:", {n} * 7)
```
"""


@pytest.mark.slow
def test_pre_executed_pages_are_used_by_the_build(tmp_path: Path) -> None:
    jb = Path(sys.executable).with_name("jupyter-book")
    if not jb.exists():
        pytest.skip("jupyter-book is not installed next to this Python")
    (tmp_path / "_config.yml").write_text("title: t\nexecute:\n  execute_notebooks: cache\n")
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: page1\nchapters:\n  - file: page2\n")
    for n in (1, 2):
        (tmp_path / f"page{n}.md").write_text(PAGE.format(n=n))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RL4LLM_")}
    script = [sys.executable, str(ROOT / "tools" / "execute_book.py"), "--root", str(tmp_path), "--workers", "2"]
    first = subprocess.run(script, env=env, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stdout + first.stderr
    assert first.stdout.count(": ok,") == 2, first.stdout
    again = subprocess.run(script, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and again.stdout.count(": cached") == 2, again.stdout + again.stderr
    build = subprocess.run(
        [str(jb), "build", str(tmp_path), "-W"], env=env, capture_output=True, text=True, timeout=600
    )
    log = build.stdout + build.stderr
    assert build.returncode == 0, log[-4000:]
    assert log.count("Using cached notebook") == 2 and "Executing notebook" not in log, log[-4000:]
    assert "page 2: 14" in (tmp_path / "_build" / "html" / "page2.html").read_text()


def _execute_book():
    import importlib.util

    spec = importlib.util.spec_from_file_location("execute_book", ROOT / "tools" / "execute_book.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_chapters_are_scheduled_longest_first_with_a_default_for_unknown_pages(tmp_path: Path) -> None:
    eb = _execute_book()
    chapters = {
        tmp_path / "a": [str(tmp_path / "a" / "1.md"), str(tmp_path / "a" / "2.md")],  # 10 + 20 = 30 s
        tmp_path / "b": [str(tmp_path / "b" / "1.md")],  # unknown: UNKNOWN_SECONDS (60 s)
        tmp_path / "c": [str(tmp_path / "c" / "1.md"), str(tmp_path / "c" / "2.md")],  # 100 s + unknown = 160 s
    }
    timings = {"a/1.md": 10.0, "a/2.md": 20.0, "c/1.md": 100.0}
    assert eb.UNKNOWN_SECONDS == 60.0
    assert eb.schedule(chapters, timings, tmp_path) == [tmp_path / "c", tmp_path / "b", tmp_path / "a"]


def test_timings_of_the_last_run_override_the_committed_ones(tmp_path: Path, monkeypatch) -> None:
    eb = _execute_book()
    committed = tmp_path / "committed.json"
    committed.write_text('{"book/x.md": 5.0, "book/y.md": 7.0}')
    monkeypatch.setattr(eb, "COMMITTED_TIMINGS", committed)
    cache = tmp_path / "cache"
    cache.mkdir()
    # the cache's file of an older version held absolute paths: they count as the same pages
    (cache / eb.TIMINGS).write_text('{"%s": 50.0}' % (tmp_path / "book" / "x.md"))
    assert eb.load_timings(cache, tmp_path) == {"book/x.md": 50.0, "book/y.md": 7.0}
