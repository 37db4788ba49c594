"""The grading plugin for pytest: rubric items with points, short feedback, a score table and a JSON report.

Load it with ``pytest_plugins = ["rl4llm.assignments.grading"]`` in the root ``conftest.py`` (the repository's
does). It acts only on *graded items*: tests in a module that sets ``ASSIGNMENT = "<slug>"``. Everything else runs
as usual.

* ``--impl=reference|student|PATH`` (or the environment variable ``RL4LLM_IMPL``; default ``student``) chooses the
  implementation that the ``impl`` fixture hands to the items: the package's own functions, the assignment's
  ``student.py``, or any file (a folder holding ``<slug>/student.py`` also works). Items never import student
  code; they call ``impl.gae(...)``. The ``ref`` fixture is always the reference.
* Each graded item is one rubric item worth ``@pytest.mark.points(n)``, all or nothing, with a timeout
  (``@pytest.mark.timeout(s)``, else 30 s, 300 s for ``slow`` items; ``--grade-timeout-scale`` or
  ``RL4LLM_GRADE_TIMEOUT_SCALE`` multiplies them on a slow machine).
* Feedback is one short message per failed item: ``not attempted`` for a function that still raises
  ``NotImplementedError``, the diagnosis of a wrong answer (:mod:`rl4llm.assignments.checks`), the student's
  exception with the student's own lines only, a timeout with where the code was, or why the file could not
  provide the function. A broken function costs only the items that call it.
* ``--grade-json=FILE`` (or ``RL4LLM_GRADE_JSON``) writes a Gradescope results file (``score``, ``tests: [{name,
  number, score, max_score, status, output, tags}]``); a score table ends the terminal output.
"""

from __future__ import annotations

import json
import os
import re
import signal
import textwrap
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from rl4llm.assignments.checks import GradingFailure
from rl4llm.assignments.loader import Implementation, ReferenceSource, StudentCodeError, StudentFile, resolve_source
from rl4llm.assignments.manifest import Assignment, get_assignment

__all__ = ["GradingTimeout", "impl", "ref", "DEFAULT_TIMEOUT", "SLOW_TIMEOUT"]

IMPL_ENV = "RL4LLM_IMPL"
JSON_ENV = "RL4LLM_GRADE_JSON"
SCALE_ENV = "RL4LLM_GRADE_TIMEOUT_SCALE"
DEFAULT_TIMEOUT = 30.0
SLOW_TIMEOUT = 300.0
_RESULT_KEY = "rl4llm_grade"


class GradingTimeout(BaseException):
    """Raised in the item when its time is up (a ``BaseException``, so ``except Exception`` cannot swallow it)."""

    def __init__(self, seconds: float, where: str = "") -> None:
        super().__init__(f"timed out after {seconds:g} s" + (f" {where}" if where else ""))
        self.seconds = seconds
        self.where = where


# --------------------------------------------------------------------------------------------------- state


@dataclass
class _ItemResult:
    nodeid: str
    assignment: str
    number: str
    name: str
    points: float
    slow: bool
    tier: str
    status: str = "not run"
    message: str = ""
    duration: float = 0.0

    @property
    def score(self) -> float:
        return self.points if self.status == "passed" else 0.0


@dataclass
class _GradingState:
    impl: str
    json_path: Path | None
    timeout_scale: float
    students: dict[Path, StudentFile] = field(default_factory=dict)
    results: dict[str, _ItemResult] = field(default_factory=dict)
    started: float = field(default_factory=time.time)

    def source_for(self, assignment: Assignment, folder: Path) -> ReferenceSource | StudentFile:
        return resolve_source(self.impl, assignment, folder, self.students)


_STATE = pytest.StashKey[_GradingState]()


def _state(config: pytest.Config) -> _GradingState:
    return config.stash[_STATE]


def _assignment_of(item: pytest.Item) -> Assignment | None:
    module = getattr(item, "module", None)
    slug = getattr(module, "ASSIGNMENT", None) if module is not None else None
    if slug is None:
        return None
    return get_assignment(slug)


_ITEM = pytest.StashKey[_ItemResult]()


