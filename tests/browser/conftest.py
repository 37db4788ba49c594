"""Browser tests: Playwright driving the system's Chromium (never a downloaded browser).

Where they run: ``make test-browser`` (installs ``requirements-browser.txt``, runs ``pytest tests/browser``). Under
plain ``make test`` every test here is skipped, with the reason, when Playwright is not installed or no Chromium
is found; the live JupyterLab tests run only when ``RL4LLM_BROWSER_LIVE=1`` (they start a JupyterLab, minutes).

Environment:

* ``RL4LLM_CHROMIUM``: the Chromium executable (default: ``chromium`` on the PATH, else ``/usr/bin/chromium``).
* ``RL4LLM_BROWSER_SITE``: a built book (e.g. ``_build/html``) to test instead of the small test book.
* ``RL4LLM_BROWSER_LIVE=1``: also run the live tests (JupyterLab from the local Binder environment).
* ``RL4LLM_BROWSER_ARTIFACTS``: where screenshots go (default ``_build/browser-artifacts``).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def chromium_path() -> str | None:
    """The Chromium to drive, or None."""
    candidates = [
        os.environ.get("RL4LLM_CHROMIUM"),
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
        "/usr/bin/chromium",
    ]
    for c in candidates:
        if c and Path(c).is_file() and os.access(c, os.X_OK):
            return c
    return None


def skip_reason() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed (make test-browser installs requirements-browser.txt)"
    if chromium_path() is None:
        return "no Chromium found (apt-get install chromium, or set RL4LLM_CHROMIUM)"
    return None


def pytest_collection_modifyitems(config, items):
    reason = skip_reason()
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.browser)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Folder of the screenshots kept for authors."""
    path = Path(os.environ.get("RL4LLM_BROWSER_ARTIFACTS", ROOT / "_build" / "browser-artifacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the session (the system's, by path)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=chromium_path(),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        yield b
        b.close()
