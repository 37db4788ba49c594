#!/usr/bin/env python
"""What CI checks about the course assignments (run by ``.ci/run``; exit status 1 on any failure).

1. The committed student copies and READMEs under ``assignments/`` are what ``rl4llm make-assignments`` generates
   from the package now (not stale), and no student copy contains a line of a solution.
2. The rubric is sound: every graded function of an assignment is used by at least one of its items, and every
   assignment has a behavioural item marked ``slow``.
3. The grader run on the package's reference implementation (``--impl=reference``) completes and scores 100%.
4. The grader run on the untouched student copies (``--impl=student``) completes, scores 0, and reports every
   item as "not attempted".

Usage: ``.venv/bin/python tools/check_assignments.py [--skip-grading]``. It prints the CPU and wall time of
both grader runs.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _fail(problems: list[str], message: str) -> None:
    problems.append(message)
    print(f"FAIL: {message}")


def check_generated(problems: list[str]) -> None:
    """Step 1: fresh copies, no leaked solution line."""
    from rl4llm.assignments.generate import _unassigned, check

    found = check(ROOT)
    for p in found:
        _fail(problems, p)
    if found:
        print("      run `.venv/bin/rl4llm make-assignments` and commit assignments/")
    else:
        print("ok: student copies and READMEs are up to date, and no solution line leaked")
    for key in _unassigned():
        print(f"note: {key} has a graded region but no assignment covers it yet")


def check_rubric(problems: list[str]) -> int:
    """Step 2: every graded function is exercised; one slow item per assignment. Returns the number of items."""
    from rl4llm.assignments.generate import read_rubric
    from rl4llm.assignments.manifest import ASSIGNMENTS

    total = 0
    for a in ASSIGNMENTS:
        test_path = ROOT / "assignments" / a.slug / a.test_file
        rubric = read_rubric(a, test_path)
        total += len(rubric)
        tree = ast.parse(test_path.read_text(encoding="utf-8"))
        used = {
            n.attr
            for n in ast.walk(tree)
            if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "impl"
        }
        used |= {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
        for name in a.names:
            if name not in used:
                _fail(problems, f"{a.slug}: no grader item uses impl.{name}")
        if not any(r.slow for r in rubric):
            _fail(problems, f"{a.slug}: no behavioural item marked slow")
        print(f"ok: {a.slug}: {len(rubric)} items, {sum(r.points for r in rubric):g} points")
    return total


def run_grader(impl: str, json_path: Path) -> tuple[int, float, float, str]:
    """Run the grader on every assignment; return (exit code, CPU seconds, wall seconds, output tail)."""
    env = dict(os.environ, RL4LLM_QUIET="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    env.pop("RL4LLM_IMPL", None)
    env.pop("RL4LLM_GRADE_JSON", None)
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "assignments",
        f"--impl={impl}",
        f"--grade-json={json_path}",
        "-q",
        "-p",
        "no:cacheprovider",
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return proc.returncode, cpu, wall, (proc.stdout + proc.stderr)[-4000:]


def check_grading(problems: list[str], n_items: int) -> None:
    """Steps 3 and 4: reference = 100%, untouched copies = 0 points, both runs complete."""
    with tempfile.TemporaryDirectory() as tmp:
        for impl, want_code in (("reference", 0), ("student", 1)):
            path = Path(tmp) / f"{impl}.json"
            code, cpu, wall, tail = run_grader(impl, path)
            print(f"grader --impl={impl}: exit {code}, {cpu:.1f} s CPU, {wall:.1f} s wall")
            if code != want_code or not path.is_file():
                _fail(
                    problems,
                    f"the grader on --impl={impl} exited with {code} (expected {want_code}) "
                    f"{'without' if not path.is_file() else 'with'} a JSON report; output:\n{tail}",
                )
                continue
            report = json.loads(path.read_text(encoding="utf-8"))
            tests = report.get("tests", [])
            if len(tests) != n_items:
                _fail(problems, f"--impl={impl}: the report holds {len(tests)} items, the rubric {n_items}")
            score, top = report.get("score"), report.get("max_score")
            if impl == "reference":
                bad = [t["name"] + ": " + t["output"] for t in tests if t["score"] != t["max_score"]]
                if bad or score != top:
                    _fail(problems, f"the reference scores {score}/{top}, not 100%:\n  " + "\n  ".join(bad))
                else:
                    print(f"ok: the reference scores {score:g}/{top:g}")
            else:
                scored = [t["name"] for t in tests if t["score"] != 0]
                loud = [t["name"] + ": " + t["output"] for t in tests if not t["output"].startswith("not attempted:")]
                if scored or score != 0:
                    _fail(problems, "untouched student copies score points on: " + ", ".join(scored))
                elif loud:
                    _fail(
                        problems,
                        "untouched student copies should fail every item as 'not attempted':\n  " + "\n  ".join(loud),
                    )
                else:
                    print(f"ok: untouched student copies score 0/{top:g}, every item 'not attempted'")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-grading", action="store_true", help="only the static checks (steps 1 and 2)")
    args = parser.parse_args()
    problems: list[str] = []
    check_generated(problems)
    n_items = check_rubric(problems)
    if not args.skip_grading:
        check_grading(problems, n_items)
    if problems:
        print(f"\n{len(problems)} problem(s) with the assignments")
        return 1
    print("\nassignments: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
