"""The assignment generator: graded regions, student copies, leak detection, the rubric reader and the export."""

from __future__ import annotations

import ast
import sys
import textwrap
from pathlib import Path

import pytest

from rl4llm.assignments import generate, source
from rl4llm.assignments.manifest import ASSIGNMENTS, Assignment, get_assignment

ROOT = Path(__file__).resolve().parents[1]

FAKE = '''\
"""A module with graded regions, for the generator's tests."""

import math

from rl4llm.utils import check_range


def _helper(x):
    return x


def scaled(x: float, k: float) -> float:
    """Return :math:`k x`."""
    k = check_range("k", k, 0.0, None)
    # BEGIN SOLUTION
    secret_product = _helper(x) * k
    return math.floor(secret_product * 1000) / 1000
    # END SOLUTION


class Counter:
    """Counts."""

    def __init__(self) -> None:
        self.n = 0

    def bump(self, by: int) -> int:
        """Add ``by``."""
        # BEGIN SOLUTION
        self.n += by * 1
        # END SOLUTION
        return self.n
'''


@pytest.fixture
def fake_module(tmp_path, monkeypatch):
    (tmp_path / "fake_graded_mod.py").write_text(FAKE)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "fake_graded_mod"
    sys.modules.pop("fake_graded_mod", None)


def test_find_regions_rejects_malformed_markers():
    with pytest.raises(source.MarkerError, match="without a matching"):
        source.find_regions(["    # BEGIN SOLUTION", "    x = 1"])
    with pytest.raises(source.MarkerError, match="without a matching"):
        source.find_regions(["    x = 1", "    # END SOLUTION"])
    with pytest.raises(source.MarkerError, match="inside the region"):
        source.find_regions(["  # BEGIN SOLUTION", "  # BEGIN SOLUTION", "  # END SOLUTION"])
    with pytest.raises(source.MarkerError, match="alone on its line"):
        source.find_regions(["    x = 1  # BEGIN SOLUTION"])
    with pytest.raises(source.MarkerError, match="indented like"):
        source.find_regions(["    # BEGIN SOLUTION", "    x = 1", "  # END SOLUTION"])
    with pytest.raises(source.MarkerError, match="empty"):
        source.find_regions(["    # BEGIN SOLUTION", "    # END SOLUTION"])
    regions = source.find_regions(["def f():", "    # BEGIN SOLUTION", "    return 1", "    # END SOLUTION"])
    assert regions == [source.Region(2, 4, "    ")]


def test_student_source_keeps_signature_docstring_and_checks(fake_module):
    target = source.load_target(f"{fake_module}:scaled")
    text = source.student_source(target)
    assert text.startswith("def scaled(x: float, k: float) -> float:")
    assert '"""Return :math:`k x`."""' in text
    assert 'k = check_range("k", k, 0.0, None)' in text  # the argument check stays
    assert 'raise NotImplementedError("scaled")' in text
    assert "secret_product" not in text and "BEGIN SOLUTION" not in text
    ns: dict = {"check_range": lambda *a: a[1]}
    exec(compile(text, "<student>", "exec"), ns)
    with pytest.raises(NotImplementedError, match="scaled"):
        ns["scaled"](1.0, 2.0)


def test_student_source_of_a_class_stubs_the_method(fake_module):
    text = source.student_source(source.load_target(f"{fake_module}:Counter"))
    assert 'raise NotImplementedError("Counter.bump")' in text
    assert "self.n += by * 1" not in text
    assert "self.n = 0" in text and "return self.n" in text  # code outside the region is kept
    ns: dict = {}
    exec(compile(text, "<student>", "exec"), ns)
    with pytest.raises(NotImplementedError, match=r"Counter\.bump"):
        ns["Counter"]().bump(2)


def test_load_target_errors_name_the_problem(fake_module):
    with pytest.raises(ValueError, match="no .*region"):
        source.load_target(f"{fake_module}:_helper")
    with pytest.raises(ValueError, match="defines no top-level"):
        source.load_target(f"{fake_module}:missing")
    with pytest.raises(ValueError, match="module:name"):
        source.load_target("no_colon_here")


