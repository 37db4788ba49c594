"""The book's ``pysource`` directive: package code shown without solution markers and argument checks.

:func:`rl4llm.sphinxext.shown_source` is tested on hand-written snippets (the expected text written out in full);
a one-page ``jupyter-book build`` checks that the directive is registered and its output reaches the HTML.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rl4llm.sphinxext import shown_source

ROOT = Path(__file__).resolve().parents[1]

SNIPPET = '''def loss(x: float, y: float, eps: float = 0.1) -> float:
    """The loss.

    .. math:: L = (x - y)^2
    """
    _check_same_shape(x=x, y=y)
    eps = check_range("eps", eps, 0.0, None)
    if not isinstance(x, float):
        raise TypeError("x must be a float")
    for name in ("x", "y"):
        if name is None:
            raise ValueError(name)
    if x > y:  # a branch of the computation, not a check
        x = y
    # BEGIN SOLUTION
    d = x - y
    return d * d
    # END SOLUTION
'''

SHOWN = '''def loss(x: float, y: float, eps: float = 0.1) -> float:
    """The loss.

    .. math:: L = (x - y)^2
    """
    if x > y:  # a branch of the computation, not a check
        x = y
    d = x - y
    return d * d
'''

CLASS = '''    @dataclass
    class Cfg:
        """Two knobs."""

        lr: float = param(0.1, help="learning rate")

        def __init__(self, lr: float) -> None:
            self.lr = check_range("lr", lr, 0.0, None)  # state, kept

        def __post_init__(self) -> None:
            validate(self)
            if self.lr > 1:
                raise ValueError("lr")

        @property
        def double(self) -> float:
            return 2 * self.lr
'''


def test_shown_source_drops_markers_and_checks_and_keeps_the_computation():
    assert shown_source(SNIPPET) == SHOWN
    # the docstring on request; the checks kept on request (only the marker lines go)
    no_doc = shown_source(SNIPPET, strip_docstring=True)
    assert no_doc.splitlines()[:2] == [
        SHOWN.splitlines()[0],
        "    if x > y:  # a branch of the computation, not a check",
    ]
    kept = shown_source(SNIPPET, strip_checks=False)
    assert kept == "".join(line + "\n" for line in SNIPPET.splitlines() if "SOLUTION" not in line)


def test_shown_source_drops_a_validating_post_init_of_an_indented_class():
    assert (
        shown_source(CLASS, strip_docstring=True)
        == """    @dataclass
    class Cfg:
        lr: float = param(0.1, help="learning rate")

        def __init__(self, lr: float) -> None:
            self.lr = check_range("lr", lr, 0.0, None)  # state, kept

        @property
        def double(self) -> float:
            return 2 * self.lr
"""
    )


def test_shown_source_on_a_fragment_that_is_not_python_only_drops_markers():
    text = "    x = 1\n  # BEGIN SOLUTION\n    y = 2\n"
    assert shown_source(text) == "    x = 1\n    y = 2\n"
    with pytest.raises(TypeError, match="source"):
        shown_source(b"def f(): pass")


def test_the_package_loops_lose_their_checks():
    import inspect

    from rl4llm.rl import ppo_clip_loss

    shown = shown_source(inspect.getsource(ppo_clip_loss), strip_docstring=True)
    assert "_check" not in shown and "SOLUTION" not in shown and '"""' not in shown
    assert "torch.clamp(ratio, 1.0 - clip_eps, 1.0 + clip_eps)" in shown
    from rl4llm.rlhf import kl_k3  # its shape check is a bare ``_check(logp, ref_logp)``

    shown = shown_source(inspect.getsource(kl_k3), strip_docstring=True)
    assert "_check" not in shown and "torch.expm1(log_ratio) - log_ratio" in shown


PAGE = """# Code page

```{pysource} snippet.py
:pyobject: loss
```
"""


@pytest.mark.slow
def test_a_one_page_build_shows_the_stripped_source(tmp_path: Path) -> None:
    jb = Path(sys.executable).with_name("jupyter-book")
    if not jb.exists():
        pytest.skip("jupyter-book is not installed next to this Python")
    project = yaml.safe_load((ROOT / "_config.yml").read_text())
    config = {
        "title": "pysource test",
        "only_build_toc_files": True,
        "execute": {"execute_notebooks": "off"},
        "sphinx": {"extra_extensions": project["sphinx"]["extra_extensions"]},
    }
    (tmp_path / "_config.yml").write_text(yaml.safe_dump(config))
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: page\n")
    (tmp_path / "page.md").write_text(PAGE)
    (tmp_path / "snippet.py").write_text(SNIPPET)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RL4LLM_")}
    proc = subprocess.run([str(jb), "build", str(tmp_path), "-W"], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    page = (tmp_path / "_build" / "html" / "page.html").read_text()
    text = html.unescape(re.sub(r"<[^>]+>", "", page))  # the code block as a reader sees it
    assert "d = x - y\n    return d * d" in text
    assert "a branch of the computation" in text
    for hidden in ("check_range", "_check_same_shape", "BEGIN SOLUTION", "isinstance"):
        assert hidden not in text, hidden
    shutil.rmtree(tmp_path / "_build")


def _book_includes():
    """Every ``pysource`` / ``literalinclude`` block of the book with a ``:pyobject:``: (page, file, options)."""
    pattern = re.compile(r"```\{(pysource|literalinclude)\} (\S+)\n((?::[^\n]*\n)*)```")
    for page in sorted((ROOT / "book").rglob("*.md")):
        for _kind, target, opts in pattern.findall(page.read_text()):
            options = dict(re.match(r":([\w-]+):\s*(.*)", line).groups() for line in opts.splitlines())
            if "pyobject" in options:
                yield page, (page.parent / target).resolve(), options


def _object_source(path: Path, dotted: str) -> str | None:
    import ast

    text = path.read_text()
    body = ast.parse(text).body
    node = None
    for part in dotted.split("."):
        node = next((n for n in body if isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name == part), None)
        if node is None:
            return None
        body = node.body
    return ast.get_source_segment(text, node)


def test_every_included_package_object_exists_with_its_start_and_end_lines():
    includes = list(_book_includes())
    assert any(opts["pyobject"] == "train_ppo" for _, _, opts in includes)  # the loop of section 1.3
    for page, path, opts in includes:
        where = f"{page.relative_to(ROOT)}: {opts['pyobject']}"
        assert path.is_file(), where
        source = _object_source(path, opts["pyobject"])
        assert source is not None, f"{where} is not defined in {path.name}"
        for key in ("start-at", "start-after", "end-before", "end-at"):
            if key in opts:
                assert opts[key] in source, f"{where}: {key} {opts[key]!r} is not in the object's source"
