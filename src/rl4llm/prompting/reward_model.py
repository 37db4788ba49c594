"""Prompt-OIRL's offline reward model: :math:`\\hat r(x, \\pi) \\approx P(\\text{correct} \\mid x, \\pi)`.

Sun, Hüyük & van der Schaar (ICLR 2024) learn, from offline logs of ``(query x, prompt pi, correct?)``, a
classifier over features of the query and of the prompt. Here it is a small MLP on the concatenated, standardised
features, trained with the binary cross-entropy

.. math:: \\mathcal L = -\\frac1n \\sum_i \\big[y_i \\log \\sigma(f_i) + (1 - y_i) \\log(1 - \\sigma(f_i))\\big],

where :math:`f_i = f_\\theta(\\phi(x_i), \\psi(\\pi_i))` is the logit. Because the prompt enters through its
features :math:`\\psi(\\pi)`, the model also scores prompts that were never tried (held-out prompts). Everything
here takes plain arrays, so it works on any LLM's logs (``book/06-prompting/2-prompt-oirl.md``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from rl4llm.utils import check_positive_int, check_range

__all__ = ["PromptRewardModel", "prompt_reward_loss", "roc_auc", "fit_prompt_reward_model", "check_logs_arrays"]


def prompt_reward_loss(logits: torch.Tensor, correct: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of success logits ``[n]`` against 0/1 labels ``[n]``,
    averaged (a scalar).

    :math:`-\\frac1n\\sum_i [y_i \\log\\sigma(f_i) + (1-y_i)\\log(1-\\sigma(f_i))]`,
    computed stably as
    :math:`\\frac1n\\sum_i [\\operatorname{softplus}(f_i) - y_i f_i]`.
    """
    if logits.shape != correct.shape:
        raise ValueError(
            f"logits and correct must have the same shape, got {tuple(logits.shape)} and {tuple(correct.shape)}"
        )
    # BEGIN SOLUTION
    y = correct.to(logits.dtype)
    return (torch.nn.functional.softplus(logits) - y * logits).mean()
    # END SOLUTION


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve: the probability that a random positive scores above a random negative.

    :math:`\\text{AUC} = P(s^+ > s^-) + \\tfrac12 P(s^+ = s^-)`, computed from average ranks (Mann-Whitney U):
    :math:`\\text{AUC} = (R^+ - n^+(n^+ + 1)/2) / (n^+ n^-)`, with :math:`R^+` the sum of the positives' ranks
    (ties get their average rank). ``nan`` when only one class is present.
    """
    scores = np.asarray(scores, dtype=float).ravel()
    labels = np.asarray(labels).ravel()
    if scores.shape != labels.shape:
        raise ValueError(f"scores and labels must have the same length, got {scores.size} and {labels.size}")
    # BEGIN SOLUTION
    pos = labels == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    ranks = np.empty(scores.size)
    i = 0
    while i < scores.size:  # average rank (1-based) over each block of ties
        j = i
        while j + 1 < scores.size and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
    # END SOLUTION


def check_logs_arrays(
    query_features, prompt_features, correct=None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Validate and convert log arrays: ``[n, dq]``, ``[n, dp]`` finite floats, ``[n]`` 0/1 labels."""
    q = np.asarray(query_features, dtype=np.float64)
    p = np.asarray(prompt_features, dtype=np.float64)
    if q.ndim != 2:
        raise ValueError(f"query_features must be a 2-D array [n, dq], got shape {q.shape}")
    if p.ndim != 2:
        raise ValueError(f"prompt_features must be a 2-D array [n, dp], got shape {p.shape}")
    if q.shape[0] != p.shape[0]:
        raise ValueError(
            f"query_features and prompt_features must have the same number of rows, got {q.shape[0]} and {p.shape[0]}"
        )
    if not np.isfinite(q).all():
        raise ValueError("query_features must be finite (no NaN or inf)")
    if not np.isfinite(p).all():
        raise ValueError("prompt_features must be finite (no NaN or inf)")
    y = None
    if correct is not None:
        y = np.asarray(correct, dtype=np.float64)
        if y.shape != (q.shape[0],):
            raise ValueError(f"correct must be a 1-D array of length n={q.shape[0]}, got shape {y.shape}")
        if not np.isin(y, (0.0, 1.0)).all():
            raise ValueError("correct must contain only 0 and 1")
    return q, p, y


