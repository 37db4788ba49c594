"""The book's structure: every TOC entry exists, pages are executable MyST notebooks, no unfinished pages."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _toc_files() -> list[Path]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc["parts"]:
        for ch in part["chapters"]:
            files.append(ch["file"])
            for sec in ch.get("sections", []):
                if "file" in sec:
                    files.append(sec["file"])
                else:
                    files.extend(str(p.with_suffix("")) for p in sorted(ROOT.glob(sec["glob"] + ".md")))
    return [ROOT / (f + ".md") for f in files]


def test_every_toc_entry_exists():
    for page in _toc_files():
        assert page.exists(), f"{page} is in _toc.yml but missing"


def test_config_fails_on_notebook_errors():
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert cfg["execute"]["raise_on_error"] is True
    assert cfg["execute"]["execute_notebooks"] == "cache"
    assert cfg["execute"]["timeout"] > 0
    assert "book/references.bib" in cfg["bibtex_bibfiles"]
    assert cfg["repository"]["branch"] == "main"


def test_pins_keep_cpu_torch_and_jupyter_book_1():
    pins = dict(
        line.split("==", 1)
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    assert pins["torch"] == "2.13.0"
    assert pins["jupyter-book"].startswith("1.")


@pytest.mark.parametrize("page", [p for p in _toc_files() if p.exists()], ids=lambda p: str(p.relative_to(ROOT)))
def test_pages_are_finished_and_well_formed(page):
    text = page.read_text()
    assert not re.search(r"\bTODO\b|coming soon|to be written|placeholder", text, re.I), page
    assert re.search(r"^# ", text, re.M), f"{page} has no title"
    if "{code-cell}" in text:
        assert text.startswith("---\njupytext:"), f"{page} has code cells but no jupytext header"
        assert "kernelspec:" in text.split("---", 2)[1]


def test_citations_resolve():
    bib = (ROOT / "book" / "references.bib").read_text()
    keys = set(re.findall(r"@\w+\{([^,]+),", bib))
    for page in ROOT.glob("book/**/*.md"):
        for group in re.findall(r"\{cite(?::\w+)?\}`([^`]+)`", page.read_text()):
            for key in group.split(","):
                assert key.strip() in keys, f"{page}: unknown citation {key}"


def _labels(text: str) -> list[str]:
    """Cross-reference targets a page defines: ``(label)=`` lines and ``name:`` of figures and directives."""
    found = re.findall(r"^\(([\w-]+)\)=\s*$", text, re.M)
    found += re.findall(r"^\s*:?name:\s*([\w-]+)\s*$", text, re.M)
    return found


def test_labels_defined_once_across_the_book():
    # Sphinx's labels are global: a second page defining the same figure name is a warning, and -W fails the build.
    seen: dict[str, Path] = {}
    for page in sorted(ROOT.glob("book/**/*.md")):
        text = page.read_text()
        body = text.split("---", 2)[2] if text.startswith("---\n") else text  # skip the jupytext header
        for label in _labels(body):
            assert label not in seen, f"label {label!r} in {page.relative_to(ROOT)} is also in {seen[label]}"
            seen[label] = page.relative_to(ROOT)
    assert seen, "no labels found: the pattern no longer matches the pages"
