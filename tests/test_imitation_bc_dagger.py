"""Behaviour cloning and DAgger for gymnasium environments: the package's one neural BC routine, and the linear
softmax learner of the tightrope."""

import math

import gymnasium
import numpy as np
import pytest
import torch
from gymnasium import spaces

import rl4llm.imitation
import rl4llm.irl
import rl4llm.offline
from rl4llm.envs.tightrope import CLIMB, TightropeEnv
from rl4llm.imitation import (
    bc_loss,
    behaviour_cloning,
    beta_schedule,
    clone_expert,
    collect_expert_demonstrations,
    dagger,
    dagger_rollout,
    fit_softmax_policy,
    one_hot_featurizer,
    tightrope_expert,
    walker_table,
)
from rl4llm.rl.agent import ActorCritic
from rl4llm.utils import set_seed


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
    policy = clone_expert(env, ring_expert, 40, seed=0)
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
    bc = clone_expert(env, tightrope_expert, 30, seed=0)
    assert (walker_table(bc)[1] != CLIMB).all()
    policy, log = dagger(
        env, tightrope_expert, n_iterations=3, episodes_per_iteration=20, beta_decay=0.5, n_expert_episodes=30, seed=0
    )
    assert walker_table(policy).tolist() == [[0, 1], [CLIMB, CLIMB]]
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
        clone_expert(env, tightrope_expert, 0)


def test_one_behaviour_cloning_routine_for_every_chapter():
    assert rl4llm.offline.behaviour_cloning is rl4llm.irl.behaviour_cloning is rl4llm.imitation.behaviour_cloning


def test_behaviour_cloning_fits_the_demonstrations_full_batch_and_minibatch():
    obs_space, act_space = spaces.Discrete(7), spaces.Discrete(3)
    states = np.repeat(np.arange(7), 5)
    actions = np.array(RingEnv.EXPERT)[states]
    for batch_size in (None, 8):
        agent = behaviour_cloning(
            states, actions, obs_space, act_space, steps=300, lr=1e-2, batch_size=batch_size, seed=0
        )
        with torch.no_grad():
            greedy = agent.logits(torch.arange(7)).argmax(-1).numpy()
        assert greedy.tolist() == list(RingEnv.EXPERT)
    a = behaviour_cloning(states, actions, obs_space, act_space, steps=5, batch_size=8, seed=3)
    b = behaviour_cloning(states, actions, obs_space, act_space, steps=5, batch_size=8, seed=3)
    c = behaviour_cloning(states, actions, obs_space, act_space, steps=5, batch_size=8, seed=4)
    for p, q in zip(a.actor.parameters(), b.actor.parameters()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    assert any(not torch.equal(p, q) for p, q in zip(a.actor.parameters(), c.actor.parameters()))


def test_a_full_batch_step_is_adams_first_step_on_the_whole_set():
    # Adam's first step moves every parameter by lr * g / (|g| + eps): lr * sign(g) where the gradient of the
    # cross-entropy over all pairs is not tiny; the critic is never touched
    obs_space, act_space = spaces.Box(-1.0, 1.0, (3,), dtype=np.float32), spaces.Discrete(2)
    obs = np.random.default_rng(0).uniform(-1, 1, size=(20, 3)).astype(np.float32)
    actions = (obs[:, 0] > 0).astype(np.int64)
    set_seed(5)
    init = ActorCritic(obs_space, act_space, hidden=8)
    loss = torch.nn.functional.cross_entropy(init.logits(torch.as_tensor(obs)), torch.as_tensor(actions))
    grads = torch.autograd.grad(loss, list(init.actor.parameters()))
    agent = behaviour_cloning(obs, actions, obs_space, act_space, hidden=8, steps=1, lr=0.01, seed=5)
    for p0, g, p1 in zip(init.actor.parameters(), grads, agent.actor.parameters()):
        big = g.abs() > 1e-4
        torch.testing.assert_close(p1[big], (p0 - 0.01 * g.sign())[big], rtol=0, atol=1e-6)
    for p0, p1 in zip(init.critic.parameters(), agent.critic.parameters()):
        assert torch.equal(p0, p1)
