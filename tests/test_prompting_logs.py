"""Chapter 6: offline logs (labels, cache, NPZ/CSV layout) and the study run without any LM call."""

import numpy as np
import pytest

import rl4llm.prompting.logs as logs_mod
import rl4llm.prompting.model as model_mod
from rl4llm.experiments import run_experiment
from rl4llm.prompting import PROMPTS, Query, check_answer, collect_logs, load_logs, oirl_study, save_logs
from rl4llm.prompting.logs import PromptLogs
from rl4llm.prompting.model import answer, load_arithmetic_lm


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RL4LLM_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


class RaisingLM:
    """Stands in for the LM: any call is a test failure."""

    def __call__(self, *a, **k):
        raise AssertionError("the LM was called")

    def __getattr__(self, name):
        raise AssertionError(f"the LM was used ({name})")


def no_lm(monkeypatch):
    """Make every way of running a language model fail the test: loading, answering, embedding, any forward."""
    from transformers import GPT2LMHeadModel

    def boom(*a, **k):
        raise AssertionError("the LM was called")

    for mod in (logs_mod, model_mod):
        for name in ("answer", "load_arithmetic_lm", "prompt_features"):
            if hasattr(mod, name):
                monkeypatch.setattr(mod, name, boom)
    monkeypatch.setattr(GPT2LMHeadModel, "forward", boom)


def test_log_labels_match_the_checker_and_the_lm(cache):
    logs = collect_logs(n_queries=8, seed=3)
    assert logs.n_queries == 8 and logs.n_prompts == 12 and logs.correct.size == 96
    queries = [
        Query(
            int(t.split("+" if "+" in t else "-")[0]),
            int(t.split("+" if "+" in t else "-")[1]),
            "+" if "+" in t else "-",
        )
        for t in logs.query_text
    ]
    for r in range(logs.correct.size):
        q, p = queries[logs.query_id[r]], PROMPTS[logs.prompt_id[r]]
        assert bool(logs.correct[r]) == check_answer(q, p, str(logs.answer[r]))
        assert logs.query_type[logs.query_id[r]] == q.type
    model, tok = load_arithmetic_lm()
    rerun, conf = answer(model, tok, [(queries[logs.query_id[r]], PROMPTS[logs.prompt_id[r]]) for r in range(20)])
    assert rerun == [str(a) for a in logs.answer[:20]]
    np.testing.assert_allclose(conf, logs.confidence[:20], rtol=1e-5)
    assert (logs.confidence <= 0).all()


def test_logs_are_cached_and_reloaded_without_the_lm(cache, monkeypatch):
    first = collect_logs(n_queries=8, seed=4)
    assert len(list(cache.glob("prompting/logs-*.pt"))) == 1  # through rl4llm.cache, under its folder
    no_lm(monkeypatch)
    second = collect_logs(n_queries=8, seed=4, model=RaisingLM(), tokenizer=RaisingLM())
    for field in ("query_id", "prompt_id", "correct", "confidence", "query_feats", "prompt_feats"):
        np.testing.assert_array_equal(getattr(first, field), getattr(second, field))
    assert list(second.answer) == list(first.answer)


def make_byo_rows(n_queries=60, n_prompts=4, seed=0):
    """Logs of an imaginary LLM: prompt j works on queries whose feature falls in its quarter of [0, 1)."""
    rng = np.random.default_rng(seed)
    x = rng.random(n_queries)
    qid = np.repeat(np.arange(n_queries) * 10 + 7, n_prompts)  # arbitrary ids
    pid = np.tile(np.arange(n_prompts) + 100, n_queries)
    j = np.tile(np.arange(n_prompts), n_queries)
    xq = np.repeat(x, n_prompts)
    correct = ((xq * n_prompts).astype(int) == j).astype(float)
    return {
        "query_id": qid,
        "prompt_id": pid,
        "correct": correct,
        "query_features": xq[:, None],
        "prompt_features": np.eye(n_prompts)[j],
    }


