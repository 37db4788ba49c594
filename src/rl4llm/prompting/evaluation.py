"""One Prompt-OIRL study on a set of logs: fit the reward model on the training queries' logs, then compare
query-dependent selection with the baselines on held-out queries, using only logged labels (no LM call).

Baselines (all restricted to the same candidate prompts):

* **best single prompt**: the prompt with the highest accuracy on the training logs, used for every query;
* **random**: a uniformly random candidate per query (its exact expectation is reported);
* **confidence**: per query, the prompt whose answer the LM is most confident in (mean token log-prob); it needs
  one LM call per candidate prompt per query;
* **oracle**: a query counts as solved if any candidate solves it (an upper bound needing every call and the
  true answer);
* **prompt-only reward model** (negative control): the same reward model fitted with the query features zeroed,
  so it can only rank prompts globally; it should fall back to the best single prompt.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rl4llm.prompting.logs import PromptLogs
from rl4llm.prompting.reward_model import fit_prompt_reward_model, roc_auc
from rl4llm.prompting.selection import evaluate_prompts, score_matrix, select_prompts
from rl4llm.utils import check_positive_int, check_range

__all__ = ["split_queries", "oirl_study", "k_sweep"]


def split_queries(n_queries: int, test_frac: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded random split of query ids into (train, test)."""
    check_positive_int("n_queries", n_queries, 2)
    check_range("test_frac", test_frac, 0.0, 1.0, low_inclusive=False, high_inclusive=False)
    perm = np.random.default_rng(seed).permutation(n_queries)
    n_test = min(n_queries - 1, max(1, int(round(test_frac * n_queries))))
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


def _fit(logs: PromptLogs, qids: np.ndarray, pids: np.ndarray, seed: int, zero_queries: bool = False, **rm_kwargs):
    table = logs.matrix()
    qq, pp = np.meshgrid(qids, pids, indexing="ij")
    qq, pp = qq.ravel(), pp.ravel()
    keep = np.isfinite(table[qq, pp])
    qq, pp = qq[keep], pp[keep]
    qf = logs.query_feats[qq]
    if zero_queries:
        qf = np.zeros_like(qf)
    return fit_prompt_reward_model(qf, logs.prompt_feats[pp], table[qq, pp], seed, **rm_kwargs)


def _auc(model, logs: PromptLogs, qids: np.ndarray, pids: np.ndarray) -> float:
    if qids.size == 0 or pids.size == 0:
        return float("nan")
    scores = score_matrix(model, logs.query_feats[qids], logs.prompt_feats[pids])
    labels = logs.matrix()[np.ix_(qids, pids)]
    ok = np.isfinite(labels)
    return roc_auc(scores[ok], labels[ok])


