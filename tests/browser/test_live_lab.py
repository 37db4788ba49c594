"""The Binder path, locally: JupyterLab from the environment Binder builds (tools/binder_local.sh), in Chromium.

Opt-in (``RL4LLM_BROWSER_LIVE=1``, set by ``make test-browser``): building the environment and starting JupyterLab
take minutes. The environment is ``RL4LLM_BINDER_ENV`` (default ``.binder-env``), built on first use. JupyterLab
serves the repository root on a free localhost port, as Binder does; the kernels inherit the caller's
``RL4LLM_CACHE_DIR`` (so a built book's caches are reused) and never ``RL4LLM_STATIC_BUILD`` (they are live).

* the launch URL of every chapter page (``lab/tree/<page>.md``, what the rocket button opens on Binder) opens the
  page as a notebook with a running kernel;
* one page per chapter (``LIVE_PAGES``, the cheapest of each) runs all its cells without an error;
* the horizon, KL and clip panels respond: a slider moved (or *Run* pressed) and a new figure appears within
  ``PANEL_TIMEOUT`` seconds.

A screenshot of every page opened goes to the artefacts folder (``live/``).

The tests drive JupyterLab through its own command registry (``notebook:run-all-cells``, ``notebook:run-all-above``,
``notebook:run-cell``: what the Run menu calls), reached as ``window.jupyterapp`` (JupyterLab's
``LabApp.expose_app_in_browser`` option, set for the test's server only), on the notebook found by its path, and
read execution counts and outputs from the notebook's model, not from the DOM (JupyterLab 4 can render a long
notebook in windows, leaving far cells out of the page). An earlier version clicked *Run > Run All Cells* and saw
no cell start; that is not reproduced with a fresh workspace per launch (``?reset``) and the kernel idle first (the
menu then starts the cells too), but the command on the page's own notebook does not depend on which one has focus.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from .conftest import ROOT

pytestmark = pytest.mark.skipif(
    os.environ.get("RL4LLM_BROWSER_LIVE") != "1",
    reason="live JupyterLab tests are opt-in: make test-browser (RL4LLM_BROWSER_LIVE=1)",
)

PAGE_TIMEOUT = 900  # seconds for a page's cells (or the cells above a panel)
PANEL_TIMEOUT = 300  # seconds for a panel to draw a new figure

#: one page per chapter that runs all its cells: the cheapest of each chapter that needs no earlier page's results
#: (seconds of the cold build, tools/execute_book.py: 15, 13, 9, 58, 33, 23, 8 on this 2-core machine)
LIVE_PAGES = {
    "01-rl": "1-agent-environment.md",
    "02-offline-rl": "1-logged-data.md",
    "03-imitation": "1-behaviour-cloning.md",
    "04-irl": "1-maxent-irl.md",
    "05-rlhf": "5-dpo.md",
    "06-prompting": "2-offline-reward-model.md",
    "07-rlvr": "3-normalisations.md",
}


def chapter_pages() -> list[Path]:
    return sorted(p for p in (ROOT / "book").glob("[0-9][0-9]-*/[0-9]*.md"))


def launch_path(page: Path) -> str:
    """The path the launch button opens (sphinx-book-theme: ``<interface>/tree/<path in repository>``)."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["launch_buttons"]["notebook_interface"] == "jupyterlab"
    prefix = config["repository"].get("path_to_book", "") or ""
    return f"lab/tree/{prefix}{page.relative_to(ROOT).as_posix()}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def private_settings(folder: Path) -> tuple[Path, Path]:
    """User settings and workspaces for the test's JupyterLab: no autosave (a test never writes the pages),
    no news pop-up, no workspace restored from an earlier session."""
    settings, workspaces = folder / "user-settings", folder / "workspaces"
    for plugin, value in {
        "@jupyterlab/docmanager-extension/plugin": {"autosave": False},
        "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
        # every cell in the DOM (a panel's cell is found by its text wherever it is on the page)
        "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    }.items():
        path = settings / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))
    workspaces.mkdir(parents=True, exist_ok=True)
    return settings, workspaces


