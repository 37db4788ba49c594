"""A plain ``jupyter-book build`` (no environment variable) keeps progress bars out of the built pages.

Builds a one-page book with the project's ``_config.yml`` extensions: the page's named figure cell runs a loop
with :func:`rl4llm.utils.progress` (a tqdm widget in a kernel) and then shows a figure. The executed notebook must
hold exactly one output in that cell, and ``-W`` must pass (two outputs under one figure name are a Sphinx
warning: "Duplicate explicit target name").
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

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

# Progress page

```{code-cell} ipython3
:mystnb:
:  figure:
:    caption: A figure drawn after a loop with a progress bar.
:    name: fig-progress

import os
from rl4llm.plotting import new_figure
from rl4llm.utils import progress, static_build

assert "RL4LLM_QUIET" not in os.environ, "the test must build without RL4LLM_QUIET"
assert static_build(), "rl4llm.sphinxext did not mark the build as static"
total = sum(i for i in progress(range(50), desc="loop"))
fig, ax = new_figure()
ax.plot([0, 1], [0, total])
fig
```
"""


@pytest.mark.slow
def test_plain_build_keeps_progress_bars_out_of_figure_cells(tmp_path: Path) -> None:
    jb = Path(sys.executable).with_name("jupyter-book")
    if not jb.exists():
        pytest.skip("jupyter-book is not installed next to this Python")
    project = yaml.safe_load((ROOT / "_config.yml").read_text())
    config = {
        "title": "progress test",
        "only_build_toc_files": True,
        "execute": {"execute_notebooks": "force", "raise_on_error": True, "timeout": 120},
        "sphinx": {"extra_extensions": project["sphinx"]["extra_extensions"]},
    }
    (tmp_path / "_config.yml").write_text(yaml.safe_dump(config))
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: page\n")
    (tmp_path / "page.md").write_text(PAGE)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RL4LLM_")}
    proc = subprocess.run([str(jb), "build", str(tmp_path), "-W"], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    executed = json.loads((tmp_path / "_build" / "jupyter_execute" / "page.ipynb").read_text())
    cells = [c for c in executed["cells"] if c["cell_type"] == "code"]
    assert len(cells) == 1
    outputs = cells[0]["outputs"]
    assert len(outputs) == 1, [o.get("data", {}).keys() for o in outputs]
    assert "image/png" in outputs[0]["data"]
    shutil.rmtree(tmp_path / "_build")
