"""The shared cache (keys follow the code) and declarative configs (one validator reads every field's range)."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from rl4llm import cache
from rl4llm.config import ConfigError, describe, is_unbounded, param, validate


def test_module_dependencies_follow_imports_transitively():
    deps = cache.module_dependencies("rl4llm.cache")
    assert deps == ("rl4llm", "rl4llm.cache")  # imports nothing else of the package
    deps = cache.module_dependencies("rl4llm.config")
    assert "rl4llm.config" in deps and "rl4llm.rl" not in deps
    # the RLHF stages import the substrate's language module through rl4llm.lm
    deps = cache.module_dependencies("rl4llm.rlhf.stages")
    assert "rl4llm.lm.language" in deps and "rl4llm.rlhf.reward_model" in deps
    # excluding plots cuts them (and what only they import) out
    assert not any(d.endswith(".plots") for d in cache.module_dependencies("rl4llm.rlhf.stages", ("plots",)))
    with pytest.raises(ValueError, match="module must be a module of the rl4llm package"):
        cache.module_dependencies("numpy")


def test_cache_key_changes_with_config_and_code(tmp_path, monkeypatch):
    k1 = cache.cache_key({"a": 1}, ["rl4llm.config"])
    assert k1 == cache.cache_key({"a": 1}, ["rl4llm.config"])
    assert k1 != cache.cache_key({"a": 2}, ["rl4llm.config"])
    assert k1 != cache.cache_key({"a": 1}, ["rl4llm.utils"])
    # the same description over code that imports more modules hashes more source
    assert cache.source_hash(("rl4llm.config",)) != cache.source_hash(("rl4llm.rlhf.stages",))


def test_save_load_roundtrip_atomic_and_corrupt_reads_as_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("RL4LLM_CACHE_DIR", str(tmp_path))
    path = cache.cache_dir("sub") / "x.pt"
    assert path == tmp_path / "sub" / "x.pt"
    assert cache.load(path) is None
    assert cache.save(path, {"w": torch.arange(3), "s": "text"})
    state = cache.load(path)
    assert torch.equal(state["w"], torch.arange(3)) and state["s"] == "text"
    assert [p.name for p in path.parent.iterdir()] == ["x.pt"]  # no temporary file left behind
    path.write_bytes(b"not a torch file")
    assert cache.load(path) is None
    cache.memo_put("k", 5)
    assert cache.memo_get("k") == 5
    cache.clear_memory_cache()
    assert cache.memo_get("k") is None


@dataclasses.dataclass(frozen=True)
class _Cfg:
    lr: float = param(1e-3, low=0.0, low_inclusive=False, help="learning rate")
    n_epochs: int = param(4, low=1, help="passes over each batch")
    clip_eps: float = param(0.2, low=0.0, allow_inf=True, help="clip range; inf: no clipping")
    baseline: str = param("mean", choices=("mean", "loo"), help="group baseline")
    norm_adv: bool = param(True, help="whiten advantages")
    target_kl: float | None = param(None, low=0.0, low_inclusive=False, allow_none=True, help="early stop")
    seed: int = 0

    def __post_init__(self) -> None:
        validate(self)


def test_validate_names_the_field_and_its_range():
    _Cfg()
    _Cfg(clip_eps=math.inf, target_kl=0.01)
    cases = [
        (dict(lr=0.0), "lr", r"lr must be in \(0, inf\), got 0.0"),
        (dict(n_epochs=0), "n_epochs", r"n_epochs must be in int in \[1, inf\)|n_epochs must be an int"),
        (dict(n_epochs=2.5), "n_epochs", r"n_epochs must be an int in \[1, inf\), got 2.5"),
        (dict(clip_eps=-0.1), "clip_eps", r"clip_eps must be in \[0, inf\], got -0.1"),
        (dict(lr=math.inf), "lr", r"lr must be in \(0, inf\), got inf"),
        (dict(lr=math.nan), "lr", "got nan"),
        (dict(baseline="median"), "baseline", r"baseline must be one of 'mean', 'loo'; got 'median'"),
        (dict(norm_adv=1), "norm_adv", "norm_adv must be true/false"),
        (dict(target_kl=-1.0), "target_kl", r"target_kl must be in \(0, inf\) or None, got -1.0"),
        (dict(lr=None), "lr", "lr must be .* got None"),
    ]
    for kwargs, field, message in cases:
        with pytest.raises(ConfigError, match=message) as info:
            _Cfg(**kwargs)
        assert info.value.field == field
        assert isinstance(info.value, ValueError)


def test_describe_lists_default_range_and_help():
    rows = {r["name"]: r for r in describe(_Cfg)}
    assert rows["clip_eps"] == {
        "name": "clip_eps",
        "default": 0.2,
        "range": "[0, inf]",
        "help": "clip range; inf: no clipping",
    }
    assert rows["n_epochs"]["range"] == "int in [1, inf)"
    assert rows["norm_adv"]["range"] == "true/false"
    assert rows["target_kl"]["range"] == "(0, inf) or None"
    assert rows["seed"] == {"name": "seed", "default": 0, "range": "", "help": ""}
    assert is_unbounded(math.inf) and not is_unbounded(1e9) and not is_unbounded(-math.inf)
    assert not is_unbounded(True)
