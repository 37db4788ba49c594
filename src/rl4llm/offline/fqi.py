"""Fitted Q-iteration on a fixed dataset (offline DQN), with or without CQL's penalty (book sections 2.2, 2.3).

Fitted Q-iteration (Ernst et al. 2005; with a neural network, Riedmiller's NFQ, or DQN without new data) repeats

1. freeze the current network as the target :math:`Q_{\\bar\\theta} \\leftarrow Q_\\theta`;
2. compute Bellman optimality targets on logged transitions,
   :math:`y = r + \\gamma (1 - \\text{term}) \\max_{a'} Q_{\\bar\\theta}(s', a')` (:func:`rl4llm.rl.dqn_targets`;
   a *truncated* transition still bootstraps, a *terminated* one does not);
3. regress :math:`Q_\\theta(s, a)` on :math:`y` for ``steps_per_iteration`` minibatch steps.

Nothing new is ever collected: the agent never sees what its greedy actions actually do. When
``cql_alpha > 0`` step 3 minimises the CQL objective instead (:func:`rl4llm.offline.cql.cql_loss`).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium
import numpy as np
import torch

from rl4llm.config import param, validate
from rl4llm.offline.cql import cql_loss
from rl4llm.offline.dataset import OfflineDataset
from rl4llm.rl.dqn import QNetwork, dqn_targets
from rl4llm.utils import check_positive_int, check_range, progress, set_seed, set_torch_threads

__all__ = [
    "OfflineQConfig",
    "OfflineQResult",
    "train_offline_q",
    "fitted_q_iteration",
    "conservative_q_learning",
    "q_table",
    "state_inputs",
]

#: ``callback(iteration, q_net) -> dict | None``: called after every iteration; a returned dict is logged.
Callback = Callable[[int, QNetwork], dict[str, float] | None]


@dataclass
class OfflineQConfig:
    """Hyperparameters of offline Q-learning; ``cql_alpha = 0`` is plain fitted Q-iteration."""

    n_iterations: int = param(20, low=1, help="fitted Q-iterations (target refreshes)")
    steps_per_iteration: int = param(50, low=1, help="gradient steps per iteration")
    batch_size: int = param(128, low=1, help="transitions per gradient step")
    lr: float = param(1e-3, low=0.0, low_inclusive=False, help="Adam learning rate")
    gamma: float = param(0.95, low=0.0, high=1.0, high_inclusive=False, help="discount factor")
    hidden: int = param(64, low=1, help="hidden units of the Q-network")
    cql_alpha: float = param(0.0, low=0.0, help="weight of CQL's conservative penalty (0: fitted Q-iteration)")
    seed: int = param(0, low=0, help="random seed")
    torch_threads: int = param(1, low=1, help="torch threads while training")

    def __post_init__(self) -> None:
        validate(self)


@dataclass
class OfflineQResult:
    """The trained network (``q_net.act(obs)`` is the greedy policy) and one row of curves per iteration."""

    q_net: QNetwork
    curves: list[dict[str, float]] = field(default_factory=list)
    wall_s: float = 0.0


def train_offline_q(
    dataset: OfflineDataset,
    observation_space: gymnasium.Space,
    action_space: gymnasium.Space,
    config: OfflineQConfig | None = None,
    callback: Callback | None = None,
    desc: str | None = None,
    q_net: QNetwork | None = None,
) -> OfflineQResult:
    """Fitted Q-iteration (``config.cql_alpha = 0``) or CQL (``> 0``) on ``dataset``; no environment is touched.

    Args:
        dataset: the logged transitions.
        observation_space, action_space: the spaces the data came from (``Discrete`` actions).
        config: hyperparameters (default :class:`OfflineQConfig`).
        callback: ``callback(iteration, q_net)`` after every iteration (e.g. to measure the true value of the
            greedy policy on a tabular MDP); a returned dict is added to that iteration's row of curves.
        desc: progress-bar label.
        q_net: a network to continue training (default: a fresh :class:`rl4llm.rl.QNetwork` of ``config.hidden``
            units); it is updated in place.
    Returns:
        an :class:`OfflineQResult`; each row of ``curves`` has ``iteration``, ``bellman_loss``, ``cql_penalty``
        (logged even when it is not optimised) and ``mean_max_q`` (the mean of :math:`\\max_a Q(s, a)` over
        the dataset's states).
    """
    if not isinstance(dataset, OfflineDataset):
        raise TypeError(f"dataset must be an OfflineDataset, got {type(dataset).__name__}")
    config = OfflineQConfig() if config is None else config
    if not isinstance(config, OfflineQConfig):
        raise TypeError(f"config must be an OfflineQConfig, got {type(config).__name__}")
    if callback is not None and not callable(callback):
        raise TypeError("callback must be callable or None")
    if int(dataset.actions.max()) >= int(action_space.n):
        raise ValueError(f"dataset actions must be < action_space.n = {action_space.n}")
    set_torch_threads(config.torch_threads)
    set_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    t0 = time.perf_counter()
    if q_net is None:
        q_net = QNetwork(observation_space, action_space, config.hidden)
    elif not isinstance(q_net, QNetwork):
        raise TypeError(f"q_net must be a QNetwork or None, got {type(q_net).__name__}")
    target_net = copy.deepcopy(q_net)
    optimizer = torch.optim.Adam(q_net.parameters(), lr=config.lr)
    data = dataset.tensors()
    n = len(dataset)
    batch = min(config.batch_size, n)
    result = OfflineQResult(q_net=q_net)
    label = desc or ("CQL" if config.cql_alpha > 0 else "FQI")
    for iteration in progress(range(config.n_iterations), desc=label):
        target_net.load_state_dict(q_net.state_dict())
        sums = {"bellman_loss": 0.0, "cql_penalty": 0.0}
        for _ in range(config.steps_per_iteration):
            idx = torch.randint(n, (batch,), generator=gen)
            with torch.no_grad():
                y = dqn_targets(
                    data["rewards"][idx],
                    target_net(data["next_observations"][idx]),
                    data["terminations"][idx],
                    config.gamma,
                )
            loss, parts = cql_loss(q_net(data["observations"][idx]), data["actions"][idx], y, config.cql_alpha)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            for k in sums:
                sums[k] += parts[k]
        with torch.no_grad():
            mean_max_q = float(q_net(data["observations"]).max(1).values.mean())
        row: dict[str, float] = {"iteration": iteration + 1, "mean_max_q": mean_max_q}
        row.update({k: v / config.steps_per_iteration for k, v in sums.items()})
        if callback is not None:
            extra = callback(iteration + 1, q_net)
            if extra:
                row.update(extra)
        result.curves.append(row)
    result.wall_s = time.perf_counter() - t0
    return result


def fitted_q_iteration(
    dataset: OfflineDataset,
    observation_space: gymnasium.Space,
    action_space: gymnasium.Space,
    config: OfflineQConfig | None = None,
    **kwargs: Any,
) -> OfflineQResult:
    """Naive fitted Q-iteration: :func:`train_offline_q` with ``cql_alpha = 0``."""
    config = OfflineQConfig(**{**_fields(config), "cql_alpha": 0.0})
    return train_offline_q(dataset, observation_space, action_space, config, **kwargs)


def conservative_q_learning(
    dataset: OfflineDataset,
    observation_space: gymnasium.Space,
    action_space: gymnasium.Space,
    config: OfflineQConfig | None = None,
    alpha: float = 1.0,
    **kwargs: Any,
) -> OfflineQResult:
    """CQL(:math:`\\mathcal H`): :func:`train_offline_q` with ``cql_alpha = alpha`` (> 0)."""
    alpha = check_range("alpha", alpha, 0.0, None, low_inclusive=False)
    config = OfflineQConfig(**{**_fields(config), "cql_alpha": alpha})
    return train_offline_q(dataset, observation_space, action_space, config, **kwargs)


def _fields(config: OfflineQConfig | None) -> dict[str, Any]:
    if config is None:
        return {}
    if not isinstance(config, OfflineQConfig):
        raise TypeError(f"config must be an OfflineQConfig, got {type(config).__name__}")
    return {k: getattr(config, k) for k in config.__dataclass_fields__}


def q_table(q_net: QNetwork, states: int | np.ndarray) -> np.ndarray:
    """``[S, A]`` the network's :math:`Q(s, a)` on every state of a tabular problem.

    ``states`` is the number of states (the network reads state indices) or the ``[S, d]`` feature table the
    network was trained on (``mdp.features``).
    """
    inputs = state_inputs(states)
    with torch.no_grad():
        return q_net(inputs).double().numpy()


def state_inputs(states: int | np.ndarray) -> torch.Tensor:
    """The network inputs for all states: ``arange(S)`` for an int, else the feature table as float32."""
    if isinstance(states, (int, np.integer)) and not isinstance(states, bool):
        return torch.arange(check_positive_int("states", states))
    table = np.asarray(states, dtype=np.float32)
    if table.ndim != 2:
        raise ValueError(f"states must be a number of states or an [S, d] feature table, got shape {table.shape}")
    return torch.as_tensor(table)
