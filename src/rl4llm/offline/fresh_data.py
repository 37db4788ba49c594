"""What offline RL cannot do and online RL can: test its own guesses (book section 2.4).

Fitted Q-iteration over-estimates the actions its dataset never took, and nothing in a fixed dataset can tell
it so. An agent that may act again (a simulator, or the known dynamics of a language model) can: it runs its
greedy policy, logs what really happens, and refits. Every round, the actions it over-rated are tried, their
true consequences enter the data, and the over-estimation has nowhere to hide.

:func:`fqi_with_more_data` runs that loop on a tabular MDP, for two sources of the new episodes:

* ``"own"``: the learner's own greedy policy, made :math:`\\epsilon`-greedy (online RL; what PPO does in RLHF,
  where new text is sampled from the current policy at every iteration);
* ``"behaviour"``: the original behaviour policy again (a bigger offline dataset of the same kind).

The second is the control: as much new data, none of it about the learner's own choices.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from rl4llm.offline.dataset import OfflineDataset, collect_dataset, table_policy
from rl4llm.offline.evaluation import greedy_value_gap
from rl4llm.offline.fqi import OfflineQConfig, q_table, train_offline_q
from rl4llm.offline.tabular import TabularEnv, epsilon_greedy_probs
from rl4llm.utils import check_choice, check_positive_int, check_range

__all__ = ["fqi_with_more_data"]


def fqi_with_more_data(
    env: TabularEnv,
    dataset: OfflineDataset,
    behaviour: np.ndarray,
    source: str,
    n_rounds: int = 5,
    episodes_per_round: int = 10,
    epsilon: float = 0.1,
    config: OfflineQConfig | None = None,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Fitted Q-iteration that, after each fit, adds ``episodes_per_round`` episodes from ``source`` and refits.

    Args:
        env: the tabular environment (its MDP gives exact values; a network reads ``mdp.features`` if set).
        dataset: the initial logged data (state indices).
        behaviour: ``[S, A]`` the behaviour policy that logged ``dataset`` (used by ``source="behaviour"``).
        source: ``"own"`` (the learner's greedy policy, :math:`\\epsilon`-greedy) or ``"behaviour"``.
        n_rounds: rounds of (collect, refit) after the first fit.
        episodes_per_round: episodes added per round.
        epsilon: exploration of the learner's own policy.
        config: the fitted Q-iteration settings of every fit (the network is kept and trained further).
        seed: seeds the network and the new episodes.
    Returns:
        one dict per fit (``n_rounds + 1``): ``round``, ``n_transitions``, ``predicted``, ``true``,
        ``overestimation`` (:func:`rl4llm.offline.evaluation.greedy_value_gap`).
    """
    if not isinstance(env, TabularEnv):
        raise TypeError(f"env must be a TabularEnv, got {type(env).__name__}")
    if not isinstance(dataset, OfflineDataset):
        raise TypeError(f"dataset must be an OfflineDataset, got {type(dataset).__name__}")
    source = check_choice("source", source, ("own", "behaviour"))
    n_rounds = check_positive_int("n_rounds", n_rounds, 0)
    episodes_per_round = check_positive_int("episodes_per_round", episodes_per_round)
    epsilon = check_range("epsilon", epsilon, 0.0, 1.0)
    seed = check_positive_int("seed", seed, 0)
    mdp = env.mdp
    config = OfflineQConfig(gamma=mdp.gamma, seed=seed) if config is None else config
    if mdp.features is not None:
        states: int | np.ndarray = mdp.features
        obs_space = spaces.Box(-np.inf, np.inf, (mdp.features.shape[1],), dtype=np.float32)
    else:
        states, obs_space = mdp.n_states, env.observation_space
    q_net, history = None, []
    for round_ in range(n_rounds + 1):
        data = dataset.featurize(mdp.features) if mdp.features is not None else dataset
        q_net = train_offline_q(
            data, obs_space, env.action_space, config, q_net=q_net, desc=f"FQI round {round_}"
        ).q_net
        q = q_table(q_net, states)
        history.append({"round": round_, "n_transitions": len(dataset), **greedy_value_gap(mdp, q)})
        if round_ == n_rounds:
            break
        if source == "own":
            policy = epsilon_greedy_probs(q.argmax(1), mdp.n_actions, epsilon)
        else:
            policy = behaviour
        new = collect_dataset(
            env, table_policy(policy), episodes_per_round, seed=seed + 7919 * (round_ + 1), desc=f"round {round_ + 1}"
        )
        dataset = OfflineDataset.concatenate([dataset, new])
    return history
