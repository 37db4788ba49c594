"""Chapter 6: the Prompt-OIRL study on the book's logs (tiny runs), its sweeps and cost curve, the negative control,
bring-your-own logs from the shell, and (slow) the chapter's claim at the experiment's defaults."""

import json

import numpy as np
import pytest
from test_prompting_logs import make_byo_rows, no_lm

from rl4llm.cli import main as cli_main
from rl4llm.experiments import run_experiment
from rl4llm.prompting import (
    PromptLogs,
    call_budget_curve,
    collect_logs,
    k_sweep,
    load_logs,
    log_size_sweep,
    oirl_study,
    save_logs,
    type_prompt_accuracy,
)


@pytest.fixture(scope="module")
def tiny_logs():
    """The book's LM on 64 queries x 12 prompts (not cached on disk)."""
    return collect_logs(n_queries=64, seed=1, use_cache=False)


def test_reward_model_beats_chance_on_held_out_pairs_of_a_tiny_run(tiny_logs, monkeypatch):
    no_lm(monkeypatch)
    m = oirl_study(tiny_logs, seed=0, epochs=200)["metrics"]
    assert m["n_train_queries"] == 32 and m["n_test_queries"] == 32
    # chance is an AUC of 0.5; even 32 training queries (256 logged pairs) give a clearly informative model
    assert m["rm_auc_heldout_queries"] > 0.7
    assert m["rm_auc_heldout_prompts"] > 0.7
    assert m["oirl_accuracy"] > m["best_single_prompt_accuracy"] + 0.2
    assert m["oirl_accuracy"] <= m["oracle_accuracy"]
    assert m["lm_calls_offline_logs"] == 32 * 8  # every training query with every logged prompt


def test_negative_control_falls_back_to_the_best_single_prompt(tiny_logs):
    """A reward model blind to the query can only rank prompts globally: one prompt for every query."""
    m = oirl_study(tiny_logs, seed=0, epochs=200)["metrics"]
    assert m["prompt_only_n_distinct_choices"] == 1
    assert m["prompt_only_accuracy"] == pytest.approx(m["best_single_prompt_accuracy"])


def test_baselines_by_hand_on_a_four_query_log():
    """Two prompts, four queries; seed 0's split trains on queries 1, 3 and tests on 0, 2 (checked below)."""
    correct = np.array([[0, 1], [1, 1], [1, 1], [1, 0]], dtype=float)  # [query, prompt]
    conf = np.array([[-0.1, -0.5], [-0.2, -0.1], [-0.1, -0.9], [-0.1, -0.3]])
    rows = {
        "query_id": np.repeat(np.arange(4), 2),
        "prompt_id": np.tile(np.arange(2), 4),
        "correct": correct.ravel(),
        "confidence": conf.ravel(),
        "query_features": np.repeat(np.arange(4.0), 2)[:, None],
        "prompt_features": np.tile(np.eye(2), (4, 1)),
        "heldout_prompt": np.zeros(8),
    }
    study = oirl_study(PromptLogs.from_rows(rows), seed=0, epochs=20, controls=False)
    m = study["metrics"]
    assert study["train_q"].tolist() == [1, 3] and study["test_q"].tolist() == [0, 2]
    # training accuracy: prompt 0 = 2/2, prompt 1 = 1/2, so prompt 0 is the best single prompt; on test: 1/2
    np.testing.assert_allclose(study["train_accuracy"], [1.0, 0.5])
    assert m["best_single_prompt_accuracy"] == pytest.approx(0.5)
    assert m["random_accuracy"] == pytest.approx(3 / 4)  # mean of [[0, 1], [1, 1]]
    assert m["oracle_accuracy"] == pytest.approx(1.0)
    # confidence: query 0 -> prompt 0 (-0.1 > -0.5), wrong; query 2 -> prompt 0, right
    assert m["confidence_accuracy"] == pytest.approx(0.5)
    assert m["lm_calls_per_query_try_all"] == 2 and m["lm_calls_offline_logs"] == 4
    assert m["gap_closed"] == pytest.approx((m["oirl_accuracy"] - 0.5) / (1.0 - 0.5))


def test_type_prompt_accuracy_hand_case():
    rows = make_byo_rows(n_queries=4, n_prompts=2)
    rows["correct"] = np.array([1, 0, 1, 1, 0, 0, 0, 1], dtype=float)  # [query, prompt] row-major
    rows["query_type"] = np.repeat(np.array(["b", "a", "b", "a"]), 2)
    types, acc = type_prompt_accuracy(PromptLogs.from_rows(rows))
    assert types == ["a", "b"]
    # type a = queries 1, 3: [1, 1] and [0, 1]; type b = queries 0, 2: [1, 0] and [0, 0]
    np.testing.assert_allclose(acc, [[0.5, 1.0], [0.5, 0.0]])


def test_k_sweep_invariants(tiny_logs):
    rows = k_sweep(tiny_logs, seed=0, epochs=100)
    assert [r["k"] for r in rows] == list(range(1, 9))
    one = rows[0]  # one candidate: every method uses it
    for key in ("oirl_accuracy", "best_single_prompt_accuracy", "random_accuracy", "confidence_accuracy"):
        assert one[key] == pytest.approx(one["oracle_accuracy"])
    oracle = [r["oracle_accuracy"] for r in rows]
    assert all(b >= a for a, b in zip(oracle, oracle[1:]))  # nested candidate sets
    assert all(r["oirl_accuracy"] <= r["oracle_accuracy"] + 1e-12 for r in rows)