# --------------------------------------------------------------------------------------------------- options


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("rl4llm-grading", "rl4llm assignments (grading)")
    group.addoption(
        "--impl",
        default=None,
        metavar="reference|student|PATH",
        help=f"implementation the graded items test: the package's reference, each assignment's "
        f"student.py, or a file / folder (default: ${IMPL_ENV} or 'student')",
    )
    group.addoption(
        "--grade-json",
        default=None,
        metavar="FILE",
        help=f"write a Gradescope-style JSON score report to FILE (default: ${JSON_ENV})",
    )
    group.addoption(
        "--grade-timeout-scale",
        default=None,
        type=float,
        metavar="X",
        help=f"multiply every graded item's timeout by X (default: ${SCALE_ENV} or 1)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "points(n): a graded rubric item worth n points (all or nothing)")
    config.addinivalue_line(
        "markers", "tier(name): the kind of check of a graded item (shapes, hand-computed, randomised, behaviour)"
    )
    config.addinivalue_line("markers", "slow: a behavioural item that trains something; deselect with -m 'not slow'")
    impl_choice = config.getoption("--impl") or os.environ.get(IMPL_ENV) or "student"
    json_path = config.getoption("--grade-json") or os.environ.get(JSON_ENV) or None
    scale = config.getoption("--grade-timeout-scale")
    if scale is None:
        try:
            scale = float(os.environ.get(SCALE_ENV, "1") or 1)
        except ValueError:
            raise pytest.UsageError(f"{SCALE_ENV} must be a number, got {os.environ.get(SCALE_ENV)!r}") from None
    if not scale > 0:
        raise pytest.UsageError(f"--grade-timeout-scale must be > 0, got {scale}")
    if impl_choice not in ("reference", "student"):
        p = Path(impl_choice).expanduser()
        if not p.exists():
            raise pytest.UsageError(
                f"--impl must be 'reference', 'student' or an existing file or folder; {impl_choice!r} does not exist"
            )
    config.stash[_STATE] = _GradingState(impl_choice, Path(json_path) if json_path else None, float(scale))
    config.pluginmanager.register(_Recorder(config), "rl4llm-grading-recorder")


# --------------------------------------------------------------------------------------------------- collection


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    state = _state(config)
    counters: dict[str, int] = {}
    for item in items:
        try:
            assignment = _assignment_of(item)
        except ValueError as err:
            raise pytest.UsageError(f"{item.nodeid}: {err}") from None
        if assignment is None:
            continue
        marks = list(item.iter_markers("points"))
        if (
            len(marks) != 1
            or len(marks[0].args) != 1
            or not isinstance(marks[0].args[0], (int, float))
            or not marks[0].args[0] > 0
        ):
            raise pytest.UsageError(
                f"{item.nodeid}: every graded item needs exactly one @pytest.mark.points(n) with n > 0"
            )
        slow = item.get_closest_marker("slow") is not None
        if item.get_closest_marker("timeout") is None:
            item.add_marker(
                pytest.mark.timeout((SLOW_TIMEOUT if slow else DEFAULT_TIMEOUT) * state.timeout_scale), append=False
            )
        elif state.timeout_scale != 1.0:
            t = item.get_closest_marker("timeout")
            item.add_marker(
                pytest.mark.timeout(float(t.args[0] if t.args else t.kwargs["timeout"]) * state.timeout_scale),
                append=False,
            )
        counters[assignment.slug] = counters.get(assignment.slug, 0) + 1
        doc = (getattr(item, "function", None).__doc__ or "").strip() if hasattr(item, "function") else ""
        tier = item.get_closest_marker("tier")
        numbers = _rubric_numbers(assignment, Path(str(item.path)))
        number = numbers.get(
            getattr(item, "originalname", item.name), f"{assignment.number}.{counters[assignment.slug]}"
        )
        result = _ItemResult(
            nodeid=item.nodeid,
            assignment=assignment.slug,
            number=number,
            name=doc.splitlines()[0] if doc else item.name,
            points=float(marks[0].args[0]),
            slow=slow,
            tier=str(tier.args[0]) if tier and tier.args else ("behaviour" if slow else ""),
        )
        item.stash[_ITEM] = result
        state.results[item.nodeid] = result
    if state.results:
        # graded items are small: quiet progress bars, one thread (tiny tensors are slower with several)
        os.environ.setdefault("RL4LLM_QUIET", "1")
        from rl4llm.utils import set_torch_threads

        set_torch_threads(1)


_NUMBERS: dict[Path, dict[str, str]] = {}


def _rubric_numbers(assignment: Assignment, path: Path) -> dict[str, str]:
    """Test function name -> rubric number (``"01.3"``), in file order, as the README numbers them."""
    if path not in _NUMBERS:
        from rl4llm.assignments.generate import read_rubric

        try:
            _NUMBERS[path] = {r.test: r.number for r in read_rubric(assignment, path)}
        except (OSError, ValueError, SyntaxError):
            _NUMBERS[path] = {}
    return _NUMBERS[path]


def _item_result(item: pytest.Item) -> _ItemResult | None:
    return item.stash.get(_ITEM, None)


# --------------------------------------------------------------------------------------------------- fixtures


@pytest.fixture
def impl(request: pytest.FixtureRequest) -> Implementation:
    """The implementation under test (``--impl``): ``impl.<name>`` is the graded function or class."""
    assignment = _assignment_of(request.node)
    if assignment is None:
        raise pytest.UsageError(f"{request.node.nodeid}: the impl fixture needs ASSIGNMENT = '<slug>' in the module")
    source = _state(request.config).source_for(assignment, Path(str(request.node.path)).parent)
    return Implementation(assignment, source)


@pytest.fixture
def ref(request: pytest.FixtureRequest) -> Implementation:
    """The package's reference implementation of the same assignment (for randomised comparisons)."""
    assignment = _assignment_of(request.node)
    if assignment is None:
        raise pytest.UsageError(f"{request.node.nodeid}: the ref fixture needs ASSIGNMENT = '<slug>' in the module")
    return Implementation(assignment, ReferenceSource())


# --------------------------------------------------------------------------------------------------- timeouts


def _impl_files(item: pytest.Item) -> set[str]:
    assignment = _assignment_of(item)
    if assignment is None:
        return set()
    source = _state(item.config).source_for(assignment, Path(str(item.path)).parent)
    return {str(p) for p in source.files()}


def _where(frame: Any, files: set[str]) -> str:
    """``"in `gae` (student.py line 12)"`` for the innermost frame of the graded file, else ``""``."""
    while frame is not None:
        if frame.f_code.co_filename in files:
            name = getattr(frame.f_code, "co_qualname", frame.f_code.co_name)
            return f"in `{name}` ({Path(frame.f_code.co_filename).name} line {frame.f_lineno})"
        frame = frame.f_back
    return ""


def _arm(item: pytest.Item, seconds: float) -> bool:
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGALRM"):
        return False
    files = _impl_files(item)

    def on_alarm(signum: int, frame: Any) -> None:
        raise GradingTimeout(seconds, _where(frame, files))

    def cancel() -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)

    item.cancel_timeout = cancel  # read by pytest-timeout's own cancel hook
    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    return True


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_timeout_set_timer(item: pytest.Item, settings: Any) -> bool | None:
    """With pytest-timeout installed: time graded items ourselves (no stack dump, a short message)."""
    if _item_result(item) is None:
        return None
    return True if _arm(item, float(settings.timeout)) else None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    """Without pytest-timeout: arm the graded item's timeout here."""
    own = False
    if _item_result(item) is not None and not item.config.pluginmanager.hasplugin("timeout"):
        mark = item.get_closest_marker("timeout")
        seconds = float(mark.args[0] if mark.args else mark.kwargs["timeout"]) if mark else DEFAULT_TIMEOUT
        own = _arm(item, seconds)
    yield
    if own:
        item.cancel_timeout()


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Undo global state a previous item's code may have changed (grad mode, default dtype)."""
    if _item_result(item) is None:
        return
    import sys

    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_grad_enabled(True)
        torch.set_default_dtype(torch.float32)


