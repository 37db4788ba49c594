"""Prompt evaluation and query-dependent prompt optimisation with a fitted reward model (no LM call).

* Evaluation: the expected success of prompt :math:`\\pi` on a query set :math:`X` is estimated as
  :math:`\\hat V(\\pi) = \\frac1{|X|}\\sum_{x \\in X} \\hat r(x, \\pi)` (:func:`evaluate_prompts`).
* Optimisation: per query, the prompt with the highest predicted success,
  :math:`\\pi^*(x) = \\arg\\max_{\\pi \\in \\Pi} \\hat r(x, \\pi)` (:func:`select_prompts`).

Both only call the reward model, so scoring a new prompt on a thousand queries costs a thousand MLP evaluations,
not a thousand LLM calls (``book/06-prompting/2-prompt-oirl.md``).
"""

from __future__ import annotations

import numpy as np

__all__ = ["select_prompts", "evaluate_prompts", "score_matrix"]


def _check(query_features, candidate_prompt_features) -> tuple[np.ndarray, np.ndarray]:
    q = np.asarray(query_features, dtype=np.float64)
    c = np.asarray(candidate_prompt_features, dtype=np.float64)
    if q.ndim != 2 or q.shape[0] == 0:
        raise ValueError(f"query_features must be a non-empty 2-D array [n_queries, dq], got shape {q.shape}")
    if c.ndim != 2 or c.shape[0] == 0:
        raise ValueError(
            f"candidate_prompt_features must be a non-empty 2-D array [n_prompts, dp], got shape {c.shape}"
        )
    return q, c


def score_matrix(model, query_features, candidate_prompt_features) -> np.ndarray:
    """``[n_queries, n_prompts]`` predicted success of every candidate prompt on every query."""
    q, c = _check(query_features, candidate_prompt_features)
    n, k = q.shape[0], c.shape[0]
    probs = model.predict_proba(np.repeat(q, k, axis=0), np.tile(c, (n, 1)))
    return np.asarray(probs, dtype=np.float64).reshape(n, k)


def select_prompts(model, query_features, candidate_prompt_features) -> np.ndarray:
    """Per query, the index of the candidate prompt with the highest predicted
    success: ``[n_queries]`` ints.

    :math:`\\pi^*(x_i) = \\arg\\max_j \\hat r(x_i, \\pi_j)`, where
    ``model.predict_proba(Q, P)`` scores row-aligned pairs (``Q`` ``[m, dq]``,
    ``P`` ``[m, dp]``). Ties go to the lowest index.

    Args:
        model: a fitted reward model (e.g. from
            :func:`~rl4llm.prompting.fit_prompt_reward_model`).
        query_features: ``[n_queries, dq]``.
        candidate_prompt_features: ``[n_prompts, dp]``, one row per candidate.
    """
    q, c = _check(query_features, candidate_prompt_features)
    # BEGIN SOLUTION
    n, k = q.shape[0], c.shape[0]
    pairs_q = np.repeat(q, k, axis=0)  # query i repeated k times: rows i*k .. i*k+k-1
    pairs_p = np.tile(c, (n, 1))  # candidates 0..k-1, once per query
    scores = np.asarray(model.predict_proba(pairs_q, pairs_p), dtype=np.float64)
    return np.argmax(scores.reshape(n, k), axis=1).astype(np.int64)
    # END SOLUTION


def evaluate_prompts(model, query_features, candidate_prompt_features) -> np.ndarray:
    """``[n_prompts]``: each candidate's predicted success rate on the query set, :math:`\\hat V(\\pi)`."""
    return score_matrix(model, query_features, candidate_prompt_features).mean(axis=0)
