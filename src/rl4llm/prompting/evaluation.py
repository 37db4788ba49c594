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

from collections.abc import Sequence
from typing import Any

import numpy as np

from rl4llm.prompting.logs import PromptLogs
from rl4llm.prompting.reward_model import fit_prompt_reward_model, roc_auc
from rl4llm.prompting.selection import evaluate_prompts, score_matrix, select_prompts
from rl4llm.utils import check_positive_int, check_range, progress

__all__ = [
    "split_queries",
    "type_prompt_accuracy",
    "oirl_study",
    "predicted_success",
    "k_sweep",
    "log_size_sweep",
    "call_budget_curve",
]


def split_queries(n_queries: int, test_frac: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded random split of query ids into (train, test)."""
    check_positive_int("n_queries", n_queries, 2)
    check_range("test_frac", test_frac, 0.0, 1.0, low_inclusive=False, high_inclusive=False)
    perm = np.random.default_rng(seed).permutation(n_queries)
    n_test = min(n_queries - 1, max(1, int(round(test_frac * n_queries))))
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


def type_prompt_accuracy(logs: PromptLogs, query_ids: np.ndarray | None = None) -> tuple[list[str], np.ndarray]:
    """Query types (sorted) and the ``[n_types, n_prompts]`` table of mean logged success per type and prompt.

    ``query_ids`` restricts the table to those queries (default: all). Logs without query types give one row,
    ``""``. Cells with no logged pair are ``nan``.
    """
    qids = np.arange(logs.n_queries) if query_ids is None else np.asarray(query_ids, dtype=np.int64)
    if qids.size == 0:
        raise ValueError("query_ids must not be empty")
    qtypes = logs.query_type[qids]
    types = sorted(set(qtypes.tolist()))
    table = logs.matrix()[qids]
    acc = np.full((len(types), logs.n_prompts), np.nan)
    for i, t in enumerate(types):
        rows = table[qtypes == t]
        seen = np.isfinite(rows).any(axis=0)
        acc[i, seen] = np.nanmean(rows[:, seen], axis=0)
    return types, acc


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


def oirl_study(
    logs: PromptLogs,
    *,
    n_candidates: int | None = None,
    n_train_queries: int | None = None,
    test_frac: float = 0.5,
    seed: int = 0,
    controls: bool = True,
    **rm_kwargs,
) -> dict[str, Any]:
    """Fit the reward model on the training queries' logs, then evaluate on held-out queries (no LM call).

    With :math:`\\Pi` the candidate prompts, :math:`X` the held-out queries and :math:`c(x, \\pi) \\in \\{0, 1\\}`
    the logged outcome, the accuracies are

    * Prompt-OIRL: :math:`\\frac1{|X|}\\sum_x c(x, \\arg\\max_{\\pi \\in \\Pi} \\hat r(x, \\pi))`;
    * best single prompt: :math:`\\frac1{|X|}\\sum_x c(x, \\pi_b)` with :math:`\\pi_b` the most accurate prompt on
      the *training* queries;
    * random: :math:`\\frac1{|X||\\Pi|}\\sum_{x, \\pi} c(x, \\pi)` (the exact expectation of a uniform choice);
    * confidence: :math:`c(x, \\arg\\max_\\pi \\bar\\ell(x, \\pi))`, :math:`\\bar\\ell` the LM's mean token log-prob;
    * oracle: :math:`\\frac1{|X|}\\sum_x \\max_\\pi c(x, \\pi)`;

    and ``gap_closed`` :math:`= (\\text{OIRL} - \\text{best}) / (\\text{oracle} - \\text{best})`.

    Args:
        logs: the offline logs (every test query must be logged with every candidate prompt).
        n_candidates: use only the first ``K`` logged (non-held-out) prompts, as candidates and as training data.
        n_train_queries: use only this many training queries' logs (the widget's "log size").
        test_frac: fraction of queries held out for evaluation.
        seed: the query split and the reward model's initialisation.
        controls: also fit the prompt-only reward model (negative control) and evaluate the held-out prompts.
        rm_kwargs: passed to :func:`~rl4llm.prompting.fit_prompt_reward_model` (``hidden``, ``epochs``, ``lr``).

    Returns:
        ``{"metrics": {...}, "model", "train_q", "test_q", "candidates", "heldout_prompts", "choice",
        "train_accuracy"}`` (``choice``: the chosen prompt id per test query), plus, with ``controls`` and
        held-out prompts, ``"heldout_predicted"``, ``"heldout_actual"`` and ``"choice_all"``.
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
        if n_train_queries > train_q.size:
            raise ValueError(
                f"n_train_queries must be in [1, {train_q.size}] (the training split), got {n_train_queries}"
            )
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
        "rm_accuracy_heldout_queries": float(
            ((score_matrix(rm, logs.query_feats[test_q], logs.prompt_feats[logged]) > 0.5) == (test_table > 0.5)).mean()
        ),
        "n_candidate_prompts": int(logged.size),
        "n_train_queries": int(train_q.size),
        "n_test_queries": int(test_q.size),
        "lm_calls_per_query_oirl": 1,
        "lm_calls_per_query_try_all": int(logged.size),
        "lm_calls_offline_logs": int(np.isfinite(table[np.ix_(train_q, logged)]).sum()),
    }
    out: dict[str, Any] = {
        "metrics": metrics,
        "model": rm,
        "train_q": train_q,
        "test_q": test_q,
        "candidates": logged,
        "heldout_prompts": heldout,
        "choice": logged[choice],
        "train_accuracy": train_acc,
    }
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


