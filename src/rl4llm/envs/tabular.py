"""A finite MDP with known dynamics, and exact dynamic programming on it (book sections 2.1 and 4.1).

One :class:`TabularMDP` (transition matrix ``P[s, a, s']``, reward, terminal states, start distribution,
discount, optional horizon) serves the cliff walk of offline RL (:func:`rl4llm.offline.tabular.cliff_walk`),
the gridworld of MaxEnt IRL (:class:`rl4llm.envs.gridworld.GridWorldEnv`) and any small MDP a test writes by
hand; :class:`TabularEnv` turns one into a gymnasium environment. The planners, exact linear algebra on arrays:

* the **discounted** problem (episodes end at terminal states): :func:`evaluate_policy` solves the Bellman
  expectation equations, linear in :math:`V^\\pi`,

  .. math::
     Q^\\pi(s, a) = \\bar r(s, a) + \\gamma \\sum_{s'} P(s' \\mid s, a)\\,(1 - \\text{term}(s'))\\,V^\\pi(s'), \\qquad
     V^\\pi(s) = \\sum_a \\pi(a \\mid s)\\,Q^\\pi(s, a),

  with :math:`\\bar r(s, a) = \\sum_{s'} P(s' \\mid s, a)\\, r(s, a, s')`, exactly:
  :math:`V^\\pi = (I - \\gamma P_\\pi)^{-1} \\bar r_\\pi`; :func:`value_iteration` iterates the Bellman optimality
  backup to :math:`Q^*`; :func:`greedy_policy` and :func:`policy_return` complete them;
* the **finite-horizon** problem with a state reward (episodes of :math:`H` steps, :math:`r_t = r(s_t)`):
  :func:`finite_horizon_value_iteration` (the hard maximum, an optimal deterministic policy) and
  :func:`soft_value_iteration` (the log-sum-exp, the maximum-entropy policy of MaxEnt IRL), backwards in time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from rl4llm.utils import check_positive_int, check_range

__all__ = [
    "TabularMDP",
    "TabularEnv",
    "check_mdp",
    "evaluate_policy",
    "value_iteration",
    "greedy_policy",
    "policy_return",
    "finite_horizon_value_iteration",
    "soft_value_iteration",
]


@dataclass
class TabularMDP:
    """A finite MDP with known dynamics.

    Attributes:
        P: ``[S, A, S]`` transition probabilities :math:`P(s' \\mid s, a)` (rows sum to one).
        R: the reward: ``[S, A, S]`` :math:`r(s, a, s')` of a transition, ``[S, A]`` :math:`r(s, a)`, or ``[S]``
            :math:`r(s)`, collected at every step from the state acted in (the gridworld of MaxEnt IRL).
        terminal: ``[S]`` bool; entering a terminal state ends the episode (its value is 0).
        p0: ``[S]`` start distribution (zero on terminal states).
        gamma: discount in ``[0, 1)``, or ``1`` for a problem with a finite ``horizon``.
        horizon: ``None`` (episodes end only at terminal states; the discounted problem) or the number of steps
            ``H >= 1`` after which every episode is truncated (the finite-horizon problem).
        names: optional action names; ``shape``: optional ``(height, width)`` for grid MDPs (state = row * width + col).
        features: optional ``[S, d]`` float features :math:`\\phi(s)` that a function approximator sees instead
            of the state index (e.g. a cell's coordinates), so that it must generalise between states.
    """

    P: np.ndarray
    R: np.ndarray
    terminal: np.ndarray
    p0: np.ndarray
    gamma: float = 0.95
    horizon: int | None = None
    names: tuple[str, ...] = ()
    shape: tuple[int, int] | None = None
    features: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.P = np.asarray(self.P, dtype=np.float64)
        self.R = np.asarray(self.R, dtype=np.float64)
        self.terminal = np.asarray(self.terminal, dtype=bool)
        self.p0 = np.asarray(self.p0, dtype=np.float64)
        if self.P.ndim != 3 or self.P.shape[0] != self.P.shape[2]:
            raise ValueError(f"P must be [S, A, S], got shape {self.P.shape}")
        S, A, _ = self.P.shape
        if self.R.shape not in ((S, A, S), (S, A), (S,)):
            raise ValueError(f"R must be [S, A, S], [S, A] or [S] with S = {S}, A = {A}, got shape {self.R.shape}")
        if self.terminal.shape != (S,):
            raise ValueError(f"terminal must be [S] = [{S}], got shape {self.terminal.shape}")
        if self.p0.shape != (S,):
            raise ValueError(f"p0 must be [S] = [{S}], got shape {self.p0.shape}")
        if (self.P < 0).any() or not np.allclose(self.P.sum(-1), 1.0):
            raise ValueError("P must hold probabilities: non-negative, each P[s, a, :] summing to 1")
        if not np.isfinite(self.R).all():
            raise ValueError("R must be finite")
        if (self.p0 < 0).any() or not np.isclose(self.p0.sum(), 1.0) or (self.p0[self.terminal] > 0).any():
            raise ValueError("p0 must be a distribution over non-terminal states")
        if self.horizon is None:
            self.gamma = check_range("gamma", self.gamma, 0.0, 1.0, high_inclusive=False)
        else:
            self.horizon = check_positive_int("horizon", self.horizon)
            self.gamma = check_range("gamma", self.gamma, 0.0, 1.0)
        if self.features is not None:
            self.features = np.asarray(self.features, dtype=np.float32)
            if self.features.ndim != 2 or self.features.shape[0] != S or not np.isfinite(self.features).all():
                raise ValueError(
                    f"features must be a finite [S, d] array with S = {S}, got shape {self.features.shape}"
                )

    @property
    def n_states(self) -> int:
        return self.P.shape[0]

    @property
    def n_actions(self) -> int:
        return self.P.shape[1]

    @property
    def expected_reward(self) -> np.ndarray:
        """``[S, A]`` :math:`\\bar r(s, a) = \\sum_{s'} P(s' \\mid s, a)\\, r(s, a, s')` (``R`` itself, broadcast over
        the actions for a state reward, when it does not depend on :math:`s'`)."""
        if self.R.ndim == 1:
            return np.broadcast_to(self.R[:, None], (self.n_states, self.n_actions)).copy()
        if self.R.ndim == 2:
            return self.R.copy()
        return (self.P * self.R).sum(-1)

    def reward(self, s: int, a: int, s_next: int) -> float:
        """The reward of one transition :math:`s \\to s'` under action :math:`a`."""
        if self.R.ndim == 1:
            return float(self.R[s])
        if self.R.ndim == 2:
            return float(self.R[s, a])
        return float(self.R[s, a, s_next])


class TabularEnv(gymnasium.Env):
    """A :class:`TabularMDP` as a gymnasium environment (observation = state index, ``Discrete(S)``).

    Episodes start from ``p0``, are **terminated** on entering a terminal state and **truncated** after
    ``horizon`` steps (default: the MDP's own horizon, else 50). ``info`` has ``"t"``.
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(self, mdp: TabularMDP, horizon: int | None = None, render_mode: str | None = None) -> None:
        super().__init__()
        if not isinstance(mdp, TabularMDP):
            raise TypeError(f"mdp must be a TabularMDP, got {type(mdp).__name__}")
        self.mdp = mdp
        if horizon is None:
            horizon = mdp.horizon if mdp.horizon is not None else 50
        self.horizon = check_positive_int("horizon", horizon)
        if render_mode not in (None, "ansi"):
            raise ValueError(f"render_mode must be None or 'ansi', got {render_mode!r}")
        self.render_mode = render_mode
        self.observation_space = spaces.Discrete(mdp.n_states)
        self.action_space = spaces.Discrete(mdp.n_actions)
        self._state, self._t = 0, 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._state = int(self.np_random.choice(self.mdp.n_states, p=self.mdp.p0))
        self._t = 0
        return self._state, {"t": 0}

    def step(self, action):
        if not self.action_space.contains(action):
            raise ValueError(f"action must be in [0, {self.mdp.n_actions - 1}], got {action!r}")
        s, a = self._state, int(action)
        s2 = int(self.np_random.choice(self.mdp.n_states, p=self.mdp.P[s, a]))
        reward = self.mdp.reward(s, a, s2)
        self._state = s2
        self._t += 1
        terminated = bool(self.mdp.terminal[s2])
        truncated = (not terminated) and self._t >= self.horizon
        return s2, reward, terminated, truncated, {"t": self._t}

    def render(self) -> str | None:
        if self.render_mode != "ansi" or self.mdp.shape is None:
            return None
        height, width = self.mdp.shape
        cells = []
        for s in range(self.mdp.n_states):
            ch = "C" if self.mdp.terminal[s] else "."
            if s == self.mdp.info.get("goal"):
                ch = "G"
            cells.append("A" if s == self._state else ch)
        return "\n".join("".join(cells[r * width : (r + 1) * width]) for r in range(height))


def _as_array(name: str, x, ndim: int) -> np.ndarray:
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be a numeric array, got {type(x).__name__}") from err
    if arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite")
    return arr


def check_mdp(P, p0=None) -> tuple[np.ndarray, np.ndarray | None]:
    """Validate a transition matrix ``P[s, a, s']`` (rows sum to 1) and a start distribution ``p0[s]``."""
    P = _as_array("P", P, 3)
    n_states = P.shape[0]
    if P.shape[2] != n_states or P.shape[1] < 1 or n_states < 1:
        raise ValueError(f"P must have shape [S, A, S], got {P.shape}")
    if np.any(P < 0) or not np.allclose(P.sum(-1), 1.0, atol=1e-8):
        raise ValueError("P must hold probabilities: P[s, a, :] >= 0 and sums to 1 for every s, a")
    if p0 is None:
        return P, None
    p0 = _as_array("p0", p0, 1)
    if p0.shape != (n_states,):
        raise ValueError(f"p0 must have shape [S] = [{n_states}], got {p0.shape}")
    if np.any(p0 < 0) or not np.isclose(p0.sum(), 1.0, atol=1e-8):
        raise ValueError("p0 must be a probability distribution over states (>= 0, sums to 1)")
    return P, p0


def _check_reward(reward, n_states: int) -> np.ndarray:
    reward = _as_array("reward", reward, 1)
    if reward.shape != (n_states,):
        raise ValueError(f"reward must have shape [S] = [{n_states}], got {reward.shape}")
    return reward


# ---------------------------------------------------------------------------------------------------------------
# The discounted problem


def _check_policy(mdp: TabularMDP, policy: np.ndarray) -> np.ndarray:
    policy = np.asarray(policy, dtype=np.float64)
    if policy.shape != (mdp.n_states, mdp.n_actions):
        raise ValueError(
            f"policy must be an [S, A] = {(mdp.n_states, mdp.n_actions)} matrix of probabilities, "
            f"got shape {policy.shape}"
        )
    if (policy < -1e-12).any() or not np.allclose(policy.sum(1), 1.0):
        raise ValueError("policy rows must be probability distributions (non-negative, summing to 1)")
    return policy


def evaluate_policy(mdp: TabularMDP, policy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact :math:`V^\\pi` (``[S]``) and :math:`Q^\\pi` (``[S, A]``) of a stochastic policy ``[S, A]``.

    Solves the linear system :math:`(I - \\gamma P_\\pi M) V = \\bar r_\\pi` where
    :math:`P_\\pi(s, s') = \\sum_a \\pi(a \\mid s) P(s' \\mid s, a)`, :math:`\\bar r_\\pi(s) = \\sum_a \\pi(a\\mid s)
    \\bar r(s, a)` and :math:`M` zeroes the columns of terminal states (entering one ends the return). Then
    :math:`Q^\\pi = \\bar r + \\gamma P M V^\\pi`. Terminal states get value 0.
    """
    policy = _check_policy(mdp, policy)
    # BEGIN SOLUTION
    alive = (~mdp.terminal).astype(np.float64)  # M: no value flows back from a terminal state
    r_bar = mdp.expected_reward
    P_pi = np.einsum("sa,sat->st", policy, mdp.P) * alive[None, :]
    r_pi = (policy * r_bar).sum(1)
    V = np.linalg.solve(np.eye(mdp.n_states) - mdp.gamma * P_pi, r_pi)
    V = V * alive
    Q = r_bar + mdp.gamma * np.einsum("sat,t->sa", mdp.P, alive * V)
    # END SOLUTION
    return V, Q


def value_iteration(mdp: TabularMDP, tol: float = 1e-10, max_iterations: int = 100_000) -> np.ndarray:
    """Optimal :math:`Q^*` (``[S, A]``) of the discounted problem: iterate the Bellman optimality backup
    :math:`Q \\leftarrow \\bar r + \\gamma P M \\max_{a'} Q` (:math:`M` zeroes terminal states) to ``tol``."""
    if mdp.gamma >= 1.0:
        raise ValueError(
            f"value_iteration solves the discounted problem: mdp.gamma must be < 1, got {mdp.gamma} "
            "(use finite_horizon_value_iteration for a finite horizon)"
        )
    tol = check_range("tol", tol, 0.0, None, low_inclusive=False)
    max_iterations = check_positive_int("max_iterations", max_iterations)
    alive = (~mdp.terminal).astype(np.float64)
    r_bar = mdp.expected_reward
    Q = np.zeros((mdp.n_states, mdp.n_actions))
    for _ in range(max_iterations):
        Q_new = r_bar + mdp.gamma * np.einsum("sat,t->sa", mdp.P, alive * Q.max(1))
        if np.abs(Q_new - Q).max() < tol:
            return Q_new
        Q = Q_new
    raise RuntimeError(f"value iteration did not converge to tol={tol} in {max_iterations} iterations")


def greedy_policy(q_values: np.ndarray) -> np.ndarray:
    """The deterministic policy ``[S, A]`` (one-hot rows) taking :math:`\\arg\\max_a Q(s, a)`, lowest index on ties."""
    q_values = np.asarray(q_values, dtype=np.float64)
    if q_values.ndim != 2:
        raise ValueError(f"q_values must be [S, A], got shape {q_values.shape}")
    return np.eye(q_values.shape[1])[q_values.argmax(1)]


def policy_return(mdp: TabularMDP, policy: np.ndarray) -> float:
    """The expected discounted return from the start distribution, :math:`J(\\pi) = \\sum_s p_0(s) V^\\pi(s)`."""
    V, _ = evaluate_policy(mdp, policy)
    return float(mdp.p0 @ V)


# ---------------------------------------------------------------------------------------------------------------
# The finite-horizon problem with a state reward


def finite_horizon_value_iteration(P, reward, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Finite-horizon value iteration: a deterministic optimal policy of a state reward.

    .. math::  V_H = 0,\\quad Q_t(s, a) = r(s) + \\sum_{s'} P(s'|s,a) V_{t+1}(s'),\\quad V_t(s) = \\max_a Q_t(s, a).

    Ties go to the lowest action index. Returns ``(V [H + 1, S], policy [H, S, A])`` with one-hot rows.
    """
    P, _ = check_mdp(P)
    reward = _check_reward(reward, P.shape[0])
    horizon = check_positive_int("horizon", horizon)
    n_states, n_actions = P.shape[0], P.shape[1]
    V = np.zeros((horizon + 1, n_states))
    policy = np.zeros((horizon, n_states, n_actions))
    for t in reversed(range(horizon)):
        Q = reward[:, None] + P @ V[t + 1]
        best = Q.argmax(axis=1)
        V[t] = Q[np.arange(n_states), best]
        policy[t, np.arange(n_states), best] = 1.0
    return V, policy


def soft_value_iteration(P, reward, horizon: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Finite-horizon soft value iteration: the maximum-entropy policy of a state reward.

    .. math::
       V_H = 0,\\quad Q_t(s,a) = r(s) + \\sum_{s'} P(s'|s,a) V_{t+1}(s'),\\quad
       V_t(s) = \\log\\sum_a e^{Q_t(s,a)},\\quad \\pi_t(a|s) = e^{Q_t(s,a) - V_t(s)}.

    :math:`V_0(s)` is the best achievable value of :math:`\\mathbb E[\\sum_t r(s_t) + \\mathcal H(\\pi_t(\\cdot|s_t))]`
    from ``s``; for deterministic dynamics it equals :math:`\\log \\sum_{\\tau} e^{R(\\tau)}` over all action
    sequences from ``s``.

    Args:
        P: transition matrix ``[S, A, S]``.
        reward: state reward ``[S]``, collected at every step from the state acted in (``r_t = r(s_t)``).
        horizon: number of steps ``H >= 1``.

    Returns:
        ``(Q, V, policy)`` with shapes ``[H, S, A]``, ``[H + 1, S]`` and ``[H, S, A]``.
    """
    P, _ = check_mdp(P)
    reward = _check_reward(reward, P.shape[0])
    horizon = check_positive_int("horizon", horizon)
    n_states, n_actions = P.shape[0], P.shape[1]
    # BEGIN SOLUTION
    Q = np.zeros((horizon, n_states, n_actions))
    V = np.zeros((horizon + 1, n_states))
    policy = np.zeros((horizon, n_states, n_actions))
    for t in reversed(range(horizon)):
        Q[t] = reward[:, None] + P @ V[t + 1]
        q_max = Q[t].max(axis=1, keepdims=True)
        V[t] = (q_max + np.log(np.exp(Q[t] - q_max).sum(axis=1, keepdims=True)))[:, 0]
        policy[t] = np.exp(Q[t] - V[t][:, None])
    return Q, V, policy
    # END SOLUTION