# --------------------------------------------------------------------------------------------------- reports


class _Crash:
    def __init__(self, path: str, lineno: int, message: str) -> None:
        self.path, self.lineno, self.message = path, lineno, message


class GradeRepr:
    """A failed item's report: a status and a short message instead of a traceback."""

    def __init__(self, status: str, message: str, path: str, lineno: int) -> None:
        self.status, self.text = status, message
        first = message.splitlines()[0] if message else status
        self.reprcrash = _Crash(path, lineno, f"[{status}] {first}")
        self.sections: list[tuple[str, str, str]] = []

    def toterminal(self, tw: Any) -> None:
        tw.line(f"[{self.status}]", red=True, bold=True)
        for line in self.text.splitlines():
            tw.line("  " + line)

    def __str__(self) -> str:
        return f"[{self.status}] {self.text}"


def _student_frames(excinfo: pytest.ExceptionInfo, files: set[str]) -> list[Any]:
    return [e for e in excinfo.traceback if str(e.path) in files]


def _classify(item: pytest.Item, excinfo: pytest.ExceptionInfo) -> tuple[str, str, bool]:
    """``(status, message, concise)`` for a failed phase; ``concise`` replaces the traceback by the message."""
    files = _impl_files(item)
    err = excinfo.value
    frames = _student_frames(excinfo, files)
    if isinstance(err, GradingTimeout):
        return "timeout", f"{err} (an endless loop, or far too slow?)", True
    if isinstance(err, NotImplementedError) and (not files or (frames and frames[-1] is excinfo.traceback[-1])):
        name = str(err.args[0]) if err.args else ""
        if frames:
            code = frames[-1].frame.code.raw
            name = getattr(code, "co_qualname", code.co_name)
        return "not attempted", f"`{name}` still raises NotImplementedError", True
    if isinstance(err, StudentCodeError):
        return "error", str(err), True
    if isinstance(err, GradingFailure):
        return "wrong", str(err), True
    if frames:
        lines = []
        for entry in frames[-3:]:
            code = entry.frame.code.raw
            try:
                source_line = str(entry.statement).strip().splitlines()[0]
            except Exception:  # noqa: BLE001 - no source available
                source_line = ""
            lines.append(
                f"  {Path(str(entry.path)).name} line {entry.lineno + 1}, in "
                f"{getattr(code, 'co_qualname', code.co_name)}: {source_line}"
            )
        code = frames[-1].frame.code.raw
        name = getattr(code, "co_qualname", code.co_name)
        message = f"`{name}` raised {type(err).__name__}: {err}".rstrip()
        return "error", message + "\n" + "\n".join(lines), True
    if isinstance(err, AssertionError):
        text = str(err).strip() or excinfo.exconly()
        return "wrong", "\n".join(text.splitlines()[:12]), True
    return "error", excinfo.exconly(), False


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    result = _item_result(item)
    if result is None:
        return
    report = outcome.get_result()
    if report.failed and call.excinfo is not None:
        status, message, concise = _classify(item, call.excinfo)
        if concise:
            path = str(item.path)
            report.longrepr = GradeRepr(status, message, path, item.location[1] or 0)
        report.user_properties.append((_RESULT_KEY, {"status": status, "message": message}))


