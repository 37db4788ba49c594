"""Chapter 2's offline-RL toolkit: logged datasets, exact tabular evaluation, BC, fitted Q-iteration and CQL.

* :mod:`~rl4llm.offline.dataset`: the dataset layout (observations, actions, rewards, next observations,
  terminations, truncations) and logging it from a behaviour policy;
* :mod:`~rl4llm.offline.tabular`: a finite MDP with known dynamics, exact policy evaluation and value iteration,
  the cliff walk;
* :mod:`~rl4llm.offline.bc`: behaviour cloning from a dataset (the package's one BC routine) and the cloned
  policy's table;
* :mod:`~rl4llm.offline.cql`: CQL's conservative penalty and the fitted-Q losses (pure tensor functions);
* :mod:`~rl4llm.offline.fqi`: the training loop, fitted Q-iteration (offline DQN) with or without the penalty;
* :mod:`~rl4llm.offline.evaluation`: over-estimation, exactly (tabular) or by Monte Carlo;
* :mod:`~rl4llm.offline.cartpole`: CartPole logs of a partly trained PPO agent;
* :mod:`~rl4llm.offline.fresh_data`: refitting with new data from the learner's own policy (online RL).
"""

from __future__ import annotations

from rl4llm.offline.bc import behaviour_cloning, policy_table
from rl4llm.offline.cql import bellman_loss, cql_loss, cql_penalty
from rl4llm.offline.dataset import OfflineDataset, collect_dataset, epsilon_greedy, table_policy
from rl4llm.offline.evaluation import greedy_value_gap, monte_carlo_value_gap, q_errors, tabular_tracker
from rl4llm.offline.fqi import (
    OfflineQConfig,
    OfflineQResult,
    conservative_q_learning,
    fitted_q_iteration,
    q_table,
    train_offline_q,
)
from rl4llm.offline.tabular import (
    TabularEnv,
    TabularMDP,
    cliff_walk,
    epsilon_greedy_probs,
    evaluate_policy,
    greedy_policy,
    policy_return,
    safe_route,
    value_iteration,
)

__all__ = [
    "OfflineDataset",
    "collect_dataset",
    "epsilon_greedy",
    "table_policy",
    "TabularMDP",
    "TabularEnv",
    "cliff_walk",
    "safe_route",
    "evaluate_policy",
    "value_iteration",
    "greedy_policy",
    "epsilon_greedy_probs",
    "policy_return",
    "behaviour_cloning",
    "policy_table",
    "cql_penalty",
    "bellman_loss",
    "cql_loss",
    "OfflineQConfig",
    "OfflineQResult",
    "train_offline_q",
    "fitted_q_iteration",
    "conservative_q_learning",
    "q_table",
    "greedy_value_gap",
    "tabular_tracker",
    "q_errors",
    "monte_carlo_value_gap",
]
