"""Load an implementation of an assignment's graded functions: the package's reference, or a student's file.

The grader never imports a student file with ``import``: one broken function must cost only the items that use
it. :class:`StudentFile` therefore executes the file one top-level statement at a time, in order, in a fresh
module namespace, and remembers which statement failed and why. A ``SyntaxError`` anywhere in the file would stop
a normal import; here the file is then split at its top-level ``def`` / ``class`` lines, and each piece is compiled
on its own, so only the function with the syntax error is lost. A statement that hangs (for instance a loop at
module level) is stopped by the item's timeout; the next item resumes after it.
"""

from __future__ import annotations
import __future__

import ast
import importlib
import re
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rl4llm.assignments.manifest import Assignment

__all__ = ["StudentCodeError", "Implementation", "ReferenceSource", "StudentFile", "resolve_source"]


class StudentCodeError(Exception):
    """The implementation under test cannot provide a graded function (missing, failed to load, not the
    student's own). The message says which function and why, in one or two lines."""


@dataclass
class _Chunk:
    """A top-level piece of the student file: its code (or why it does not compile) and the names it defines."""

    first_line: int
    last_line: int
    names: tuple[str, ...]
    code: types.CodeType | None
    is_def: bool
    compile_error: str | None = None


_DEF_LINE = re.compile(r"^(?:async\s+def|def|class)\s+([A-Za-z_]\w*)")


def _future_flags(tree_or_text: ast.Module | str) -> int:
    """Compiler flags for the file's ``from __future__ import`` statements (they must apply to every piece)."""
    flags = 0
    if isinstance(tree_or_text, ast.Module):
        nodes = [n for n in tree_or_text.body if isinstance(n, ast.ImportFrom) and n.module == "__future__"]
        names = [a.name for n in nodes for a in n.names]
    else:
        names = re.findall(r"^from\s+__future__\s+import\s+([\w, ]+)", tree_or_text, flags=re.M)
        names = [x.strip() for group in names for x in group.split(",") if x.strip()]
    for name in names:
        feature = getattr(__future__, name, None)
        if feature is not None:
            flags |= feature.compiler_flag
    return flags


