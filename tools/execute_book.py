"""Execute the book's pages in parallel into Jupyter Book's execution cache, before the Sphinx pass.

    python tools/execute_book.py [--workers 2] [--cache DIR] [--timeout 600] [--root DIR] [PAGES...]

``jupyter-book build`` (``execute_notebooks: cache``) executes the pages one after another while it reads them.
This script does that work first, ``--workers`` pages at a time, and stores each executed notebook in the same
jupyter-cache that the build then consults, so the build finds every page cached and only renders. A page is
read exactly as myst-nb reads it (its MyST notebook reader, with ``_config.yml``'s MyST extensions), so the
cache's hash of the code cells matches; a page whose code is already cached is skipped. It runs like the build:
in the page's folder, with ``RL4LLM_STATIC_BUILD=1`` (what :mod:`rl4llm.sphinxext` sets). Pages of one chapter
run in order in one worker (later pages reuse the disk cache of earlier ones); chapters run in parallel, the
longest first (a worker that frees up takes the longest chapter left, so the two cores finish close together).
A chapter's length is the sum of its pages' seconds from the last run (kept in the cache folder), else from
``tools/execute_book_timings.json`` (committed; ``--save-timings`` rewrites it), else ``UNKNOWN_SECONDS`` a page:
an empty cache (a cold build) still starts with the longest chapters.

Prints one line per page (``ok``, seconds, peak RSS of the kernel) and a summary per chapter. Exit code 1 if a
page failed (the build would fail on it too, with its traceback).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
RSS_PROBE = "import resource as _r; print('__RSS_KB__', _r.getrusage(_r.RUSAGE_SELF).ru_maxrss)"
TIMINGS = "execute_book_timings.json"
COMMITTED_TIMINGS = Path(__file__).resolve().with_name(TIMINGS)
UNKNOWN_SECONDS = 60.0  # a page without a timing: a typical page of the book


def load_timings(cache: Path, root: Path) -> dict[str, float]:
    """Seconds per page (path relative to ``root``): the committed file, updated by the cache's last run."""
    timings: dict[str, float] = {}
    for path in (COMMITTED_TIMINGS, cache / TIMINGS):
        if path.is_file():
            for page, seconds in json.loads(path.read_text()).items():
                rel = os.path.relpath(page, root) if os.path.isabs(page) else page
                timings[rel] = float(seconds)
    return timings


def schedule(chapters: dict[Path, list[str]], timings: dict[str, float], root: Path) -> list[Path]:
    """The chapters, longest first (the order in which the pool's workers take them)."""

    def seconds(chapter: Path) -> float:
        return sum(timings.get(os.path.relpath(p, root), UNKNOWN_SECONDS) for p in chapters[chapter])

    return sorted(chapters, key=lambda c: (-seconds(c), str(c)))


def book_pages(root: Path = ROOT) -> list[Path]:
    """The executable pages of the table of contents (MyST notebooks: a ``kernelspec`` in the front matter)."""
    from sphinx_external_toc.parsing import parse_toc_yaml

    toc = parse_toc_yaml(root / "_toc.yml")
    pages = []
    for docname in toc:
        matches = [root / f"{docname}.md"]
        for tree in toc[docname].subtrees:
            for glob in tree.globs():
                matches += sorted(root.glob(f"{glob}.md"))
        for path in matches:
            if path.suffix == ".md" and path.is_file() and "kernelspec:" in path.read_text()[:600]:
                pages.append(path.resolve())
    return list(dict.fromkeys(pages))


def read_page(path: Path, root: Path = ROOT):
    """The page as myst-nb reads it (same cells, sources and metadata, so the same cache hash)."""
    from myst_nb.core.read import read_myst_markdown_notebook
    from myst_parser.config.main import MdParserConfig

    config = yaml.safe_load((root / "_config.yml").read_text()) or {}
    extensions = config.get("parse", {}).get("myst_enable_extensions", [])
    return read_myst_markdown_notebook(
        path.read_text(), MdParserConfig(enable_extensions=set(extensions)), add_source_map=True, path=path
    )


