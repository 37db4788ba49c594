"""Deep Q-networks (Mnih et al. 2015): the off-policy, value-based baseline of the why-PPO comparison (section 1.5).

DQN learns :math:`Q_\\theta(s, a)` by regressing on the one-step Bellman optimality target computed with a
slowly-updated copy :math:`Q_{\\bar\\theta}` (the *target network*) from transitions replayed at random from a
buffer of past experience:

.. math::
   y = r + \\gamma (1 - \\text{term}) \\max_{a'} Q_{\\bar\\theta}(s', a'), \\qquad
   \\mathcal L(\\theta) = \\text{mean}\\ \\text{Huber}\\big(Q_\\theta(s, a) - y\\big).

It acts :math:`\\epsilon`-greedily, with :math:`\\epsilon` decayed linearly. Replay makes it sample-efficient but
*off-policy*: the data come from old policies, and the max over a bootstrapped estimate propagates errors; the
survey's takeaway 5 (Sun 2023) is that PPO's (almost) on-policy data and conservative updates are more stable.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import gymnasium
import numpy as np
import torch
from torch import nn

from rl4llm.config import param, validate
from rl4llm.rl.agent import ObsEncoder, _apply_mlp, mlp
from rl4llm.rl.common import Callback, TrainResult, call_back, make_env_fn
from rl4llm.utils import check_positive_int, check_range, progress, set_seed, set_torch_threads

__all__ = ["dqn_targets", "epsilon_schedule", "QNetwork", "ReplayBuffer", "DQNConfig", "DQNResult", "train_dqn"]


def dqn_targets(
    rewards: torch.Tensor, next_q_target: torch.Tensor, terminated: torch.Tensor, gamma: float
) -> torch.Tensor:
    """Bellman optimality targets :math:`y = r + \\gamma (1 - \\text{term}) \\max_{a'} Q_{\\bar\\theta}(s', a')`.

    Args:
        rewards: ``[B]`` rewards.
        next_q_target: ``[B, A]`` target-network Q-values of the next states.
        terminated: ``[B]`` 1 where the transition ended the episode (no bootstrap). A time-limit truncation is
            *not* a termination.
        gamma: discount in ``[0, 1]``.

    Returns:
        ``[B]`` targets, detached (no gradient flows into the target network).
    """
    for name, t in (("rewards", rewards), ("next_q_target", next_q_target), ("terminated", terminated)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
    if rewards.dim() != 1 or rewards.shape[0] == 0:
        raise ValueError(f"rewards must be a non-empty [B] tensor, got shape {tuple(rewards.shape)}")
    if next_q_target.dim() != 2 or next_q_target.shape[0] != rewards.shape[0] or next_q_target.shape[1] == 0:
        raise ValueError(f"next_q_target must be [B, A] with B = {rewards.shape[0]}, got {tuple(next_q_target.shape)}")
    if terminated.shape != rewards.shape:
        raise ValueError(
            f"terminated must have the shape of rewards {tuple(rewards.shape)}, got {tuple(terminated.shape)}"
        )
    gamma = check_range("gamma", gamma, 0.0, 1.0)
    # BEGIN SOLUTION
    best_next = next_q_target.max(dim=1).values
    return (rewards + gamma * (1.0 - terminated.float()) * best_next).detach()
    # END SOLUTION


def epsilon_schedule(step: int, total_steps: int, eps_start: float, eps_end: float, fraction: float) -> float:
    """Linear exploration schedule: :math:`\\epsilon` goes from ``eps_start`` to ``eps_end`` over the first
    ``fraction * total_steps`` steps, then stays at ``eps_end``."""
    duration = max(1.0, fraction * total_steps)
    frac = min(1.0, step / duration)
    return eps_start + frac * (eps_end - eps_start)


class QNetwork(nn.Module):
    """:math:`Q_\\theta(s, \\cdot)`: the shared observation encoder and an MLP with one output per action."""

    def __init__(self, observation_space: gymnasium.Space, action_space: gymnasium.Space, hidden: int = 64) -> None:
        super().__init__()
        if not isinstance(action_space, gymnasium.spaces.Discrete):
            raise ValueError(f"action space must be Discrete, got {action_space}")
        self.observation_space = observation_space
        self.encoder = ObsEncoder(observation_space)
        self.q = mlp(self.encoder.features, int(action_space.n), hidden)
        self.n_actions = int(action_space.n)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """``[B, n_actions]`` Q-values."""
        return _apply_mlp(self.encoder, self.q, obs)

    @torch.no_grad()
    def act(self, obs, deterministic: bool = True, generator: torch.Generator | None = None):
        """Greedy action(s) for one observation or a batch (``deterministic`` is accepted for API symmetry)."""
        x = torch.as_tensor(np.asarray(obs))
        single = tuple(x.shape) == tuple(self.observation_space.shape or ())
        if single:
            x = x.unsqueeze(0)
        out = self(x).argmax(-1).numpy().astype(np.int64)
        return int(out[0]) if single else out


class ReplayBuffer:
    """A fixed-size ring buffer of transitions ``(s, a, r, s', terminated)``, sampled uniformly."""

    def __init__(self, capacity: int, obs_shape: tuple[int, ...]) -> None:
        self.capacity = check_positive_int("capacity", capacity)
        self.obs = np.zeros((capacity,) + obs_shape, dtype=np.float32)
        self.next_obs = np.zeros((capacity,) + obs_shape, dtype=np.float32)
        self.actions = np.zeros(capacity, dtype=np.int64)
        self.rewards = np.zeros(capacity, dtype=np.float32)
        self.terminated = np.zeros(capacity, dtype=np.float32)
        self.size = 0
        self.pos = 0

    def add(self, obs, action: int, reward: float, next_obs, terminated: bool) -> None:
        self.obs[self.pos] = obs
        self.actions[self.pos] = action
        self.rewards[self.pos] = reward
        self.next_obs[self.pos] = next_obs
        self.terminated[self.pos] = float(terminated)
        self.pos = (self.pos + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int, rng: np.random.Generator) -> tuple[torch.Tensor, ...]:
        idx = rng.integers(0, self.size, size=batch_size)
        return (
            torch.as_tensor(self.obs[idx]),
            torch.as_tensor(self.actions[idx]),
            torch.as_tensor(self.rewards[idx]),
            torch.as_tensor(self.next_obs[idx]),
            torch.as_tensor(self.terminated[idx]),
        )


@dataclass
class DQNConfig:
    """DQN hyperparameters (CleanRL-like defaults, scaled down to the book's small problems).

    One gradient step on a minibatch of ``batch_size`` replayed transitions every ``train_freq`` environment
    steps once ``learning_starts`` steps have been collected; the target network is copied from the online
    network every ``target_update`` steps; :math:`\\epsilon` decays linearly (:func:`epsilon_schedule`).
    """

    total_steps: int = param(50_000, low=1, help="environment steps in all")
    buffer_size: int = param(10_000, low=1, help="transitions the replay buffer holds")
    batch_size: int = param(64, low=1, help="replayed transitions per gradient step")
    lr: float = param(5e-4, low=0.0, low_inclusive=False, help="Adam learning rate")
    gamma: float = param(0.99, low=0.0, high=1.0, help="discount factor")
    learning_starts: int = param(1_000, low=0, help="steps collected before the first gradient step")
    train_freq: int = param(4, low=1, help="environment steps between two gradient steps")
    target_update: int = param(500, low=1, help="steps between two copies into the target network")
    eps_start: float = param(1.0, low=0.0, high=1.0, help="initial exploration rate epsilon")
    eps_end: float = param(0.05, low=0.0, high=1.0, help="final exploration rate epsilon")
    eps_fraction: float = param(
        0.3, low=0.0, high=1.0, low_inclusive=False, help="fraction of total_steps over which epsilon decays"
    )
    max_grad_norm: float | None = param(
        None, low=0.0, low_inclusive=False, allow_none=True, help="global gradient-norm clip; None: no clipping"
    )
    hidden: int = param(64, low=1, help="hidden units of the Q-network")
    seed: int = param(0, low=0, help="random seed")
    torch_threads: int = param(1, low=1, help="torch CPU threads")

    def __post_init__(self) -> None:
        validate(self)


@dataclass
class DQNResult(TrainResult):
    """What :func:`train_dqn` returns: a :class:`~rl4llm.rl.common.TrainResult` whose ``agent`` is the trained
    :class:`QNetwork` (``agent.act(obs)`` is the greedy policy), whose ``episode_returns`` are those of the
    exploratory :math:`\\epsilon`-greedy training episodes, and whose ``curves`` hold one row every ``log_every``
    steps (``iteration``, ``env_steps``, ``mean_return`` of the last 20 episodes, ``epsilon``, ``loss``,
    ``q_mean``: the mean predicted Q of the last minibatch)."""


def train_dqn(
    make_env: Callable[[], gymnasium.Env] | str,
    config: DQNConfig | None = None,
    callback: Callback | None = None,
    log_every: int = 1000,
    desc: str = "DQN",
) -> DQNResult:
    """Train DQN on one environment for ``config.total_steps`` steps.

    Args:
        make_env: zero-argument factory of a gymnasium env with a ``Discrete`` action space (or an env id).
        config: hyperparameters (default :class:`DQNConfig`).
        callback: optional ``callback(iteration, info, agent)`` (the protocol of :mod:`rl4llm.rl.common`): one
            iteration is ``log_every`` environment steps; it is called after the step's update with that
            iteration's row of ``curves`` (``env_steps`` = the steps taken so far) and the Q-network. Returning
            ``False`` stops training.
        log_every: steps between two rows of ``curves`` (and two callback calls).
        desc: progress-bar label.

    The environment is reset with ``config.seed`` once; later episodes continue its random stream. Transitions
    store ``terminated`` only: a time-limit truncation still bootstraps from the next state.
    """
    config = DQNConfig() if config is None else config
    if not isinstance(config, DQNConfig):
        raise ValueError(f"config must be a DQNConfig, got {type(config).__name__}")
    if callback is not None and not callable(callback):
        raise ValueError("callback must be callable or None")
    log_every = check_positive_int("log_every", log_every)
    factory = make_env_fn(make_env)
    set_torch_threads(config.torch_threads)
    rng = set_seed(config.seed)
    t0 = time.perf_counter()
    env = factory()
    q_net = QNetwork(env.observation_space, env.action_space, config.hidden)
    target_net = QNetwork(env.observation_space, env.action_space, config.hidden)
    target_net.load_state_dict(q_net.state_dict())
    optimizer = torch.optim.Adam(q_net.parameters(), lr=config.lr, foreach=True)  # multi-tensor: same numbers
    buffer = ReplayBuffer(config.buffer_size, tuple(env.observation_space.shape))
    result = DQNResult(agent=q_net)
    obs, _ = env.reset(seed=config.seed)
    total, last_loss, q_mean = 0.0, float("nan"), float("nan")
    for step in progress(range(config.total_steps), desc=desc):
        eps = epsilon_schedule(step, config.total_steps, config.eps_start, config.eps_end, config.eps_fraction)
        action = int(rng.integers(q_net.n_actions)) if rng.random() < eps else q_net.act(obs)
        next_obs, reward, terminated, truncated, _ = env.step(action)
        buffer.add(obs, action, float(reward), next_obs, terminated)
        total += float(reward)
        obs = next_obs
        if terminated or truncated:
            result.episode_returns.append(total)
            result.episode_steps.append(step + 1)
            total = 0.0
            obs, _ = env.reset()
        if step >= config.learning_starts and step % config.train_freq == 0:
            b_obs, b_act, b_rew, b_next, b_term = buffer.sample(config.batch_size, rng)
            with torch.no_grad():
                y = dqn_targets(b_rew, target_net(b_next), b_term, config.gamma)
            q = q_net(b_obs).gather(1, b_act[:, None]).squeeze(1)
            loss = nn.functional.smooth_l1_loss(q, y)
            optimizer.zero_grad()
            loss.backward()
            if config.max_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(q_net.parameters(), config.max_grad_norm)
            optimizer.step()
            last_loss, q_mean = loss.item(), float(q.detach().mean())
        if step % config.target_update == 0:
            target_net.load_state_dict(q_net.state_dict())
        if (step + 1) % log_every == 0:
            row = {
                "iteration": (step + 1) // log_every,
                "env_steps": step + 1,
                "mean_return": result.final_return(20),
                "epsilon": eps,
                "loss": last_loss,
                "q_mean": q_mean,
            }
            result.curves.append(row)
            if call_back(callback, row["iteration"], row, q_net):
                result.env_steps = step + 1
                break
    else:
        result.env_steps = config.total_steps
    env.close()
    result.wall_s = time.perf_counter() - t0
    return result
