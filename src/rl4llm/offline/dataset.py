"""Logged datasets: what a behaviour policy left behind, the only thing offline RL learns from (book section 2.1).

A dataset is a flat list of :math:`N` transitions in the order they were logged, episode after episode:

======================  ====================  ===========================================================
field                   shape, dtype          meaning
======================  ====================  ===========================================================
``observations``        ``[N, *obs]``         :math:`s_t`
``actions``             ``[N]`` int64         :math:`a_t \\sim \\pi_\\beta(\\cdot \\mid s_t)`, the behaviour policy
``rewards``             ``[N]`` float32       :math:`r_t`
``next_observations``   ``[N, *obs]``         :math:`s_{t+1}` (for the last step of an episode: its final observation)
``terminations``        ``[N]`` bool          the episode *ended* at :math:`s_{t+1}` (a terminal state: no bootstrap)
``truncations``         ``[N]`` bool          the episode was *cut* after this step (a time limit: bootstrap from
                                              :math:`V(s_{t+1})`, the MDP goes on)
======================  ====================  ===========================================================

This is Gymnasium's ``step`` output stored row by row, the layout of D4RL and Minari
(``terminations``/``truncations``), with the next observation stored next to each transition so that a
Q-learner never has to reassemble episodes. An episode ends at a row where ``terminations | truncations``.
Discrete observations (a state index) are stored as ``int64`` ``[N]``; ``Box`` observations as ``float32``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
import torch

from rl4llm.utils import check_positive_int, check_range, progress

__all__ = ["OfflineDataset", "Policy", "collect_dataset", "epsilon_greedy", "table_policy"]

#: A behaviour policy: ``policy(observation, rng) -> action``.
Policy = Callable[[Any, np.random.Generator], int]

_FIELDS = ("observations", "actions", "rewards", "next_observations", "terminations", "truncations")


@dataclass
class OfflineDataset:
    """:math:`N` logged transitions in the layout of the module docstring; ``info`` records how they were made."""

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_observations: np.ndarray
    terminations: np.ndarray
    truncations: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        arrays = {name: np.asarray(getattr(self, name)) for name in _FIELDS}
        n = arrays["actions"].shape[0] if arrays["actions"].ndim >= 1 else -1
        if n < 1:
            raise ValueError(f"actions must be a non-empty 1-D array, got shape {arrays['actions'].shape}")
        for name, arr in arrays.items():
            if arr.ndim < 1 or arr.shape[0] != n:
                raise ValueError(f"{name} must have N = {n} rows (one per transition), got shape {arr.shape}")
        for name in ("actions", "rewards", "terminations", "truncations"):
            if arrays[name].ndim != 1:
                raise ValueError(f"{name} must be 1-D [N], got shape {arrays[name].shape}")
        if arrays["observations"].shape != arrays["next_observations"].shape:
            raise ValueError(
                f"next_observations must have the shape of observations "
                f"{arrays['observations'].shape}, got {arrays['next_observations'].shape}"
            )
        acts = arrays["actions"]
        if not np.issubdtype(acts.dtype, np.integer):
            raise TypeError(f"actions must be integers (a Discrete action space), got dtype {acts.dtype}")
        if acts.min() < 0:
            raise ValueError(f"actions must be >= 0, got {acts.min()}")
        for name in ("terminations", "truncations"):
            arr = arrays[name]
            if arr.dtype != bool and not np.isin(arr, (0, 1)).all():
                raise ValueError(f"{name} must be booleans (or 0/1), got values outside {{0, 1}}")
        rewards = arrays["rewards"].astype(np.float32)
        if not np.isfinite(rewards).all():
            raise ValueError("rewards must be finite (found NaN or inf)")
        obs = arrays["observations"]
        if np.issubdtype(obs.dtype, np.floating):
            self.observations = obs.astype(np.float32)
            self.next_observations = arrays["next_observations"].astype(np.float32)
        elif np.issubdtype(obs.dtype, np.integer):
            self.observations = obs.astype(np.int64)
            self.next_observations = arrays["next_observations"].astype(np.int64)
        else:
            raise TypeError(f"observations must be numbers, got dtype {obs.dtype}")
        self.actions = acts.astype(np.int64)
        self.rewards = rewards
        self.terminations = arrays["terminations"].astype(bool)
        self.truncations = arrays["truncations"].astype(bool)

    def __len__(self) -> int:
        return int(self.actions.shape[0])

    @property
    def episode_ends(self) -> np.ndarray:
        """``[N]`` bool: the episode ends after this transition (terminated or truncated)."""
        return self.terminations | self.truncations

    def episode_returns(self, gamma: float = 1.0) -> np.ndarray:
        """The (discounted) return :math:`\\sum_t \\gamma^t r_t` of every complete episode, in logging order."""
        gamma = check_range("gamma", gamma, 0.0, 1.0)
        out, total, discount = [], 0.0, 1.0
        for r, end in zip(self.rewards, self.episode_ends):
            total += discount * float(r)
            discount *= gamma
            if end:
                out.append(total)
                total, discount = 0.0, 1.0
        return np.asarray(out)

    def action_counts(self, n_states: int, n_actions: int) -> np.ndarray:
        """``[S, A]`` counts :math:`N(s, a)` of a dataset with discrete (state-index) observations."""
        n_states = check_positive_int("n_states", n_states)
        n_actions = check_positive_int("n_actions", n_actions)
        if self.observations.ndim != 1 or not np.issubdtype(self.observations.dtype, np.integer):
            raise ValueError("action_counts needs discrete observations (state indices, shape [N])")
        if self.observations.max() >= n_states or self.actions.max() >= n_actions:
            raise ValueError(f"states must be < n_states = {n_states} and actions < n_actions = {n_actions}")
        counts = np.zeros((n_states, n_actions), dtype=np.int64)
        np.add.at(counts, (self.observations, self.actions), 1)
        return counts

    def featurize(self, table: np.ndarray) -> OfflineDataset:
        """The same transitions with every state index ``s`` replaced by the feature vector ``table[s]``.

        Tabular datasets are logged with state indices (so that they can be counted exactly); a learner that
        should generalise between states is trained on ``dataset.featurize(mdp.features)`` instead.
        """
        table = np.asarray(table, dtype=np.float32)
        if table.ndim != 2:
            raise ValueError(f"table must be [S, d], got shape {table.shape}")
        if self.observations.ndim != 1 or not np.issubdtype(self.observations.dtype, np.integer):
            raise ValueError("featurize needs discrete observations (state indices, shape [N])")
        if self.observations.max() >= table.shape[0] or self.next_observations.max() >= table.shape[0]:
            raise ValueError(f"table has {table.shape[0]} rows but the dataset has state {self.observations.max()}")
        return OfflineDataset(
            table[self.observations],
            self.actions,
            self.rewards,
            table[self.next_observations],
            self.terminations,
            self.truncations,
            info={**self.info, "featurized": True},
        )

    def tensors(self) -> dict[str, torch.Tensor]:
        """The six fields as torch tensors (observations as float32 or int64, flags as float32 0/1)."""
        out = {name: torch.as_tensor(getattr(self, name)) for name in _FIELDS}
        out["terminations"] = out["terminations"].float()
        out["truncations"] = out["truncations"].float()
        return out

    def save(self, path: str | Path) -> Path:
        """Write the six arrays (and ``info`` as a string) to a compressed ``.npz`` file."""
        path = Path(path)
        np.savez_compressed(path, **{name: getattr(self, name) for name in _FIELDS}, info=np.asarray(repr(self.info)))
        return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")

    @classmethod
    def load(cls, path: str | Path) -> OfflineDataset:
        """Read a dataset written by :meth:`save` (``info`` comes back as ``{"repr": ...}``)."""
        with np.load(Path(path), allow_pickle=False) as data:
            missing = [name for name in _FIELDS if name not in data]
            if missing:
                raise ValueError(f"{path} is not an offline dataset: missing {', '.join(missing)}")
            return cls(**{name: data[name] for name in _FIELDS}, info={"repr": str(data["info"])})

    @classmethod
    def concatenate(cls, parts: Sequence[OfflineDataset]) -> OfflineDataset:
        """One dataset holding ``parts`` one after the other."""
        if not parts:
            raise ValueError("parts must hold at least one dataset")
        return cls(
            **{name: np.concatenate([getattr(p, name) for p in parts]) for name in _FIELDS},
            info={"parts": [p.info for p in parts]},
        )


def collect_dataset(
    env: gymnasium.Env, policy: Policy, n_episodes: int, seed: int = 0, desc: str = "logging"
) -> OfflineDataset:
    """Run ``policy`` for ``n_episodes`` episodes in ``env`` and log every transition.

    Episode ``i`` is reset with seed ``seed + i``; the policy draws its randomness from
    ``np.random.default_rng(seed)``. Same seed, same dataset.
    """
    if not isinstance(env, gymnasium.Env):
        raise TypeError(f"env must be a gymnasium.Env, got {type(env).__name__}")
    if not callable(policy):
        raise TypeError("policy must be callable as policy(observation, rng) -> action")
    n_episodes = check_positive_int("n_episodes", n_episodes)
    seed = check_positive_int("seed", seed, 0)
    rng = np.random.default_rng(seed)
    rows: dict[str, list[Any]] = {name: [] for name in _FIELDS}
    for episode in progress(range(n_episodes), desc=desc):
        obs, _ = env.reset(seed=seed + episode)
        done = False
        while not done:
            action = int(policy(obs, rng))
            next_obs, reward, terminated, truncated, _ = env.step(action)
            for name, value in zip(_FIELDS, (obs, action, reward, next_obs, terminated, truncated)):
                rows[name].append(value)
            obs, done = next_obs, terminated or truncated
    return OfflineDataset(
        **{name: np.asarray(values) for name, values in rows.items()}, info={"n_episodes": n_episodes, "seed": seed}
    )


def epsilon_greedy(base: Callable[[Any], int], n_actions: int, epsilon: float) -> Policy:
    """The behaviour policy "do what ``base(obs)`` says w.p. :math:`1 - \\epsilon`, else a uniform random action".

    :math:`\\pi_\\beta(a \\mid s) = (1 - \\epsilon)\\,\\mathbb 1[a = \\text{base}(s)] + \\epsilon / A`. Larger
    :math:`\\epsilon` spreads the data over more actions (better coverage) at the price of a worse behaviour.
    """
    if not callable(base):
        raise TypeError("base must be callable as base(observation) -> action")
    n_actions = check_positive_int("n_actions", n_actions)
    epsilon = check_range("epsilon", epsilon, 0.0, 1.0)

    def policy(obs: Any, rng: np.random.Generator) -> int:
        if rng.random() < epsilon:
            return int(rng.integers(n_actions))
        return int(base(obs))

    return policy


def table_policy(probs: np.ndarray) -> Policy:
    """A tabular policy ``[S, A]`` (rows :math:`\\pi(\\cdot \\mid s)`) as a behaviour policy to log data with."""
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or (probs < 0).any() or not np.allclose(probs.sum(1), 1.0):
        raise ValueError("probs must be an [S, A] matrix whose rows are probability distributions")
    cdf = np.cumsum(probs, axis=1)

    def policy(obs: Any, rng: np.random.Generator) -> int:
        return int(min(np.searchsorted(cdf[int(obs)], rng.random(), side="right"), probs.shape[1] - 1))

    return policy
