"""Chapter 4.2: GAIL's discriminator loss and rewards (hand-set logits), the training loop's hooks, BC."""

import math

import gymnasium
import numpy as np
import pytest
import torch

from rl4llm.imitation.bc import behaviour_cloning
from rl4llm.irl.adversarial import (
    Discriminator,
    GAILConfig,
    adversarial_reward,
    discriminator_loss,
    train_gail,
)
from rl4llm.irl.demos import collect_demonstrations
from rl4llm.rl import PPOConfig


def _softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def test_discriminator_loss_hand_set_logits():
    expert = torch.tensor([0.0, 2.0])
    policy = torch.tensor([0.0, -1.0, 3.0])
    # -mean log sigma(f_E) - mean log(1 - sigma(f_pi)) = mean softplus(-f_E) + mean softplus(f_pi)
    expected = (_softplus(0.0) + _softplus(-2.0)) / 2 + (_softplus(0.0) + _softplus(-1.0) + _softplus(3.0)) / 3
    assert discriminator_loss(expert, policy).item() == pytest.approx(expected, rel=1e-6)
    # a discriminator that cannot tell (all logits 0) pays 2 log 2
    assert discriminator_loss(torch.zeros(4), torch.zeros(2)).item() == pytest.approx(2 * math.log(2))
    # confident and right: near 0; confident and wrong: large
    assert discriminator_loss(torch.tensor([30.0]), torch.tensor([-30.0])).item() < 1e-12
    assert discriminator_loss(torch.tensor([-30.0]), torch.tensor([30.0])).item() == pytest.approx(60.0, rel=1e-6)


def test_discriminator_loss_gradient_pushes_the_right_way():
    expert = torch.zeros(3, requires_grad=True)
    policy = torch.zeros(2, requires_grad=True)
    discriminator_loss(expert, policy).backward()
    # d/df softplus(-f) at 0 = -1/2, averaged over 3; d/df softplus(f) at 0 = 1/2, averaged over 2
    np.testing.assert_allclose(expert.grad.numpy(), -0.5 / 3)
    np.testing.assert_allclose(policy.grad.numpy(), 0.5 / 2)


