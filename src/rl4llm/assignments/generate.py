"""``rl4llm make-assignments``: write the student copies and READMEs of the assignments from the reference code.

For every assignment of :data:`~rl4llm.assignments.manifest.ASSIGNMENTS` it writes

* ``assignments/<slug>/student.py``: the graded functions with their graded regions replaced by
  ``raise NotImplementedError`` (:func:`~rl4llm.assignments.source.student_module_source`);
* ``assignments/<slug>/README.md``: what to implement, how to run the grader, and the rubric, read from the
  grader's own items (``assignments/<slug>/test_<slug>.py``: docstring, ``points``, ``tier``, ``slow``);
* ``assignments/README.md``: the table of all assignments.

``--check`` writes nothing: it exits with status 1 if a written file would change (the committed copies are
stale) or if a student copy contains a line of a solution. ``--export DIR --assignment SLUG`` writes a standalone
repository for one assignment (a GitHub Classroom template with one autograding step per rubric item, and a
Gradescope autograder), see ``book/teachers.md``.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from rl4llm.assignments.manifest import ASSIGNMENTS, Assignment, get_assignment
from rl4llm.assignments.source import describe, find_graded, find_leaks, student_module_source

__all__ = [
    "RubricItem",
    "read_rubric",
    "render_files",
    "assignments_summary",
    "assignments_table",
    "export",
    "check",
    "add_arguments",
    "main",
    "default_root",
]


@dataclass(frozen=True)
class RubricItem:
    """One graded item as written in the grader file."""

    number: str
    test: str
    name: str
    points: float
    tier: str
    slow: bool


def _mark(decorator: ast.expr) -> tuple[str, list] | None:
    """``("points", [2])`` for ``@pytest.mark.points(2)``, ``("slow", [])`` for ``@pytest.mark.slow``."""
    node = decorator.func if isinstance(decorator, ast.Call) else decorator
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) and node.value.attr == "mark":
        args = [ast.literal_eval(a) for a in decorator.args] if isinstance(decorator, ast.Call) else []
        return node.attr, args
    return None


def read_rubric(assignment: Assignment, test_path: Path) -> list[RubricItem]:
    """The rubric items of a grader file, in file order (the order pytest runs and numbers them)."""
    if not test_path.is_file():
        raise FileNotFoundError(f"assignment {assignment.slug} has no grader file {test_path}")
    tree = ast.parse(test_path.read_text(encoding="utf-8"), filename=str(test_path))
    items = []
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef) or not node.name.startswith("test"):
            continue
        marks = dict(m for m in (_mark(d) for d in node.decorator_list) if m)
        if "points" not in marks:
            raise ValueError(f"{test_path}: {node.name} has no @pytest.mark.points(n)")
        doc = (ast.get_docstring(node) or node.name).strip().splitlines()[0]
        slow = "slow" in marks
        tier = marks["tier"][0] if marks.get("tier") else ("behaviour" if slow else "")
        items.append(
            RubricItem(f"{assignment.number}.{len(items) + 1}", node.name, doc, float(marks["points"][0]), tier, slow)
        )
    return items


def _pts(x: float) -> str:
    return f"{x:g}"


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("|", "\\|")


def _book_link(chapter: str, depth: int) -> str:
    return "../" * depth + chapter + ".md"


def _readme(assignment: Assignment, rubric: list[RubricItem]) -> str:
    total = sum(r.points for r in rubric)
    slow = sum(r.points for r in rubric if r.slow)
    rows = []
    for key in assignment.targets:
        module, _, name = key.partition(":")
        obj = getattr(importlib.import_module(module), name)
        rows.append(f"| `{name}` | {_cell(describe(obj))} | `{module}` |")
    rubric_rows = [f"| {r.number} | {_cell(r.name)} | {r.tier or '-'} | {_pts(r.points)} |" for r in rubric]
    run = f"assignments/{assignment.slug}"
    return "\n".join(
        [
            f"# Assignment {assignment.number}: {assignment.title}",
            "",
            assignment.summary,
            "",
            f"Background: [the book's chapter]({_book_link(assignment.chapter, 2)}). Teachers: see "
            f"[the teachers' page]({_book_link('book/teachers', 2)}).",
            "",
            "## What to implement",
            "",
            "Edit `student.py` in this folder. Each function below ends in `raise NotImplementedError`: replace that "
            "line with your code. The docstrings give the equations; the argument checks are already there.",
            "",
            "| function | what it computes | in the package |",
            "|---|---|---|",
            *rows,
            "",
            "## Run the grader",
            "",
            "From the root of the repository:",
            "",
            "```bash",
            f"pytest {run}                        # every item, then a score table",
            f'pytest {run} -m "not slow"          # quick feedback: skip the behavioural items',
            f"pytest {run} --grade-json=grade.json  # also write a Gradescope-style JSON report",
            f"pytest {run} --impl=reference       # the package's own solution (scores 100%)",
            "```",
            "",
            "A failed item says why in one line: `not attempted` (the function still raises `NotImplementedError`), "
            "`wrong` (with the likely mistake when the answer matches a typical one), `error` (your code raised; "
            "only your own lines are shown), or `timeout`. A broken function costs only the items that use it.",
            "",
            f"## Rubric: {len(rubric)} items, {_pts(total)} points",
            "",
            f"The items marked `slow` (behavioural: they train something small with your functions and check that "
            f'it learns) are worth {_pts(slow)} points; `-m "not slow"` skips them.',
            "",
            "| # | item | tier | points |",
            "|---|---|---|---|",
            *rubric_rows,
            "",
            "_Generated by `rl4llm make-assignments`; edit the package or the grader, not this file._",
            "",
        ]
    )


def _overview(rubrics: dict[str, list[RubricItem]]) -> str:
    rows = []
    total_items = total_points = 0.0
    for a in ASSIGNMENTS:
        rubric = rubrics[a.slug]
        pts = sum(r.points for r in rubric)
        total_items += len(rubric)
        total_points += pts
        functions = ", ".join(f"`{n}`" for n in a.names)
        rows.append(
            f"| [{a.number}]({a.slug}/README.md) | {a.title} | [chapter]({_book_link(a.chapter, 1)}) | "
            f"{functions} | {len(rubric)} | {_pts(pts)} |"
        )
    return "\n".join(
        [
            "# Assignments",
            "",
            "Graded exercises built from the package's own reference code. Each folder holds `student.py` (the "
            "functions to write, bodies removed), the grader `test_*.py` (one test per rubric item, with points) and a "
            "README. Teachers: [the teachers' page](../book/teachers.md) explains GitHub Classroom, Gradescope and "
            "local use.",
            "",
            "| # | assignment | book | functions | items | points |",
            "|---|---|---|---|---|---|",
            *rows,
            f"| | **all** | | | **{int(total_items)}** | **{_pts(total_points)}** |",
            "",
            "```bash",
            "pytest assignments                          # grade every student.py, then a score table",
            'pytest assignments/01-returns-gae -m "not slow"   # one assignment, quick items only',
            "pytest assignments --impl=reference         # the reference solution: 100%",
            "pytest assignments --impl=path/to/file.py   # grade any file (or a folder of <slug>/student.py)",
            "pytest assignments --grade-json=grade.json  # Gradescope-style JSON report",
            "rl4llm make-assignments                     # regenerate student copies and READMEs",
            "rl4llm make-assignments --check             # fail if they are stale or leak a solution",
            "```",
            "",
            "_Generated by `rl4llm make-assignments`._",
            "",
        ]
    )


def assignments_summary(root: Path | None = None) -> list[dict[str, object]]:
    """One row per assignment: number, title, chapter, the functions to write, items, points, slow points.

    The teachers' page of the book displays it, so that the page always lists the assignments as they are.
    """
    root = (root or default_root()).resolve()
    rows: list[dict[str, object]] = []
    for a in ASSIGNMENTS:
        rubric = read_rubric(a, root / "assignments" / a.slug / a.test_file)
        rows.append(
            {
                "#": a.number,
                "assignment": a.title,
                "chapter": int(a.chapter.split("/")[1].split("-", 1)[0]),
                "students write": ", ".join(a.names),
                "items": len(rubric),
                "points": sum(r.points for r in rubric),
                "of which slow": sum(r.points for r in rubric if r.slow),
            }
        )
    return rows


def assignments_table(root: Path | None = None) -> str:
    """:func:`assignments_summary` as a Markdown table, with a total row."""
    rows = assignments_summary(root)
    out = [
        "| # | assignment | chapter | students write | items | points | of which `slow` |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        functions = ", ".join(f"`{n}`" for n in str(r["students write"]).split(", "))
        out.append(
            f"| {r['#']} | {r['assignment']} | {r['chapter']} | {functions} | {r['items']} | "
            f"{_pts(float(r['points']))} | {_pts(float(r['of which slow']))} |"
        )
    out.append(
        f"| | **all** | | | **{sum(int(r['items']) for r in rows)}** | "
        f"**{_pts(sum(float(r['points']) for r in rows))}** | |"
    )
    return "\n".join(out)


def default_root() -> Path:
    """The repository root: the folder above ``src/rl4llm`` holding ``pyproject.toml``, else the current folder."""
    package_dir = Path(importlib.import_module("rl4llm").__file__).resolve().parent
    candidate = package_dir.parent.parent
    if (candidate / "pyproject.toml").is_file() and (candidate / "assignments").is_dir():
        return candidate
    return Path.cwd()


def render_files(root: Path, only: list[Assignment] | None = None) -> dict[Path, str]:
    """Every generated file under ``root/assignments`` and its text (nothing is written)."""
    out: dict[Path, str] = {}
    rubrics = {}
    base = root / "assignments"
    selected = only or list(ASSIGNMENTS)
    for a in selected:
        rubrics[a.slug] = read_rubric(a, base / a.slug / a.test_file)
    for a in selected:
        out[base / a.slug / "student.py"] = student_module_source(a)
        out[base / a.slug / "README.md"] = _readme(a, rubrics[a.slug])
    if only is None:
        out[base / "README.md"] = _overview(rubrics)
    return out


def _unassigned() -> list[str]:
    covered = {k for a in ASSIGNMENTS for k in a.targets}
    return [t.key for t in find_graded() if t.key not in covered]


def check(root: Path) -> list[str]:
    """Problems with the committed files under ``root/assignments`` (stale, missing, leaking); empty if none."""
    problems = []
    for path, text in render_files(root).items():
        rel = path.relative_to(root)
        if not path.is_file():
            problems.append(f"{rel}: missing")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"{rel}: stale (differs from what the package generates)")
    for a in ASSIGNMENTS:
        path = root / "assignments" / a.slug / "student.py"
        if path.is_file():
            leaks = find_leaks(a, path.read_text(encoding="utf-8"))
            for line in leaks:
                problems.append(f"{path.relative_to(root)}: contains a solution line: {line}")
    return problems


# ------------------------------------------------------------------------------------------------- export


def _workflow(assignment: Assignment, rubric: list[RubricItem]) -> str:
    lines = [
        "# GitHub Classroom autograding: one step per rubric item, worth the item's points.",
        "# Generated by `rl4llm make-assignments --export`.",
        "name: Autograding Tests",
        "'on':",
        "- push",
        "- workflow_dispatch",
        "- repository_dispatch",
        "permissions:",
        "  checks: write",
        "  actions: read",
        "  contents: read",
        "jobs:",
        "  run-autograding-tests:",
        "    runs-on: ubuntu-latest",
        "    if: github.actor != 'github-classroom[bot]'",
        "    steps:",
        "    - name: Checkout code",
        "      uses: actions/checkout@v4",
        "    - name: Set up Python",
        "      uses: actions/setup-python@v5",
        "      with:",
        "        python-version: '3.11'",
        "    - name: Install the package",
        "      run: pip install -r requirements.txt",
    ]
    ids = []
    for r in rubric:
        step = "item-" + r.number.replace(".", "-")
        ids.append(step)
        minutes = 10 if r.slow else 3
        title = f"{r.number} {r.name}".replace("'", "''")
        command = f"python -m pytest -q -p no:cacheprovider {assignment.test_file}::{r.test}"
        lines += [
            f"    - name: '{title}'",
            f"      id: {step}",
            "      uses: classroom-resources/autograding-command-grader@v1",
            "      with:",
            f"        test-name: '{title}'",
            "        setup-command: ''",
            f"        command: {command}",
            f"        timeout: {minutes}",
            f"        max-score: {int(r.points) if float(r.points).is_integer() else r.points}",
        ]
    lines += [
        "    - name: Autograding Reporter",
        "      uses: classroom-resources/autograding-grading-reporter@v1",
        "      env:",
        *[f'        {s.upper()}_RESULTS: "${{{{steps.{s}.outputs.result}}}}"' for s in ids],
        "      with:",
        f"        runners: {','.join(ids)}",
        "",
    ]
    return "\n".join(lines)


def _gradescope_run(assignment: Assignment) -> str:
    return "\n".join(
        [
            "#!/usr/bin/env bash",
            f"# Gradescope autograder for assignment {assignment.slug} (generated by `rl4llm make-assignments --export`).",
            "# The submission is the student's student.py; the grader writes /autograder/results/results.json.",
            "set -u",
            "cd /autograder/source",
            "mkdir -p /autograder/results",
            "submitted=$(find /autograder/submission -name student.py | head -n 1)",
            'if [ -z "$submitted" ]; then',
            '  echo \'{"score": 0, "output": "No student.py found in the submission.", "tests": []}\' \\',
            "    > /autograder/results/results.json",
            "  exit 0",
            "fi",
            "RL4LLM_QUIET=1 python3 -m pytest -q -p no:cacheprovider "
            + assignment.test_file
            + ' --impl="$submitted" --grade-json=/autograder/results/results.json || true',
            "",
        ]
    )


def _repository_url(root: Path) -> str | None:
    """The GitHub URL of the book's repository, from ``_config.yml`` (``repository: url:``), if any."""
    config = root / "_config.yml"
    if not config.is_file():
        return None
    match = re.search(r"^\s*url:\s*(https://github\.com/\S+)", config.read_text(encoding="utf-8"), re.M)
    return match.group(1).rstrip("/") if match else None


