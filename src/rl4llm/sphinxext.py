"""The book's Sphinx extension (listed under ``sphinx: extra_extensions`` in ``_config.yml``).

**Static build.** Jupyter Book executes every page in a kernel that it starts itself, and that kernel inherits the
environment of the build process. This extension marks that environment as a *static build*
(``RL4LLM_STATIC_BUILD=1``) before any page runs, so that code inside the pages can tell a page being built for
the static site from a page open in a live kernel (Binder, JupyterLab):

* progress bars (:func:`rl4llm.utils.progress`) are hidden, so a tqdm widget never becomes an output of a built
  page (a second output in a figure cell would give the figure's name twice);
* widget panels (:mod:`rl4llm.widgets`) render their kernel-free form over precomputed results.

``jupyter-book build .`` therefore needs no environment variable. A reader's kernel never has the variable, so
the same pages show progress bars and live panels there.

**Package code that shows the mathematics.** The ``pysource`` directive is ``literalinclude`` (same argument,
same options, typically ``:pyobject:``) that shows a function of the package the way a textbook would: the
marker lines of a graded region (:data:`rl4llm.assignments.source.BEGIN` / ``END``) are dropped (the body
stays), and so are argument checks (see :func:`shown_source`); ``:keep-checks:`` keeps them,
``:no-docstring:`` drops the docstring. The file stays the single source, so the page cannot drift from the code::

    ```{pysource} ../../src/rl4llm/rl/ppo.py
    :pyobject: train_ppo
    :no-docstring:
    ```

**Clean pages.** The extension also keeps the built pages free of JavaScript errors (the browser tests load every page and fail on any):

* sphinx-thebe registers its inline configuration script once per reading pass, so a rebuild that reads twice
  declares ``const THEBE_JS_URL`` twice, a page error; each page keeps one copy of every script;
* pydata-sphinx-theme writes an empty colour mode into pages when no ``default_mode`` reaches the template
  ("Got invalid theme mode" in the console); the pages get ``auto``, the theme's own default.
"""

from __future__ import annotations

import ast
import os
import textwrap
from typing import Any

from rl4llm.assignments.source import BEGIN, END

STATIC_BUILD_ENV = "RL4LLM_STATIC_BUILD"

__all__ = ["STATIC_BUILD_ENV", "shown_source", "setup"]

_MARKERS = (BEGIN, END)


def _call_name(node: ast.AST) -> str | None:
    """The called function's name of an ``f(...)`` / ``x = f(...)`` / ``a.f(...)`` statement, else None."""
    value = node.value if isinstance(node, (ast.Expr, ast.Assign, ast.AnnAssign)) else None
    if not isinstance(value, ast.Call):
        return None
    func = value.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None


def _is_local(target: ast.AST) -> bool:
    """A plain name or a tuple of names (``x`` or ``x, _``), not an attribute or an item."""
    if isinstance(target, ast.Tuple):
        return all(isinstance(t, ast.Name) for t in target.elts)
    return isinstance(target, ast.Name)


def _is_check(stmt: ast.stmt) -> bool:
    """An argument check: a call of ``check_*`` / ``_check_*`` / ``validate``, an ``if`` whose branches only raise
    (or only check), a ``for`` loop of checks, or a ``__post_init__`` made of checks."""
    name = _call_name(stmt)
    if name is not None:
        if isinstance(stmt, ast.Assign) and not all(_is_local(t) for t in stmt.targets):
            return False  # ``self.value = check_range(...)`` initialises state: part of the code
        return name.startswith(("check_", "_check_")) or name in ("validate", "_check")
    if isinstance(stmt, ast.If):
        branches = [stmt.body] + ([stmt.orelse] if stmt.orelse else [])
        return all(all(isinstance(s, ast.Raise) or _is_check(s) for s in b) for b in branches)
    if isinstance(stmt, ast.For):
        return not stmt.orelse and all(_is_check(s) for s in stmt.body)
    if isinstance(stmt, ast.FunctionDef) and stmt.name == "__post_init__":
        return all(_is_check(s) for s in stmt.body)
    return False


