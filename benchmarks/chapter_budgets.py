"""Execute every chapter of the book page by page and print its time and peak memory against the budgets.

    .venv/bin/python benchmarks/chapter_budgets.py [book/05-rlhf ...]

Budgets (DESIGN.md): each chapter executes in <= 180 s on 2 CPU cores with <= 1.5 GB peak RSS. A chapter's time
is the sum of its pages (each runs in a fresh kernel, as in the book build); its peak RSS is the largest page's.
Prints one line per page and per chapter; exits 1 if a page fails (over-budget chapters are flagged, not failed:
timings depend on the machine).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

from execute_page import execute  # noqa: E402

BUDGET_S = 180.0
BUDGET_MB = 1536.0


def chapter_pages(chapter: Path) -> list[Path]:
    pages = [chapter / "index.md"] if (chapter / "index.md").exists() else []
    return pages + sorted(p for p in chapter.glob("[0-9]*.md"))


def main(argv: list[str]) -> int:
    os.environ.setdefault("RL4LLM_QUIET", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    chapters = [Path(a).resolve() for a in argv] or sorted(
        p for p in (ROOT / "book").glob("[0-9][0-9]-*") if p.is_dir()
    )
    failed = False
    print(f"{'page':<48} {'seconds':>8} {'peak MB':>8}")
    for chapter in chapters:
        total, peak = 0.0, 0.0
        for page in chapter_pages(chapter):
            if "{code-cell}" not in page.read_text():
                continue
            try:
                seconds, rss = execute(page)
            except Exception as e:  # report, go on
                print(f"{str(page.relative_to(ROOT)):<48} FAILED {type(e).__name__}: {str(e)[-500:]}")
                failed = True
                continue
            total += seconds
            peak = max(peak, rss)
            print(f"{str(page.relative_to(ROOT)):<48} {seconds:8.1f} {rss:8.0f}", flush=True)
        flag = "" if total <= BUDGET_S and peak <= BUDGET_MB else "  OVER BUDGET"
        print(f"{'= ' + chapter.name:<48} {total:8.1f} {peak:8.0f}{flag}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