def _default_package(root: Path) -> str:
    """``rl4llm @ git+<repository URL>``, or plain ``rl4llm`` when the repository is unknown."""
    url = _repository_url(root)
    return f"rl4llm @ git+{url}" if url else "rl4llm"


def _export_readme(assignment: Assignment, rubric: list[RubricItem], root: Path) -> str:
    """The README for a standalone repository: commands run from its root, book links point to the repository."""
    text = _readme(assignment, rubric).replace(f"assignments/{assignment.slug}", ".")
    url = _repository_url(root)
    if url:
        text = text.replace("](../../book/", f"]({url}/blob/main/book/")
    return text.replace("From the root of the repository:", "From the root of this repository:")


def export(assignment: Assignment, root: Path, dest: Path, package_spec: str) -> list[Path]:
    """Write a standalone repository for one assignment into ``dest``; return the files written."""
    base = root / "assignments" / assignment.slug
    rubric = read_rubric(assignment, base / assignment.test_file)
    files = {
        dest / "student.py": student_module_source(assignment),
        dest / assignment.test_file: (base / assignment.test_file).read_text(encoding="utf-8"),
        dest / "README.md": _export_readme(assignment, rubric, root),
        dest / "conftest.py": '"""Loads the grading plugin (--impl, --grade-json, points, score table)."""\n\n'
        'pytest_plugins = ["rl4llm.assignments.grading"]\n',
        dest / "requirements.txt": f"{package_spec}\npytest\npytest-timeout\n",
        dest / ".github" / "workflows" / "classroom.yml": _workflow(assignment, rubric),
        dest / "gradescope" / "setup.sh": "#!/usr/bin/env bash\n# Gradescope image setup.\nset -eu\n"
        "apt-get update && apt-get install -y python3 python3-pip\n"
        "pip3 install -r /autograder/source/requirements.txt\n",
        dest / "gradescope" / "run_autograder": _gradescope_run(assignment),
    }
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    for script in ("setup.sh", "run_autograder"):
        (dest / "gradescope" / script).chmod(0o755)
    return list(files)