@pytest.fixture(scope="module")
def lab(artifacts, tmp_path_factory):
    """JupyterLab from the local Binder environment on a free port: ``(base_url, token)``."""
    env_dir = Path(os.environ.get("RL4LLM_BINDER_ENV", ROOT / ".binder-env"))
    settings, workspaces = private_settings(tmp_path_factory.mktemp("lab"))
    subprocess.run(
        [str(ROOT / "tools" / "binder_local.sh"), "--env", str(env_dir), "--no-start"], check=True, timeout=3600
    )
    port, token = free_port(), secrets.token_hex(16)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RL4LLM_") or k in ("RL4LLM_CACHE_DIR",)}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    shutil.rmtree(artifacts / "live", ignore_errors=True)  # this run's screenshots only
    log = open(artifacts / "jupyterlab.log", "w")
    proc = subprocess.Popen(
        [
            str(env_dir / "bin" / "jupyter"),
            "lab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={port}",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={ROOT}",
            f"--LabApp.user_settings_dir={settings}",
            f"--LabApp.workspaces_dir={workspaces}",
            "--LabApp.expose_app_in_browser=True",  # window.jupyterapp: the tests run JupyterLab's commands
            # checkpoints outside the repository (never .ipynb_checkpoints in book/)
            f"--FileCheckpoints.checkpoint_dir={workspaces.parent / 'checkpoints'}",
        ]
        + (["--allow-root"] if os.geteuid() == 0 else []),
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    pages = {p: p.read_bytes() for p in (ROOT / "book").rglob("*.md")}
    try:
        deadline = time.time() + 300
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"JupyterLab did not start; see {artifacts / 'jupyterlab.log'}")
            time.sleep(1)
        yield base, token
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        changed = [p for p, text in pages.items() if p.read_bytes() != text]
        for p in changed:  # put the pages back before failing: a test must never edit the book
            p.write_bytes(pages[p])
        assert not changed, f"JupyterLab wrote to the pages {[str(p.relative_to(ROOT)) for p in changed]}"


def api(lab, path: str):
    base, token = lab
    with urllib.request.urlopen(f"{base}/{path}?token={token}", timeout=10) as r:
        return json.loads(r.read())


def kernel_of(lab, page: Path) -> dict | None:
    rel = page.relative_to(ROOT).as_posix()
    for session in api(lab, "api/sessions"):
        if session.get("path") == rel and session.get("kernel"):
            return session["kernel"]
    return None


def wait_idle(lab, page: Path, timeout: float) -> None:
    """Wait until the page's kernel exists and is idle."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        kernel = kernel_of(lab, page)
        if kernel and kernel.get("execution_state") == "idle":
            return
        time.sleep(1)
    raise AssertionError(f"{page.name}: the kernel is not idle after {timeout:.0f} s ({kernel_of(lab, page)})")


@pytest.fixture
def lab_page(lab, browser, artifacts, request):
    """Open pages by their launch URL in a fresh browser context; screenshot each at the end of the test
    (``live/<test>.png``, e.g. ``test_kl_panel_responds.png``); shut their kernels down."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    (artifacts / "live").mkdir(exist_ok=True)
    opened: list[Path] = []

    def open_page(page_path: Path):
        page = context.new_page()
        base, token = lab
        # "reset": a fresh workspace, so that documents opened by earlier tests are not reopened with this one
        page.goto(f"{base}/{launch_path(page_path)}?token={token}&reset", wait_until="domcontentloaded")
        page.wait_for_selector(".jp-NotebookPanel .jp-Notebook .jp-CodeCell", state="attached", timeout=180_000)
        wait_idle(lab, page_path, 180)
        opened.append(page_path)
        return page

    yield open_page
    test = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name).strip("_")
    for n, p in enumerate(context.pages):
        try:
            p.screenshot(path=str(artifacts / "live" / f"{test}{'-' + str(n) if n else ''}.png"))
        except Exception:  # a screenshot is for authors; never the reason a test fails
            pass
    context.close()
    for page_path in opened:
        shutdown_kernel(lab, page_path)


def shutdown_kernel(lab, page_path: Path) -> None:
    """Shut the page's kernel down (if it still runs)."""
    kernel = kernel_of(lab, page_path)
    if kernel:
        base, token = lab
        req = urllib.request.Request(f"{base}/api/kernels/{kernel['id']}?token={token}", method="DELETE")
        urllib.request.urlopen(req, timeout=10).close()