def test_adversarial_reward_forms():
    logits = torch.tensor([math.log(3.0), 0.0, -50.0])
    gail = adversarial_reward(logits, "gail")
    # -log(1 - D) with D = sigma(log 3) = 3/4 is log 4
    assert gail[0].item() == pytest.approx(math.log(4.0))
    assert gail[1].item() == pytest.approx(math.log(2.0))
    assert torch.all(gail > 0)  # always positive: a survival bonus
    logit = adversarial_reward(logits, "logit")
    # log D - log(1 - D) = log(3/4) - log(1/4) = log 3
    np.testing.assert_allclose(logit.numpy(), logits.numpy())
    assert logit[2].item() < 0


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda: discriminator_loss([0.0], torch.zeros(1)), TypeError, "expert_logits must be a torch.Tensor"),
        (
            lambda: discriminator_loss(torch.zeros(1), torch.zeros(2, 2)),
            ValueError,
            "policy_logits must be a non-empty",
        ),
        (lambda: discriminator_loss(torch.zeros(0), torch.zeros(1)), ValueError, "expert_logits must be a non-empty"),
        (lambda: adversarial_reward(torch.zeros(2), "airl"), ValueError, "form must be one of"),
        (lambda: GAILConfig(disc_lr=0.0), ValueError, r"disc_lr must be in \(0, inf\)"),
        (lambda: GAILConfig(reward_form="wasserstein"), ValueError, "reward_form must be one of"),
        (lambda: GAILConfig(absorbing=1), ValueError, "absorbing must be true/false, got 1"),
    ],
)
def test_validation(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_discriminator_shapes_and_absorbing_state():
    env = gymnasium.make("CartPole-v1")
    disc = Discriminator(env.observation_space, env.action_space, hidden=8)
    out = disc(torch.zeros(5, 4), torch.tensor([0, 1, 0, 1, 1]))
    assert out.shape == (5,)
    absorbing = disc.absorbing(3)
    assert absorbing.shape == (3,) and torch.allclose(absorbing, absorbing[0].expand(3))
    # the absorbing state is not the all-zero observation: the flag is a separate input
    with torch.no_grad():
        disc.net[-1].weight.zero_()
        disc.net[-1].bias.zero_()
    assert disc(torch.zeros(1, 4), torch.tensor([0])).item() == 0.0


def test_train_gail_wires_the_hooks():
    """Two PPO iterations: the callback trains the discriminator, the reward function scores the same batch."""
    obs = np.zeros((6, 4), dtype=np.float32)
    actions = np.array([0, 1, 0, 1, 0, 1])
    config = GAILConfig(
        ppo=PPOConfig(total_steps=2 * 8 * 16, n_envs=8, n_steps=16, n_epochs=1),
        absorbing=True,
        reward_form="logit",
        eval_episodes=1,
    )
    result = train_gail("CartPole-v1", obs, actions, config)
    assert len(result.curves) == 2
    for row in result.curves:
        for key in ("disc_loss", "disc_expert_acc", "disc_policy_acc", "absorbing_logit", "mean_return"):
            assert key in row
    assert result.eval_returns.shape == (1,)
    frozen = train_gail(
        "CartPole-v1",
        obs,
        actions,
        GAILConfig(ppo=PPOConfig(total_steps=8 * 16, n_envs=8, n_steps=16, n_epochs=1), disc_steps=0, eval_episodes=1),
    )
    # a frozen discriminator keeps the weights it was initialised with (train_gail seeds torch with ppo.seed)
    torch.manual_seed(0)
    env = gymnasium.make("CartPole-v1")
    init = Discriminator(env.observation_space, env.action_space, hidden=config.disc_hidden)
    for name, value in init.state_dict().items():
        assert torch.equal(value, frozen.discriminator.state_dict()[name]), name
    with pytest.raises(ValueError, match="expert_obs"):
        train_gail("CartPole-v1", obs, actions[:3], config)


def test_collect_demonstrations_subsamples_and_bc_fits_them():
    env = gymnasium.make("CartPole-v1")

    class Balancer:  # a hand-written expert: push the cart towards the side the pole leans to
        def act(self, obs, deterministic=True, generator=None):
            return int(obs[2] + 0.5 * obs[3] > 0)

    obs, actions, returns = collect_demonstrations(Balancer(), "CartPole-v1", 2, seed=0, subsample=10)
    assert returns.shape == (2,)
    expected_pairs = sum(len(range(0, int(r))) // 10 + (1 if int(r) % 10 else 0) for r in returns)
    assert abs(len(actions) - expected_pairs) <= 2  # one pair every 10 steps (random offset per episode)
    agent = behaviour_cloning(obs, actions, env.observation_space, env.action_space, weight_decay=1e-4, seed=0)
    with torch.no_grad():
        predicted = agent.logits(torch.as_tensor(obs)).argmax(-1).numpy()
    assert (predicted == actions).mean() > 0.9  # it fits the demonstrations it was given
    with pytest.raises(ValueError, match="subsample must be an int >= 1"):
        collect_demonstrations(Balancer(), "CartPole-v1", 1, subsample=0)


@pytest.mark.slow
def test_gail_learns_cartpole_from_25_pairs():
    from rl4llm.experiments.adversarial_irl import Config, run

    result = run(Config(n_seeds=1, control=False, seed=1))
    assert result.metrics["n_pairs"] == 25
    assert result.metrics["expert_return"] == 500.0
    assert result.metrics["gail_return"] >= 475.0


def test_adversarial_irl_experiment_is_reproducible_and_validated():
    from rl4llm.experiments import run_experiment

    small = dict(expert_steps=1024, gail_steps=512, n_seeds=1, eval_episodes=1, seed=3)
    a = run_experiment("adversarial-irl", **small)
    b = run_experiment("adversarial-irl", **small)
    ma, mb = dict(a.metrics), dict(b.metrics)
    ma.pop("wall_s"), mb.pop("wall_s")
    assert ma == mb
    for key in ("expert_return", "bc_return", "gail_return", "control_return", "n_pairs"):
        assert key in ma
    assert {row["arm"] for row in a.curves} == {"gail", "control"}
    with pytest.raises(ValueError, match="env_id must be a registered gymnasium id"):
        run_experiment("adversarial-irl", env_id="NoSuchEnv-v9")
    with pytest.raises(ValueError, match="reward_form must be one of"):
        run_experiment("adversarial-irl", reward_form="wasserstein")
