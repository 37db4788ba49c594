"""The learner of chapter 3: a linear softmax policy fitted by supervised learning (book section 3.1).

Behaviour cloning and DAgger differ only in *which states* the learner is trained on; the learner itself is the
same supervised classifier. Here it is multinomial logistic regression on a feature vector :math:`\\phi(o)`,

.. math::  \\pi_\\theta(a \\mid o) = \\operatorname{softmax}(W \\phi(o) + b)_a,

fitted by minimising the cross-entropy to the expert's labels (:func:`bc_loss`) plus a small L2 penalty, with
L-BFGS (the problem is convex, so the optimum does not depend on the optimiser). Acting is greedy.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from gymnasium import spaces

from rl4llm.utils import check_positive_int, check_range

__all__ = ["bc_loss", "LinearSoftmaxPolicy", "fit_softmax_policy", "one_hot_featurizer"]


def bc_loss(logits: torch.Tensor, expert_actions: torch.Tensor) -> torch.Tensor:
    """Behaviour-cloning loss: the mean negative log-likelihood of the expert's actions.

    .. math::  L(\\theta) = -\\frac1N \\sum_{i=1}^N \\log \\pi_\\theta(a^*_i \\mid s_i)
               = -\\frac1N \\sum_i \\Big[z_{i, a^*_i} - \\log \\sum_b e^{z_{i,b}}\\Big]

    Args:
        logits: ``[N, A]`` unnormalised scores :math:`z`.
        expert_actions: ``[N]`` integer labels in ``[0, A)``.
    Returns:
        a scalar tensor.
    """
    if logits.ndim != 2:
        raise ValueError(f"logits must be [N, A], got shape {tuple(logits.shape)}")
    if expert_actions.shape != logits.shape[:1]:
        raise ValueError(f"expert_actions must be [N] = [{logits.shape[0]}], got {tuple(expert_actions.shape)}")
    # BEGIN SOLUTION
    log_probs = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    picked = log_probs.gather(1, expert_actions.long().unsqueeze(1)).squeeze(1)
    return -picked.mean()
    # END SOLUTION


class LinearSoftmaxPolicy:
    """:math:`\\pi(a \\mid o) = \\operatorname{softmax}(W\\phi(o) + b)`; :meth:`act` is greedy (ties -> lowest index)."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray, featurize: Callable[[np.ndarray], np.ndarray]):
        self.weight = np.asarray(weight, dtype=np.float64)  # [A, d]
        self.bias = np.asarray(bias, dtype=np.float64)  # [A]
        self.featurize = featurize

    @property
    def n_actions(self) -> int:
        return self.weight.shape[0]

    def logits(self, observations: np.ndarray) -> np.ndarray:
        """``[N, A]`` logits for a batch of observations (``[N, ...]``)."""
        if len(observations) == 0:
            return np.zeros((0, self.n_actions))
        feats = np.stack([self.featurize(o) for o in observations])
        return feats @ self.weight.T + self.bias

    def probs(self, observations: np.ndarray) -> np.ndarray:
        z = self.logits(observations)
        z = z - z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)

    def act(self, observation: np.ndarray) -> int:
        """The greedy action for one observation."""
        z = self.featurize(observation) @ self.weight.T + self.bias
        return int(np.argmax(z))


def fit_softmax_policy(
    features: np.ndarray,
    actions: np.ndarray,
    n_actions: int,
    featurize: Callable[[np.ndarray], np.ndarray],
    l2: float = 1e-3,
    max_iter: int = 200,
) -> LinearSoftmaxPolicy:
    """Fit a :class:`LinearSoftmaxPolicy` to labelled states by minimising ``bc_loss + l2 * |W|^2 / 2``.

    Args:
        features: ``[N, d]`` feature vectors :math:`\\phi(s_i)` (already featurized).
        actions: ``[N]`` expert labels in ``[0, n_actions)``.
        n_actions: number of actions ``A`` (>= 2).
        featurize: the map used to build ``features``; the policy applies it to new observations.
        l2: L2 penalty on the weights (>= 0); it keeps the weights finite when classes are separable and leaves
            the weight of a feature the data never switches on at zero.
        max_iter: L-BFGS iterations (>= 1).
    """
    check_positive_int("n_actions", n_actions, 2)
    check_range("l2", l2, 0.0, None)
    check_positive_int("max_iter", max_iter)
    x = torch.as_tensor(np.asarray(features, dtype=np.float64))
    y = torch.as_tensor(np.asarray(actions, dtype=np.int64))
    if x.ndim != 2 or y.shape != x.shape[:1]:
        raise ValueError(f"features must be [N, d] and actions [N]; got {tuple(x.shape)} and {tuple(y.shape)}")
    if len(y) == 0:
        raise ValueError("features must contain at least one labelled state")
    if int(y.min()) < 0 or int(y.max()) >= n_actions:
        raise ValueError(f"actions must be in [0, {n_actions}), got range [{int(y.min())}, {int(y.max())}]")
    w = torch.zeros(n_actions, x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(n_actions, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS(
        [w, b], lr=1.0, max_iter=max_iter, tolerance_grad=1e-9, tolerance_change=1e-12, line_search_fn="strong_wolfe"
    )

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = bc_loss(x @ w.T + b, y) + 0.5 * l2 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return LinearSoftmaxPolicy(w.detach().numpy(), b.detach().numpy(), featurize)


def one_hot_featurizer(space: spaces.Space) -> Callable[[np.ndarray], np.ndarray]:
    """Features for a discrete observation space: one-hot of each component (``Discrete`` / ``MultiDiscrete``),
    or the raw vector for a ``Box``.

    For the tightrope's ``MultiDiscrete([2, 2])`` the features are ``[1-fallen, fallen, cue==0, cue==1]``.
    """
    if isinstance(space, spaces.Discrete):
        n = int(space.n)

        def f(o):
            v = np.zeros(n)
            v[int(o) - int(space.start)] = 1.0
            return v

        return f
    if isinstance(space, spaces.MultiDiscrete):
        nvec = [int(n) for n in np.asarray(space.nvec).ravel()]
        offsets = np.cumsum([0] + nvec[:-1])
        total = int(sum(nvec))

        def f(o):
            v = np.zeros(total)
            v[offsets + np.asarray(o, dtype=np.int64).ravel()] = 1.0
            return v

        return f
    if isinstance(space, spaces.Box):
        return lambda o: np.asarray(o, dtype=np.float64).ravel()
    raise TypeError(f"space must be Discrete, MultiDiscrete or Box, got {type(space).__name__}")
