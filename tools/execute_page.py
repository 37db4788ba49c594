"""Execute one book page (MyST Markdown notebook or .ipynb) as the book build would; report time and peak RSS.

    python tools/execute_page.py book/01-rl/1-mdp.md [--timeout 300] [--cells N]

Runs the page in a fresh kernel from the page's folder, like Jupyter Book does, and prints
``<page>: ok, 41.2 s, peak RSS 612 MB`` (RSS of the kernel process, from its own getrusage), or the
failing cell's error; ``--cells N`` adds the N slowest cells (seconds, first line). Exit code 1 on any error. Used by benchmarks/chapter_budgets.py and by authors.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import jupytext
import nbformat
from nbclient import NotebookClient

RSS_PROBE = "import resource as _r, sys as _s; print('__RSS_KB__', _r.getrusage(_r.RUSAGE_SELF).ru_maxrss)"


def cell_seconds(nb) -> list[tuple[float, str]]:
    """(seconds, first line) of every executed code cell, from nbclient's timing metadata."""
    from datetime import datetime

    rows = []
    for cell in nb.cells[:-1]:
        timing = cell.get("metadata", {}).get("execution", {})
        start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
        if cell.cell_type == "code" and start and end:
            seconds = (
                datetime.fromisoformat(end.replace("Z", "+00:00"))
                - datetime.fromisoformat(start.replace("Z", "+00:00"))
            ).total_seconds()
            first = next(
                (
                    line
                    for line in cell.source.splitlines()
                    if line and not line.startswith(("#", "---", "mystnb", "  "))
                ),
                "",
            )
            rows.append((seconds, first[:70]))
    return rows


def execute(path: Path, timeout: int = 600, cells: int = 0) -> tuple[float, float]:
    """Execute the page; return (seconds, peak RSS in MB of the kernel). ``cells``: print the slowest cells."""
    nb = jupytext.read(path)
    nb.cells.append(nbformat.v4.new_code_cell(RSS_PROBE))
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    t0 = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - t0
    rss_kb = 0.0
    for out in nb.cells[-1].get("outputs", []):
        text = out.get("text", "")
        if "__RSS_KB__" in text:
            rss_kb = float(text.split()[-1])
    for sec, first in sorted(cell_seconds(nb), reverse=True)[:cells]:
        print(f"    {sec:7.1f} s  {first}")
    return seconds, rss_kb / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pages", nargs="+", type=Path)
    parser.add_argument("--timeout", type=int, default=600, help="per-cell timeout in seconds")
    parser.add_argument("--cells", type=int, default=0, help="also print the N slowest cells")
    args = parser.parse_args()
    failed = 0
    for page in args.pages:
        try:
            seconds, rss = execute(page, args.timeout, args.cells)
            print(f"{page}: ok, {seconds:.1f} s, peak RSS {rss:.0f} MB", flush=True)
        except Exception as e:  # report and go on with the next page
            failed += 1
            print(f"{page}: FAILED: {type(e).__name__}: {str(e)[-3000:]}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
