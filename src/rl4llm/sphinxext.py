"""The book's Sphinx extension (listed under ``sphinx: extra_extensions`` in ``_config.yml``).

Jupyter Book executes every page in a kernel that it starts itself, and that kernel inherits the environment of
the build process. This extension marks that environment as a *static build* (``RL4LLM_STATIC_BUILD=1``) before
any page runs, so that code inside the pages can tell a page being built for the static site from a page open
in a live kernel (Binder, JupyterLab):

* progress bars (:func:`rl4llm.utils.progress`) are hidden, so a tqdm widget never becomes an output of a built
  page (a second output in a figure cell would give the figure's name twice);
* widget panels (:mod:`rl4llm.widgets`) render their kernel-free form over precomputed results.

``jupyter-book build .`` therefore needs no environment variable. A reader's kernel never has the variable, so
the same pages show progress bars and live panels there.
"""

from __future__ import annotations

import os
from typing import Any

STATIC_BUILD_ENV = "RL4LLM_STATIC_BUILD"


def setup(app: Any) -> dict[str, Any]:
    """Mark the build's environment (inherited by the kernels that execute the pages) as a static build."""
    os.environ[STATIC_BUILD_ENV] = "1"
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