@pytest.mark.parametrize("suffix", [".npz", ".csv"])
def test_save_load_roundtrip(tmp_path, suffix):
    logs = PromptLogs.from_rows(make_byo_rows())
    assert logs.n_queries == 60 and logs.n_prompts == 4
    assert logs.prompt_heldout.tolist() == [False, False, True, False]  # default: every third prompt
    path = save_logs(logs, tmp_path / f"logs{suffix}")
    back = load_logs(path)
    for field in ("query_id", "prompt_id", "correct", "query_feats", "prompt_feats", "prompt_heldout"):
        np.testing.assert_allclose(getattr(back, field), getattr(logs, field))
    assert np.isnan(back.confidence).all()


def test_load_logs_from_a_plain_csv(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text(
        "query_id,prompt_id,correct,q_0,p_0,p_1\n1,0,1,0.5,1,0\n1,1,0,0.5,0,1\n2,0,0,-0.5,1,0\n2,1,1,-0.5,0,1\n"
    )
    logs = load_logs(path)
    assert logs.n_queries == 2 and logs.n_prompts == 2
    np.testing.assert_array_equal(logs.matrix(), [[1, 0], [0, 1]])
    np.testing.assert_array_equal(logs.query_feats, [[0.5], [-0.5]])


def test_load_logs_bad_inputs(tmp_path):
    with pytest.raises(ValueError, match="logs_path"):
        load_logs(tmp_path / "x.json")
    with pytest.raises(ValueError, match="logs_path"):
        load_logs(tmp_path / "missing.npz")
    rows = make_byo_rows()
    del rows["correct"]
    with pytest.raises(ValueError, match="correct"):
        PromptLogs.from_rows(rows)
    rows = make_byo_rows()
    rows["prompt_id"] = np.zeros_like(rows["prompt_id"])
    with pytest.raises(ValueError, match="at most once"):
        PromptLogs.from_rows(rows)


def test_study_on_byo_logs_never_beats_the_oracle_and_uses_no_lm(tmp_path, monkeypatch):
    no_lm(monkeypatch)
    path = save_logs(PromptLogs.from_rows(make_byo_rows(n_queries=200)), tmp_path / "mine.npz")
    res = run_experiment("prompt-oirl", logs_path=str(path), sweep=False, rm_epochs=300)
    m = res.metrics
    assert m["oirl_accuracy"] <= m["oracle_accuracy"] + 1e-12
    assert m["oracle_accuracy"] == pytest.approx(2 / 3, abs=0.1)  # 2 of the 3 quarters covered by logged prompts
    assert m["oirl_accuracy"] > m["best_single_prompt_accuracy"] + 0.2
    assert np.isnan(m["confidence_accuracy"])
    for k in range(1, 4):
        mk = oirl_study(load_logs(path), n_candidates=k, controls=False, epochs=100)["metrics"]
        assert mk["oirl_accuracy"] <= mk["oracle_accuracy"] + 1e-12


def test_held_out_prompt_is_evaluated_without_the_lm(cache, monkeypatch):
    logs = collect_logs(n_queries=40, seed=5)  # one LM run, then never again
    no_lm(monkeypatch)
    study = oirl_study(logs, epochs=100)
    assert study["heldout_predicted"].shape == (4,)
    assert ((0 <= study["heldout_predicted"]) & (study["heldout_predicted"] <= 1)).all()
    res = run_experiment("prompt-oirl", n_queries=40, seed=5, sweep=False, rm_epochs=50)
    assert "rm_auc_heldout_prompts" in res.metrics


def test_experiment_config_validation():
    with pytest.raises(ValueError, match="logs_path"):
        run_experiment("prompt-oirl", logs_path="logs.txt")
    with pytest.raises(ValueError, match="test_frac"):
        run_experiment("prompt-oirl", test_frac=1.0)
    with pytest.raises(ValueError, match="n_queries"):
        run_experiment("prompt-oirl", n_queries=2)
    with pytest.raises(ValueError, match="n_candidates"):
        oirl_study(PromptLogs.from_rows(make_byo_rows()), n_candidates=9)