SWEEP_METRICS = (
    "oirl_accuracy",
    "best_single_prompt_accuracy",
    "random_accuracy",
    "confidence_accuracy",
    "oracle_accuracy",
    "rm_auc_heldout_queries",
)


def predicted_success(logs: PromptLogs, study: dict[str, Any]) -> np.ndarray:
    """The study's reward model's predicted success of every prompt on each held-out query, ``[n_test, n_prompts]``
    (rows follow ``study["test_q"]``)."""
    return score_matrix(study["model"], logs.query_feats[study["test_q"]], logs.prompt_feats)


def _sweep(
    logs: PromptLogs,
    key: str,
    values: list[int],
    seeds: Sequence[int],
    **kwargs: Any,
) -> list[dict[str, float]]:
    """One row per value of ``key`` (an :func:`oirl_study` argument): metrics averaged over ``seeds``."""
    seeds = [check_positive_int("seeds", s, 0) for s in seeds]
    if not seeds:
        raise ValueError("seeds must name at least one seed")
    rows = []
    for v in progress(values, desc=f"sweep {key}"):
        runs = [oirl_study(logs, seed=s, controls=False, **{key: v}, **kwargs)["metrics"] for s in seeds]
        row: dict[str, float] = {"k" if key == "n_candidates" else key: int(v)}
        for name in SWEEP_METRICS:
            row[name] = float(np.mean([m[name] for m in runs]))
        rows.append(row)
    return rows


def k_sweep(
    logs: PromptLogs,
    *,
    seed: int = 0,
    test_frac: float = 0.5,
    n_train_queries: int | None = None,
    seeds: Sequence[int] | None = None,
    **rm_kwargs: Any,
) -> list[dict[str, float]]:
    """Accuracy of OIRL and the baselines with the first ``K`` logged prompts as candidates, K = 1..all.

    One row per ``K`` (key ``"k"``); each is the mean over ``seeds`` (default: just ``seed``) of
    :func:`oirl_study`'s metrics, the reward model refitted on the logs of those ``K`` prompts only.
    """
    n_logged = int((~logs.prompt_heldout).sum())
    return _sweep(
        logs,
        "n_candidates",
        list(range(1, n_logged + 1)),
        [seed] if seeds is None else seeds,
        test_frac=test_frac,
        n_train_queries=n_train_queries,
        **rm_kwargs,
    )


def log_size_sweep(
    logs: PromptLogs,
    sizes: Sequence[int],
    *,
    seeds: Sequence[int] = (0,),
    test_frac: float = 0.5,
    n_candidates: int | None = None,
    **rm_kwargs: Any,
) -> list[dict[str, float]]:
    """Accuracy of OIRL and the baselines when the offline logs hold only ``n`` training queries, for ``n`` in
    ``sizes`` (each logged with every candidate prompt). One row per size (key ``"n_train_queries"``), the mean
    over ``seeds`` (each seed a different split of the queries and a different reward-model initialisation)."""
    sizes = [check_positive_int("sizes", n, 1) for n in sizes]
    if not sizes:
        raise ValueError("sizes must name at least one log size")
    return _sweep(logs, "n_train_queries", sizes, seeds, test_frac=test_frac, n_candidates=n_candidates, **rm_kwargs)


def call_budget_curve(
    logs: PromptLogs,
    study: dict[str, Any],
    *,
    n_draws: int = 20,
    seed: int = 0,
) -> list[dict[str, float]]:
    """Accuracy on the study's held-out queries against the number ``m`` of LM calls spent per query.

    With ``m`` calls per query, two ways to spend them (both keep the answer the LM is most confident in, the
    only judge available without the answer key):

    * ``oirl_top_m``: try the ``m`` prompts that the reward model ranks highest (``m = 1`` is Prompt-OIRL);
    * ``random_m``: try ``m`` prompts drawn at random (mean over ``n_draws`` seeded draws);

    and ``oracle_top_m``: a query counts as solved if any of the reward model's top ``m`` prompts solves it. At
    ``m = K`` both ways try every candidate and equal the confidence baseline. Needs logged confidences.
    """
    check_positive_int("n_draws", n_draws)
    test_q, cands = study["test_q"], study["candidates"]
    correct = logs.matrix()[np.ix_(test_q, cands)]
    conf = logs.matrix(logs.confidence)[np.ix_(test_q, cands)]
    if not np.isfinite(conf).all():
        raise ValueError("logs must hold the LM's confidence for every held-out query and candidate prompt")
    scores = score_matrix(study["model"], logs.query_feats[test_q], logs.prompt_feats[cands])
    ranked = np.argsort(-scores, axis=1, kind="stable")  # best-scored prompt first
    rng = np.random.default_rng(seed)
    rows_idx = np.arange(test_q.size)[:, None]
    out = []
    for m in range(1, cands.size + 1):
        top = ranked[:, :m]
        keep = top[np.arange(test_q.size), np.argmax(conf[rows_idx, top], axis=1)]
        random_acc = []
        for _ in range(n_draws):
            draw = np.argsort(rng.random(correct.shape), axis=1)[:, :m]
            pick = draw[np.arange(test_q.size), np.argmax(conf[rows_idx, draw], axis=1)]
            random_acc.append(correct[np.arange(test_q.size), pick].mean())
        out.append(
            {
                "calls": m,
                "oirl_top_m": float(correct[np.arange(test_q.size), keep].mean()),
                "random_m": float(np.mean(random_acc)),
                "oracle_top_m": float(correct[rows_idx, top].max(axis=1).mean()),
            }
        )
    return out