class _Recorder:
    """Collects each graded item's outcome over its phases (setup, call, teardown): it scores only if all pass."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        result = _state(self.config).results.get(report.nodeid)
        if result is None:
            return
        result.duration += report.duration
        if report.failed:
            if result.status in ("not run", "passed"):
                info = dict(report.user_properties).get(_RESULT_KEY)
                if info is None:
                    lines = str(report.longrepr).strip().splitlines()
                    info = {"status": "error", "message": lines[-1] if lines else "failed"}
                result.status = info["status"]
                result.message = info["message"] if report.when == "call" else f"({report.when}) {info['message']}"
        elif report.skipped and result.status == "not run":
            result.status = "skipped"
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
            result.message = str(reason)
        elif report.when == "call" and report.passed and result.status == "not run":
            result.status = "passed"


# --------------------------------------------------------------------------------------------------- summary


def _ran(state: _GradingState) -> list[_ItemResult]:
    return [r for r in state.results.values() if r.status != "not run"]


def _label(state: _GradingState) -> str:
    return (
        "the package's reference implementation"
        if state.impl == "reference"
        else ("each assignment's student.py" if state.impl == "student" else state.impl)
    )


_NAME_WIDTH = 64


def _note(result: _ItemResult) -> str:
    """The one-line reason an item failed, for the table: the diagnosis when there is one."""
    first = result.message.splitlines()[0] if result.message else ""
    likely = re.search(r"likely because it (.+?)\.?$", first)
    if likely:
        text = f"{result.status}, likely because it {likely.group(1)}"
    else:
        text = f"{result.status}: {first}" if first else result.status
    return text


def _table(state: _GradingState) -> list[str]:
    """The score table: per item its number, its name (wrapped), the score, and why it failed."""
    rows = _ran(state)
    if not rows:
        return []
    w = _NAME_WIDTH
    out = [f"graded: {_label(state)}"]
    total = maximum = 0.0
    for slug in dict.fromkeys(r.assignment for r in rows):
        items = [r for r in rows if r.assignment == slug]
        score = sum(r.score for r in items)
        top = sum(r.points for r in items)
        total, maximum = total + score, maximum + top
        out.append("")
        out.append(f"{slug}: {get_assignment(slug).title}")
        for r in items:
            lines = textwrap.wrap(r.name, w) or [""]
            out.append(f"  {r.number:>5}  {lines[0]:<{w}}  {_pts(r.score):>3} / {_pts(r.points)}")
            out.extend(f"  {'':>5}  {line}" for line in lines[1:])
            if r.status != "passed":
                note = textwrap.wrap(_note(r), w + 4)[:3]
                out.append(f"  {'':>5}    -> {note[0]}")
                out.extend(f"  {'':>5}       {line}" for line in note[1:])
        out.append(f"  {'':>5}  {'total':<{w}}  {_pts(score):>3} / {_pts(top)}  ({100 * score / top:.0f}%)")
    if len({r.assignment for r in rows}) > 1:
        out.append("")
        out.append(
            f"  {'':>5}  {'all assignments':<{w}}  {_pts(total):>3} / {_pts(maximum)}  ({100 * total / maximum:.0f}%)"
        )
    return out


def _pts(x: float) -> str:
    return f"{x:g}"


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    state = _state(config)
    lines = _table(state)
    if not lines:
        return
    terminalreporter.section("rl4llm grade")
    for line in lines:
        terminalreporter.write_line(line)
    notes = [n for s in state.students.values() for n in s.notes()]
    for note in dict.fromkeys(notes):
        terminalreporter.write_line(f"note: {note}")
    if state.json_path is not None:
        terminalreporter.write_line(f"JSON report: {state.json_path}")


def report_json(state: _GradingState) -> dict[str, Any]:
    """The Gradescope results object for the items that ran."""
    rows = _ran(state)
    tests = []
    for r in rows:
        output = "passed" if r.status == "passed" else (f"{r.status}: {r.message}" if r.message else r.status)
        tags = [r.assignment] + ([r.tier] if r.tier else [])
        tests.append(
            {
                "name": f"{r.assignment} | {r.name}",
                "number": r.number,
                "score": r.score,
                "max_score": r.points,
                "status": "passed" if r.status == "passed" else "failed",
                "output": output,
                "tags": tags,
                "visibility": "visible",
            }
        )
    score = sum(r.score for r in rows)
    maximum = sum(r.points for r in rows)
    return {
        "score": score,
        "max_score": maximum,
        "execution_time": round(time.time() - state.started, 2),
        "output": "\n".join(_table(state)),
        "visibility": "visible",
        "stdout_visibility": "visible",
        "tests": tests,
    }


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    state = session.config.stash.get(_STATE, None)
    if state is None or state.json_path is None:
        return
    state.json_path.parent.mkdir(parents=True, exist_ok=True)
    state.json_path.write_text(json.dumps(report_json(state), indent=2) + "\n", encoding="utf-8")
