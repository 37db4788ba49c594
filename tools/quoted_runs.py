"""Record the metrics that a book page quotes from runs it does not execute itself (too slow for its budget).

Such a page keeps the numbers in a file beside it, ``<page>.runs.json``::

    {"runs": {"logit": {"experiment": "adversarial-irl",
                        "overrides": {"reward_form": "logit", "control": false},
                        "metrics": {"gail_return_seed0": 37.0, ...}}}}

The page reads the file and glues the numbers (``myst_nb.glue``), so its prose never types them by hand;
``tests/test_book_quoted_runs.py`` (slow) re-runs every entry and fails if a metric changed. After a change to
the code an entry depends on, re-record the file and re-read the page's prose:

    python tools/quoted_runs.py book/04-irl/2-adversarial-irl.runs.json            # re-run, rewrite the metrics
    python tools/quoted_runs.py book/04-irl/2-adversarial-irl.runs.json --check    # re-run, compare, exit 1 if not

Only the metric keys already listed under ``metrics`` are recorded (add a key with any value to record it).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path


def rerun(entry: dict) -> dict:
    """Run one entry's experiment and return the metrics it lists, as recorded now."""
    os.environ.setdefault("RL4LLM_QUIET", "1")
    from rl4llm.experiments import run_experiment

    result = run_experiment(entry["experiment"], **entry.get("overrides", {}))
    return {key: result.metrics[key] for key in entry["metrics"]}


def differences(recorded: dict, now: dict, rel: float = 1e-6) -> list[str]:
    """Keys whose values differ (numbers beyond a relative tolerance ``rel``, anything else when unequal)."""
    out = []
    for key, old in recorded.items():
        new = now.get(key)
        if isinstance(old, (int, float)) and isinstance(new, (int, float)):
            if not math.isclose(old, new, rel_tol=rel, abs_tol=1e-9):
                out.append(f"{key}: recorded {old!r}, now {new!r}")
        elif old != new:
            out.append(f"{key}: recorded {old!r}, now {new!r}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("file", type=Path, help="a <page>.runs.json file")
    parser.add_argument("--check", action="store_true", help="compare instead of rewriting")
    args = parser.parse_args(argv)
    data = json.loads(args.file.read_text())
    failed = 0
    for name, entry in data["runs"].items():
        now = rerun(entry)
        if args.check:
            diff = differences(entry["metrics"], now)
            failed += bool(diff)
            print(f"{name}: " + ("same" if not diff else "DIFFERS\n  " + "\n  ".join(diff)), flush=True)
        else:
            entry["metrics"] = {k: float(v) if isinstance(v, (int, float)) else v for k, v in now.items()}
            print(f"{name}: recorded {entry['metrics']}", flush=True)
    if not args.check:
        args.file.write_text(json.dumps(data, indent=2) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