def oirl_study(logs: PromptLogs, *, n_candidates: int | None = None, n_train_queries: int | None = None,
               test_frac: float = 0.5, seed: int = 0, controls: bool = True, **rm_kwargs) -> dict[str, Any]:
    """Fit on logs, evaluate on held-out queries. Returns ``{"metrics": {...}, ...arrays}``.

    Args:
        logs: the offline logs (every test query must be logged with every candidate prompt).
        n_candidates: use only the first ``K`` logged (non-held-out) prompts, as candidates and as training data.
        n_train_queries: use only this many training queries' logs (the widget's "log size").
        test_frac: fraction of queries held out for evaluation.
        controls: also fit the prompt-only reward model and evaluate held-out prompts.
    """
    check_range("test_frac", test_frac, 0.0, 1.0, low_inclusive=False, high_inclusive=False)
    logged = np.flatnonzero(~logs.prompt_heldout)
    heldout = np.flatnonzero(logs.prompt_heldout)
    if logged.size == 0:
        raise ValueError("logs must contain at least one prompt that is not held out")
    if n_candidates is not None:
        check_positive_int("n_candidates", n_candidates)
        if n_candidates > logged.size:
            raise ValueError(f"n_candidates must be in [1, {logged.size}], got {n_candidates}")
        logged = logged[:n_candidates]
    table = logs.matrix()
    train_q, test_q = split_queries(logs.n_queries, test_frac, seed)
    if n_train_queries is not None:
        check_positive_int("n_train_queries", n_train_queries, 1)
        train_q = train_q[:n_train_queries]
    everything = np.concatenate([logged, heldout])
    test_q = test_q[np.isfinite(table[np.ix_(test_q, everything)]).all(axis=1)]
    if test_q.size == 0:
        raise ValueError("no held-out query is logged with every prompt: cannot evaluate selection")

    rm = _fit(logs, train_q, logged, seed, **rm_kwargs)
    test_table = table[np.ix_(test_q, logged)]
    choice = select_prompts(rm, logs.query_feats[test_q], logs.prompt_feats[logged])
    oirl = float(test_table[np.arange(test_q.size), choice].mean())
    train_acc = np.nanmean(table[np.ix_(train_q, logged)], axis=0)
    best = int(np.argmax(train_acc))
    best_acc = float(test_table[:, best].mean())
    oracle = float(test_table.max(axis=1).mean())
    conf_table = logs.matrix(logs.confidence)[np.ix_(test_q, logged)]
    if np.isfinite(conf_table).all():
        conf_choice = np.argmax(conf_table, axis=1)
        conf_acc = float(test_table[np.arange(test_q.size), conf_choice].mean())
    else:
        conf_acc = float("nan")
    gap = oracle - best_acc
    metrics: dict[str, Any] = {
        "oirl_accuracy": oirl,
        "best_single_prompt_accuracy": best_acc,
        "best_single_prompt": str(logs.prompt_name[logged[best]]),
        "oracle_accuracy": oracle,
        "confidence_accuracy": conf_acc,
        "random_accuracy": float(test_table.mean()),
        "gap_closed": float((oirl - best_acc) / gap) if gap > 1e-12 else float("nan"),
        "rm_auc_heldout_queries": _auc(rm, logs, test_q, logged),
        "rm_accuracy_heldout_queries": float(((score_matrix(rm, logs.query_feats[test_q], logs.prompt_feats[logged])
                                               > 0.5) == (test_table > 0.5)).mean()),
        "n_candidate_prompts": int(logged.size),
        "n_train_queries": int(train_q.size),
        "n_test_queries": int(test_q.size),
        "lm_calls_per_query_oirl": 1,
        "lm_calls_per_query_try_all": int(logged.size),
    }
    out: dict[str, Any] = {"metrics": metrics, "model": rm, "train_q": train_q, "test_q": test_q,
                           "candidates": logged, "heldout_prompts": heldout, "choice": logged[choice],
                           "train_accuracy": train_acc}
    if controls:
        rm0 = _fit(logs, train_q, logged, seed, zero_queries=True, **rm_kwargs)
        choice0 = select_prompts(rm0, np.zeros_like(logs.query_feats[test_q]), logs.prompt_feats[logged])
        metrics["prompt_only_accuracy"] = float(test_table[np.arange(test_q.size), choice0].mean())
        metrics["prompt_only_n_distinct_choices"] = int(np.unique(choice0).size)
        if heldout.size:
            metrics["rm_auc_heldout_prompts"] = _auc(rm, logs, train_q, heldout)
            metrics["rm_auc_heldout_queries_and_prompts"] = _auc(rm, logs, test_q, heldout)
            allp = np.concatenate([logged, heldout])
            full = table[np.ix_(test_q, allp)]
            choice_all = select_prompts(rm, logs.query_feats[test_q], logs.prompt_feats[allp])
            metrics["oirl_accuracy_all_prompts"] = float(full[np.arange(test_q.size), choice_all].mean())
            metrics["oracle_accuracy_all_prompts"] = float(full.max(axis=1).mean())
            predicted = evaluate_prompts(rm, logs.query_feats[test_q], logs.prompt_feats[heldout])
            actual = table[np.ix_(test_q, heldout)].mean(axis=0)
            metrics["heldout_prompt_eval_mae"] = float(np.abs(predicted - actual).mean())
            out["heldout_predicted"] = predicted
            out["heldout_actual"] = actual
            out["choice_all"] = allp[choice_all]
    return out


def k_sweep(logs: PromptLogs, *, seed: int = 0, test_frac: float = 0.5, n_train_queries: int | None = None,
            **rm_kwargs) -> list[dict[str, float]]:
    """Accuracy of OIRL, best single prompt, random and oracle with the first ``K`` logged prompts, K = 1..all."""
    rows = []
    n_logged = int((~logs.prompt_heldout).sum())
    for k in range(1, n_logged + 1):
        m = oirl_study(logs, n_candidates=k, seed=seed, test_frac=test_frac, n_train_queries=n_train_queries,
                       controls=False, **rm_kwargs)["metrics"]
        rows.append({"k": k, "oirl_accuracy": m["oirl_accuracy"], "best_single_prompt_accuracy":
                     m["best_single_prompt_accuracy"], "random_accuracy": m["random_accuracy"],
                     "confidence_accuracy": m["confidence_accuracy"], "oracle_accuracy": m["oracle_accuracy"]})
    return rows
