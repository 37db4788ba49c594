"""One disk cache for the whole package: where it lives, atomic save and load, and keys that know the code.

Several chapters reuse expensive computations across pages, which run in separate kernels: chapter 5's shared
RLHF stages (SFT, preference pairs, reward model), whole experiment results, chapter 6's prompt logs. They all go
through this module:

* :func:`cache_dir` is ``$RL4LLM_CACHE_DIR``, or ``~/.cache/rl4llm``;
* :func:`save` / :func:`load` write and read a ``torch.save`` state atomically (a concurrent reader sees the old
  file or the new one, never half of one; a corrupt file reads as missing, so it is recomputed);
* :func:`cache_key` hashes a JSON-able description of the computation (its config) together with
  :func:`source_hash` of the modules that compute it. :func:`source_hash` follows the ``rl4llm`` imports of those
  modules transitively (parsed from their source, nothing to keep by hand), and adds the checksums of the shipped
  checkpoints, the torch version and :data:`CACHE_VERSION`. So a cache entry never outlives the code or the
  weights that produced it: edit any module a computation imports, and its key changes.

A small in-process memo (:func:`memo_get` / :func:`memo_put`) keeps objects (models) that a kernel asks for twice.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = [
    "CACHE_VERSION",
    "cache_dir",
    "save",
    "load",
    "module_dependencies",
    "source_hash",
    "cache_key",
    "memo_get",
    "memo_put",
    "clear_memory_cache",
]

#: Bump to invalidate every cache entry by hand (keys also follow the code automatically).
CACHE_VERSION = "rl4llm-cache-1"

PACKAGE_ROOT = Path(__file__).resolve().parent
_PACKAGE = "rl4llm"


def cache_dir(*parts: str) -> Path:
    """The cache folder: ``$RL4LLM_CACHE_DIR`` or ``~/.cache/rl4llm``, then ``parts`` (not created here)."""
    root = os.environ.get("RL4LLM_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "rl4llm")
    return Path(root).joinpath(*parts)


def save(path: str | Path, state: dict[str, Any]) -> bool:
    """Write ``state`` with ``torch.save`` atomically (temporary file, then rename); False if the disk refuses.

    A read-only or full disk is not an error: the computation simply runs without its disk cache.
    """
    import torch

    path = Path(path)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(state, tmp)
        os.replace(tmp, path)
        return True
    except OSError:
        tmp.unlink(missing_ok=True)
        return False


def load(path: str | Path) -> dict[str, Any] | None:
    """Read a state written by :func:`save`; ``None`` when the file is missing, corrupt or unreadable."""
    import torch

    path = Path(path)
    if not path.is_file():
        return None
    try:
        state = torch.load(path, weights_only=True)
    except Exception:  # noqa: BLE001 - corrupt, truncated or from an incompatible torch: recompute
        return None
    return state if isinstance(state, dict) else None


def _module_file(module: str) -> Path | None:
    """The source file of ``rl4llm[.x.y]``, or None if it is not a module of this package."""
    if module != _PACKAGE and not module.startswith(_PACKAGE + "."):
        return None
    rel = Path(*module.split(".")[1:])
    for candidate in (PACKAGE_ROOT / rel / "__init__.py", (PACKAGE_ROOT / rel).with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE_ROOT).with_suffix("")
    parts = [_PACKAGE, *rel.parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports_of(path: Path) -> set[str]:
    """The ``rl4llm`` modules that a source file imports (absolute and relative, also inside functions)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            found.add(mod)
            # ``from rl4llm.rlhf import ppo`` imports a submodule: follow it too when it is one
            found.update(f"{mod}.{alias.name}" for alias in node.names)
    return {m for m in found if _module_file(m) is not None}


@lru_cache(maxsize=None)
def module_dependencies(module: str, exclude: tuple[str, ...] = ()) -> tuple[str, ...]:
    """Every ``rl4llm`` module that ``module`` imports, transitively, itself included; sorted.

    A module is reached through ``import``/``from ... import`` statements anywhere in its source. Modules whose
    last name is in ``exclude`` (e.g. ``("plots",)``: figures redrawn from cached numbers) are not followed.
    Importing a package means running its ``__init__``, so parent packages are included and followed too, except
    the root ``rl4llm/__init__.py``: its source is hashed, but the environments it registers on import are not
    followed (code that uses an environment imports it explicitly).
    """
    if _module_file(module) is None:
        raise ValueError(f"module must be a module of the rl4llm package, got {module!r}")
    seen: set[str] = set()
    todo = [module]
    while todo:
        mod = todo.pop()
        if mod in seen or mod.rsplit(".", 1)[-1] in exclude:
            continue
        seen.add(mod)
        parts = mod.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))  # parent packages' __init__
        file = _module_file(mod)
        if file is not None and mod != _PACKAGE:
            todo.extend(_imports_of(file))
    return tuple(sorted(seen))


def _checkpoint_checksums() -> list[Path]:
    return sorted(PACKAGE_ROOT.glob("**/checkpoints/**/SHA256SUMS*"))


@lru_cache(maxsize=None)
def source_hash(modules: tuple[str, ...], exclude: tuple[str, ...] = ()) -> str:
    """Hash of the source of ``modules`` and of everything they import in ``rl4llm`` (see
    :func:`module_dependencies`), plus the shipped checkpoints' checksums and the torch version."""
    import torch

    h = hashlib.sha256(CACHE_VERSION.encode())
    h.update(torch.__version__.encode())
    files = sorted({_module_file(d) for m in modules for d in module_dependencies(m, exclude)})
    for f in files:
        h.update(str(f.relative_to(PACKAGE_ROOT)).encode())
        h.update(f.read_bytes())
    for f in _checkpoint_checksums():
        h.update(str(f.relative_to(PACKAGE_ROOT)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def cache_key(description: Any, modules: Iterable[str], *, exclude: Iterable[str] = ()) -> str:
    """Key of a computation: its JSON-able ``description`` (name, config) and the code of ``modules``.

    ``description`` is serialised with sorted keys (dataclasses: pass ``dataclasses.asdict(config)``); values
    JSON cannot hold are written with ``str`` (``inf`` as ``"inf"``).
    """
    payload = json.dumps(description, sort_keys=True, default=str)
    code = source_hash(tuple(sorted(set(modules))), tuple(sorted(set(exclude))))
    return hashlib.sha256((payload + code).encode()).hexdigest()[:20]


_MEMORY: dict[str, Any] = {}


def memo_get(key: str) -> Any | None:
    """An object kept in this process under ``key`` by :func:`memo_put`, or None."""
    return _MEMORY.get(key)


def memo_put(key: str, value: Any) -> Any:
    """Keep ``value`` in this process under ``key``; return it."""
    _MEMORY[key] = value
    return value


def clear_memory_cache() -> None:
    """Forget the in-process memo (the disk cache stays)."""
    _MEMORY.clear()
