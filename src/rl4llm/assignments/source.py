"""Graded regions in the package's source, and student copies made from them.

A graded region is the block of lines between a ``# BEGIN SOLUTION`` line and an ``# END SOLUTION`` line
(both alone on their line, at the indentation of the body) inside a top-level function or class. Argument checks
stay *outside* the region, so the student copy keeps them. :func:`student_source` copies a target (signature,
docstring with the equation, argument checks) and replaces each region by a ``raise NotImplementedError`` at the
same indentation; :func:`student_module_source` assembles one assignment's copies into a module with the imports
they need. :func:`find_graded` discovers every marked function of the package, so the generator can report
graded functions that no assignment covers yet.
"""

from __future__ import annotations

import ast
import builtins
import importlib
import importlib.util
import inspect
import re
import sys
import textwrap
import types
from dataclasses import dataclass
from pathlib import Path

from rl4llm.assignments.manifest import ASSIGNMENTS, Assignment

__all__ = [
    "BEGIN",
    "END",
    "MarkerError",
    "Region",
    "GradedTarget",
    "find_regions",
    "load_target",
    "find_graded",
    "student_source",
    "student_module_source",
    "solution_lines",
    "find_leaks",
]

BEGIN = "# BEGIN SOLUTION"
END = "# END SOLUTION"
STUB_COMMENT = "# Your implementation replaces the line below."


class MarkerError(ValueError):
    """A graded region is malformed (unpaired, nested, mis-indented, or outside a top-level function/class)."""


@dataclass(frozen=True)
class Region:
    """A graded region: 1-based line numbers of its BEGIN and END marker lines, and their indentation."""

    begin: int
    end: int
    indent: str


@dataclass(frozen=True)
class GradedTarget:
    """A top-level function or class holding graded regions.

    Attributes:
        module: dotted module name (``"rl4llm.rl.returns"``).
        name: the function or class name.
        path: the module's source file.
        first: 1-based first line of the definition (its first decorator, if any).
        last: 1-based last line of the definition.
        regions: the graded regions inside it, in order.
        node: the definition's AST node.
        kind: ``"function"`` or ``"class"``.
    """

    module: str
    name: str
    path: Path
    first: int
    last: int
    regions: tuple[Region, ...]
    node: ast.AST
    kind: str

    @property
    def key(self) -> str:
        """``"module:name"``, as written in the manifest."""
        return f"{self.module}:{self.name}"


def find_regions(lines: list[str], path: str | Path = "<source>") -> list[Region]:
    """All graded regions of a source file given as lines (without line ends); ``MarkerError`` if malformed."""
    regions: list[Region] = []
    open_line: int | None = None
    open_indent = ""
    for i, line in enumerate(lines, start=1):
        stripped = line.strip()
        if stripped == BEGIN:
            if open_line is not None:
                raise MarkerError(f"{path}:{i}: '{BEGIN}' inside the region opened at line {open_line}")
            open_line, open_indent = i, line[: len(line) - len(line.lstrip())]
        elif stripped == END:
            if open_line is None:
                raise MarkerError(f"{path}:{i}: '{END}' without a matching '{BEGIN}'")
            indent = line[: len(line) - len(line.lstrip())]
            if indent != open_indent:
                raise MarkerError(f"{path}:{i}: '{END}' is not indented like its '{BEGIN}' (line {open_line})")
            if i == open_line + 1:
                raise MarkerError(f"{path}:{open_line}: empty graded region")
            regions.append(Region(open_line, i, open_indent))
            open_line = None
        elif BEGIN in line or END in line:
            raise MarkerError(f"{path}:{i}: a solution marker must be alone on its line: {line.strip()!r}")
    if open_line is not None:
        raise MarkerError(f"{path}:{open_line}: '{BEGIN}' without a matching '{END}'")
    return regions


