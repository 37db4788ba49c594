"""The experiment contract: declarative configs that reject every out-of-range value, and the result cache."""

from __future__ import annotations

import dataclasses
import math

import pytest

from rl4llm import cache, experiments
from rl4llm.config import ConfigError, field_spec


def _outside(spec) -> list:
    """Values just outside a field's declared range (none for a field without bounds)."""
    values = []
    step = 1 if spec.kind == "int" else 1e-9
    if spec.low is not None:
        values.append(spec.low - step if spec.low_inclusive else spec.low)
    if spec.high is not None:
        values.append(spec.high + step if spec.high_inclusive else spec.high)
    if not spec.allow_inf and (spec.high is None or spec.low is None):
        values.append(math.inf)
    if spec.kind == "int":
        values = [int(v) if not math.isinf(v) else v for v in values]
    return values


_NUMERIC = [
    (name, f.name)
    for name in experiments.list_experiments()
    for f in dataclasses.fields(experiments.get_experiment(name).config_cls)
    if field_spec(f) is not None and field_spec(f).kind in ("int", "float", "seq") and field_spec(f).choices is None
]


def test_every_numeric_field_is_covered():
    assert len(_NUMERIC) > 100  # every experiment's numbers: the parametrisation below is not empty
    assert ("rlhf", "kl_coef") in _NUMERIC and ("compounding-error", "horizons") in _NUMERIC


@pytest.mark.parametrize("name, field", _NUMERIC)
def test_config_rejects_a_value_just_outside_each_range(name, field):
    config_cls = experiments.get_experiment(name).config_cls
    spec = field_spec({f.name: f for f in dataclasses.fields(config_cls)}[field])
    bad_values = _outside(spec)
    if spec.kind == "seq":
        bad_values = [(v,) for v in bad_values]
    assert bad_values, f"{name}.{field} declares no range"
    for bad in bad_values:
        with pytest.raises(ConfigError) as info:
            config_cls(**{field: bad})
        assert info.value.field == field, (name, field, bad, str(info.value))
        assert field in str(info.value)


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("RL4LLM_CACHE_DIR", str(tmp_path))
    return tmp_path


TINY_BANDIT = dict(steps=30, runs=2, seed=3)


def test_cached_run_equals_uncached_run(cache_dir):
    plain = experiments.run_experiment("bandit", **TINY_BANDIT)
    first = experiments.run_experiment("bandit", cache=True, **TINY_BANDIT)
    assert first.artifacts["from_cache"] is False
    files = list((cache_dir / "results").glob("bandit-*.pt"))
    assert len(files) == 1
    second = experiments.run_experiment("bandit", cache=True, **TINY_BANDIT)
    assert second.artifacts["from_cache"] is True
    strip = lambda m: {k: v for k, v in m.items() if k != "wall_s"}  # noqa: E731
    assert strip(second.metrics) == strip(first.metrics) == strip(plain.metrics)
    assert second.metrics["wall_s"] == first.metrics["wall_s"]  # the original run's timing
    assert second.curves == first.curves == plain.curves
    assert second.figure is not None  # redrawn by the module's draw


def test_cache_misses_on_a_changed_config_or_source(cache_dir, monkeypatch):
    experiments.run_experiment("bandit", cache=True, **TINY_BANDIT)
    other = experiments.run_experiment("bandit", cache=True, **{**TINY_BANDIT, "lr": 0.2})
    assert other.artifacts["from_cache"] is False
    # a change in the source of any module the experiment imports changes every key that depends on it
    real = cache.source_hash

    def edited(modules, exclude=()):
        return real(modules, exclude) + ("-edited" if "rl4llm.experiments.bandit" in modules else "")

    monkeypatch.setattr(cache, "source_hash", edited)
    again = experiments.run_experiment("bandit", cache=True, **TINY_BANDIT)
    assert again.artifacts["from_cache"] is False
    assert len(list((cache_dir / "results").glob("bandit-*.pt"))) == 3


def test_result_key_follows_the_experiment_code_not_its_figures():
    deps = cache.module_dependencies("rl4llm.experiments.compounding_error", ("plots",))
    assert "rl4llm.imitation.tightrope" in deps and "rl4llm.imitation.plots" not in deps


@pytest.mark.parametrize("name", experiments.list_experiments())
def test_every_experiment_draws_and_pairs_its_cache_hooks(name):
    exp = experiments.get_experiment(name)
    assert callable(exp.draw), name
    has_state, has_restore = hasattr(exp.module, "cache_state"), hasattr(exp.module, "restore_artifacts")
    assert has_state == has_restore, f"{name}: cache_state and restore_artifacts come together"


def test_cached_artifacts_are_restored_for_the_figure(cache_dir):
    """maxent-irl's figure needs its arrays: a cache hit restores them and redraws the same maps."""
    import numpy as np

    first = experiments.run_experiment("maxent-irl", cache=True, n_iters=20)
    second = experiments.run_experiment("maxent-irl", cache=True, n_iters=20)
    assert second.artifacts["from_cache"] is True and second.metrics == first.metrics
    for key in ("learned_reward", "visits_irl", "demo_states"):
        np.testing.assert_array_equal(second.artifacts[key], first.artifacts[key])
    assert len(second.figure.axes) == len(first.figure.axes)


def test_to_state_round_trips_through_the_cache(cache_dir):
    """Numpy containers (int keys, None, tuples) survive cache.save/load as to_state/from_state write them."""
    import numpy as np

    from rl4llm.experiments import from_state, to_state

    obj = {
        "measured": {"dense": {4: [512, None], 16: [1024, 2048]}},
        "fits": {"dense": (np.float64(1.5), 0.5)},
        "grid": np.arange(3),
        "curves": {"ppo": np.ones((2, 3))},
    }
    assert cache.save(cache_dir / "x.pt", to_state(obj))
    back = from_state(cache.load(cache_dir / "x.pt"))
    assert back["measured"] == obj["measured"] and back["fits"] == {"dense": (1.5, 0.5)}
    np.testing.assert_array_equal(back["grid"], obj["grid"])
    np.testing.assert_array_equal(back["curves"]["ppo"], obj["curves"]["ppo"])


def test_validity_curves_survive_the_cache_hooks(cache_dir):
    import numpy as np

    from rl4llm.experiments import exposure_bias
    from rl4llm.imitation.exposure import ValidityCurves

    curves = {
        "sft": ValidityCurves(
            inside=np.array([1.0, 0.5]),
            intact=np.array([1.0, 0.4]),
            off_language=np.array([0.0, 0.5]),
            falls=np.array([0.0, 0.6]),
            n=10,
            fall_costs=np.array([1, 2]),
        )
    }
    result = experiments.Result(metrics={}, artifacts={"curves": curves, "curves_no_slip": {}})
    assert cache.save(cache_dir / "v.pt", exposure_bias.cache_state(result))
    back = exposure_bias.restore_artifacts(cache.load(cache_dir / "v.pt"), exposure_bias.Config())
    assert back["curves_no_slip"] == {}
    got = back["curves"]["sft"]
    assert got.n == 10 and got.cost_per_fall() == curves["sft"].cost_per_fall()
    np.testing.assert_array_equal(got.inside, curves["sft"].inside)


def test_an_uncacheable_experiment_says_so():
    with pytest.raises(ValueError, match="prompt-oirl.* cannot be cached"):
        experiments.run_experiment("prompt-oirl", cache=True)
