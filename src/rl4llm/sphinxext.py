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

It also keeps the built pages free of JavaScript errors (the browser tests load every page and fail on any):

* sphinx-thebe registers its inline configuration script once per reading pass, so a rebuild that reads twice
  declares ``const THEBE_JS_URL`` twice, a page error; each page keeps one copy of every script;
* pydata-sphinx-theme writes an empty colour mode into pages when no ``default_mode`` reaches the template
  ("Got invalid theme mode" in the console); the pages get ``auto``, the theme's own default.
"""

from __future__ import annotations

import os
from typing import Any

STATIC_BUILD_ENV = "RL4LLM_STATIC_BUILD"


def _clean_page_context(app: Any, pagename: str, templatename: str, context: dict[str, Any], doctree: Any) -> None:
    """One copy of each script on the page (same file and same inline body), and a valid colour mode."""
    scripts = context.get("script_files")
    if isinstance(scripts, list):
        seen, unique = set(), []
        for js in scripts:
            attributes = getattr(js, "attributes", {}) or {}
            # the same inline script comes back with filename None and filename "" (two registrations)
            key = (str(getattr(js, "filename", js) or ""), attributes.get("body"), attributes.get("src"))
            if key not in seen:
                seen.add(key)
                unique.append(js)
        scripts[:] = unique
    if not context.get("default_mode"):
        context["default_mode"] = "auto"


def setup(app: Any) -> dict[str, Any]:
    """Mark the build's environment (inherited by the kernels that execute the pages) as a static build."""
    os.environ[STATIC_BUILD_ENV] = "1"
    app.connect("html-page-context", _clean_page_context, priority=900)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