def _defined_names(node: ast.stmt) -> tuple[str, ...]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return (node.name,)
    if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return tuple(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return tuple((a.asname or a.name).split(".")[0] for a in node.names)
    return ()


def _split(text: str, filename: str) -> list[_Chunk]:
    """The file's top-level pieces, compiled separately (see the module docstring)."""
    try:
        tree = ast.parse(text, filename=filename)
    except SyntaxError:
        return _split_lines(text, filename)
    flags = _future_flags(tree)
    chunks = []
    for node in tree.body:
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        module = ast.Module(body=[node], type_ignores=[])
        code = compile(module, filename, "exec", flags=flags, dont_inherit=True)
        is_def = isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        chunks.append(_Chunk(first, node.end_lineno or first, _defined_names(node), code, is_def))
    return chunks


def _split_lines(text: str, filename: str) -> list[_Chunk]:
    """Fallback for a file that does not parse: split at column-0 ``def``/``class``/decorator lines."""
    lines = text.splitlines()
    flags = _future_flags(text)
    starts = [0]
    in_decorator = False
    for i, line in enumerate(lines):
        if line.startswith("@"):
            if not in_decorator and i > 0:
                starts.append(i)
            in_decorator = True
        elif _DEF_LINE.match(line):
            if not in_decorator and i > 0:
                starts.append(i)
            in_decorator = False
        elif line.strip() and not line.startswith((" ", "\t", "#")):
            in_decorator = False
    starts = sorted(set(starts))
    chunks = []
    for k, start in enumerate(starts):
        end = starts[k + 1] if k + 1 < len(starts) else len(lines)
        piece = lines[start:end]
        names = tuple(m.group(1) for m in (_DEF_LINE.match(x) for x in piece) if m)
        source = "\n" * start + "\n".join(piece) + "\n"  # keep the file's line numbers in errors
        try:
            code = compile(source, filename, "exec", flags=flags, dont_inherit=True)
            error = None
        except SyntaxError as err:
            code, error = None, f"SyntaxError at line {err.lineno}: {err.msg}"
        chunks.append(_Chunk(start + 1, end, names[:1], code, bool(names), error))
    return chunks


class ReferenceSource:
    """The package's own reference implementation of every graded function."""

    label = "reference"

    def get(self, assignment: Assignment, name: str) -> Any:
        module, qual = assignment.target_of(name)
        return getattr(importlib.import_module(module), qual)

    def files(self) -> list[Path]:
        return []

    def notes(self) -> list[str]:
        return []


@dataclass
class StudentFile:
    """A student's file, loaded lazily, one top-level statement at a time (see the module docstring)."""

    path: Path
    module_name: str
    _chunks: list[_Chunk] | None = None
    _next: int = 0
    _module: types.ModuleType | None = None
    _errors: dict[str, str] = field(default_factory=dict)
    _preamble_errors: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return str(self.path)

    def files(self) -> list[Path]:
        return [self.path]

    def notes(self) -> list[str]:
        """Problems with statements that define no graded function (imports, module-level code)."""
        return list(self._preamble_errors)

    def _load(self) -> types.ModuleType:
        if self._module is None:
            if not self.path.is_file():
                raise StudentCodeError(f"no file to grade at {self.path}")
            text = self.path.read_text(encoding="utf-8", errors="replace")
            self._chunks = _split(text, str(self.path))
            module = types.ModuleType(self.module_name)
            module.__file__ = str(self.path)
            self._module = module
        sys.modules[self.module_name] = self._module  # dataclasses and pickling look modules up by name
        assert self._chunks is not None
        while self._next < len(self._chunks):
            chunk = self._chunks[self._next]
            self._next += 1
            if chunk.code is None:
                self._record(chunk, chunk.compile_error or "does not compile")
                continue
            try:
                exec(chunk.code, self._module.__dict__)  # noqa: S102 - running the student's code is the point
            except Exception as err:  # noqa: BLE001 - recorded, then reported by the items that need it
                self._record(chunk, f"{type(err).__name__}: {err} (line {chunk.first_line})")
            except BaseException as err:  # a timeout (or an exit) while running module-level code
                self._record(
                    chunk,
                    f"module-level code at lines {chunk.first_line}-{chunk.last_line} did not "
                    f"finish ({type(err).__name__})",
                )
                raise
        return self._module

    def _record(self, chunk: _Chunk, message: str) -> None:
        if chunk.is_def:
            for name in chunk.names:
                self._errors[name] = message
        else:
            self._preamble_errors.append(message)

    def get(self, assignment: Assignment, name: str) -> Any:
        assignment.target_of(name)  # a name the assignment does not grade is a bug in the grader
        module = self._load()
        filename = self.path.name
        if name in self._errors:
            raise StudentCodeError(f"{filename} could not define `{name}`: {self._errors[name]}")
        if not hasattr(module, name):
            extra = (
                f" (earlier problems in {filename}: {'; '.join(self._preamble_errors)})"
                if self._preamble_errors
                else ""
            )
            raise StudentCodeError(f"{filename} does not define `{name}`{extra}")
        obj = getattr(module, name)
        owner = getattr(obj, "__module__", None)
        if owner != self.module_name:
            raise StudentCodeError(
                f"`{name}` in {filename} is not defined there (it comes from {owner}); write your own implementation"
            )
        return obj


def resolve_source(impl: str, assignment: Assignment, assignment_dir: Path, cache: dict[Path, StudentFile]):
    """The source that ``--impl`` names for one assignment.

    ``"reference"``: the package. ``"student"``: ``<assignment_dir>/student.py``. Anything else is a path: a
    ``.py`` file graded for every selected assignment, or a folder holding ``<slug>/student.py`` or
    ``student.py``.
    """
    if impl == "reference":
        return ReferenceSource()
    if impl == "student":
        path = assignment_dir / "student.py"
    else:
        p = Path(impl).expanduser()
        if p.is_dir():
            path = p / assignment.slug / "student.py"
            if not path.is_file():
                path = p / "student.py"
        else:
            path = p
    path = path.resolve()
    if path not in cache:
        module_name = "rl4llm_graded_" + re.sub(r"\W", "_", assignment.slug) + f"_{len(cache)}"
        cache[path] = StudentFile(path, module_name)
    return cache[path]


class Implementation:
    """What the ``impl`` fixture returns: ``impl.gae`` is the graded ``gae`` of the chosen implementation.

    Accessing a name the assignment does not grade is an ``AttributeError``; a graded name the implementation
    cannot provide raises :class:`StudentCodeError`, which fails only the item that asked for it.
    """

    def __init__(self, assignment: Assignment, source: ReferenceSource | StudentFile) -> None:
        self._assignment = assignment
        self._source = source

    @property
    def label(self) -> str:
        """``"reference"`` or the path of the graded file."""
        return self._source.label

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if name not in self._assignment.names:
            raise AttributeError(
                f"{name!r} is not graded in assignment {self._assignment.slug}; graded: "
                f"{', '.join(self._assignment.names)}"
            )
        return self._source.get(self._assignment, name)

    def __repr__(self) -> str:
        return f"Implementation({self._assignment.slug}, {self.label})"