# ------------------------------------------------------------------------------------------------- CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``rl4llm make-assignments``."""
    parser.add_argument(
        "--root",
        type=Path,
        default=None,
        help="repository root holding assignments/ (default: the checkout the package runs from)",
    )
    parser.add_argument(
        "--only", nargs="+", default=None, metavar="SLUG", help="regenerate only these assignments (slug or number)"
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if the committed copies are stale or leak a solution",
    )
    parser.add_argument(
        "--export",
        type=Path,
        default=None,
        metavar="DIR",
        help="write a standalone classroom repository for --assignment into DIR",
    )
    parser.add_argument("--assignment", default=None, help="the assignment to --export (slug or number)")
    parser.add_argument(
        "--package",
        default=None,
        help="pip requirement for the package in an exported repository's requirements.txt "
        "(default: the repository named in _config.yml, e.g. 'rl4llm @ git+https://...'; pin a "
        "tag for a course)",
    )


def main(args: argparse.Namespace) -> int:
    """Run ``rl4llm make-assignments``; returns the exit code (0 done, 1 ``--check`` found problems, 2 misuse)."""
    try:
        return _main(args)
    except (ValueError, FileNotFoundError) as err:  # an unknown assignment, a malformed region, a missing grader
        print(f"rl4llm make-assignments: error: {err}", file=sys.stderr)
        return 2