#: the notebook panel of a page (by its path) in JupyterLab's main area, from window.jupyterapp
_PANEL_JS = """
(rel) => {
  const app = window.jupyterapp;
  if (!app) throw new Error("window.jupyterapp is missing (LabApp.expose_app_in_browser)");
  for (const w of app.shell.widgets("main")) {
    if (w.context && w.context.path === rel && w.content && w.content.model) return w;
  }
  return null;
}
"""


def lab_command(page, page_path: Path, command: str, cell_index: int | None = None) -> None:
    """Run a JupyterLab command (e.g. ``notebook:run-all-cells``) on the page's notebook, without waiting for it
    to finish: the notebook is made the current widget first (the notebook commands act on that one), and with
    ``cell_index`` that cell becomes the active one."""
    rel = page_path.relative_to(ROOT).as_posix()
    page.evaluate(
        """async ([rel, command, index]) => {
          const panel = (%s)(rel);
          if (!panel) throw new Error("no notebook open for " + rel);
          const app = window.jupyterapp;
          app.shell.activateById(panel.id);
          await panel.sessionContext.ready;
          if (index !== null) panel.content.activeCellIndex = index;
          if (!app.commands.isEnabled(command)) throw new Error(command + " is not enabled");
          window.__rl4llm_command = {command, done: false, error: null};
          app.commands.execute(command).then(
            () => { window.__rl4llm_command.done = true; },
            (e) => { window.__rl4llm_command.error = String(e); });
        }"""
        % _PANEL_JS,
        [rel, command, cell_index],
    )


def cell_states(page, page_path: Path) -> list[dict]:
    """Every code cell of the page's notebook model: its index, source, execution count and error outputs."""
    rel = page_path.relative_to(ROOT).as_posix()
    return page.evaluate(
        """(rel) => {
          const panel = (%s)(rel);
          const cells = [];
          const list = panel.content.model.cells;
          for (let i = 0; i < list.length; i++) {
            const cell = list.get(i);
            if (cell.type !== "code") continue;
            const outputs = cell.outputs.toJSON();
            cells.push({
              index: i,
              source: cell.sharedModel.getSource(),
              count: cell.executionCount,
              errors: outputs.filter(o => o.output_type === "error")
                             .map(o => o.ename + ": " + o.evalue + "\\n" + (o.traceback || []).join("\\n")),
            });
          }
          return cells;
        }"""
        % _PANEL_JS,
        rel,
    )


def command_status(page) -> dict:
    return page.evaluate("() => window.__rl4llm_command || null")


def wait_cells_run(lab, page, page_path: Path, indices: set[int] | None, timeout: float) -> list[dict]:
    """Wait until the code cells (all, or those with the given model indices) have an execution count and the
    kernel is idle, or a cell shows an error; return the cells' states."""
    deadline = time.time() + timeout
    while True:
        cells = [c for c in cell_states(page, page_path) if indices is None or c["index"] in indices]
        status = command_status(page) or {}
        assert not status.get("error"), f"{status.get('command')} failed: {status['error']}"
        if any(c["errors"] for c in cells):
            return cells
        kernel = kernel_of(lab, page_path) or {}
        if all(c["count"] for c in cells) and kernel.get("execution_state") == "idle":
            return cells
        if time.time() > deadline:
            missing = [c["source"][:60] for c in cells if not c["count"]]
            raise AssertionError(f"{page_path.name}: {len(missing)} cells not run after {timeout:.0f} s: {missing[:3]}")
        time.sleep(2)


def assert_no_errors(page_path: Path, cells: list[dict]) -> None:
    errors = [c for c in cells if c["errors"]]
    assert not errors, f"{page_path.name}: cell {errors[0]['source'][:80]!r} failed:\n" + errors[0]["errors"][0][-3000:]


def code_cells(page):
    return page.locator(".jp-NotebookPanel:visible .jp-CodeCell")


def cell_with(page, text: str):
    cells = code_cells(page).filter(has_text=text)
    assert cells.count() >= 1, f"no code cell contains {text!r}"
    return cells.first


