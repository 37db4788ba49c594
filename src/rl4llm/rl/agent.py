"""The actor-critic networks shared by PPO and REINFORCE: an observation encoder, a policy head, a value head.

Observations are encoded by their gymnasium space, so one agent class fits every environment of the book:

* ``Box`` (CartPole): the flattened float vector;
* ``MultiDiscrete`` (the token MDP's prefix, padded with the symbol ``vocab_size``): one one-hot vector per
  position, concatenated, i.e. a bag of (position, token) features;
* ``Discrete`` (gridworld states): one-hot.

The policy is categorical over a ``Discrete`` action space: :math:`\\pi_\\theta(a|s) = \\text{softmax}(f_\\theta(s))_a`.
Initialisation follows the PPO implementation details (Huang et al. 2022): orthogonal weights, gain
:math:`\\sqrt2` in hidden layers, 0.01 for the policy logits (a near-uniform first policy) and 1 for the value.
"""

from __future__ import annotations

import math

import gymnasium
import numpy as np
import torch
from torch import nn

__all__ = ["ObsEncoder", "ActorCritic", "mlp"]


class ObsEncoder(nn.Module):
    """Turn a batch of raw observations (any of the spaces above) into a float ``[B, features]`` tensor."""

    def __init__(self, space: gymnasium.Space) -> None:
        super().__init__()
        if isinstance(space, gymnasium.spaces.Box):
            self.kind = "box"
            self.features = int(np.prod(space.shape))
            self.register_buffer("offsets", torch.zeros(0, dtype=torch.long))
        elif isinstance(space, gymnasium.spaces.MultiDiscrete):
            self.kind = "multidiscrete"
            nvec = torch.as_tensor(np.asarray(space.nvec).reshape(-1), dtype=torch.long)
            self.features = int(nvec.sum())
            self.register_buffer("offsets", torch.cumsum(nvec, 0) - nvec)
        elif isinstance(space, gymnasium.spaces.Discrete):
            self.kind = "discrete"
            self.features = int(space.n)
            self.register_buffer("offsets", torch.zeros(0, dtype=torch.long))
        else:
            raise ValueError(f"observation space must be Box, MultiDiscrete or Discrete, got {space}")

    def linear(self, obs: torch.Tensor, layer: nn.Linear) -> torch.Tensor:
        """``layer(self(obs))``, computed without building the one-hot vectors of token observations.

        For ``MultiDiscrete`` observations a linear layer on the concatenated one-hots is the sum of the weight
        columns of the active (position, token) features, :math:`W x = \\sum_p W_{:, o_p + s_p}`: an embedding
        lookup whose cost does not grow with the vocabulary (4x faster at 1,024 tokens). Other spaces use the
        layer as is.
        """
        if self.kind != "multidiscrete":
            return layer(self(obs))
        index = obs.reshape(obs.shape[0], -1).long() + self.offsets
        return nn.functional.embedding(index, layer.weight.t()).sum(1) + layer.bias

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        batch = obs.shape[0]
        if self.kind == "box":
            return obs.reshape(batch, -1).float()
        if self.kind == "discrete":
            return nn.functional.one_hot(obs.reshape(batch).long(), self.features).float()
        index = obs.reshape(batch, -1).long() + self.offsets  # position p, token v -> feature offsets[p] + v
        out = torch.zeros(batch, self.features, dtype=torch.float32, device=obs.device)
        return out.scatter_(1, index, 1.0)


def _layer(n_in: int, n_out: int, gain: float) -> nn.Linear:
    layer = nn.Linear(n_in, n_out)
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.zeros_(layer.bias)
    return layer


def mlp(n_in: int, n_out: int, hidden: int, n_layers: int = 2, out_gain: float = 1.0) -> nn.Sequential:
    """``n_layers`` tanh hidden layers of width ``hidden``, then a linear output (orthogonal init)."""
    layers: list[nn.Module] = []
    width = n_in
    for _ in range(n_layers):
        layers += [_layer(width, hidden, math.sqrt(2)), nn.Tanh()]
        width = hidden
    layers.append(_layer(width, n_out, out_gain))
    return nn.Sequential(*layers)


def _apply_mlp(encoder: ObsEncoder, net: nn.Sequential, obs: torch.Tensor) -> torch.Tensor:
    """``net(encoder(obs))`` with the first layer computed by :meth:`ObsEncoder.linear`."""
    h = encoder.linear(obs, net[0])
    for layer in list(net)[1:]:
        h = layer(h)
    return h


class ActorCritic(nn.Module):
    """Separate policy and value MLPs over a shared (parameter-free) observation encoder.

    ``act(obs, deterministic=False)`` is the inference API used by :func:`rl4llm.rl.evaluate` and by the other
    chapters (e.g. as the generator of adversarial IRL): it takes one raw observation or a batch and returns an
    ``int`` or an ``int64`` array of actions.
    """

    def __init__(self, observation_space: gymnasium.Space, action_space: gymnasium.Space, hidden: int = 64) -> None:
        super().__init__()
        if not isinstance(action_space, gymnasium.spaces.Discrete):
            raise ValueError(f"action space must be Discrete (a categorical policy), got {action_space}")
        self.observation_space = observation_space
        self.action_space = action_space
        self.encoder = ObsEncoder(observation_space)
        self.n_actions = int(action_space.n)
        self.actor = mlp(self.encoder.features, self.n_actions, hidden, out_gain=0.01)
        self.critic = mlp(self.encoder.features, 1, hidden, out_gain=1.0)

    def logits(self, obs: torch.Tensor) -> torch.Tensor:
        """``[B, n_actions]`` policy logits (``self.actor(self.encoder(obs))``)."""
        return _apply_mlp(self.encoder, self.actor, obs)

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        """``[B]`` state values :math:`V(s)` (``self.critic(self.encoder(obs))``)."""
        return _apply_mlp(self.encoder, self.critic, obs).squeeze(-1)

    def dist(self, obs: torch.Tensor) -> torch.distributions.Categorical:
        return torch.distributions.Categorical(logits=self.logits(obs))

    @torch.no_grad()
    def act(self, obs, deterministic: bool = False, generator: torch.Generator | None = None):
        """Sample (or, with ``deterministic=True``, take the most likely) action for one observation or a batch."""
        x = torch.as_tensor(np.asarray(obs))
        single = x.shape == self._obs_shape()
        if single:
            x = x.unsqueeze(0)
        logits = self.logits(x)
        if deterministic:
            actions = logits.argmax(-1)
        else:
            actions = torch.multinomial(torch.softmax(logits, -1), 1, generator=generator).squeeze(-1)
        out = actions.numpy().astype(np.int64)
        return int(out[0]) if single else out

    def _obs_shape(self) -> tuple[int, ...]:
        shape = self.observation_space.shape
        return tuple(shape) if shape is not None else ()