def _module_path(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        raise ValueError(f"module {module!r} has no Python source file")
    return Path(spec.origin)


def _definitions(tree: ast.Module) -> dict[str, ast.AST]:
    return {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}


def _first_line(node: ast.AST) -> int:
    decorators = getattr(node, "decorator_list", [])
    return min([node.lineno] + [d.lineno for d in decorators])


def _targets_in_file(module: str, path: Path) -> list[GradedTarget]:
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    regions = find_regions(lines, path)
    if not regions:
        return []
    tree = ast.parse(text, filename=str(path))
    defs = list(_definitions(tree).values())
    by_def: dict[str, list[Region]] = {}
    for r in regions:
        # the END marker is a comment, so it may lie after the definition's last statement (its end_lineno)
        owner = next((d for d in defs if _first_line(d) <= r.begin <= d.end_lineno), None)
        if owner is None:
            raise MarkerError(f"{path}:{r.begin}: a graded region must sit inside a top-level function or class")
        by_def.setdefault(owner.name, []).append(r)
    out = []
    for d in defs:
        if d.name in by_def:
            kind = "class" if isinstance(d, ast.ClassDef) else "function"
            last = max(d.end_lineno, by_def[d.name][-1].end)
            out.append(GradedTarget(module, d.name, path, _first_line(d), last, tuple(by_def[d.name]), d, kind))
    return out


def load_target(key: str) -> GradedTarget:
    """The graded target ``"module:name"``; ``ValueError`` if it does not exist or has no graded region."""
    module, sep, name = key.partition(":")
    if not sep or not module or not name:
        raise ValueError(f"a target must be written 'package.module:name', got {key!r}")
    path = _module_path(module)
    for t in _targets_in_file(module, path):
        if t.name == name:
            return t
    tree = ast.parse(path.read_text(encoding="utf-8"))
    if name not in _definitions(tree):
        raise ValueError(f"{key}: {module} defines no top-level function or class {name!r}")
    raise ValueError(f"{key}: {name} has no '{BEGIN}' ... '{END}' region in {path}")


def find_graded(package: str = "rl4llm") -> list[GradedTarget]:
    """Every graded target in the package, in module order (discovered from the markers)."""
    root = _module_path(package).parent
    out = []
    for path in sorted(root.rglob("*.py")):
        if "assignments" in path.relative_to(root).parts:
            continue
        if BEGIN not in path.read_text(encoding="utf-8"):
            continue
        rel = path.relative_to(root.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out.extend(_targets_in_file(".".join(parts), path))
    return out


def student_source(target: GradedTarget) -> str:
    """The target's source with every graded region replaced by ``raise NotImplementedError("<name>")``.

    The marker lines go too; in their place a comment and the ``raise`` at the region's indentation. The
    ``NotImplementedError`` message names the function (``"AdaptiveKLController.update"`` for a method).
    """
    lines = target.path.read_text(encoding="utf-8").splitlines()
    out: list[str] = []
    line_no = target.first
    for region in target.regions:
        out.extend(lines[line_no - 1 : region.begin - 1])
        qualname = _enclosing_function(target.node, region.begin)
        out.append(region.indent + STUB_COMMENT)
        out.append(f'{region.indent}raise NotImplementedError("{qualname}")')
        line_no = region.end + 1
    out.extend(lines[line_no - 1 : target.last])
    return "\n".join(out) + "\n"


def _enclosing_function(node: ast.AST, line: int, prefix: str = "") -> str:
    """Qualified name of the innermost function or class around ``line`` (``"Class.method"``)."""
    name = prefix + node.name
    for child in ast.iter_child_nodes(node):
        if (
            isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            and child.lineno <= line <= child.end_lineno
        ):
            return _enclosing_function(child, line, name + ".")
    return name


def _free_names(node: ast.AST) -> list[str]:
    """Names read in ``node`` that it does not bind itself (module globals and builtins), in order of use."""
    bound: set[str] = set()
    used: list[str] = []
    for n in ast.walk(node):
        if isinstance(n, ast.Name):
            if isinstance(n.ctx, ast.Load):
                if n.id not in used:
                    used.append(n.id)
            else:
                bound.add(n.id)
        elif isinstance(n, ast.arg):
            bound.add(n.arg)
        elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and n is not node:
            bound.add(n.name)
        elif isinstance(n, (ast.Import, ast.ImportFrom)):
            for alias in n.names:
                bound.add((alias.asname or alias.name).split(".")[0])
        elif isinstance(n, ast.ExceptHandler) and n.name:
            bound.add(n.name)
    return [u for u in used if u not in bound and not hasattr(builtins, u)]


def _graded_objects() -> dict[int, str]:
    """``id(object) -> "module:name"`` for every target of every assignment."""
    out = {}
    for a in ASSIGNMENTS:
        for key in a.targets:
            module, _, name = key.partition(":")
            out[id(getattr(importlib.import_module(module), name))] = key
    return out


def _import_lines(assignment: Assignment, targets: list[GradedTarget]) -> list[str]:
    """The imports the student copy needs: modules, and the non-graded helpers the targets use.

    A helper is imported from the module that defines it when that module exports it under the same name
    (``check_range`` from ``rl4llm.utils``), else from the target's module. Two different objects used under one
    name by two targets cannot share a module namespace: that is a ``ValueError`` naming both.
    """
    graded = _graded_objects()
    own = set(assignment.names)
    plain: set[str] = set()
    from_imports: dict[str, set[str]] = {}
    seen: dict[str, tuple[object, str]] = {}
    for t in targets:
        module = importlib.import_module(t.module)
        outside = _names_outside_regions(t)
        for name in _free_names(t.node):
            if name in own or name == "__name__":
                continue
            if not hasattr(module, name):
                raise ValueError(f"{t.key} uses {name!r}, which {t.module} does not define")
            obj = getattr(module, name)
            if name in seen and seen[name][0] is not obj:
                raise ValueError(
                    f"{t.key} and {seen[name][1]} use two different objects called {name!r}; rename "
                    f"one of them in the package so that both fit in one student module"
                )
            seen[name] = (obj, t.key)
            if isinstance(obj, types.ModuleType):
                plain.add(f"import {obj.__name__}" + ("" if obj.__name__ == name else f" as {name}"))
                continue
            if id(obj) in graded and not _is_plain_value(obj):
                if name in outside:
                    raise ValueError(
                        f"{t.key}: the code outside its graded region uses {name}, which is graded "
                        f"({graded[id(obj)]}); move that use inside the region"
                    )
                continue  # only the solution used it: the student writes their own
            home = getattr(obj, "__module__", None)
            home_module = sys.modules.get(home) if isinstance(home, str) else None
            source = home if home_module is not None and getattr(home_module, name, None) is obj else t.module
            from_imports.setdefault(source, set()).add(name)
    lines = sorted(plain, key=lambda s: (s.split()[1], s))
    first_party = [f"from {m} import {', '.join(sorted(names))}" for m, names in sorted(from_imports.items())]
    if lines and first_party:
        lines.append("")
    return lines + first_party


def _is_plain_value(obj: object) -> bool:
    return isinstance(obj, (int, float, str, bytes, bool, tuple, frozenset)) or obj is None


def _names_outside_regions(target: GradedTarget) -> set[str]:
    """Free names used by the target's code outside its graded regions."""
    src = student_source(target)
    return set(_free_names(ast.parse(textwrap.dedent(src)).body[0]))


def student_module_source(assignment: Assignment, chapter_url: str | None = None) -> str:
    """The full text of ``assignments/<slug>/student.py`` for one assignment."""
    targets = [load_target(k) for k in assignment.targets]
    names = textwrap.fill("Implement " + ", ".join(f"``{n}``" for n in assignment.names) + ".", width=100)
    where = (
        f"The book explains the background in ``{assignment.chapter}.md``."
        if chapter_url is None
        else f"The book explains the background: {chapter_url}"
    )
    run_all = f"pytest assignments/{assignment.slug}"
    run_quick = run_all + ' -m "not slow"'
    width = len(run_quick)
    header = (
        f'"""Assignment {assignment.number}: {assignment.title} (student copy).\n'
        f"\n"
        f"{names}\n"
        f"Each body ends in ``raise NotImplementedError``: replace that line with your code. The signatures,\n"
        f"the docstrings (with the equations) and the argument checks are given; keep them. You may import\n"
        f"anything from NumPy, PyTorch and the ``rl4llm`` package except the functions you are asked to write.\n"
        f"Check your work with\n"
        f"\n"
        f"    {run_all.ljust(width)}  # every rubric item, then the score table\n"
        f"    {run_quick.ljust(width)}  # skip the behavioural items (faster)\n"
        f"\n"
        f"{where}\n"
        f"Generated by ``rl4llm make-assignments`` from the package's reference code.\n"
        f'"""\n'
    )
    body = [header, "from __future__ import annotations\n"]
    imports = _import_lines(assignment, targets)
    if imports:
        body.append("\n".join(imports) + "\n")
    names_list = ", ".join(f'"{n}"' for n in assignment.names)
    body.append("__all__ = [" + "\n".join(textwrap.wrap(names_list, width=100, subsequent_indent="    ")) + "]\n")
    for t in targets:
        body.append("\n" + student_source(t))
    return "\n".join(body)


def solution_lines(assignment: Assignment) -> set[str]:
    """The stripped, non-blank, non-comment lines of every graded region of an assignment's targets."""
    out: set[str] = set()
    for key in assignment.targets:
        t = load_target(key)
        lines = t.path.read_text(encoding="utf-8").splitlines()
        for r in t.regions:
            for line in lines[r.begin : r.end - 1]:
                s = line.strip()
                if s and not s.startswith("#"):
                    out.add(s)
    return out


#: Lines too generic to count as a leak when they also occur outside the regions (``return x``, ``else:``).
_GENERIC = {"else:", "try:", "finally:", "pass", "continue", "break", ")", "]", "}", "return"}


def find_leaks(assignment: Assignment, student_text: str) -> list[str]:
    """Solution lines that occur in a student copy; empty if none leaked.

    A line counts when it appears (stripped) in a graded region and in the student copy, except lines that also
    appear in the copied code outside the regions (the generator copies those on purpose) and generic lines
    such as ``else:``.
    """
    allowed: set[str] = set(_GENERIC)
    for key in assignment.targets:
        allowed |= {s.strip() for s in student_source(load_target(key)).splitlines()}
    solution = solution_lines(assignment) - allowed
    student = {s.strip() for s in student_text.splitlines()}
    return sorted(solution & student)


def describe(obj: object) -> str:
    """The first paragraph of an object's docstring on one line, reST roles turned into Markdown (READMEs)."""
    doc = (inspect.getdoc(obj) or "").strip()
    line = " ".join(doc.split("\n\n")[0].split()) if doc else ""  # the first paragraph, on one line
    line = re.sub(r":math:`([^`]*)`", r"$\1$", line)
    line = re.sub(r":\w+:`~?([^`]*)`", r"`\1`", line)
    return re.sub(r"``([^`]*)``", r"`\1`", line)
