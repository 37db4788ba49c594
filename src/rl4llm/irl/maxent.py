"""Maximum-entropy inverse RL, exact, on an MDP with a known transition matrix (book section 4.1).

Ziebart et al. (2008) model the demonstrator as *Boltzmann-rational*: among all behaviours that visit features as
often as the demonstrations do, pick the one with maximal (causal) entropy. With a reward linear in state
features, :math:`r_\\theta(s) = \\theta^\\top \\phi(s)`, and a horizon :math:`H`, that behaviour is the soft-optimal
policy of :math:`r_\\theta`, computed backwards in time by **soft value iteration**
(:func:`rl4llm.envs.tabular.soft_value_iteration`, the planner of the package's one tabular MDP):

.. math::
   V_H(s) = 0, \\qquad
   Q_t(s, a) = r_\\theta(s) + \\sum_{s'} P(s' \\mid s, a)\\, V_{t+1}(s'), \\qquad
   V_t(s) = \\log \\sum_a e^{Q_t(s, a)}, \\qquad
   \\pi_t(a \\mid s) = e^{Q_t(s, a) - V_t(s)}.

(Ziebart et al. 2008 wrote the recursion with :math:`\\log \\mathbb E[e^{V_{t+1}}]` in place of
:math:`\\mathbb E[V_{t+1}]`; the two coincide for deterministic dynamics, and the expectation is the *causal*
form that is correct for stochastic ones.) A **forward pass** (:func:`state_visitation_frequencies`) then pushes
the start distribution through the policy and the known dynamics,

.. math::
   d_0 = p_0, \\qquad d_{t+1}(s') = \\sum_{s, a} d_t(s)\\, \\pi_t(a \\mid s)\\, P(s' \\mid s, a), \\qquad
   D(s) = \\sum_{t=0}^{H-1} d_t(s),

the expected number of visits of each state in an episode (so :math:`\\sum_s D(s) = H`). The demonstrations'
log-likelihood under the model is concave in :math:`\\theta`, and its gradient is the **feature-matching** gap
(:func:`maxent_gradient`):

.. math::
   \\nabla_\\theta \\mathcal L(\\theta) = \\tilde\\mu_E - \\sum_s D_\\theta(s)\\, \\phi(s), \\qquad
   \\tilde\\mu_E = \\frac1N \\sum_{i=1}^N \\sum_{t=0}^{H-1} \\phi(s^i_t),

the expert's empirical feature counts minus the model's expected ones. It is the gradient of the concave objective
:math:`\\mathcal L(\\theta) = \\theta^\\top\\tilde\\mu_E - \\mathbb E_{s_0 \\sim p_0}[V^\\theta_0(s_0)]`, which for
deterministic dynamics is exactly the mean log-likelihood of the demonstrated action sequences (the path
probability is :math:`e^{R_\\theta(\\tau)} / e^{V_0(s_0)}`). :func:`maxent_irl` ascends it until the two feature
counts match. Everything here is exact linear algebra on arrays: no sampling, no environment.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from rl4llm.envs.tabular import _as_array, check_mdp, soft_value_iteration
from rl4llm.utils import check_positive_int, check_range, progress

__all__ = [
    "check_mdp",
    "soft_value_iteration",
    "state_visitation_frequencies",
    "feature_expectations",
    "maxent_gradient",
    "MaxEntResult",
    "maxent_irl",
]


def _check_policy(policy, horizon: int | None, n_states: int, n_actions: int) -> np.ndarray:
    policy = _as_array("policy", policy, 3)
    if policy.shape[1:] != (n_states, n_actions) or (horizon is not None and policy.shape[0] != horizon):
        raise ValueError(
            f"policy must have shape [H, S, A] = [{horizon or 'H'}, {n_states}, {n_actions}], got {policy.shape}"
        )
    if np.any(policy < 0) or not np.allclose(policy.sum(-1), 1.0, atol=1e-6):
        raise ValueError("policy must hold probabilities: policy[t, s, :] >= 0 and sums to 1")
    return policy


def state_visitation_frequencies(P, policy, p0, return_per_step: bool = False) -> np.ndarray:
    """Expected visits of each state in an episode: :math:`D(s) = \\sum_{t=0}^{H-1} d_t(s)`.

    .. math::  d_0 = p_0,\\qquad d_{t+1}(s') = \\sum_{s,a} d_t(s)\\,\\pi_t(a|s)\\,P(s'|s,a).

    Args:
        P: transition matrix ``[S, A, S]``.
        policy: time-dependent policy ``[H, S, A]`` (e.g. from :func:`soft_value_iteration`).
        p0: start distribution ``[S]``.
        return_per_step: also return the per-step distributions ``d`` (``[H, S]``).

    Returns:
        ``D`` (``[S]``, sums to ``H``), or ``(D, d)`` with ``return_per_step=True``.
    """
    P, p0 = check_mdp(P, p0)
    policy = _check_policy(policy, None, P.shape[0], P.shape[1])
    horizon = policy.shape[0]
    # BEGIN SOLUTION
    d = np.zeros((horizon, P.shape[0]))
    d[0] = p0
    for t in range(horizon - 1):
        d[t + 1] = np.einsum("s,sa,sap->p", d[t], policy[t], P)
    D = d.sum(axis=0)
    # END SOLUTION
    return (D, d) if return_per_step else D


def feature_expectations(states, features) -> np.ndarray:
    """Empirical feature counts of demonstrations: :math:`\\tilde\\mu = \\frac1N \\sum_i \\sum_t \\phi(s^i_t)`.

    Args:
        states: ``[N, H]`` integer states of ``N`` demonstrations of ``H`` steps each.
        features: ``[S, d]`` state features.
    """
    features = _as_array("features", features, 2)
    states = np.asarray(states)
    if states.ndim != 2 or states.shape[0] < 1 or states.shape[1] < 1:
        raise ValueError(f"states must be a non-empty [N, H] array of state indices, got shape {states.shape}")
    if not np.issubdtype(states.dtype, np.integer):
        raise TypeError(f"states must hold integer state indices, got dtype {states.dtype}")
    if states.min() < 0 or states.max() >= features.shape[0]:
        raise ValueError(f"states must be in [0, {features.shape[0] - 1}]")
    return features[states].sum(axis=1).mean(axis=0)


def maxent_gradient(expert_features, features, visitation) -> np.ndarray:
    """The gradient of the MaxEnt log-likelihood: :math:`\\tilde\\mu_E - \\sum_s D_\\theta(s)\\,\\phi(s)`.

    Args:
        expert_features: ``[d]`` the demonstrations' feature counts :math:`\\tilde\\mu_E` (:func:`feature_expectations`).
        features: ``[S, d]`` state features :math:`\\phi`.
        visitation: ``[S]`` expected state visits :math:`D_\\theta` of the current soft-optimal policy
            (:func:`state_visitation_frequencies`).

    Returns:
        ``[d]``: zero exactly when the model visits features as often as the expert does.
    """
    features = _as_array("features", features, 2)
    expert_features = _as_array("expert_features", expert_features, 1)
    visitation = _as_array("visitation", visitation, 1)
    if expert_features.shape != (features.shape[1],):
        raise ValueError(f"expert_features must have shape [d] = [{features.shape[1]}], got {expert_features.shape}")
    if visitation.shape != (features.shape[0],):
        raise ValueError(f"visitation must have shape [S] = [{features.shape[0]}], got {visitation.shape}")
    # BEGIN SOLUTION
    return expert_features - visitation @ features
    # END SOLUTION


@dataclass
class MaxEntResult:
    """What :func:`maxent_irl` returns.

    Attributes:
        theta: learned reward weights ``[d]``.
        reward: learned state reward :math:`\\phi\\,\\theta`, ``[S]``.
        policy: the soft-optimal policy of the learned reward, ``[H, S, A]``.
        visitation: its expected state visits ``[S]``.
        history: one dict per iteration: ``iteration``, ``grad_norm`` (the feature-matching gap
            :math:`\\lVert\\tilde\\mu_E - \\mu_\\theta\\rVert_2`) and ``objective``
            (:math:`\\theta^\\top\\tilde\\mu_E - \\mathbb E_{p_0}[V_0]`, the log-likelihood for deterministic dynamics).
    """

    theta: np.ndarray
    reward: np.ndarray
    policy: np.ndarray
    visitation: np.ndarray
    history: list[dict[str, float]] = field(default_factory=list)


def maxent_irl(
    P,
    features,
    p0,
    expert_states,
    horizon: int | None = None,
    lr: float = 0.1,
    n_iters: int = 200,
    l2: float = 0.0,
    theta0=None,
    callback: Callable[[int, np.ndarray, np.ndarray, np.ndarray], None] | None = None,
    desc: str = "MaxEnt IRL",
) -> MaxEntResult:
    """Fit a linear state reward by maximum-entropy IRL (Ziebart et al. 2008), by gradient ascent.

    Each iteration runs :func:`soft_value_iteration` on :math:`r_\\theta = \\phi\\theta`, the forward pass
    :func:`state_visitation_frequencies`, and the step :math:`\\theta \\leftarrow \\theta + \\alpha\\,
    (\\tilde\\mu_E - \\mu_\\theta - \\lambda\\theta)` (:func:`maxent_gradient` with an optional L2 penalty
    :math:`\\lambda`, which keeps the reward scale finite when the expert is deterministic).

    Args:
        P: known transition matrix ``[S, A, S]``.
        features: state features ``[S, d]``.
        p0: start distribution ``[S]``.
        expert_states: ``[N, H]`` states visited by ``N`` demonstrations.
        horizon: the episode length (default: the demonstrations' length ``H``).
        lr: step size :math:`\\alpha > 0`.
        n_iters: gradient steps, >= 1.
        l2: L2 penalty :math:`\\lambda \\ge 0` on :math:`\\theta`.
        theta0: initial weights (default zeros).
        callback: optional ``callback(iteration, theta, policy, visitation)`` called before every step (e.g. to
            log the current policy's return under a reward the algorithm does not see).
    """
    P, p0 = check_mdp(P, p0)
    features = _as_array("features", features, 2)
    if features.shape[0] != P.shape[0]:
        raise ValueError(f"features must have shape [S, d] with S = {P.shape[0]}, got {features.shape}")
    mu_expert = feature_expectations(expert_states, features)
    horizon = np.asarray(expert_states).shape[1] if horizon is None else check_positive_int("horizon", horizon)
    lr = check_range("lr", lr, 0.0, None, low_inclusive=False)
    n_iters = check_positive_int("n_iters", n_iters)
    l2 = check_range("l2", l2, 0.0, None)
    theta = np.zeros(features.shape[1]) if theta0 is None else _as_array("theta0", theta0, 1).copy()
    if callback is not None and not callable(callback):
        raise TypeError("callback must be callable or None")
    if theta.shape != (features.shape[1],):
        raise ValueError(f"theta0 must have shape [d] = [{features.shape[1]}], got {theta.shape}")
    history: list[dict[str, float]] = []
    for it in progress(range(n_iters), desc=desc):
        reward = features @ theta
        _, V, policy = soft_value_iteration(P, reward, horizon)
        D = state_visitation_frequencies(P, policy, p0)
        grad = maxent_gradient(mu_expert, features, D)
        if callback is not None:
            callback(it, theta, policy, D)
        history.append(
            {
                "iteration": it,
                "grad_norm": float(np.linalg.norm(grad)),
                "objective": float(theta @ mu_expert - p0 @ V[0]),
            }
        )
        theta = theta + lr * (grad - l2 * theta)
    reward = features @ theta
    _, _, policy = soft_value_iteration(P, reward, horizon)
    return MaxEntResult(
        theta=theta,
        reward=reward,
        policy=policy,
        visitation=state_visitation_frequencies(P, policy, p0),
        history=history,
    )