def execute_chapter(pages: list[str], cache_path: str, timeout: int, root: str = str(ROOT)) -> list[dict]:
    """Execute ``pages`` in order (skipping cached ones) and cache them; one record per page."""
    import nbformat
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn
    from jupyter_cache.executors.utils import single_nb_execution

    os.environ["RL4LLM_STATIC_BUILD"] = "1"
    cache = get_cache(cache_path)
    records = []
    for page in pages:
        path = Path(page)
        nb = read_page(path, Path(root))
        try:
            cache.match_cache_notebook(nb)
            records.append({"page": page, "status": "cached"})
            continue
        except KeyError:
            pass
        probe = nbformat.reads(nbformat.writes(nb), as_version=4)  # a copy, sources as strings
        probe.cells.append(nbformat.v4.new_code_cell(RSS_PROBE))
        result = single_nb_execution(
            probe, cwd=str(path.parent), allow_errors=False, timeout=timeout, meta_override=True
        )
        if result.err is not None:
            records.append({"page": page, "status": "failed", "error": result.exc_string[-3000:]})
            continue
        rss = 0.0
        for out in probe.cells[-1].get("outputs", []):
            if "__RSS_KB__" in out.get("text", ""):
                rss = float(out["text"].split()[-1]) / 1024
        probe.cells.pop()  # cache the page's own cells only, as myst-nb would
        cache.cache_notebook_bundle(
            CacheBundleIn(probe, str(path), data={"execution_seconds": result.time}),
            check_validity=False,
            overwrite=True,
        )
        records.append({"page": page, "status": "ok", "seconds": result.time, "rss_mb": rss})
    return records


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pages", nargs="*", type=Path, help="pages to execute (default: every page of _toc.yml)")
    parser.add_argument("--workers", type=int, default=2, help="chapters executed at once (default 2)")
    parser.add_argument("--root", type=Path, default=ROOT, help="the book's folder (default: this repository)")
    parser.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="jupyter-cache folder (default: ROOT/_build/.jupyter_cache, Jupyter Book's)",
    )
    parser.add_argument("--timeout", type=int, default=600, help="per-cell timeout in seconds")
    parser.add_argument(
        "--save-timings", action="store_true", help=f"also write this run's page timings to tools/{TIMINGS}"
    )
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error(f"--workers must be >= 1, got {args.workers}")
    root = args.root.resolve()
    args.cache = (args.cache or root / "_build" / ".jupyter_cache").resolve()
    pages = [p.resolve() for p in args.pages] or book_pages(root)
    chapters: dict[Path, list[str]] = {}
    for page in pages:
        chapters.setdefault(page.parent, []).append(str(page))
    timings_file = args.cache / TIMINGS
    previous = load_timings(args.cache, root)
    order = schedule(chapters, previous, root)
    args.cache.mkdir(parents=True, exist_ok=True)
    from jupyter_cache import get_cache

    get_cache(str(args.cache)).db  # create the database once (the property creates it), before the workers open it
    t0 = time.perf_counter()
    failed = 0
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        futures = {
            pool.submit(execute_chapter, chapters[c], str(args.cache), args.timeout, str(root)): c for c in order
        }
        for future in as_completed(futures):
            chapter = futures[future]
            total, peak = 0.0, 0.0
            for r in future.result():
                name = os.path.relpath(r["page"], root)
                if r["status"] == "ok":
                    total, peak = total + r["seconds"], max(peak, r["rss_mb"])
                    previous[name] = round(r["seconds"], 1)
                    print(f"{name}: ok, {r['seconds']:.1f} s, peak RSS {r['rss_mb']:.0f} MB", flush=True)
                elif r["status"] == "cached":
                    print(f"{name}: cached", flush=True)
                else:
                    failed += 1
                    print(f"{name}: FAILED\n{r['error']}", flush=True)
            print(f"== {os.path.relpath(chapter, root)}: executed in {total:.1f} s, peak RSS {peak:.0f} MB", flush=True)
    timings_file.write_text(json.dumps(previous, indent=1, sort_keys=True) + "\n")
    if args.save_timings:
        COMMITTED_TIMINGS.write_text(json.dumps(previous, indent=1, sort_keys=True) + "\n")
    print(f"executed {len(pages)} pages with {args.workers} workers in {time.perf_counter() - t0:.1f} s", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