def _docstring(body: list[ast.stmt]) -> ast.stmt | None:
    first = body[0] if body else None
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        return first
    return None


def shown_source(source: str, *, strip_checks: bool = True, strip_docstring: bool = False) -> str:
    """The text ``pysource`` shows for ``source`` (a function or class, possibly indented).

    Drops the marker lines of graded regions, and with ``strip_checks`` the argument checks
    at the top level of every function body of the snippet (calls of ``check_*``, ``_check_*`` or ``validate``, bare or
    assigned to local names,
    ``if`` blocks that only raise, ``for`` loops of such checks, ``__post_init__`` methods made of them); with
    ``strip_docstring`` the docstring of the snippet's outermost function or class. Blank lines left doubled are
    merged, and a blank line right after a ``def``/``class`` header goes. Text that is not valid Python after
    dedenting loses only the marker lines.
    """
    if not isinstance(source, str):
        raise TypeError(f"source must be a str, got {type(source).__name__}")
    lines = source.splitlines()
    drop = {i for i, line in enumerate(lines) if line.strip() in _MARKERS}
    if strip_checks or strip_docstring:
        try:
            tree = ast.parse(textwrap.dedent(source))
        except SyntaxError:
            tree = None
        if tree is not None:
            ranges: list[tuple[int, int]] = []
            top = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
            if strip_docstring:
                for node in top:
                    doc = _docstring(node.body)
                    if doc is not None:
                        ranges.append((doc.lineno, doc.end_lineno or doc.lineno))
            if strip_checks:
                for node in ast.walk(tree):
                    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                        ranges.extend((s.lineno, s.end_lineno or s.lineno) for s in node.body if _is_check(s))
            for start, end in ranges:
                drop.update(range(start - 1, end))
    kept: list[str] = []
    for i, line in enumerate(lines):
        if i in drop:
            continue
        if not line.strip() and (not kept or not kept[-1].strip() or kept[-1].rstrip().endswith(":")):
            continue  # no leading or doubled blank lines, none right after a header whose docstring went
        kept.append(line)
    while kept and not kept[-1].strip():
        kept.pop()
    return "\n".join(kept) + ("\n" if source.endswith("\n") else "")


def _pysource_directive() -> type:
    """Build the directive class (Sphinx is imported only when the extension is loaded)."""
    from docutils import nodes
    from docutils.parsers.rst import directives
    from sphinx.directives.code import LiteralInclude

    class PySource(LiteralInclude):
        """``literalinclude`` of package code without solution markers and argument checks."""

        option_spec = {**LiteralInclude.option_spec, "keep-checks": directives.flag, "no-docstring": directives.flag}

        def run(self) -> list[nodes.Node]:
            keep_checks = "keep-checks" in self.options
            no_docstring = "no-docstring" in self.options
            self.options.pop("keep-checks", None)
            self.options.pop("no-docstring", None)
            self.options.setdefault("language", "python")
            result = super().run()
            for node in result:
                blocks = [node] if isinstance(node, nodes.literal_block) else list(node.findall(nodes.literal_block))
                for block in blocks:
                    text = shown_source(block.astext(), strip_checks=not keep_checks, strip_docstring=no_docstring)
                    block.rawsource = text
                    block.children = [nodes.Text(text)]
            return result

    return PySource


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
    """Mark the build's environment (inherited by the kernels that execute the pages) as a static build, and
    register the ``pysource`` directive."""
    os.environ[STATIC_BUILD_ENV] = "1"
    app.add_directive("pysource", _pysource_directive())
    app.connect("html-page-context", _clean_page_context, priority=900)
    return {"version": "2", "parallel_read_safe": True, "parallel_write_safe": True}