def _main(args: argparse.Namespace) -> int:
    root = (args.root or default_root()).resolve()
    if not (root / "assignments").is_dir():
        print(f"rl4llm make-assignments: no assignments/ folder under {root}; pass --root", file=sys.stderr)
        return 2
    if args.export is not None:
        if not args.assignment:
            print("rl4llm make-assignments: --export needs --assignment SLUG", file=sys.stderr)
            return 2
        assignment = get_assignment(args.assignment)
        package = args.package or _default_package(root)
        written = export(assignment, root, args.export.resolve(), package)
        print(f"wrote {len(written)} files for {assignment.slug} into {args.export}")
        return 0
    if args.check:
        problems = check(root)
        for p in problems:
            print(p)
        for key in _unassigned():
            print(f"note: {key} has a graded region but no assignment covers it")
        if problems:
            print("run `rl4llm make-assignments` to regenerate the student copies and READMEs", file=sys.stderr)
            return 1
        print(f"assignments are up to date ({len(ASSIGNMENTS)} assignments)")
        return 0
    only = [get_assignment(s) for s in args.only] if args.only else None
    changed = 0
    for path, text in render_files(root, only).items():
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            changed += 1
            print(f"wrote {path.relative_to(root)}")
    for key in _unassigned():
        print(f"note: {key} has a graded region but no assignment covers it")
    print(f"{changed} file(s) changed")
    return 0


if __name__ == "__main__":  # pragma: no cover - python -m rl4llm.assignments.generate
    _parser = argparse.ArgumentParser(prog="python -m rl4llm.assignments.generate", description=__doc__)
    add_arguments(_parser)
    sys.exit(main(_parser.parse_args()))