@dataclass
class PromptRewardModel:
    """A fitted reward model: standardisation statistics and the MLP. Call :meth:`predict_proba`."""

    net: torch.nn.Module
    q_mean: np.ndarray
    q_std: np.ndarray
    p_mean: np.ndarray
    p_std: np.ndarray

    def logits(self, query_features, prompt_features) -> np.ndarray:
        """Success logits ``[n]`` of row-aligned pairs (``[n, dq]``, ``[n, dp]``)."""
        q, p, _ = check_logs_arrays(query_features, prompt_features)
        if q.shape[1] != self.q_mean.size:
            raise ValueError(f"query_features must have {self.q_mean.size} columns, got {q.shape[1]}")
        if p.shape[1] != self.p_mean.size:
            raise ValueError(f"prompt_features must have {self.p_mean.size} columns, got {p.shape[1]}")
        x = np.concatenate([(q - self.q_mean) / self.q_std, (p - self.p_mean) / self.p_std], axis=1)
        with torch.no_grad():
            return self.net(torch.as_tensor(x, dtype=torch.float32))[:, 0].double().numpy()

    def predict_proba(self, query_features, prompt_features) -> np.ndarray:
        """Predicted :math:`P(\\text{correct} \\mid x, \\pi)` ``[n]`` of row-aligned pairs."""
        return 1.0 / (1.0 + np.exp(-self.logits(query_features, prompt_features)))


def fit_prompt_reward_model(
    query_features,
    prompt_features,
    correct,
    seed: int,
    *,
    hidden: int = 64,
    epochs: int = 400,
    lr: float = 1e-2,
    weight_decay: float = 1e-4,
) -> PromptRewardModel:
    """Fit the offline reward model on logs given as arrays ``[n, dq]``, ``[n, dp]``, ``[n]`` (0/1).

    Row ``i`` says that prompt features ``prompt_features[i]`` on query features ``query_features[i]`` gave a
    correct answer (``correct[i] = 1``) or not. Full-batch Adam on :func:`prompt_reward_loss`, a two-hidden-layer
    MLP; deterministic for a given ``seed`` (on CPU).
    """
    q, p, y = check_logs_arrays(query_features, prompt_features, correct)
    if q.shape[0] < 2:
        raise ValueError(f"query_features must have at least 2 rows, got {q.shape[0]}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")
    check_positive_int("hidden", hidden)
    check_positive_int("epochs", epochs)
    check_range("lr", lr, 0.0, None, low_inclusive=False)
    check_range("weight_decay", weight_decay, 0.0, None)

    def stats(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean, std = a.mean(0), a.std(0)
        return mean, np.where(std > 1e-8, std, 1.0)

    q_mean, q_std = stats(q)
    p_mean, p_std = stats(p)
    x = torch.as_tensor(np.concatenate([(q - q_mean) / q_std, (p - p_mean) / p_std], axis=1), dtype=torch.float32)
    target = torch.as_tensor(y, dtype=torch.float32)
    gen = torch.Generator().manual_seed(int(seed))
    net = torch.nn.Sequential(
        torch.nn.Linear(x.shape[1], hidden),
        torch.nn.ReLU(),
        torch.nn.Linear(hidden, hidden),
        torch.nn.ReLU(),
        torch.nn.Linear(hidden, 1),
    )
    with torch.no_grad():
        for layer in net:
            if isinstance(layer, torch.nn.Linear):
                bound = 1.0 / np.sqrt(layer.in_features)
                layer.weight.copy_(torch.empty_like(layer.weight).uniform_(-bound, bound, generator=gen))
                layer.bias.zero_()
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
    for _ in range(epochs):
        loss = prompt_reward_loss(net(x)[:, 0], target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    return PromptRewardModel(net=net, q_mean=q_mean, q_std=q_std, p_mean=p_mean, p_std=p_std)
