"""Figures of chapter 1 (reinforcement learning): returns and horizons, advantages, PPO's clipped objective, and the
experiments of sections 1.3, 1.5 and 1.6.

The small computations behind the widgets (returns of an episode for a discount, the clipped surrogate against the
ratio, GAE's bias and variance) live here too, next to the figure that shows them, so that a page calls one
function per figure.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

import torch

from rl4llm.plotting import COLORS, PALETTE, label, new_figure
from rl4llm.utils import check_positive_int, check_range

__all__ = ["episode_returns_by_gamma", "plot_discounting", "gae_advantage_quality", "plot_gae_quality",
           "policy_gradient_spread", "plot_gradient_spread", "clipped_surrogate", "plot_clipped_surrogate",
           "plot_clip_sweep", "plot_ppo_run", "plot_why_ppo", "plot_action_space"]


# ---------------------------------------------------------------------------------------------------------------
# Section 1.1: returns and the horizon


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


def plot_discounting(gammas: Sequence[float] = (0.9, 0.97, 0.99, 1.0), horizon: int = 100, *,
                     highlight: float | None = None):
    """Two panels: the reward-to-go :math:`G_t` of an episode of ``horizon`` steps for each discount,

    * left, a reward of 1 at every step (CartPole): :math:`G_0` saturates at the effective horizon
      :math:`1 / (1 - \\gamma)` once the episode is longer than it;
    * right, a single reward of 1 at the last step (a language model's response): :math:`G_t = \\gamma^{T-1-t}`, so
      with :math:`\\gamma < 1` the first tokens see almost none of it.

    ``highlight`` draws that discount in bold (the widget's current value).
    """
    horizon = check_positive_int("horizon", horizon, 2)
    gammas = [check_range("gamma", g, 0.0, 1.0) for g in gammas]
    if highlight is not None:
        highlight = check_range("highlight", highlight, 0.0, 1.0)
        gammas = sorted(set(gammas) | {highlight})
    fig, axes = new_figure(ncols=2, width=4.6, height=3.3)
    ax1, ax2 = axes[0]
    dense = episode_returns_by_gamma(np.ones(horizon), gammas)
    sparse_r = np.zeros(horizon)
    sparse_r[-1] = 1.0
    sparse = episode_returns_by_gamma(sparse_r, gammas)
    t = np.arange(horizon)
    for i, g in enumerate(gammas):
        bold = highlight is not None and g == highlight
        style = dict(color=COLORS[i % len(COLORS)], lw=2.5 if bold else 1.5,
                     alpha=1.0 if (highlight is None or bold) else 0.45)
        eff = "∞" if g >= 1.0 else f"{1 / (1 - g):.0f}"
        ax1.plot(t, dense[g], label=f"γ = {g:g} (1/(1−γ) = {eff})", **style)
        ax2.plot(t, sparse[g], label=f"γ = {g:g}", **style)
    label(ax1, "time step t", "return-to-go $G_t$", "Reward 1 at every step")
    label(ax2, "time step t", "return-to-go $G_t$", "Reward 1 at the last step only")
    ax1.legend(fontsize=8)
    ax2.legend(fontsize=8, loc="upper left", ncol=2)
    ax2.set_ylim(-0.02, 1.25)
    return fig


# ---------------------------------------------------------------------------------------------------------------
# Section 1.2: advantages, GAE and baselines


def gae_advantage_quality(lams: Sequence[float], *, gamma: float = 1.0, vocab_size: int = 4, horizon: int = 16,
                          critic_noise: float = 0.03, n_episodes: int = 2000, seed: int = 0) -> dict:
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
            adv = gae(torch.as_tensor(rewards), torch.as_tensor(values), torch.as_tensor(next_values),
                      torch.as_tensor(terminated), zeros, gamma, lam).numpy()
            scores.append(np.mean([_corr(adv[k], adv_true[k]) for k in range(T)]))
        out[name] = np.array(scores)
    return {"lams": np.array(lams), "critics": out, "gamma": gamma, "horizon": T}


def _corr(x: np.ndarray, y: np.ndarray) -> float:
    sx, sy = x.std(), y.std()
    if sx < 1e-12 or sy < 1e-12:
        return 0.0
    return float(np.mean((x - x.mean()) * (y - y.mean())) / (sx * sy))


def plot_gae_quality(quality: dict, *, lam: float | None = None):
    """Two panels: the weight :math:`(\\gamma\\lambda)^k` that GAE puts on the TD error :math:`k` steps ahead, and
    the measured correlation of :math:`\\hat A^{\\lambda}` with the true advantage against :math:`\\lambda`
    (from :func:`gae_advantage_quality`). ``lam`` marks one value (the widget's); by default several are drawn."""
    gamma = quality["gamma"]
    fig, axes = new_figure(ncols=2, width=4.6, height=3.3)
    ax1, ax2 = axes[0]
    k = np.arange(quality["horizon"])
    shown = [lam] if lam is not None else [0.0, 0.5, 0.9, 0.95, 1.0]
    for i, lm in enumerate(shown):
        ax1.plot(k, (gamma * lm) ** k, "o-", ms=3, color=COLORS[i % len(COLORS)], label=f"λ = {lm:g}")
    label(ax1, "steps ahead k", "weight on TD error $\\delta_{t+k}$", f"GAE weights (γ = {gamma:g})")
    ax1.legend()
    for i, (name, scores) in enumerate(quality["critics"].items()):
        ax2.plot(quality["lams"], scores, "-", color=COLORS[i % len(COLORS)], lw=2, label=name)
        if lam is not None:
            ax2.plot([lam], [np.interp(lam, quality["lams"], scores)], "o", color=COLORS[i % len(COLORS)], ms=7)
    if lam is not None:
        ax2.axvline(lam, color=PALETTE["grey"], ls=":")
    ax2.set_ylim(0, 1.02)
    label(ax2, "λ", "corr(estimated, true advantage)", "Quality of GAE, measured")
    ax2.legend(loc="lower center", fontsize=8)
    return fig


def policy_gradient_spread(env_id: str = "CartPole-v1", *, n_batches: int = 100, episodes_per_batch: int = 4,
                           gamma: float = 0.99, seed: int = 0) -> dict:
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
        for name, base in (("no baseline", None), ("mean return", rets.mean().expand_as(rets)),
                           ("learned V(s)", values)):
            g = torch.autograd.grad(reinforce_loss(logp, rets, base), params, retain_graph=True)
            grads[name].append(torch.cat([x.reshape(-1) for x in g]))
    env.close()
    stacked = {k: torch.stack(v) for k, v in grads.items()}
    reference = torch.cat(list(stacked.values())).mean(0)
    ref_norm2 = float(reference.pow(2).sum())
    cos = {k: torch.nn.functional.cosine_similarity(v, reference[None], dim=1).numpy() for k, v in stacked.items()}
    rel_var = {k: float((v - reference).pow(2).sum(1).mean()) / ref_norm2 for k, v in stacked.items()}
    return {"cosines": cos, "relative_variance": rel_var, "episodes_per_batch": episodes_per_batch,
            "n_batches": n_batches}


def plot_gradient_spread(spread: dict):
    """Histograms of the per-batch cosine similarity to the reference gradient, one per baseline."""
    fig, ax = new_figure(width=6.4, height=3.4)
    bins = np.linspace(-1, 1, 41)
    for i, (name, cos) in enumerate(spread["cosines"].items()):
        rv = spread["relative_variance"][name]
        ax.hist(cos, bins=bins, histtype="stepfilled", alpha=0.35, color=COLORS[i % len(COLORS)])
        ax.hist(cos, bins=bins, histtype="step", lw=1.5, color=COLORS[i % len(COLORS)],
                label=f"{name}: mean cos {np.mean(cos):.2f}, relative variance {rv:.1f}")
    label(ax, "cosine(one batch's gradient, true gradient)", "number of batches",
          f"REINFORCE gradients from {spread['episodes_per_batch']} episodes, "
          f"{spread['n_batches']} batches")
    ax.legend(loc="upper left", fontsize=8)
    return fig


# ---------------------------------------------------------------------------------------------------------------
# Section 1.3: PPO's clipped objective


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
        loss = ppo_clip_loss(logp, torch.zeros(1, dtype=torch.float64),
                             torch.tensor([float(advantage)], dtype=torch.float64), clip_eps)
        (g,) = torch.autograd.grad(loss, logp)
        values.append(-loss.item())
        slopes.append(-float(g) / rho)  # d/d rho = d/d log rho / rho
    return np.array(values), np.array(slopes)


def plot_clipped_surrogate(clip_eps: Sequence[float] = (0.2,), *, ratios: Sequence[float] | None = None):
    """PPO's per-sample objective against the ratio :math:`\\rho`, for :math:`A = +1` (left) and :math:`A = -1`
    (right), one line per clip range; flat stretches (zero gradient) are where the clip binds. The unclipped
    surrogate :math:`\\rho A` is drawn dotted."""
    rho = np.linspace(0.05, 2.0, 391) if ratios is None else np.asarray(ratios, dtype=float)
    fig, axes = new_figure(ncols=2, width=4.4, height=3.3, sharey=False)
    for ax, adv in zip(axes[0], (1.0, -1.0)):
        ax.plot(rho, rho * adv, ":", color=PALETTE["grey"], label="unclipped ρA (ε = ∞)")
        for i, eps in enumerate(clip_eps):
            vals, slopes = clipped_surrogate(rho, adv, eps)
            color = COLORS[i % len(COLORS)]
            ax.plot(rho, vals, color=color, lw=2, label=f"ε = {eps:g}")
            if len(clip_eps) == 1:  # shade where the clip binds: the gradient is zero there
                flat = np.abs(slopes) < 1e-12
                ax.fill_between(rho, 0, 1, where=flat, color=color, alpha=0.1, linewidth=0,
                                transform=ax.get_xaxis_transform(), label="zero gradient")
        ax.axvline(1.0, color="black", lw=0.6)
        sign = "+1" if adv > 0 else "−1"
        label(ax, "probability ratio ρ = π_θ(a|s) / π_old(a|s)", "objective min(ρA, clip(ρ)A)",
              f"Advantage A = {sign}")
        ax.legend(fontsize=8, loc="upper left" if adv > 0 else "lower left")
    return fig


def plot_clip_sweep(sweep: Sequence[tuple[float, object]]):
    """Learning curves (mean return of the last 20 episodes) and update sizes (approximate KL) of ppo-cartpole
    runs at several clip ranges (``[(clip_eps, Result)]`` from :func:`rl4llm.widgets.run_sweep`)."""
    from rl4llm.widgets import sweep_figure

    fig, axes = new_figure(ncols=2, width=4.6, height=3.3)
    ax1, ax2 = axes[0]
    sweep_figure(sweep, "env_steps", "mean_return", param="clip ε", xlabel="environment steps",
                 ylabel="mean return (last 20 episodes)", title="Learning curves", ax=ax1)
    ax1.axhline(475, ls="--", color=PALETTE["grey"])
    for i, (eps, res) in enumerate(sweep):
        x = np.array([r["env_steps"] for r in res.curves])
        y = np.array([r["approx_kl"] for r in res.curves])
        k = 5
        ys = np.convolve(y, np.ones(k) / k, mode="same")
        ax2.plot(x, ys, color=COLORS[i % len(COLORS)], label=f"clip ε = {eps:g}")
    ax2.set_yscale("log")
    label(ax2, "environment steps", "approx. KL(old ‖ new) per update", "Size of each update (smoothed)")
    ax2.legend()
    return fig


# ---------------------------------------------------------------------------------------------------------------
# Sections 1.3, 1.5 and 1.6: experiments


def plot_ppo_run(result, *, title: str | None = None, solved: float = 475.0):
    """Two panels for one PPO run (section 1.3): episode returns against environment steps (each episode a dot,
    the mean of the last 20 a line), and the size of each update (approximate KL and clip fraction)."""
    fig, axes = new_figure(ncols=2, width=4.8, height=3.4)
    ax1, ax2 = axes[0]
    steps = np.asarray(result.episode_steps)
    rets = np.asarray(result.episode_returns, dtype=float)
    ax1.plot(steps, rets, ".", ms=2, alpha=0.3, color=COLORS[0], label="one training episode")
    rows = result.curves
    ax1.plot([r["env_steps"] for r in rows], [r["mean_return"] for r in rows], color=COLORS[0], lw=2,
             label="mean of the last 20 episodes")
    ax1.axhline(solved, ls="--", color=PALETTE["grey"], label=f"solved ({solved:g})")
    label(ax1, "environment steps", "episode return", title)
    ax1.legend(loc="lower right")
    x = [r["env_steps"] for r in rows]
    ax2.plot(x, [r["approx_kl"] for r in rows], color=COLORS[1], label="approx. KL(old ‖ new)")
    ax2.set_yscale("log")
    label(ax2, "environment steps", "approximate KL per update")
    ax3 = ax2.twinx()
    ax3.plot(x, [r["clip_frac"] for r in rows], color=COLORS[2], label="clip fraction")
    ax3.set_ylabel("fraction of samples clipped")
    ax3.set_ylim(0, 0.5)
    ax3.grid(False)
    lines = ax2.get_lines() + ax3.get_lines()
    ax2.legend(lines, [ln.get_label() for ln in lines], loc="upper right")
    ax2.set_title("Size of each update")
    return fig


def plot_why_ppo(grid: np.ndarray, curves: Mapping[str, np.ndarray], finals: Mapping[str, np.ndarray], *,
                 labels: Mapping[str, str], short: Mapping[str, str] | None = None, random_return: float,
                 title: str | None = None):
    """Two panels for the why-PPO experiment (section 1.5).

    Left: greedy return against environment steps, one thin line per seed and the mean over seeds in bold.
    Right: the final greedy return of every seed (one dot per seed) and the mean (a bar), per method.
    ``labels`` name the methods in the legend, ``short`` under the bars.
    """
    short = dict(short or {})
    fig, axes = new_figure(ncols=2, width=4.8, height=3.6)
    ax1, ax2 = axes[0]
    names = list(curves)
    for i, name in enumerate(names):
        color = COLORS[i % len(COLORS)]
        runs = np.atleast_2d(curves[name])
        for run in runs:
            ax1.plot(grid, run, color=color, lw=0.8, alpha=0.35)
        ax1.plot(grid, runs.mean(0), color=color, lw=2, label=labels.get(name, name))
    ax1.axhline(random_return, ls=":", color=PALETTE["grey"], label="uniform random policy")
    ax1.set_ylim(-0.02, 1.05)
    label(ax1, "environment steps", "greedy return (fraction matched)", title)
    rng = np.random.default_rng(0)
    for i, name in enumerate(names):
        vals = np.asarray(finals[name], dtype=float)
        ax2.bar(i, vals.mean(), color=COLORS[i % len(COLORS)], alpha=0.35, width=0.6)
        jitter = rng.uniform(-0.15, 0.15, size=vals.size)
        ax2.plot(i + jitter, vals, "o", color=COLORS[i % len(COLORS)], ms=5)
    ax2.set_xticks(range(len(names)))
    ax2.set_xticklabels([short.get(n, n) for n in names], fontsize=9)
    ax2.set_ylim(0, 1.05)
    ax2.axhline(random_return, ls=":", color=PALETTE["grey"])
    label(ax2, "method", "final greedy return", f"After {int(grid[-1]):,} steps: one dot per seed")
    handles, texts = ax1.get_legend_handles_labels()
    fig.legend(handles, texts, loc="outside lower center", ncol=3)
    return fig


def _sig2(x: float) -> float:
    """``x`` rounded to two significant figures (extrapolations deserve no more)."""
    return float(f"{x:.2g}")


def plot_action_space(measured: Mapping[str, Mapping[int, Sequence[int | None]]],
                      fits: Mapping[str, tuple[float, float]], *, horizon: int, target_return: float,
                      max_steps: int, gpt2_vocab: int = 50_257, tiny_vocab: int = 196):
    """Steps PPO needs to reach the target return against the vocabulary size, log-log (section 1.6).

    ``measured[mode][V]`` lists the steps of each seed (``None``: not reached within ``max_steps``, drawn as a
    hollow triangle at ``max_steps``). Solid lines join the medians; ``fits[mode] = (a, b)``
    (``log10 steps = a + b log10 V``) are drawn dashed out to ``gpt2_vocab``, with a hollow marker there: an
    extrapolation, labelled as one.
    """
    fig, ax = new_figure(width=7.0, height=4.4)
    names = {"dense": "dense reward (per token)", "terminal": "terminal reward (end of sequence)"}
    censored = False
    for i, (mode, by_vocab) in enumerate(measured.items()):
        color = COLORS[i % len(COLORS)]
        vs, meds = [], []
        for v, runs in sorted(by_vocab.items()):
            ok = [r for r in runs if r is not None]
            if len(runs) > 1:
                ax.plot([v] * len(ok), ok, "o", color=color, ms=3, alpha=0.5)
            if len(ok) < len(runs):
                censored = True
                ax.plot([v], [max_steps], "^", color=color, ms=8, mfc="none")
            elif ok:
                vs.append(v)
                meds.append(float(np.median(ok)))
        ax.plot(vs, meds, "o-", color=color, lw=2, ms=6, label=f"{names.get(mode, mode)}, measured")
        if mode in fits:
            a, b = fits[mode]
            xs = np.logspace(np.log10(min(vs)), np.log10(gpt2_vocab), 50)
            y = 10 ** (a + b * np.log10(gpt2_vocab))
            ax.plot(xs, 10 ** (a + b * np.log10(xs)), "--", color=color, lw=1,
                    label=f"fit steps ∝ $V^{{{b:.2f}}}$; extrapolated to GPT-2: ≈ {_sig2(y):,.0f}")
            ax.plot([gpt2_vocab], [y], "o", ms=9, mfc="white", color=color)
    for v, text in ((tiny_vocab, "tiny GPT-2\n(196 tokens)"), (gpt2_vocab, "GPT-2\n(50,257 tokens)")):
        ax.axvline(v, ls=":", color=PALETTE["grey"])
        ax.text(v, 1.01, text, transform=ax.get_xaxis_transform(), ha="center", va="bottom", fontsize=8)
    if censored:
        ax.axhline(max_steps, ls="-", lw=0.5, color=PALETTE["grey"])
    ax.set_xscale("log")
    ax.set_yscale("log")
    label(ax, "vocabulary size V (number of actions)", f"steps until the greedy return ≥ {target_return:g}")
    ax.set_title(f"PPO on the token MDP (horizon {horizon}): measured, then extrapolated (dashed)", pad=26)
    ax.legend(loc="upper left", fontsize=8)
    return fig
