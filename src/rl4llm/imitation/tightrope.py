"""Compounding error on the tightrope, measured and exact (book sections 3.1-3.2).

:class:`~rl4llm.envs.tightrope.TightropeEnv` has a 0-1 cost against the expert and a wind sensor that lies with
probability :math:`\\epsilon`, so every learner errs with probability :math:`\\epsilon` on the rope. What differs is
what happens after the first mistake.

**Behaviour cloning** (exact cost, :func:`bc_cost_exact`). The expert never falls, so BC never sees ``fallen = 1``;
its classifier extrapolates the on-rope rule ("lean where the cue says") and never climbs. Let
:math:`q_t = P(\\text{on the rope at step } t) = (1-\\epsilon)^{t-1}` (steps :math:`t = 1..T`; every step on the
rope survives with probability :math:`1-\\epsilon`, a fall is final). The expected cost at step :math:`t` is
:math:`\\epsilon q_t + (1 - q_t) = 1 - (1-\\epsilon)^t`, hence

.. math::  J(\\hat\\pi_{\\text{BC}}) = \\sum_{t=1}^{T} \\big[1 - (1-\\epsilon)^t\\big]
           = T - \\frac{(1-\\epsilon)\\,(1 - (1-\\epsilon)^T)}{\\epsilon}
           = \\epsilon\\,\\frac{T(T+1)}{2} + O(\\epsilon^2 T^3),

quadratic in :math:`T` while :math:`\\epsilon T \\ll 1` (Theorem 1.1's :math:`T^2\\epsilon`), and linear,
:math:`\\approx T - 1/\\epsilon`, once :math:`\\epsilon T \\gg 1`: the walker has surely fallen and pays 1 per step,
the most any policy can pay. The quadratic regime ends around :math:`\\epsilon T \\approx 1`.

**DAgger** (exact cost, :func:`dagger_cost_exact`). Trained on its own states, the learner has seen falls labelled
``CLIMB`` and climbs back at once, at no cost. With :math:`p_t = P(\\text{on the rope at step } t)`,
:math:`p_1 = 1` and :math:`p_{t+1} = (1-\\epsilon)p_t + (1 - p_t) = 1 - \\epsilon p_t`, the cost is

.. math::  J(\\hat\\pi_{\\text{DAgger}}) = \\epsilon \\sum_{t=1}^{T} p_t \\approx \\frac{\\epsilon T}{1+\\epsilon} \\le \\epsilon T,

linear in :math:`T` (Theorem 1.4's :math:`T\\epsilon`).

:func:`tightrope_costs` *learns* both policies (a linear softmax classifier, BC on expert demonstrations or DAgger
with the expert queried on the learner's states) and measures their mean total cost over many rollouts.
"""

from __future__ import annotations

import math

import numpy as np

from rl4llm.envs.tightrope import CLIMB, TightropeEnv
from rl4llm.imitation.bc import clone_expert
from rl4llm.imitation.dagger import dagger
from rl4llm.imitation.policy import LinearSoftmaxPolicy
from rl4llm.utils import check_choice, check_positive_int, check_range

__all__ = [
    "bc_cost_exact",
    "dagger_cost_exact",
    "tightrope_expert",
    "walker_table",
    "simulate_tightrope",
    "train_tightrope_learner",
    "tightrope_costs",
]


def bc_cost_exact(horizon: int, eps: float) -> float:
    """Expected total cost of the behaviour-cloned walker: :math:`\\sum_{t=1}^T [1 - (1-\\epsilon)^t]`."""
    check_positive_int("horizon", horizon)
    check_range("eps", eps, 0.0, 0.5, high_inclusive=False)
    # BEGIN SOLUTION
    total = 0.0
    for t in range(1, horizon + 1):
        total += 1.0 - (1.0 - eps) ** t
    return total
    # END SOLUTION


def dagger_cost_exact(horizon: int, eps: float) -> float:
    """Expected total cost of a walker that errs w.p. ``eps`` on the rope and climbs back at once:
    :math:`\\epsilon \\sum_t p_t` with :math:`p_1 = 1`, :math:`p_{t+1} = 1 - \\epsilon p_t`."""
    check_positive_int("horizon", horizon)
    check_range("eps", eps, 0.0, 0.5, high_inclusive=False)
    # BEGIN SOLUTION
    p, total = 1.0, 0.0
    for _ in range(horizon):
        total += eps * p
        p = 1.0 - eps * p
    return total
    # END SOLUTION


def tightrope_expert(env, obs) -> int:
    """The privileged expert: feels the true wind (reads the environment's hidden state)."""
    return int(env.unwrapped.expert_action())