@pytest.mark.parametrize("page_path", chapter_pages(), ids=lambda p: p.relative_to(ROOT / "book").as_posix())
def test_chapter_page_opens_as_a_notebook_with_a_kernel(lab, lab_page, page_path):
    """The launch URL of the page opens it as a notebook (code cells, not a text editor) with a kernel."""
    page = lab_page(page_path)
    assert code_cells(page).count() >= 1, f"{page_path.name} did not open as a notebook"
    assert kernel_of(lab, page_path) is not None


@pytest.mark.parametrize("chapter", sorted(LIVE_PAGES))
def test_one_page_per_chapter_runs_all_cells(lab, lab_page, chapter):
    """Run > Run All Cells (JupyterLab's ``notebook:run-all-cells``): every code cell runs, none with an error."""
    page_path = ROOT / "book" / chapter / LIVE_PAGES[chapter]
    page = lab_page(page_path)
    lab_command(page, page_path, "notebook:run-all-cells")
    cells = wait_cells_run(lab, page, page_path, None, PAGE_TIMEOUT)
    assert_no_errors(page_path, cells)
    assert cells and all(c["count"] for c in cells)


def new_figure_appears(page, cell, act, timeout: float = PANEL_TIMEOUT) -> None:
    """``act()`` and wait until the cell shows an image it did not show before."""
    images = cell.locator(".jp-OutputArea-output img")
    before = set(images.evaluate_all("imgs => imgs.map(i => i.src.slice(-200))"))
    act()
    deadline = time.time() + timeout
    while time.time() < deadline:
        now = set(images.evaluate_all("imgs => imgs.map(i => i.src.slice(-200))"))
        if now - before:
            return
        time.sleep(1)
    raise AssertionError(f"no new figure within {timeout} s")


def set_readout(page, cell, index: int, value: str) -> None:
    """Type a value into the index-th slider's readout of the cell (what a reader does to pick a value)."""
    readout = cell.locator(".widget-readout").nth(index)
    readout.click()
    page.keyboard.press("Control+A")
    page.keyboard.type(value)
    page.keyboard.press("Enter")


def run_panel_cell(lab, page, page_path: Path, marker: str):
    """Run every cell above the panel's (``notebook:run-all-above``), then the panel's; return the panel's cell."""
    states = cell_states(page, page_path)
    index = next((c["index"] for c in states if marker in c["source"]), None)
    assert index is not None, f"{page_path.name}: no code cell contains {marker!r}"
    lab_command(page, page_path, "notebook:run-all-above", index)
    above = {c["index"] for c in states if c["index"] < index}
    assert_no_errors(page_path, wait_cells_run(lab, page, page_path, above, PAGE_TIMEOUT))
    lab_command(page, page_path, "notebook:run-cell", index)
    assert_no_errors(page_path, wait_cells_run(lab, page, page_path, {index}, PANEL_TIMEOUT))
    return cell_with(page, marker)


def test_horizon_panel_responds(lab, lab_page):
    path = ROOT / "book" / "01-rl" / "1-agent-environment.md"
    panel = run_panel_cell(lab, page := lab_page(path), path, "def returns_panel")
    panel.locator(".widget-readout").nth(1).wait_for(timeout=60_000)
    new_figure_appears(page, panel, lambda: set_readout(page, panel, 1, "300"))


def test_clip_panel_responds(lab, lab_page):
    path = ROOT / "book" / "01-rl" / "3-ppo.md"
    panel = run_panel_cell(lab, page := lab_page(path), path, "PPO's clipped objective")
    panel.locator(".widget-readout").first.wait_for(timeout=60_000)
    new_figure_appears(page, panel, lambda: set_readout(page, panel, 0, "0.3"))


def test_kl_panel_responds(lab, lab_page):
    path = ROOT / "book" / "05-rlhf" / "3-kl-and-clipping.md"
    panel = run_panel_cell(lab, page := lab_page(path), path, "PPO-RLHF: the KL coefficient")
    button = panel.locator("button", has_text="Run")
    button.wait_for(timeout=60_000)
    new_figure_appears(page, panel, lambda: button.click())
