"""Behaviour cloning and DAgger for gymnasium environments (the linear softmax learner)."""

import math

import gymnasium
import numpy as np
import pytest
import torch
from gymnasium import spaces

from rl4llm.envs.tightrope import CLIMB, TightropeEnv
from rl4llm.imitation import (
    bc_loss,
    behaviour_cloning,
    beta_schedule,
    collect_expert_demonstrations,
    dagger,
    dagger_rollout,
    fit_softmax_policy,
    one_hot_featurizer,
    policy_table,
    tightrope_expert,
)


class RingEnv(gymnasium.Env):
    """A deterministic MDP: 7 states on a ring, 3 actions moving 0, 1 or 2 steps; episodes start anywhere."""

    N = 7
    EXPERT = (2, 0, 1, 1, 2, 0, 2)  # an arbitrary expert: action per state

    def __init__(self):
        self.observation_space = spaces.Discrete(self.N)
        self.action_space = spaces.Discrete(3)
        self._s, self._t = 0, 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._s, self._t = int(self.np_random.integers(self.N)), 0
        return self._s, {}

    def step(self, action):
        reward = float(action == self.EXPERT[self._s])
        self._s = (self._s + int(action)) % self.N
        self._t += 1
        return self._s, reward, False, self._t >= 4, {}


def ring_expert(env, obs):
    return RingEnv.EXPERT[int(obs)]


def test_bc_loss_hand_computed():
    logits = torch.tensor([[0.0, math.log(3.0)], [0.0, math.log(3.0)]])
    # softmax = [1/4, 3/4]; labels 1 and 0: -(log 3/4 + log 1/4) / 2
    expected = -(math.log(0.75) + math.log(0.25)) / 2
    assert float(bc_loss(logits, torch.tensor([1, 0]))) == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match="logits"):
        bc_loss(torch.zeros(3), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="expert_actions"):
        bc_loss(torch.zeros(3, 2), torch.zeros(2, dtype=torch.long))


def test_bc_recovers_the_expert_on_a_deterministic_mdp_with_full_coverage():
    env = RingEnv()
    obs, acts = collect_expert_demonstrations(env, ring_expert, 40, seed=0)
    assert set(obs.tolist()) == set(range(RingEnv.N))  # every state is demonstrated
    policy = behaviour_cloning(env, ring_expert, 40, seed=0)
    assert [policy.act(s) for s in range(RingEnv.N)] == list(RingEnv.EXPERT)
    probs = policy.probs(np.arange(RingEnv.N))
    assert np.allclose(probs.sum(1), 1.0)
    assert (probs[np.arange(RingEnv.N), list(RingEnv.EXPERT)] > 0.9).all()


def test_fit_softmax_policy_separable_data_and_validation():
    feats = np.eye(3)
    policy = fit_softmax_policy(feats, np.array([2, 0, 1]), 3, lambda o: np.eye(3)[int(o)], l2=1e-3)
    assert [policy.act(i) for i in range(3)] == [2, 0, 1]
    assert policy.logits(np.zeros((0,))).shape == (0, 3)
    with pytest.raises(ValueError, match="actions"):
        fit_softmax_policy(feats, np.array([0, 1, 3]), 3, lambda o: o)
    with pytest.raises(ValueError, match="n_actions"):
        fit_softmax_policy(feats, np.array([0, 0, 0]), 1, lambda o: o)
    with pytest.raises(ValueError, match="l2"):
        fit_softmax_policy(feats, np.array([0, 1, 1]), 2, lambda o: o, l2=-1.0)


def test_one_hot_featurizer():
    f = one_hot_featurizer(spaces.MultiDiscrete([2, 2]))
    assert f(np.array([1, 0])).tolist() == [0, 1, 1, 0]  # [1-fallen, fallen, cue==0, cue==1]
    assert one_hot_featurizer(spaces.Discrete(4))(2).tolist() == [0, 0, 1, 0]
    with pytest.raises(TypeError, match="space"):
        one_hot_featurizer(spaces.Text(5))


def test_beta_schedule():
    assert beta_schedule(1, 0.5) == 1.0  # the first iteration is the expert's
    assert beta_schedule(2, 0.5) == 0.5
    assert beta_schedule(4, 0.5) == pytest.approx(0.125)
    assert beta_schedule(2, 0.0) == 0.0  # Ross et al.'s favourite: the learner alone after iteration 1
    assert beta_schedule(9, 1.0) == 1.0
    with pytest.raises(ValueError, match="decay"):
        beta_schedule(2, 1.5)
    with pytest.raises(ValueError, match="iteration"):
        beta_schedule(0, 0.5)


def test_dagger_rollout_labels_with_the_expert_whoever_acts():
    env = TightropeEnv(horizon=12, eps=0.3)
    rng = np.random.default_rng(0)
    obs, labels, cost = dagger_rollout(env, tightrope_expert, None, 1.0, rng, seed=5)
    assert len(obs) == len(labels) == 12 and cost == 0.0  # the expert alone never errs
    assert all(o[0] == 0 for o in obs)  # ... and never falls
    with pytest.raises(ValueError, match="beta"):
        dagger_rollout(env, tightrope_expert, None, 0.5, rng, seed=5)


def test_dagger_on_the_tightrope_learns_to_climb_where_bc_does_not():
    env = TightropeEnv(horizon=20, eps=0.1)
    bc = behaviour_cloning(env, tightrope_expert, 30, seed=0)
    assert (policy_table(bc)[1] != CLIMB).all()
    policy, log = dagger(env, tightrope_expert, n_iterations=3, episodes_per_iteration=20, beta_decay=0.5,
                         n_expert_episodes=30, seed=0)
    assert policy_table(policy).tolist() == [[0, 1], [CLIMB, CLIMB]]
    assert [row["beta"] for row in log] == [0.5, 0.25, 0.125]
    assert [row["dataset_size"] for row in log] == [30 * 20 + 20 * 20 * k for k in (1, 2, 3)]


def test_dagger_validation():
    env = TightropeEnv(horizon=5, eps=0.1)
    with pytest.raises(ValueError, match="n_iterations"):
        dagger(env, tightrope_expert, n_iterations=0)
    with pytest.raises(ValueError, match="beta_decay"):
        dagger(env, tightrope_expert, beta_decay=2.0)
    with pytest.raises(TypeError, match="expert"):
        dagger(env, "expert")
    with pytest.raises(ValueError, match="n_episodes"):
        behaviour_cloning(env, tightrope_expert, 0)
