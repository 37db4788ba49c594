"""A small discrete MDP whose true values are computed exactly (book section 2.1).

Offline RL's failure mode is an *estimate* that disagrees with the *truth*: a Q-network that believes an action is
worth more than it is. To measure that gap we need the truth, so the chapter's main testbed is a tabular MDP with
known transition probabilities :math:`P(s' \\mid s, a)`, rewards :math:`r(s, a, s')` and terminal states.

For a policy :math:`\\pi(a \\mid s)` (a ``[S, A]`` matrix of probabilities) the Bellman expectation equations

.. math::
   Q^\\pi(s, a) = \\bar r(s, a) + \\gamma \\sum_{s'} P(s' \\mid s, a)\\,(1 - \\text{term}(s'))\\,V^\\pi(s'), \\qquad
   V^\\pi(s) = \\sum_a \\pi(a \\mid s)\\,Q^\\pi(s, a),

with :math:`\\bar r(s, a) = \\sum_{s'} P(s' \\mid s, a)\\, r(s, a, s')`, are linear in :math:`V^\\pi`;
:func:`evaluate_policy` solves them exactly, :math:`V^\\pi = (I - \\gamma P_\\pi)^{-1} \\bar r_\\pi`. The optimal
values :math:`Q^*` come from value iteration (:func:`value_iteration`).

:func:`cliff_walk` builds the chapter's MDP (after Sutton & Barto's cliff walking, example 6.6): a grid whose
bottom row is a cliff between the start and the goal. :class:`TabularEnv` turns any :class:`TabularMDP` into a
gymnasium environment, so datasets are logged from it exactly as from CartPole.
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
    "cliff_walk",
    "safe_route",
    "CLIFF_ACTIONS",
    "evaluate_policy",
    "value_iteration",
    "greedy_policy",
    "epsilon_greedy_probs",
    "policy_return",
]

#: Actions of :func:`cliff_walk`, in order, with their moves (d_row, d_col).
CLIFF_ACTIONS: tuple[str, ...] = ("up", "right", "down", "left")
_MOVES: tuple[tuple[int, int], ...] = ((-1, 0), (0, 1), (1, 0), (0, -1))


@dataclass
class TabularMDP:
    """A finite MDP with known dynamics.

    Attributes:
        P: ``[S, A, S]`` transition probabilities :math:`P(s' \\mid s, a)` (rows sum to one).
        R: ``[S, A, S]`` reward :math:`r(s, a, s')` of a transition.
        terminal: ``[S]`` bool; entering a terminal state ends the episode (its value is 0).
        p0: ``[S]`` start distribution (zero on terminal states).
        gamma: discount in ``[0, 1)``.
        names: optional action names; ``shape``: optional ``(height, width)`` for grid MDPs (state = row * width + col).
        features: optional ``[S, d]`` float features :math:`\\phi(s)` that a function approximator sees instead
            of the state index (e.g. a cell's coordinates), so that it must generalise between states.
    """

    P: np.ndarray
    R: np.ndarray
    terminal: np.ndarray
    p0: np.ndarray
    gamma: float = 0.95
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
        if self.R.shape != (S, A, S):
            raise ValueError(f"R must be [S, A, S] = {(S, A, S)}, got shape {self.R.shape}")
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
        self.gamma = check_range("gamma", self.gamma, 0.0, 1.0, high_inclusive=False)
        if self.features is not None:
            self.features = np.asarray(self.features, dtype=np.float32)
            if self.features.ndim != 2 or self.features.shape[0] != S or not np.isfinite(self.features).all():
                raise ValueError(f"features must be a finite [S, d] array with S = {S}, got shape "
                                 f"{self.features.shape}")

    @property
    def n_states(self) -> int:
        return self.P.shape[0]

    @property
    def n_actions(self) -> int:
        return self.P.shape[1]

    @property
    def expected_reward(self) -> np.ndarray:
        """``[S, A]`` :math:`\\bar r(s, a) = \\sum_{s'} P(s' \\mid s, a)\\, r(s, a, s')`."""
        return (self.P * self.R).sum(-1)


def _check_policy(mdp: TabularMDP, policy: np.ndarray) -> np.ndarray:
    policy = np.asarray(policy, dtype=np.float64)
    if policy.shape != (mdp.n_states, mdp.n_actions):
        raise ValueError(f"policy must be an [S, A] = {(mdp.n_states, mdp.n_actions)} matrix of probabilities, "
                         f"got shape {policy.shape}")
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
    """Optimal :math:`Q^*` (``[S, A]``): iterate :math:`Q \\leftarrow \\bar r + \\gamma P M \\max_{a'} Q` to ``tol``."""
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


def epsilon_greedy_probs(actions: np.ndarray, n_actions: int, epsilon: float) -> np.ndarray:
    """``[S, A]`` probabilities of taking ``actions[s]`` w.p. :math:`1 - \\epsilon`, else a uniformly random action.

    :math:`\\pi(a \\mid s) = (1 - \\epsilon)\\,\\mathbb 1[a = a_s] + \\epsilon / A`.
    """
    n_actions = check_positive_int("n_actions", n_actions)
    epsilon = check_range("epsilon", epsilon, 0.0, 1.0)
    actions = np.asarray(actions)
    if actions.ndim != 1 or not np.issubdtype(actions.dtype, np.integer):
        raise ValueError(f"actions must be a 1-D integer array (one action per state), got {actions.dtype} "
                         f"shape {actions.shape}")
    if actions.size and (actions.min() < 0 or actions.max() >= n_actions):
        raise ValueError(f"actions must be in [0, {n_actions - 1}]")
    return (1.0 - epsilon) * np.eye(n_actions)[actions] + epsilon / n_actions


def policy_return(mdp: TabularMDP, policy: np.ndarray) -> float:
    """The expected discounted return from the start distribution, :math:`J(\\pi) = \\sum_s p_0(s) V^\\pi(s)`."""
    V, _ = evaluate_policy(mdp, policy)
    return float(mdp.p0 @ V)


def cliff_walk(height: int = 4, width: int = 7, slip: float = 0.0, gamma: float = 0.95,
               goal_reward: float = 10.0, cliff_reward: float = -10.0) -> TabularMDP:
    """The cliff-walking grid: start bottom-left, goal bottom-right, a cliff between them on the bottom row.

    Actions 0..3 = up, right, down, left (:data:`CLIFF_ACTIONS`). A move happens as chosen with probability
    ``1 - slip``; with probability ``slip`` a uniformly random action is executed instead. Moving into the border
    stays put. Entering the goal pays ``goal_reward`` and entering a cliff cell ``cliff_reward``; both end the
    episode. Every other step pays 0, so the discount makes shorter routes worth more: the optimal route runs
    right along the cliff edge, the safe one along the top row. State ``s = row * width + col``; its
    ``features`` (``[S, height + width]``) are a one-hot code of its row followed by one of its column, so a
    network that reads them shares what it learns about a row or a column between that row's or column's cells.

    The rewards are :math:`\\pm 10` rather than :math:`\\pm 1` because CQL's log-sum-exp compares Q-values on a
    scale of one reward unit (see :mod:`rl4llm.offline.cql`): values that differ by a few units are what it can
    tell apart.
    """
    height = check_positive_int("height", height, 2)
    width = check_positive_int("width", width, 3)
    slip = check_range("slip", slip, 0.0, 1.0)
    gamma = check_range("gamma", gamma, 0.0, 1.0, high_inclusive=False)
    goal_reward = check_range("goal_reward", goal_reward)
    cliff_reward = check_range("cliff_reward", cliff_reward)
    S, A = height * width, len(_MOVES)
    start, goal = (height - 1) * width, height * width - 1
    cliff = [(height - 1) * width + c for c in range(1, width - 1)]
    terminal = np.zeros(S, dtype=bool)
    terminal[cliff] = True
    terminal[goal] = True
    det = np.zeros((S, A), dtype=np.int64)
    for r in range(height):
        for c in range(width):
            for a, (dr, dc) in enumerate(_MOVES):
                r2, c2 = min(max(r + dr, 0), height - 1), min(max(c + dc, 0), width - 1)
                det[r * width + c, a] = r2 * width + c2
    P = np.zeros((S, A, S))
    for s in range(S):
        for a in range(A):
            if terminal[s]:
                P[s, a, s] = 1.0  # never used: episodes end on entering a terminal state
                continue
            P[s, a, det[s, a]] += 1.0 - slip
            for b in range(A):
                P[s, a, det[s, b]] += slip / A
    enter = np.zeros(S)
    enter[goal] = goal_reward
    enter[cliff] = cliff_reward
    R = np.broadcast_to(enter[None, None, :], (S, A, S)).copy()
    p0 = np.zeros(S)
    p0[start] = 1.0
    rows, cols = np.divmod(np.arange(S), width)
    features = np.concatenate([np.eye(height)[rows], np.eye(width)[cols]], axis=1)  # one-hot row, one-hot col
    return TabularMDP(P=P, R=R, terminal=terminal, p0=p0, gamma=gamma, names=CLIFF_ACTIONS,
                      shape=(height, width), features=features,
                      info={"start": start, "goal": goal, "cliff": cliff})


def safe_route(mdp: TabularMDP) -> np.ndarray:
    """The cautious behaviour of a cliff walk, one action per state: climb to the top row, walk it, descend.

    Column 0 goes up, the top row goes right, the last column goes down, and every other cell goes up (back to
    the top row). It never risks the cliff and reaches the goal, but takes ``2 * (height - 1)`` more steps than
    the optimal route along the edge.
    """
    if mdp.shape is None or mdp.names != CLIFF_ACTIONS:
        raise ValueError("safe_route needs a grid MDP built by cliff_walk")
    height, width = mdp.shape
    up, right, down = 0, 1, 2
    rows, cols = np.divmod(np.arange(mdp.n_states), width)
    actions = np.full(mdp.n_states, up, dtype=np.int64)  # column 0 and the inner cells: climb
    actions[rows == 0] = right  # the top row: walk right
    actions[cols == width - 1] = down  # the last column: descend to the goal
    return actions


class TabularEnv(gymnasium.Env):
    """A :class:`TabularMDP` as a gymnasium environment (observation = state index, ``Discrete(S)``).

    Episodes start from ``p0``, are **terminated** on entering a terminal state and **truncated** after
    ``horizon`` steps. ``info`` has ``"t"``.
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(self, mdp: TabularMDP, horizon: int = 50, render_mode: str | None = None) -> None:
        super().__init__()
        if not isinstance(mdp, TabularMDP):
            raise TypeError(f"mdp must be a TabularMDP, got {type(mdp).__name__}")
        self.mdp = mdp
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
        reward = float(self.mdp.R[s, a, s2])
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
        return "\n".join("".join(cells[r * width:(r + 1) * width]) for r in range(height))
