"""Run experiments at a fixed seed and record their metrics, or compare two such records.

A refactor must not change results: for every experiment whose algorithm is unchanged, the same seed gives the
same ``metrics.json``. Record before and after the change, then compare:

    python tools/experiment_fingerprints.py record /tmp/before            # every experiment, seed 0
    python tools/experiment_fingerprints.py record /tmp/after rlhf dpo    # only these
    python tools/experiment_fingerprints.py compare /tmp/before /tmp/after

``record`` writes ``DIR/NAME.json`` (the metrics without timings: keys ending in ``wall_s``, ``_s`` or
``seconds``). ``compare`` prints one line per experiment (``same`` or the keys that differ) and exits 1 if any
differs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

TIMING_SUFFIXES = ("wall_s", "_s", "seconds", "_sec")


def _strip_timings(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if not any(k.endswith(s) for s in TIMING_SUFFIXES)}


def record(out: Path, names: list[str], seed: int) -> int:
    os.environ.setdefault("RL4LLM_QUIET", "1")
    from rl4llm.experiments import _jsonable, list_experiments, run_experiment

    out.mkdir(parents=True, exist_ok=True)
    for name in names or list_experiments():
        t0 = time.perf_counter()
        result = run_experiment(name, seed=seed)
        metrics = _strip_timings(_jsonable(result.metrics))
        (out / f"{name}.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
        print(f"{name}: recorded ({time.perf_counter() - t0:.0f} s)", flush=True)
    return 0


def compare(before: Path, after: Path) -> int:
    differ = 0
    for path in sorted(before.glob("*.json")):
        other = after / path.name
        if not other.exists():
            print(f"{path.stem}: missing in {after}")
            differ += 1
            continue
        a, b = json.loads(path.read_text()), json.loads(other.read_text())
        keys = sorted(k for k in set(a) | set(b) if a.get(k, "<absent>") != b.get(k, "<absent>"))
        if keys:
            differ += 1
            print(f"{path.stem}: DIFFERS in {', '.join(keys)}")
        else:
            print(f"{path.stem}: same ({len(a)} metrics)")
    return 1 if differ else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    rec = sub.add_parser("record", help="run experiments and write DIR/NAME.json")
    rec.add_argument("out", type=Path)
    rec.add_argument("names", nargs="*", help="experiment names (default: all)")
    rec.add_argument("--seed", type=int, default=0)
    cmp_ = sub.add_parser("compare", help="compare two record folders")
    cmp_.add_argument("before", type=Path)
    cmp_.add_argument("after", type=Path)
    args = parser.parse_args()
    if args.cmd == "record":
        return record(args.out, args.names, args.seed)
    return compare(args.before, args.after)


if __name__ == "__main__":
    sys.exit(main())
