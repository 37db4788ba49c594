"""The static site in Chromium, offline: pages load cleanly, figures and math render, kernel-free knobs act.

By default the site is a small test book built here (a page with two panels, a figure and math, built with the
project's ``_config.yml`` extensions and no environment variable); with ``RL4LLM_BROWSER_SITE=_build/html`` it is
the full book after ``make book``. Every request that is not ``file://`` (or ``data:``) is blocked and counted as
a failure: the built HTML must read offline. A full-page screenshot of every page goes to the artefacts folder.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .conftest import ROOT

PANEL_PAGE = """---
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

# Panels

The return $G_t = \\sum_{k \\ge 0} \\gamma^k r_{t+k+1}$ and a display equation:

$$
\\E[X] = \\sum_x x\\, p(x)
$$

```{code-cell} ipython3
:mystnb:
:  figure:
:    caption: A plain figure next to the panels.
:    name: fig-browser-plain

from rl4llm.plotting import new_figure

fig, ax = new_figure()
ax.plot([0, 1, 2], [0, 1, 4])
fig
```

```{code-cell} ipython3
from rl4llm.plotting import new_figure
from rl4llm.widgets import experiment_panel, function_panel, slider


def line(slope, horizon):
    fig, ax = new_figure()
    ax.plot([0, horizon], [0, slope * horizon])
    ax.set_title(f"slope {slope}, horizon {horizon}")
    return fig


function_panel(line, {"slope": slider("slope", 1.0, 0.0, 2.0, step=0.5),
                      "horizon": slider("horizon T", 10, 10, 50, integer=True, step=10)},
               title="A function panel", run_now=False)
```

```{code-cell} ipython3
experiment_panel("bandit", {"lr": slider("learning rate", 0.1, 0.01, 1.0, log=True)},
                 fixed={"steps": 30, "runs": 2}, metrics=["optimal_rate_baseline"],
                 title="An experiment panel")
```
"""


@pytest.fixture(scope="session", params=["test-book", "built-book"])
def site(request, tmp_path_factory) -> Path:
    """The site to test: a small book built here with the project's extensions ("test-book"), and the full
    book ("built-book": ``RL4LLM_BROWSER_SITE``, else ``_build/html`` when ``make book`` has built it)."""
    if request.param == "built-book":
        given = os.environ.get("RL4LLM_BROWSER_SITE")
        path = Path(given).resolve() if given else ROOT / "_build" / "html"
        if not (path / "index.html").is_file():
            if given:
                pytest.fail(f"RL4LLM_BROWSER_SITE={given} holds no index.html: build the book first (make book)")
            pytest.skip("no built book in _build/html (make book builds it)")
        return path
    return build_test_book(tmp_path_factory.mktemp("book"))


def build_test_book(book: Path) -> Path:
    """Build the small test book into ``book`` (with ``-W``) and return its HTML folder."""
    jb = Path(sys.executable).with_name("jupyter-book")
    if not jb.exists():
        pytest.skip("jupyter-book is not installed next to this Python")
    project = yaml.safe_load((ROOT / "_config.yml").read_text())
    sphinx = dict(project["sphinx"])
    sphinx["config"] = {k: v for k, v in sphinx.get("config", {}).items() if not k.startswith("bibtex")}
    config = {
        "title": "browser test",
        "only_build_toc_files": True,
        "execute": {"execute_notebooks": "force", "raise_on_error": True, "timeout": 300},
        "parse": project["parse"],
        "launch_buttons": project["launch_buttons"],
        "repository": project["repository"],
        "sphinx": sphinx,
    }
    (book / "_config.yml").write_text(yaml.safe_dump(config))
    (book / "_toc.yml").write_text("format: jb-book\nroot: index\nchapters:\n  - file: panels\n")
    (book / "index.md").write_text("# Browser test\n\nA page with inline math $a^2 + b^2 = c^2$.\n")
    (book / "panels.md").write_text(PANEL_PAGE)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RL4LLM_")}
    env["RL4LLM_CACHE_DIR"] = str(book / "cache")
    proc = subprocess.run([str(jb), "build", str(book), "-W"], env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    return book / "_build" / "html"


def html_pages(site: Path) -> list[Path]:
    """The site's pages, without its assets and without redirects (the root ``index.html`` is only a
    ``<meta http-equiv="Refresh">`` to the first page, which is checked itself)."""
    skip = {"_static", "_sources", "_images"}
    return sorted(
        p
        for p in site.rglob("*.html")
        if not skip & set(p.relative_to(site).parts)
        and 'http-equiv="Refresh"' not in p.read_text(errors="replace")[:300]
    )


class PageVisit:
    """One page opened from ``file://`` with every other request blocked; what went wrong is collected."""

    def __init__(self, browser, path: Path):
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.problems: list[str] = []
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("console", lambda m: m.type == "error" and self.problems.append(f"console error: {m.text}"))
        self.page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        self.page.on("requestfailed", lambda r: self.problems.append(f"failed request: {r.url[:200]} ({r.failure})"))
        self.page.goto(path.as_uri(), wait_until="load")

    def _route(self, route):
        url = route.request.url
        if url.startswith(("file://", "data:")):
            route.continue_()
        else:
            self.problems.append(f"request outside file:// (blocked): {url[:200]}")
            route.abort()

    def close(self):
        self.context.close()