def test_log_size_sweep_grows_with_the_log(tiny_logs):
    rows = log_size_sweep(tiny_logs, [2, 32], seeds=(0, 1), epochs=200)
    assert [r["n_train_queries"] for r in rows] == [2, 32]
    assert rows[1]["rm_auc_heldout_queries"] > rows[0]["rm_auc_heldout_queries"]
    with pytest.raises(ValueError, match="n_train_queries must be in"):
        log_size_sweep(tiny_logs, [33])
    with pytest.raises(ValueError, match="seeds"):
        log_size_sweep(tiny_logs, [4], seeds=())


def test_call_budget_curve_end_points(tiny_logs):
    study = oirl_study(tiny_logs, seed=0, epochs=200, controls=False)
    m = study["metrics"]
    rows = call_budget_curve(tiny_logs, study, n_draws=5)
    assert [r["calls"] for r in rows] == list(range(1, 9))
    assert rows[0]["oirl_top_m"] == pytest.approx(m["oirl_accuracy"])  # one call: the RM's pick
    assert rows[0]["oracle_top_m"] == pytest.approx(m["oirl_accuracy"])
    assert rows[0]["random_m"] == pytest.approx(m["random_accuracy"], abs=0.15)
    last = rows[-1]  # every candidate tried: both become the confidence baseline
    assert last["oirl_top_m"] == pytest.approx(m["confidence_accuracy"])
    assert last["random_m"] == pytest.approx(m["confidence_accuracy"])
    assert last["oracle_top_m"] == pytest.approx(m["oracle_accuracy"])
    tops = [r["oracle_top_m"] for r in rows]
    assert all(b >= a for a, b in zip(tops, tops[1:]))


def test_byo_logs_from_the_shell(tmp_path, monkeypatch, capsys):
    """`rl4llm run prompt-oirl --logs-path mine.csv` runs on logs from a file; no LM is involved."""
    no_lm(monkeypatch)
    path = save_logs(PromptLogs.from_rows(make_byo_rows(n_queries=120)), tmp_path / "mine.csv")
    out = tmp_path / "run"
    code = cli_main(
        [
            "run",
            "prompt-oirl",
            "--out",
            str(out),
            "--logs-path",
            str(path),
            "--sweep",
            "false",
            "--rm-epochs",
            "200",
            "--export-logs",
            str(tmp_path / "copy.npz"),
        ]
    )
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["logs"] == str(path)
    assert metrics["oirl_accuracy"] > metrics["best_single_prompt_accuracy"] + 0.2
    assert metrics["oirl_accuracy"] <= metrics["oracle_accuracy"]
    assert (out / "figure.png").stat().st_size > 0
    back, orig = load_logs(tmp_path / "copy.npz"), load_logs(path)
    np.testing.assert_array_equal(back.matrix(), orig.matrix())
    capsys.readouterr()
    assert cli_main(["run", "prompt-oirl", "--out", str(out), "--logs-path", "mine.json"]) == 2
    assert "--logs-path must be empty or end in .npz or .csv" in capsys.readouterr().err


def test_new_config_fields_are_validated():
    with pytest.raises(ValueError, match="n_candidates"):
        run_experiment("prompt-oirl", n_candidates=-1)
    with pytest.raises(ValueError, match="n_train_queries"):
        run_experiment("prompt-oirl", n_train_queries=-2)
    with pytest.raises(ValueError, match="export_logs"):
        run_experiment("prompt-oirl", export_logs="logs.parquet")


@pytest.mark.slow
def test_defaults_beat_the_best_single_prompt_and_stay_below_the_oracle(tmp_path, monkeypatch):
    """Issue 8's claim at the experiment's defaults (logs collected afresh: 800 queries x 12 prompts)."""
    monkeypatch.setenv("RL4LLM_CACHE_DIR", str(tmp_path / "cache"))
    m = run_experiment("prompt-oirl", sweep=False).metrics
    assert m["oirl_accuracy"] > m["best_single_prompt_accuracy"] + 0.3
    assert m["oirl_accuracy"] < m["oracle_accuracy"]
    assert m["gap_closed"] > 0.7
    assert m["rm_auc_heldout_queries"] > 0.85 and m["rm_auc_heldout_prompts"] > 0.85
    assert m["prompt_only_accuracy"] == pytest.approx(m["best_single_prompt_accuracy"])
    assert m["lm_calls_per_query_oirl"] == 1 and m["lm_calls_per_query_try_all"] == 8
    for t in ("add-no-carry", "add-carry", "sub-no-borrow", "sub-borrow"):  # competence regions
        assert m[f"best_prompt_accuracy_on_{t}"] >= 0.5
    assert (
        len({m[f"best_prompt_on_{t}"].split()[0] for t in ("add-no-carry", "add-carry", "sub-no-borrow", "sub-borrow")})
        == 4
    )  # no prompt best everywhere
