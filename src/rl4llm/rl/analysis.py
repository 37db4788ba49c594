"""The numbers behind chapter 1's figures (sections 1.1-1.3): returns for several discounts, GAE's accuracy on an
exactly solvable token MDP, the spread of REINFORCE gradients, and PPO's clipped objective against the ratio.

Each function computes; :mod:`rl4llm.rl.plots` draws what it returns.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

from rl4llm.utils import check_positive_int, check_range

__all__ = [
    "episode_returns_by_gamma",
    "discounting_returns",
    "gae_advantage_quality",
    "policy_gradient_spread",
    "clipped_surrogate",
    "clipped_surrogate_curves",
]


def episode_returns_by_gamma(rewards: Sequence[float], gammas: Sequence[float]) -> dict[float, np.ndarray]:
    """Reward-to-go :math:`G_t` of one episode (terminated at its last step) for each discount in ``gammas``,
    computed with :func:`rl4llm.rl.discounted_returns`."""
    from rl4llm.rl.returns import discounted_returns

    r = torch.as_tensor(np.asarray(rewards, dtype=np.float32))
    if r.dim() != 1 or r.numel() == 0:
        raise ValueError("rewards must be a non-empty 1-D sequence")
    done = torch.zeros_like(r)
    done[-1] = 1.0
    return {float(g): discounted_returns(r, done, float(g)).numpy() for g in gammas}


def discounting_returns(gammas: Sequence[float], horizon: int) -> dict[str, dict[float, np.ndarray]]:
    """The reward-to-go :math:`G_t` of an episode of ``horizon`` steps for each discount in ``gammas`` (in that
    order), for two reward schedules: ``"dense"``, a reward of 1 at every step (CartPole), and ``"sparse"``, a
    single reward of 1 at the last step (a language model's response), where :math:`G_t = \\gamma^{T-1-t}`."""
    horizon = check_positive_int("horizon", horizon, 2)
    gammas = [check_range("gamma", g, 0.0, 1.0) for g in gammas]
    sparse_r = np.zeros(horizon)
    sparse_r[-1] = 1.0
    return {
        "dense": episode_returns_by_gamma(np.ones(horizon), gammas),
        "sparse": episode_returns_by_gamma(sparse_r, gammas),
    }


def gae_advantage_quality(
    lams: Sequence[float],
    *,
    gamma: float = 1.0,
    vocab_size: int = 4,
    horizon: int = 16,
    critic_noise: float = 0.03,
    n_episodes: int = 2000,
    seed: int = 0,
) -> dict:
    """How well GAE(:math:`\\gamma, \\lambda`) recovers the true advantage, measured exactly on a token MDP.

    A uniformly random policy writes ``horizon`` tokens from ``vocab_size``; the terminal reward is the fraction
    of positions matching a fixed target. For this policy everything is known in closed form: with
    :math:`m_t = \\mathbb 1[a_t = \\text{target}_t]` and :math:`p = 1/V`,

    .. math::
       V(s_t) = \\gamma^{T-1-t} \\frac{1}{T}\\Big(\\sum_{k<t} m_k + (T - t) p\\Big), \\qquad
       A(s_t, a_t) = \\gamma^{T-1-t} \\frac{m_t - p}{T}.

    GAE (:func:`rl4llm.rl.gae`) is computed on ``n_episodes`` sampled episodes with three critics: the exact
    :math:`V`, the exact :math:`V` plus independent Gaussian noise of standard deviation ``critic_noise`` at every
    state (a critic that has not finished learning), and no critic (:math:`V \\equiv 0`). The score is the
    correlation between :math:`\\hat A_t` and :math:`A(s_t, a_t)` at each position, averaged over positions: 1
    means the estimate ranks the actions exactly as the true advantage does (their scale does not matter, since PPO
    normalises advantages).

    Returns ``{"lams": array, "critics": {name: array of correlations}}``.
    """
    from rl4llm.rl.returns import gae

    gamma = check_range("gamma", gamma, 0.0, 1.0)
    vocab_size = check_positive_int("vocab_size", vocab_size, 2)
    horizon = check_positive_int("horizon", horizon, 2)
    critic_noise = check_range("critic_noise", critic_noise, 0.0, None)
    n_episodes = check_positive_int("n_episodes", n_episodes, 10)
    lams = [check_range("lam", lam, 0.0, 1.0) for lam in lams]
    rng = np.random.default_rng(seed)
    p = 1.0 / vocab_size
    T = horizon
    m = (rng.random((T, n_episodes)) < p).astype(np.float64)  # a_t == target_t under the uniform policy
    t = np.arange(T)[:, None]
    disc = gamma ** (T - 1 - t)
    before = np.cumsum(m, axis=0) - m  # matches strictly before t
    v = disc * (before + (T - t) * p) / T
    adv_true = disc * (m - p) / T
    rewards = np.zeros((T, n_episodes))
    rewards[-1] = m.sum(0) / T
    terminated = np.zeros((T, n_episodes))
    terminated[-1] = 1.0
    noise = rng.normal(0.0, critic_noise, size=(T + 1, n_episodes))
    critics = {
        "exact critic": v,
        f"noisy critic (σ = {critic_noise:g})": v + noise[:T],
        "no critic (V = 0)": np.zeros_like(v),
    }
    out: dict[str, np.ndarray] = {}
    zeros = torch.zeros(T, n_episodes, dtype=torch.float64)
    for name, values in critics.items():
        next_values = np.concatenate([values[1:], np.zeros((1, n_episodes))])  # V(s_T) never used: terminated
        scores = []
        for lam in lams:
            adv = gae(
                torch.as_tensor(rewards),
                torch.as_tensor(values),
                torch.as_tensor(next_values),
                torch.as_tensor(terminated),
                zeros,
                gamma,
                lam,
            ).numpy()
            scores.append(np.mean([_corr(adv[k], adv_true[k]) for k in range(T)]))
        out[name] = np.array(scores)
    return {"lams": np.array(lams), "critics": out, "gamma": gamma, "horizon": T}


def _corr(x: np.ndarray, y: np.ndarray) -> float:
    sx, sy = x.std(), y.std()
    if sx < 1e-12 or sy < 1e-12:
        return 0.0
    return float(np.mean((x - x.mean()) * (y - y.mean())) / (sx * sy))


def policy_gradient_spread(
    env_id: str = "CartPole-v1",
    *,
    n_batches: int = 100,
    episodes_per_batch: int = 4,
    gamma: float = 0.99,
    seed: int = 0,
) -> dict:
    """Measure the spread of REINFORCE gradient estimates of one fixed policy with three baselines.

    A freshly initialised :class:`~rl4llm.rl.ActorCritic` plays ``n_batches`` batches of ``episodes_per_batch``
    episodes. For every batch the gradient of :func:`rl4llm.rl.reinforce_loss` with respect to the policy's
    parameters is computed with no baseline, with the batch's mean return, and with a value function fitted
    beforehand to Monte-Carlo returns of 100 other episodes. All three are unbiased, so the mean of all the estimates
    is the reference gradient; the function returns each batch's cosine similarity to it, and the mean squared
    distance of the estimates from it relative to its squared norm.
    """
    import gymnasium

    from rl4llm.rl.agent import ActorCritic
    from rl4llm.rl.reinforce import reinforce_loss
    from rl4llm.rl.returns import discounted_returns
    from rl4llm.utils import set_seed

    n_batches = check_positive_int("n_batches", n_batches, 2)
    episodes_per_batch = check_positive_int("episodes_per_batch", episodes_per_batch)
    gamma = check_range("gamma", gamma, 0.0, 1.0)
    set_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    env = gymnasium.make(env_id)
    agent = ActorCritic(env.observation_space, env.action_space)
    first = [True]

    def episodes(n):
        obs_l, act_l, ret_l = [], [], []
        for _ in range(n):
            obs, _ = env.reset(seed=seed) if first[0] else env.reset()
            first[0] = False
            o, a, r, done = [], [], [], False
            while not done:
                action = agent.act(obs, generator=gen)
                o.append(np.asarray(obs, dtype=np.float32))
                a.append(action)
                obs, reward, term, trunc, _ = env.step(action)
                r.append(float(reward))
                done = term or trunc
            rr = torch.tensor(r)
            ends = torch.zeros_like(rr)
            ends[-1] = 1.0
            obs_l.append(torch.as_tensor(np.stack(o)))
            act_l.append(torch.as_tensor(a))
            ret_l.append(discounted_returns(rr, ends, gamma))
        return torch.cat(obs_l), torch.cat(act_l), torch.cat(ret_l)

    # fit the critic to Monte-Carlo returns of separate episodes (the policy stays fixed)
    obs, _, rets = episodes(100)
    opt = torch.optim.Adam(agent.critic.parameters(), lr=1e-2)
    for _ in range(200):
        loss = ((agent.value(obs) - rets) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    params = list(agent.actor.parameters())
    grads: dict[str, list[torch.Tensor]] = {"no baseline": [], "mean return": [], "learned V(s)": []}
    for _ in range(n_batches):
        obs, act, rets = episodes(episodes_per_batch)
        logp = agent.dist(obs).log_prob(act)
        with torch.no_grad():
            values = agent.value(obs)
        for name, base in (
            ("no baseline", None),
            ("mean return", rets.mean().expand_as(rets)),
            ("learned V(s)", values),
        ):
            g = torch.autograd.grad(reinforce_loss(logp, rets, base), params, retain_graph=True)
            grads[name].append(torch.cat([x.reshape(-1) for x in g]))
    env.close()
    stacked = {k: torch.stack(v) for k, v in grads.items()}
    reference = torch.cat(list(stacked.values())).mean(0)
    ref_norm2 = float(reference.pow(2).sum())
    cos = {k: torch.nn.functional.cosine_similarity(v, reference[None], dim=1).numpy() for k, v in stacked.items()}
    rel_var = {k: float((v - reference).pow(2).sum(1).mean()) / ref_norm2 for k, v in stacked.items()}
    return {
        "cosines": cos,
        "relative_variance": rel_var,
        "episodes_per_batch": episodes_per_batch,
        "n_batches": n_batches,
    }


def clipped_surrogate(ratios: Sequence[float], advantage: float, clip_eps: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample value of PPO's objective :math:`\\min(\\rho A, \\text{clip}(\\rho, 1-\\epsilon, 1+\\epsilon) A)`
    and its derivative with respect to :math:`\\rho`, evaluated with :func:`rl4llm.rl.ppo_clip_loss` (whose
    value is the negated objective)."""
    from rl4llm.rl.losses import ppo_clip_loss

    check_range("advantage", advantage, None, None)
    values, slopes = [], []
    for rho in ratios:
        rho = check_range("ratio", rho, 0.0, None, low_inclusive=False)
        logp = torch.tensor([math.log(rho)], dtype=torch.float64, requires_grad=True)
        loss = ppo_clip_loss(
            logp, torch.zeros(1, dtype=torch.float64), torch.tensor([float(advantage)], dtype=torch.float64), clip_eps
        )
        (g,) = torch.autograd.grad(loss, logp)
        values.append(-loss.item())
        slopes.append(-float(g) / rho)  # d/d rho = d/d log rho / rho
    return np.array(values), np.array(slopes)


def clipped_surrogate_curves(clip_eps: Sequence[float], ratios: Sequence[float] | None = None) -> dict:
    """PPO's per-sample objective and its slope against the ratio for :math:`A = +1` and :math:`A = -1`, one curve
    per clip range (:func:`clipped_surrogate`); ratios default to 391 points from 0.05 to 2.

    Returns ``{"ratios": [N], "curves": {advantage: {clip_eps: (values [N], slopes [N])}}}``.
    """
    rho = np.linspace(0.05, 2.0, 391) if ratios is None else np.asarray(ratios, dtype=float)
    curves = {adv: {eps: clipped_surrogate(rho, adv, eps) for eps in clip_eps} for adv in (1.0, -1.0)}
    return {"ratios": rho, "curves": curves}
