"""The grader: loading a student file piece by piece, and a graded run where every kind of failure costs only its
own items (syntax error, wrong answer, endless loop, correct answer), with the JSON report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rl4llm.assignments.loader import Implementation, ReferenceSource, StudentCodeError, StudentFile
from rl4llm.assignments.manifest import get_assignment

ROOT = Path(__file__).resolve().parents[1]
A01 = get_assignment("01")


def _student(tmp_path: Path, body: str, name: str = "student.py") -> StudentFile:
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return StudentFile(path, f"student_under_test_{tmp_path.name}")


def test_a_syntax_error_costs_only_its_function(tmp_path):
    student = _student(
        tmp_path,
        """
        import torch

        def discounted_returns(rewards, terminated, gamma):
            return rewards +* 2

        def dqn_targets(rewards, next_q_target, terminated, gamma):
            return rewards * 0 + 7
    """,
    )
    impl = Implementation(A01, student)
    with pytest.raises(StudentCodeError, match=r"discounted_returns.*SyntaxError at line 5"):
        impl.discounted_returns
    assert impl.dqn_targets(1, None, None, 0.9) == 7
    with pytest.raises(StudentCodeError, match="does not define `gae`"):
        impl.gae


def test_module_level_errors_are_notes_and_functions_still_load(tmp_path):
    student = _student(
        tmp_path,
        """
        import not_a_real_module_xyz
        SCALE = 1 / 0

        def reinforce_loss(logp, returns, baseline=None):
            return -(logp * returns).mean()
    """,
    )
    impl = Implementation(A01, student)
    assert callable(impl.reinforce_loss)
    notes = student.notes()
    assert any("ModuleNotFoundError" in n for n in notes) and any("ZeroDivisionError" in n for n in notes)
    with pytest.raises(StudentCodeError, match="earlier problems"):
        impl.gae


def test_an_imported_reference_function_is_rejected(tmp_path):
    student = _student(tmp_path, "from rl4llm.rl.returns import gae\n")
    with pytest.raises(StudentCodeError, match="not defined there"):
        Implementation(A01, student).gae


def test_names_outside_the_assignment_are_refused(tmp_path):
    impl = Implementation(A01, ReferenceSource())
    from rl4llm.rl.returns import gae

    assert impl.gae is gae
    with pytest.raises(AttributeError, match="not graded in assignment 01-returns-gae"):
        impl.ppo_clip_loss


def test_a_missing_file_is_reported(tmp_path):
    student = StudentFile(tmp_path / "nowhere.py", "student_missing")
    with pytest.raises(StudentCodeError, match="no file to grade"):
        Implementation(A01, student).gae


MIXED = """
import torch


def discounted_returns(rewards, terminated, gamma):
    return rewards +* gamma


def gae(rewards, values, next_values, terminated, truncated, gamma, lam):
    advantages = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[0])
    for t in reversed(range(rewards.shape[0])):
        delta = rewards[t] + gamma * next_values[t] - values[t]
        running = delta + gamma * lam * (1 - terminated[t]) * (1 - truncated[t]) * running
        advantages[t] = running
    return advantages


def reinforce_loss(logp, returns, baseline=None):
    while True:
        pass


def dqn_targets(rewards, next_q_target, terminated, gamma):
    return (rewards + gamma * (1.0 - terminated.float()) * next_q_target.max(dim=1).values).detach()
"""


def test_graded_run_isolates_each_failure(tmp_path):
    student = tmp_path / "mixed.py"
    student.write_text(MIXED)
    report = tmp_path / "grade.json"
    env = dict(os.environ, RL4LLM_QUIET="1", RL4LLM_GRADE_TIMEOUT_SCALE="0.1")
    env.pop("RL4LLM_IMPL", None)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "assignments/01-returns-gae",
            "-m",
            "not slow",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--impl={student}",
            f"--grade-json={report}",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-3000:]
    assert "rl4llm grade" in out and "Traceback" not in out
    result = json.loads(report.read_text())
    by_test = {t["name"].split(" | ", 1)[1]: t for t in result["tests"]}
    outputs = {name: t["output"] for name, t in by_test.items()}
    assert len(by_test) == 7  # every quick item of assignment 01 is reported
    for name, t in by_test.items():
        if name.startswith("discounted_returns"):
            assert t["score"] == 0 and "SyntaxError" in t["output"], outputs
        if name.startswith("reinforce_loss"):
            assert t["score"] == 0 and t["output"].startswith("timeout") and "reinforce_loss" in t["output"]
        if name.startswith("dqn_targets"):
            assert t["score"] == t["max_score"] > 0, outputs
    terminal_items = [t for name, t in by_test.items() if "time-limit" in name]
    assert terminal_items and "bootstraps through a terminal state" in terminal_items[0]["output"]
    assert result["score"] == sum(t["score"] for t in result["tests"]) == 2
    assert result["max_score"] == sum(t["max_score"] for t in result["tests"])


def test_the_environment_variable_chooses_the_implementation(tmp_path):
    report = tmp_path / "grade.json"
    env = dict(os.environ, RL4LLM_QUIET="1", RL4LLM_IMPL="reference", RL4LLM_GRADE_JSON=str(report))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "assignments/01-returns-gae", "-k", "dqn", "-q", "-p", "no:cacheprovider"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    result = json.loads(report.read_text())
    assert [t["status"] for t in result["tests"]] == ["passed"] and result["score"] == result["max_score"]


def test_a_bad_impl_path_is_a_usage_error(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "assignments/01-returns-gae",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--impl={tmp_path / 'missing.py'}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 4 and "--impl must be" in proc.stderr
