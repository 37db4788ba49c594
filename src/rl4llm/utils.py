"""Small shared helpers: seeding, argument validation, progress bars, threads.

Every public function of the package validates its numeric arguments with :func:`check_range` /
:func:`check_choice`, so that bad input fails early with a message that names the parameter and its valid
range, instead of producing a silent NaN many steps later.
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")

__all__ = [
    "set_seed",
    "check_range",
    "check_choice",
    "check_positive_int",
    "progress",
    "quiet",
    "static_build",
    "set_torch_threads",
]


def set_seed(seed: int) -> np.random.Generator:
    """Seed Python's, NumPy's and (if installed) PyTorch's global generators; return a fresh NumPy Generator.

    Same seed => same numbers on CPU. Experiments should draw their randomness from the returned generator
    (or from ``torch.Generator``) rather than from global state wherever they can.
    """
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    random.seed(int(seed))
    np.random.seed(int(seed) % (2**32))
    try:
        import torch

        torch.manual_seed(int(seed))
    except ImportError:  # pragma: no cover - torch is a hard dependency, but utils stays importable without it
        pass
    return np.random.default_rng(int(seed))


def check_range(
    name: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> float:
    """Return ``float(value)`` if it is a finite number inside the interval, else raise ``ValueError``.

    The message names the parameter and the valid range, e.g. ``clip_eps must be in (0, inf), got -0.1``.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    v = float(value)
    lo_b = "[" if (low_inclusive and low is not None) else "("
    hi_b = "]" if (high_inclusive and high is not None) else ")"
    lo_s = "-inf" if low is None else f"{low:g}"
    hi_s = "inf" if high is None else f"{high:g}"
    interval = f"{lo_b}{lo_s}, {hi_s}{hi_b}"
    if not math.isfinite(v):
        raise ValueError(f"{name} must be a finite number in {interval}, got {value}")
    ok = True
    if low is not None:
        ok &= v >= low if low_inclusive else v > low
    if high is not None:
        ok &= v <= high if high_inclusive else v < high
    if not ok:
        raise ValueError(f"{name} must be in {interval}, got {value}")
    return v


def check_positive_int(name: str, value: Any, minimum: int = 1) -> int:
    """Return ``int(value)`` if it is an integer ``>= minimum``, else raise ``TypeError``/``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {value}")
    return int(value)


def check_choice(name: str, value: Any, choices: Sequence[Any]) -> Any:
    """Return ``value`` if it is one of ``choices``, else raise ``ValueError`` listing the choices."""
    if value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {listed}; got {value!r}")
    return value


def quiet() -> bool:
    """True when progress bars should be hidden (``RL4LLM_QUIET=1``, set by the test suite and CI)."""
    return os.environ.get("RL4LLM_QUIET", "0") not in ("", "0", "false", "False")


def static_build() -> bool:
    """True inside the book's static build (``RL4LLM_STATIC_BUILD=1``, set by :mod:`rl4llm.sphinxext`).

    The pages' code runs there without a reader: progress bars are hidden and widget panels render over
    precomputed results instead of a live kernel.
    """
    return os.environ.get("RL4LLM_STATIC_BUILD", "0") not in ("", "0", "false", "False")


def progress(
    iterable: Iterable[T] | None = None,
    *,
    total: int | None = None,
    desc: str | None = None,
    disable: bool | None = None,
    **kwargs: Any,
):
    """A ``tqdm.auto`` progress bar (a notebook widget in Jupyter, text in a terminal).

    Hidden when quiet (``RL4LLM_QUIET=1``: tests, CI) and in the book's static build, where a bar would become an
    output of the page.
    """
    from tqdm.auto import tqdm

    if disable is None:
        disable = quiet() or static_build()
    return tqdm(iterable, total=total, desc=desc, disable=disable, leave=False, dynamic_ncols=True, **kwargs)


def set_torch_threads(n: int | None = 1) -> None:
    """Use ``n`` intra-op threads (default 1).

    Tiny models run fastest single-threaded: with several threads on a busy 2-core machine, matrix products of
    a few hundred elements spend more time synchronising than computing (30-60x slow-downs were seen). Set
    ``RL4LLM_THREADS`` to override.
    """
    import torch

    env = os.environ.get("RL4LLM_THREADS")
    if env:
        n = int(env)
    if n is not None and n > 0:
        torch.set_num_threads(n)
