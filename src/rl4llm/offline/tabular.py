"""The cliff walk: offline RL's small discrete MDP, whose true values are computed exactly (book section 2.1).

Offline RL's failure mode is an *estimate* that disagrees with the *truth*: a Q-network that believes an action is
worth more than it is. To measure that gap we need the truth, so the chapter's main testbed is a
:class:`~rl4llm.envs.tabular.TabularMDP` with known transition probabilities :math:`P(s' \\mid s, a)`, rewards
:math:`r(s, a, s')` and terminal states, whose exact values come from :mod:`rl4llm.envs.tabular`
(:func:`evaluate_policy` solves the Bellman expectation equations, :func:`value_iteration` gives :math:`Q^*`).

:func:`cliff_walk` builds the chapter's MDP (after Sutton & Barto's cliff walking, example 6.6): a grid whose
bottom row is a cliff between the start and the goal; :func:`safe_route` is its cautious behaviour and
:func:`epsilon_greedy_probs` makes any deterministic behaviour noisy. :class:`TabularEnv` turns the MDP into a
gymnasium environment, so datasets are logged from it exactly as from CartPole. The MDP, the environment and the
planners are re-exported here, so the chapter's code imports from one place.
"""

from __future__ import annotations

import numpy as np

from rl4llm.envs.tabular import TabularEnv, TabularMDP, evaluate_policy, greedy_policy, policy_return, value_iteration
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


def epsilon_greedy_probs(actions: np.ndarray, n_actions: int, epsilon: float) -> np.ndarray:
    """``[S, A]`` probabilities of taking ``actions[s]`` w.p. :math:`1 - \\epsilon`, else a uniformly random action.

    :math:`\\pi(a \\mid s) = (1 - \\epsilon)\\,\\mathbb 1[a = a_s] + \\epsilon / A`.
    """
    n_actions = check_positive_int("n_actions", n_actions)
    epsilon = check_range("epsilon", epsilon, 0.0, 1.0)
    actions = np.asarray(actions)
    if actions.ndim != 1 or not np.issubdtype(actions.dtype, np.integer):
        raise ValueError(
            f"actions must be a 1-D integer array (one action per state), got {actions.dtype} shape {actions.shape}"
        )
    if actions.size and (actions.min() < 0 or actions.max() >= n_actions):
        raise ValueError(f"actions must be in [0, {n_actions - 1}]")
    return (1.0 - epsilon) * np.eye(n_actions)[actions] + epsilon / n_actions


def cliff_walk(
    height: int = 4,
    width: int = 7,
    slip: float = 0.0,
    gamma: float = 0.95,
    goal_reward: float = 10.0,
    cliff_reward: float = -10.0,
) -> TabularMDP:
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
    return TabularMDP(
        P=P,
        R=R,
        terminal=terminal,
        p0=p0,
        gamma=gamma,
        names=CLIFF_ACTIONS,
        shape=(height, width),
        features=features,
        info={"start": start, "goal": goal, "cliff": cliff},
    )


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
