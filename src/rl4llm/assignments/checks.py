"""Assertions for grader items that say what is wrong, not only that something is.

A grader item computes the expected answer independently (by hand, by a closed form, or by the reference) and,
where a typical mistake gives a recognisable answer, the answer that mistake would give. :func:`expect_close`
then fails with the diagnosis of the mistake the student's output matches ("bootstraps through a terminal
state"), or with the first entry that differs. The failures raise :class:`GradingFailure`, which the grading
plugin prints as its message alone, without a traceback.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

__all__ = [
    "GradingFailure",
    "fail",
    "expect",
    "to_numpy",
    "expect_tensor",
    "expect_shape",
    "expect_close",
    "expect_scalar",
    "fmt",
]


class GradingFailure(AssertionError):
    """A wrong answer. The message is shown to the student as is (no traceback)."""


def fail(message: str) -> None:
    """Fail the item with ``message``."""
    __tracebackhide__ = True
    raise GradingFailure(message)


def expect(condition: Any, message: str) -> None:
    """Fail the item with ``message`` unless ``condition`` is true."""
    __tracebackhide__ = True
    if not bool(condition):
        raise GradingFailure(message)


def fmt(x: Any, max_items: int = 8) -> str:
    """A short rendering of a number or an array (4 significant digits, at most ``max_items`` entries)."""
    a = np.asarray(x, dtype=np.float64) if not isinstance(x, np.ndarray) else x.astype(np.float64)
    if a.ndim == 0:
        return f"{float(a):.6g}"
    flat = a.ravel()
    body = np.array2string(flat[:max_items], precision=4, separator=", ", suppress_small=True, max_line_width=10_000)
    if flat.size > max_items:
        body = body[:-1] + ", ...]"
    return body if a.ndim == 1 else f"{body} (shape {tuple(a.shape)}, flattened)"


def to_numpy(x: Any, what: str) -> np.ndarray:
    """``x`` (a tensor, an array or a number) as a float64 array; fails if it is none of these."""
    __tracebackhide__ = True
    try:
        import torch

        if isinstance(x, torch.Tensor):
            return x.detach().to("cpu", torch.float64).numpy()
    except ImportError:  # pragma: no cover - torch is a hard dependency
        pass
    if x is None:
        fail(f"{what} returned None; did you forget the `return`?")
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        fail(f"{what} returned a {type(x).__name__}, expected a tensor or a number")
    return a


def expect_tensor(x: Any, what: str, shape: Sequence[int] | None = None):
    """Fail unless ``x`` is a ``torch.Tensor`` (of ``shape``, if given); return it."""
    __tracebackhide__ = True
    import torch

    if x is None:
        fail(f"{what} returned None; did you forget the `return`?")
    if not isinstance(x, torch.Tensor):
        fail(f"{what} returned a {type(x).__name__}, expected a torch.Tensor")
    if shape is not None:
        expect_shape(x, shape, what)
    return x


def expect_shape(x: Any, shape: Sequence[int], what: str) -> None:
    """Fail with both shapes unless ``x`` has ``shape``."""
    __tracebackhide__ = True
    got = tuple(getattr(x, "shape", np.shape(x)))
    if got != tuple(shape):
        hint = ""
        if int(np.prod(got)) == int(np.prod(shape)) and len(got) != len(shape):
            hint = " (same number of entries: a stray reshape, squeeze or missing keepdim?)"
        elif len(shape) == 0 and len(got) > 0:
            hint = " (a scalar was expected: did you forget to average, e.g. `.mean()`?)"
        fail(f"{what} has shape {got}, expected {tuple(shape)}{hint}")


def expect_scalar(x: Any, what: str) -> float:
    """Fail unless ``x`` is a 0-d tensor (or a plain number); return it as a float."""
    __tracebackhide__ = True
    a = to_numpy(x, what)
    expect_shape(a, (), what)
    return float(a)


def expect_close(
    actual: Any,
    expected: Any,
    what: str,
    *,
    atol: float = 1e-5,
    rtol: float = 1e-5,
    wrong: Iterable[tuple[Any, str]] = (),
    hint: str = "",
) -> None:
    """Fail unless ``actual`` equals ``expected`` (same shape, finite, within ``atol + rtol * |expected|``).

    Args:
        actual: what the student's code returned.
        expected: the right answer, computed independently.
        what: how to name the quantity in the message (``"gae(...)"``).
        wrong: ``(answer_of_a_typical_mistake, diagnosis)`` pairs; if ``actual`` matches one of them the message
            names that diagnosis.
        hint: appended to the generic message when no diagnosis matches.
    """
    __tracebackhide__ = True
    a = to_numpy(actual, what)
    e = to_numpy(expected, "the expected value")
    expect_shape(a, e.shape, what)
    bad = ~np.isfinite(a) & np.isfinite(e)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        fail(
            f"{what} contains {a[idx]} at index {idx} where {e[idx]:.6g} was expected (a log or an exp of an "
            f"extreme value? use a numerically stable form)"
        )
    if np.allclose(a, e, atol=atol, rtol=rtol, equal_nan=True):
        return
    for answer, diagnosis in wrong:
        w = to_numpy(answer, "a typical mistake")
        if (
            w.shape == a.shape
            and np.allclose(a, w, atol=atol, rtol=rtol, equal_nan=True)
            and not np.allclose(w, e, atol=atol, rtol=rtol, equal_nan=True)
        ):
            fail(f"{what} is wrong, likely because it {diagnosis}.\n  expected {fmt(e)}\n  got      {fmt(a)}")
    if a.ndim == 0:
        fail(f"{what} is wrong: expected {fmt(e)}, got {fmt(a)}." + (f" {hint}" if hint else ""))
    diff = np.abs(a - e) > atol + rtol * np.abs(e)
    idx = tuple(int(i) for i in np.argwhere(diff)[0])
    fail(
        f"{what} is wrong at {int(diff.sum())} of {diff.size} entries; first at index {idx}: expected "
        f"{e[idx]:.6g}, got {a[idx]:.6g}.\n  expected {fmt(e)}\n  got      {fmt(a)}" + (f"\n  {hint}" if hint else "")
    )