IMAGES_JS = """async () => {
  const imgs = [...document.images];
  imgs.forEach(i => { i.loading = "eager"; });
  await Promise.all(imgs.map(i => i.complete ? null : new Promise(r => { i.onload = i.onerror = r; })));
  return imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => (i.currentSrc || i.src).slice(0, 120));
}"""

MATH_JS = """async () => {
  if (!document.querySelector(".math")) return {math: 0};
  for (let k = 0; k < 200 && !(window.MathJax && MathJax.startup && MathJax.startup.promise); k++)
    await new Promise(r => setTimeout(r, 50));
  if (!(window.MathJax && MathJax.startup)) return {math: -1};
  await MathJax.startup.promise;
  return {math: document.querySelectorAll(".math").length,
          typeset: document.querySelectorAll("mjx-container").length,
          errors: document.querySelectorAll("mjx-merror").length};
}"""

FRAME_JS = """p => {
  const shown = [...p.querySelectorAll(".rl4llm-frame")].filter(f => !f.hidden);
  return {count: shown.length,
          key: shown.map(f => f.dataset.key).join(","),
          img: shown.map(f => { const i = f.querySelector("img"); return i ? i.src.slice(-300) : ""; }).join(","),
          text: shown.map(f => (f.querySelector("pre") || {textContent: ""}).textContent).join(","),
          readouts: [...p.querySelectorAll("output")].map(o => o.textContent).join(",")};
}"""

# controls that cannot act without a kernel: ipywidgets views, widget areas, inputs or buttons in cell outputs
DEAD_JS = """() => {
  const sel = ['script[type="application/vnd.jupyter.widget-view+json"]', ".jupyter-widgets", ".widget-area",
               ".cell_output button", ".cell_output input", ".cell_output select", ".cell_output textarea"];
  return [...document.querySelectorAll(sel.join(","))]
    // sphinx-copybutton's copy buttons work without a kernel (they copy a block's text)
    .filter(e => !e.closest(".rl4llm-static-panel") && !e.classList.contains("copybtn")).length;
}"""


#: The knobs the book promises to move on the static site: each needs a slider over at least 5 values.
FIVE_VALUES = {"horizon", "kl_coef", "clip_eps"}


def move_every_knob(page) -> tuple[int, list[str]]:
    """Move each slider of each static panel with the keyboard; (knobs moved, problems)."""
    problems, moved = [], 0
    panels = page.locator(".rl4llm-static-panel")
    for i in range(panels.count()):
        panel = panels.nth(i)
        panel.scroll_into_view_if_needed()
        sliders = panel.locator("input[type=range]")
        for j in range(sliders.count()):
            knob = sliders.nth(j)
            before = panel.evaluate(FRAME_JS)
            at_end = knob.evaluate("k => k.value === k.max")
            knob.focus()
            knob.press("Home" if at_end else "End")
            after = panel.evaluate(FRAME_JS)
            name = f"panel {i} knob {knob.get_attribute('name')}"
            if knob.get_attribute("name") in FIVE_VALUES and int(knob.get_attribute("max")) < 4:
                problems.append(f"{name}: {int(knob.get_attribute('max')) + 1} values, fewer than 5")
            if before["count"] != 1 or after["count"] != 1:
                problems.append(f"{name}: {before['count']} then {after['count']} frames shown, not 1")
            elif after["key"] == before["key"]:
                problems.append(f"{name}: the frame did not change")
            elif after["img"] == before["img"] and before["img"]:
                problems.append(f"{name}: the figure did not change")
            elif after["readouts"] == before["readouts"] or (
                after["text"] == before["text"] and before["text"] and after["img"] == before["img"]
            ):
                problems.append(f"{name}: the numbers did not change")
            else:
                moved += 1
    return moved, problems


def test_static_site_offline(site, browser, artifacts, request):
    """Every page: no console error or failed request with the network blocked, every image loads, math is
    typeset, every kernel-free knob changes the figure and the numbers, and no control that cannot act."""
    pages = html_pages(site)
    assert pages, f"no HTML pages under {site}"
    problems: list[str] = []
    knobs = 0
    for path in pages:
        name = str(path.relative_to(site))
        visit = PageVisit(browser, path)
        try:
            page = visit.page
            broken = page.evaluate(IMAGES_JS)
            problems += [f"{name}: image did not load: {src}" for src in broken]
            math = page.evaluate(MATH_JS)
            if math["math"] == -1:
                problems.append(f"{name}: has math but MathJax did not load")
            elif math["math"] and (math["typeset"] < math["math"] or math["errors"]):
                problems.append(f"{name}: math not typeset ({math})")
            dead = page.evaluate(DEAD_JS)
            if dead:
                problems.append(f"{name}: {dead} controls that cannot act without a kernel")
            moved, knob_problems = move_every_knob(page)
            knobs += moved
            problems += [f"{name}: {p}" for p in knob_problems]
            shot = artifacts / request.node.callspec.id / path.relative_to(site).with_suffix(".png")
            shot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(shot), full_page=True)
            problems += [f"{name}: {p}" for p in visit.problems]
        finally:
            visit.close()
    assert not problems, "\n".join(problems)
    if request.node.callspec.id == "test-book":
        assert knobs == 3  # the test book's three sliders
    else:
        assert knobs > 0, "the built book has no kernel-free knob"
