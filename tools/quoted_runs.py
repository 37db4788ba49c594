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
An entry that also has ``"curves"`` (and ``"artifacts": {"name": ...}``) is recorded whole: every curve row and
the listed artifacts as lists, so that a page can show the run's figure without running it
(``rl4llm.experiments.recorded_result`` / ``recorded_sweep``, e.g. extra points of a static panel); the check
compares them too. ``--only NAME ...`` re-runs just those entries of the file.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path


def _plain(value: object) -> object:
    """A JSON-ready copy of an artifact (tensors and arrays become lists)."""
    import numpy as np

    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value).tolist() if isinstance(value, (np.ndarray, list, tuple)) else value


def record(entry: dict) -> dict:
    """Run one entry's experiment; the parts the entry records, as recorded now.

    Always ``metrics`` (the keys the entry lists); ``curves`` (every logged row) when the entry has ``curves``;
    ``artifacts`` (the names listed) when it has ``artifacts``. Whole runs (with curves) are what a page shows
    through ``rl4llm.experiments.recorded_result``.
    """
    os.environ.setdefault("RL4LLM_QUIET", "1")
    from rl4llm.experiments import run_experiment

    result = run_experiment(entry["experiment"], **entry.get("overrides", {}))
    out = {"metrics": {key: result.metrics[key] for key in entry["metrics"]}}
    if "curves" in entry:
        out["curves"] = [{k: _plain(v) for k, v in row.items()} for row in result.curves]
    if "artifacts" in entry:
        out["artifacts"] = {key: _plain(result.artifacts[key]) for key in entry["artifacts"]}
    return out


def entry_differences(entry: dict, now: dict, rel: float = 1e-6) -> list[str]:
    """What changed between a recorded entry and :func:`record`'s answer: metrics, curves, artifacts."""
    out = differences(entry["metrics"], now["metrics"], rel)
    if "curves" in entry:
        if len(entry["curves"]) != len(now["curves"]):
            out.append(f"curves: recorded {len(entry['curves'])} rows, now {len(now['curves'])}")
        else:
            for i, (old, new) in enumerate(zip(entry["curves"], now["curves"])):
                out += [f"curves[{i}].{d}" for d in differences(old, new, rel)]
                out += [f"curves[{i}].{k}: new column" for k in new if k not in old]
    for key, old in entry.get("artifacts", {}).items():
        new = now["artifacts"][key]
        flat_old, flat_new = _flatten(old), _flatten(new)
        if len(flat_old) != len(flat_new) or differences(dict(enumerate(flat_old)), dict(enumerate(flat_new)), rel):
            out.append(f"artifacts.{key}: changed")
    return out


def _flatten(value: object) -> list:
    if isinstance(value, list):
        return [x for item in value for x in _flatten(item)]
    return [value]


def differences(recorded: dict, now: dict, rel: float = 1e-6) -> list[str]:
    """Keys whose values differ (numbers beyond a relative tolerance ``rel``, anything else when unequal)."""
    out = []
    for key, old in recorded.items():
        new = now.get(key)
        if isinstance(old, (int, float)) and isinstance(new, (int, float)):
            if math.isnan(old) and math.isnan(new):
                continue
            if not math.isclose(old, new, rel_tol=rel, abs_tol=1e-9):
                out.append(f"{key}: recorded {old!r}, now {new!r}")
        elif old != new:
            out.append(f"{key}: recorded {old!r}, now {new!r}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("file", type=Path, help="a <page>.runs.json file")
    parser.add_argument("--check", action="store_true", help="compare instead of rewriting")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="only these entries of the file")
    args = parser.parse_args(argv)
    data = json.loads(args.file.read_text())
    failed = 0
    for name, entry in data["runs"].items():
        if args.only and name not in args.only:
            continue
        now = record(entry)
        if args.check:
            diff = entry_differences(entry, now)
            failed += bool(diff)
            print(f"{name}: " + ("same" if not diff else "DIFFERS\n  " + "\n  ".join(diff[:20])), flush=True)
        else:
            entry["metrics"] = {k: float(v) if isinstance(v, (int, float)) else v for k, v in now["metrics"].items()}
            entry.update({part: now[part] for part in ("curves", "artifacts") if part in now})
            print(f"{name}: recorded {entry['metrics']}", flush=True)
    if not args.check:
        args.file.write_text(json.dumps(data, indent=2) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