def walker_table(policy: LinearSoftmaxPolicy) -> np.ndarray:
    """The greedy action of ``policy`` for each tightrope observation, as a ``[2, 2]`` table ``[fallen, cue]``."""
    table = np.zeros((2, 2), dtype=np.int64)
    for fallen in (0, 1):
        for cue in (0, 1):
            table[fallen, cue] = policy.act(np.array([fallen, cue]))
    return table


def simulate_tightrope(
    table: np.ndarray, horizon: int, eps: float, n_rollouts: int, rng: np.random.Generator, per_step: bool = False
) -> np.ndarray:
    """Total cost of ``n_rollouts`` episodes of a deterministic policy given by ``table[fallen, cue]``.

    The same dynamics as :class:`~rl4llm.envs.tightrope.TightropeEnv`, vectorised over episodes (many thousands
    of rollouts in milliseconds); the tests check that both agree. With ``per_step`` the ``[n_rollouts, horizon]``
    0-1 costs of every step are returned instead of the totals.
    """
    check_positive_int("horizon", horizon)
    check_range("eps", eps, 0.0, 0.5, high_inclusive=False)
    check_positive_int("n_rollouts", n_rollouts)
    table = np.asarray(table)
    if table.shape != (2, 2) or not np.isin(table, (0, 1, 2)).all():
        raise ValueError(f"table must be a [2, 2] array of actions in {{0, 1, 2}}, got {table.tolist()}")
    on_rope = np.ones(n_rollouts, dtype=bool)
    costs = np.zeros((n_rollouts, horizon))
    for t in range(horizon):
        wind = rng.integers(2, size=n_rollouts)
        flip = rng.random(n_rollouts) < eps
        cue = np.where(flip, 1 - wind, wind)
        a = table[(~on_rope).astype(np.int64), cue]
        expert = np.where(on_rope, wind, CLIMB)
        costs[:, t] = a != expert
        on_rope = np.where(on_rope, a == wind, a == CLIMB)
    return costs if per_step else costs.sum(axis=1)


def train_tightrope_learner(horizon: int, eps: float, method: str, seed: int, l2: float = 1e-4) -> LinearSoftmaxPolicy:
    """Learn a tightrope walker by ``"bc"`` (expert demonstrations only) or ``"dagger"`` (4 iterations, beta = 0
    after the first, as Ross et al. recommend).

    Data budgets scale as ~1/T so that every horizon sees a few thousand labelled states (about 1,000 for BC and
    7,000 for DAgger). Falls are rare on short ropes (DAgger sees about :math:`\\epsilon` times its states
    fallen), so the L2 penalty is kept small: with a large one, a few dozen ``CLIMB`` labels among thousands of
    on-rope states are not worth a weight, and the learner would not learn to climb.
    """
    check_positive_int("horizon", horizon)
    check_range("eps", eps, 0.0, 0.5, high_inclusive=False)
    check_choice("method", method, ("bc", "dagger"))
    check_positive_int("seed", seed, 0)
    env = TightropeEnv(horizon=horizon, eps=eps)
    n_demo = max(5, math.ceil(1000 / horizon))
    if method == "bc":
        return clone_expert(env, tightrope_expert, n_demo, seed=seed, l2=l2)
    policy, _ = dagger(
        env,
        tightrope_expert,
        n_iterations=4,
        episodes_per_iteration=max(5, math.ceil(1500 / horizon)),
        beta_decay=0.0,
        n_expert_episodes=n_demo,
        seed=seed,
        l2=l2,
    )
    return policy


def tightrope_costs(horizon: int, eps: float, method: str, n_rollouts: int = 2000, seed: int = 0) -> float:
    """Mean total cost of a walker learned by ``method`` (``"bc"`` or ``"dagger"``) on a tightrope of ``horizon``
    steps with cue noise ``eps``, measured over ``n_rollouts`` fresh episodes.

    Expect about :func:`bc_cost_exact` (:math:`\\approx \\epsilon T^2/2`) for BC and :func:`dagger_cost_exact`
    (:math:`\\approx \\epsilon T`) for DAgger.
    """
    check_positive_int("horizon", horizon)
    check_range("eps", eps, 0.0, 0.5, high_inclusive=False)
    check_choice("method", method, ("bc", "dagger"))
    check_positive_int("n_rollouts", n_rollouts)
    check_positive_int("seed", seed, 0)
    policy = train_tightrope_learner(horizon, eps, method, seed)
    rng = np.random.default_rng([seed, 1])
    return float(simulate_tightrope(walker_table(policy), horizon, eps, n_rollouts, rng).mean())