def test_find_leaks_spots_a_pasted_solution_line():
    a = get_assignment("01")
    clean = source.student_module_source(a)
    assert source.find_leaks(a, clean) == []
    solution = sorted(source.solution_lines(a))
    assert solution, "assignment 01 has graded regions"
    leaked = clean + "\n# pasted by mistake\n    " + solution[0] + "\n"
    assert source.find_leaks(a, leaked) == [solution[0]]


@pytest.mark.parametrize("assignment", ASSIGNMENTS, ids=lambda a: a.slug)
def test_generated_copies_define_every_name_and_no_solution(assignment: Assignment):
    text = source.student_module_source(assignment)
    tree = ast.parse(text)
    defined = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    assert defined == set(assignment.names)
    assert source.find_leaks(assignment, text) == []
    raises = [
        n
        for n in ast.walk(tree)
        if isinstance(n, ast.Raise)
        and isinstance(n.exc, ast.Call)
        and getattr(n.exc.func, "id", "") == "NotImplementedError"
    ]
    assert len(raises) == sum(len(source.load_target(k).regions) for k in assignment.targets)
    ns: dict = {"__name__": "student_copy_under_test"}
    exec(compile(text, f"<{assignment.slug}>", "exec"), ns)  # the imports the generator wrote all resolve
    assert all(callable(ns[name]) for name in assignment.names)


def test_every_graded_region_of_the_package_parses():
    targets = source.find_graded()
    keys = {t.key for t in targets}
    for a in ASSIGNMENTS:
        assert set(a.targets) <= keys, f"{a.slug} names a target without a graded region"


def test_read_rubric_numbers_items_and_reads_points(tmp_path):
    a = get_assignment("02")
    path = tmp_path / a.test_file
    path.write_text(
        textwrap.dedent('''
        import pytest

        @pytest.mark.points(2)
        @pytest.mark.tier("hand-computed")
        def test_one(impl):
            """first item"""

        def helper():
            pass

        @pytest.mark.slow
        @pytest.mark.points(3)
        def test_two(impl):
            pass
    ''')
    )
    rubric = generate.read_rubric(a, path)
    assert [(r.number, r.name, r.points, r.tier, r.slow) for r in rubric] == [
        ("02.1", "first item", 2.0, "hand-computed", False),
        ("02.2", "test_two", 3.0, "behaviour", True),
    ]
    path.write_text("def test_unmarked(impl):\n    pass\n")
    with pytest.raises(ValueError, match="points"):
        generate.read_rubric(a, path)


def test_committed_copies_are_fresh():
    problems = generate.check(ROOT)
    assert problems == [], "run `rl4llm make-assignments`:\n" + "\n".join(problems)


def test_export_writes_a_classroom_repository(tmp_path):
    a = get_assignment("03")
    written = generate.export(a, ROOT, tmp_path, "rl4llm @ git+https://example.org/rl4llm")
    names = {p.relative_to(tmp_path).as_posix() for p in written}
    assert {
        "student.py",
        a.test_file,
        "README.md",
        "conftest.py",
        "requirements.txt",
        ".github/workflows/classroom.yml",
        "gradescope/setup.sh",
        "gradescope/run_autograder",
    } == names
    rubric = generate.read_rubric(a, ROOT / "assignments" / a.slug / a.test_file)
    workflow = (tmp_path / ".github/workflows/classroom.yml").read_text()
    assert workflow.count("autograding-command-grader@v1") == len(rubric)
    scores = [float(line.split(":")[1]) for line in workflow.splitlines() if line.strip().startswith("max-score:")]
    assert sum(scores) == sum(r.points for r in rubric)
    assert all(f"{a.test_file}::{r.test}" in workflow for r in rubric)
    assert "rl4llm.assignments.grading" in (tmp_path / "conftest.py").read_text()
    assert "--grade-json=/autograder/results/results.json" in (tmp_path / "gradescope/run_autograder").read_text()
