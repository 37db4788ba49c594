"""DAgger, dataset aggregation (Ross, Gordon & Bagnell 2011; book section 3.2).

Behaviour cloning trains on the expert's states and is tested on its own. DAgger closes the gap by *asking the
expert what it would have done in the states the learner actually visits*:

1. :math:`\\mathcal D \\leftarrow` expert demonstrations; :math:`\\hat\\pi_1 \\leftarrow` BC on :math:`\\mathcal D`.
2. for :math:`i = 1, \\dots, N`:
   run the mixture :math:`\\pi_i = \\beta_i \\pi^* + (1 - \\beta_i)\\hat\\pi_i` (at each step, the expert acts with
   probability :math:`\\beta_i`); label every visited state with the expert's action :math:`\\pi^*(s)`;
   :math:`\\mathcal D \\leftarrow \\mathcal D \\cup \\{(s, \\pi^*(s))\\}`; :math:`\\hat\\pi_{i+1} \\leftarrow`
   the classifier trained on all of :math:`\\mathcal D`.

The schedule :math:`\\beta_i = p^{\\,i-1}` (:func:`beta_schedule`) starts from the expert and hands control to the
learner geometrically. Because the learner is trained on (an aggregate of) its own state distribution, its error
:math:`\\epsilon` is measured where it matters and the cost grows like :math:`T\\epsilon` (Theorem 1.4) instead of
:math:`T^2\\epsilon` (Theorem 1.1).
"""

from __future__ import annotations

from collections.abc import Callable

import gymnasium
import numpy as np

from rl4llm.imitation.bc import Expert, collect_expert_demonstrations
from rl4llm.imitation.policy import LinearSoftmaxPolicy, fit_softmax_policy, one_hot_featurizer
from rl4llm.utils import check_positive_int, check_range

__all__ = ["beta_schedule", "dagger_rollout", "dagger"]


def beta_schedule(iteration: int, decay: float) -> float:
    """The probability that the expert acts at DAgger iteration ``iteration`` (1-based): :math:`\\beta_i = p^{i-1}`.

    ``decay`` = :math:`p \\in [0, 1]`; ``decay = 0`` gives :math:`\\beta_1 = 1` and :math:`\\beta_i = 0` after
    (the learner alone from the second iteration on, the variant Ross et al. found works best in practice).
    """
    check_positive_int("iteration", iteration)
    check_range("decay", decay, 0.0, 1.0)
    # BEGIN SOLUTION
    return 1.0 if iteration == 1 else float(decay ** (iteration - 1))
    # END SOLUTION


def dagger_rollout(
    env: gymnasium.Env,
    expert: Expert,
    learner: LinearSoftmaxPolicy | None,
    beta: float,
    rng: np.random.Generator,
    seed: int,
) -> tuple[list[np.ndarray], list[int], float]:
    """Run one episode of the mixture policy; return visited observations, the expert's labels, and the cost.

    At each step the expert's label :math:`\\pi^*(s_t)` is recorded whoever acts; the action taken is the
    expert's with probability ``beta`` and the learner's otherwise. The cost is minus the episode's return.
    """
    check_range("beta", beta, 0.0, 1.0)
    if learner is None and beta < 1.0:
        raise ValueError(f"beta must be 1 when there is no learner yet (learner=None), got {beta}")
    obs, _ = env.reset(seed=seed)
    observations, labels, ret = [], [], 0.0
    done = False
    while not done:
        a_star = int(expert(env, obs))
        observations.append(np.asarray(obs))
        labels.append(a_star)
        use_expert = learner is None or bool(rng.random() < beta)
        a = a_star if use_expert else learner.act(obs)
        obs, r, terminated, truncated, _ = env.step(a)
        ret += float(r)
        done = terminated or truncated
    return observations, labels, -ret


def dagger(
    env: gymnasium.Env,
    expert: Expert,
    n_iterations: int = 5,
    episodes_per_iteration: int = 10,
    beta_decay: float = 0.0,
    n_expert_episodes: int = 10,
    seed: int = 0,
    featurize: Callable[[np.ndarray], np.ndarray] | None = None,
    l2: float = 1e-3,
) -> tuple[LinearSoftmaxPolicy, list[dict[str, float]]]:
    """DAgger with a linear softmax learner; returns the final policy and one log row per iteration.

    Args:
        env: a gymnasium env with a ``Discrete`` action space.
        expert: ``expert(env, obs) -> action``; it must answer in any state (DAgger queries it off its own path).
        n_iterations: DAgger iterations :math:`N` after the initial BC fit (>= 1).
        episodes_per_iteration: episodes of the mixture policy per iteration (>= 1).
        beta_decay: :math:`p` in :math:`\\beta_i = p^{i-1}` (:func:`beta_schedule`); iteration ``i`` here counts the
            initial expert demonstrations as iteration 1.
        n_expert_episodes: expert demonstrations that seed :math:`\\mathcal D` (>= 1).
        seed: seeds the episodes and the mixing coin.
        featurize, l2: as in :func:`~rl4llm.imitation.bc.clone_expert`.
    """
    check_positive_int("n_iterations", n_iterations)
    check_positive_int("episodes_per_iteration", episodes_per_iteration)
    check_range("beta_decay", beta_decay, 0.0, 1.0)
    check_positive_int("n_expert_episodes", n_expert_episodes)
    check_positive_int("seed", seed, 0)
    if not callable(expert):
        raise TypeError(f"expert must be callable expert(env, obs) -> action, got {type(expert).__name__}")
    featurize = featurize or one_hot_featurizer(env.observation_space)
    n_actions = int(env.action_space.n)
    rng = np.random.default_rng(seed)
    # BEGIN SOLUTION
    obs, acts = collect_expert_demonstrations(env, expert, n_expert_episodes, seed)
    data_obs, data_act = list(obs), list(acts)
    learner = fit_softmax_policy(
        np.stack([featurize(o) for o in data_obs]), np.asarray(data_act), n_actions, featurize, l2=l2
    )
    log = []
    episode_seed = seed + n_expert_episodes
    for i in range(2, n_iterations + 2):
        beta = beta_schedule(i, beta_decay)
        costs = []
        for _ in range(episodes_per_iteration):
            o, lab, cost = dagger_rollout(env, expert, learner, beta, rng, episode_seed)
            episode_seed += 1
            data_obs.extend(o)
            data_act.extend(lab)
            costs.append(cost)
        learner = fit_softmax_policy(
            np.stack([featurize(o) for o in data_obs]), np.asarray(data_act), n_actions, featurize, l2=l2
        )
        log.append(
            {"iteration": i - 1, "beta": beta, "rollout_cost": float(np.mean(costs)), "dataset_size": len(data_act)}
        )
    # END SOLUTION
    return learner, log
