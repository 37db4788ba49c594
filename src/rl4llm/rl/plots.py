"""Figures of chapter 1 (reinforcement learning): returns and horizons, advantages, PPO's clipped objective, and the
experiments of sections 1.3, 1.5 and 1.6.

Every function here only draws: the numbers come from :mod:`rl4llm.rl.analysis` (returns for several discounts,
GAE's accuracy, gradient spread, the clipped surrogate) or from an experiment's result.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from rl4llm.plotting import COLORS, PALETTE, label, new_figure, plot_sweep, sweep_columns

__all__ = [
    "plot_discounting",
    "plot_gae_quality",
    "plot_gradient_spread",
    "plot_clipped_surrogate",
    "plot_clip_sweep",
    "plot_ppo_run",
    "plot_why_ppo",
    "plot_action_space",
    "plot_staleness",
    "plot_sparse_reward",
]


# ---------------------------------------------------------------------------------------------------------------
# Section 1.1: returns and the horizon


def plot_discounting(returns: Mapping[str, Mapping[float, np.ndarray]], *, highlight: float | None = None):
    """Two panels: the reward-to-go :math:`G_t` of one episode for each discount
    (:func:`rl4llm.rl.analysis.discounting_returns`),

    * left, a reward of 1 at every step (CartPole): :math:`G_0` saturates at the effective horizon
      :math:`1 / (1 - \\gamma)` once the episode is longer than it;
    * right, a single reward of 1 at the last step (a language model's response): :math:`G_t = \\gamma^{T-1-t}`, so
      with :math:`\\gamma < 1` the first tokens see almost none of it.

    ``highlight`` draws that discount in bold (the widget's current value).
    """
    dense, sparse = returns["dense"], returns["sparse"]
    fig, axes = new_figure(ncols=2, width=4.6, height=3.3)
    ax1, ax2 = axes[0]
    for i, g in enumerate(dense):
        t = np.arange(len(dense[g]))
        bold = highlight is not None and g == highlight
        style = dict(
            color=COLORS[i % len(COLORS)], lw=2.5 if bold else 1.5, alpha=1.0 if (highlight is None or bold) else 0.45
        )
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


def plot_gae_quality(quality: dict, *, lam: float | None = None):
    """Two panels: the weight :math:`(\\gamma\\lambda)^k` that GAE puts on the TD error :math:`k` steps ahead, and
    the measured correlation of :math:`\\hat A^{\\lambda}` with the true advantage against :math:`\\lambda`
    (from :func:`rl4llm.rl.analysis.gae_advantage_quality`). ``lam`` marks one value (the widget's); by default several are drawn."""
    gamma = quality["gamma"]
    fig, axes = new_figure(ncols=2, width=4.6, height=3.3)
    ax1, ax2 = axes[0]
    k = np.arange(quality["horizon"])
    shown = [lam] if lam is not None else [0.0, 0.5, 0.9, 0.95, 1.0]
    plot_sweep(ax1, [(float(lm), k, (gamma * lm) ** k) for lm in shown], param="λ", legend=None, fmt="o-", ms=3)
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


def plot_gradient_spread(spread: dict):
    """Histograms of the per-batch cosine similarity to the reference gradient, one per baseline."""
    fig, ax = new_figure(width=6.4, height=3.4)
    bins = np.linspace(-1, 1, 41)
    for i, (name, cos) in enumerate(spread["cosines"].items()):
        rv = spread["relative_variance"][name]
        ax.hist(cos, bins=bins, histtype="stepfilled", alpha=0.35, color=COLORS[i % len(COLORS)])
        ax.hist(
            cos,
            bins=bins,
            histtype="step",
            lw=1.5,
            color=COLORS[i % len(COLORS)],
            label=f"{name}: mean cos {np.mean(cos):.2f}, relative variance {rv:.1f}",
        )
    label(
        ax,
        "cosine(one batch's gradient, true gradient)",
        "number of batches",
        f"REINFORCE gradients from {spread['episodes_per_batch']} episodes, {spread['n_batches']} batches",
    )
    ax.legend(loc="upper left", fontsize=8)
    return fig


# ---------------------------------------------------------------------------------------------------------------
# Section 1.3: PPO's clipped objective


def plot_clipped_surrogate(curves: Mapping[str, object]):
    """PPO's per-sample objective against the ratio :math:`\\rho`, for :math:`A = +1` (left) and :math:`A = -1`
    (right), one line per clip range (``curves`` from :func:`rl4llm.rl.analysis.clipped_surrogate_curves`); with
    one clip range the stretches where the clip binds (zero gradient) are shaded. The unclipped surrogate
    :math:`\\rho A` is drawn dotted."""
    rho = curves["ratios"]
    fig, axes = new_figure(ncols=2, width=4.4, height=3.3, sharey=False)
    for ax, (adv, by_eps) in zip(axes[0], curves["curves"].items()):
        ax.plot(rho, rho * adv, ":", color=PALETTE["grey"], label="unclipped ρA (ε = ∞)")
        plot_sweep(ax, [(eps, rho, vals) for eps, (vals, _) in by_eps.items()], param="ε", legend=None, lw=2)
        if len(by_eps) == 1:  # shade where the clip binds: the gradient is zero there
            ((_, slopes),) = by_eps.values()
            flat = np.abs(slopes) < 1e-12
            ax.fill_between(
                rho,
                0,
                1,
                where=flat,
                color=COLORS[0],
                alpha=0.1,
                linewidth=0,
                transform=ax.get_xaxis_transform(),
                label="zero gradient",
            )
        ax.axvline(1.0, color="black", lw=0.6)
        sign = "+1" if adv > 0 else "−1"
        label(ax, "probability ratio ρ = π_θ(a|s) / π_old(a|s)", "objective min(ρA, clip(ρ)A)", f"Advantage A = {sign}")
        ax.legend(fontsize=8, loc="upper left" if adv > 0 else "lower left")
    return fig


def plot_clip_sweep(sweep: Sequence[tuple[float, object]]):
    """Learning curves (mean return of the last 20 episodes) and update sizes (approximate KL) of ppo-cartpole
    runs at several clip ranges (``[(clip_eps, Result)]`` from :func:`rl4llm.widgets.run_sweep`)."""
    fig, axes = new_figure(ncols=2, width=4.6, height=3.3)
    ax1, ax2 = axes[0]
    plot_sweep(ax1, sweep_columns(sweep, "env_steps", "mean_return"), param="clip ε", legend=None)
    label(ax1, "environment steps", "mean return (last 20 episodes)", "Learning curves")
    ax1.legend()
    ax1.axhline(475, ls="--", color=PALETTE["grey"])
    k = 5  # a centred moving average of the update sizes
    kl = [
        (eps, x, np.convolve(y, np.ones(k) / k, mode="same"))
        for eps, x, y in sweep_columns(sweep, "env_steps", "approx_kl")
    ]
    plot_sweep(ax2, kl, param="clip ε")
    ax2.set_yscale("log")
    label(ax2, "environment steps", "approx. KL(old ‖ new) per update", "Size of each update (smoothed)")
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
    ax1.plot(
        [r["env_steps"] for r in rows],
        [r["mean_return"] for r in rows],
        color=COLORS[0],
        lw=2,
        label="mean of the last 20 episodes",
    )
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


def plot_why_ppo(
    grid: np.ndarray,
    curves: Mapping[str, np.ndarray],
    finals: Mapping[str, np.ndarray],
    *,
    labels: Mapping[str, str],
    short: Mapping[str, str] | None = None,
    random_return: float,
    title: str | None = None,
):
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


def plot_staleness(
    staleness: Sequence[int],
    returns: Mapping[str, np.ndarray],
    *,
    labels: Mapping[str, str],
    random_return: float,
    greedy: Mapping[str, np.ndarray] | None = None,
    title: str | None = None,
):
    """Final return against the age ``k`` of the batches PPO trains on (section 1.5).

    ``returns[objective]`` (the expected return of the final policy) and optionally ``greedy[objective]`` (its
    greedy return, a second panel) are ``[len(staleness), seeds]``: one small dot per seed, the mean joined by a
    line with a band of ± one standard deviation over seeds. The x axis is symmetric-log so that ``k = 0`` (fresh
    data) sits on it.
    """
    panels = [("final expected return (sampled episodes)", returns)]
    if greedy is not None:
        panels.append(("final greedy return", greedy))
    fig, axes = new_figure(ncols=len(panels), width=7.0 if greedy is None else 4.8, height=4.0)
    axes = np.atleast_1d(axes).reshape(-1)
    ks = np.asarray(staleness, dtype=float)
    rng = np.random.default_rng(0)
    for ax, (ylabel, data) in zip(axes, panels, strict=True):
        for i, (name, values) in enumerate(data.items()):
            color = COLORS[i % len(COLORS)]
            values = np.atleast_2d(np.asarray(values, dtype=float))
            mean, sd = values.mean(1), values.std(1)
            offset = 0.04 * (i - (len(data) - 1) / 2)  # a small sideways offset so the dots do not overlap
            xs = np.where(ks > 0, ks * (1.0 + offset), offset)
            for j in range(values.shape[1]):
                jitter = rng.uniform(0.99, 1.01, size=xs.size)
                ax.plot(xs * jitter, values[:, j], "o", color=color, ms=3, alpha=0.45)
            ax.plot(xs, mean, "o-", color=color, lw=2, ms=6, label=labels.get(name, name))
            ax.fill_between(xs, mean - sd, mean + sd, color=color, alpha=0.15, lw=0)
        ax.axhline(random_return, ls=":", color=PALETTE["grey"], label="uniform random policy")
        ax.set_xscale("symlog", linthresh=1.0)
        ax.set_xticks(list(ks))
        ax.set_xticklabels([f"{int(k)}" for k in ks])
        ax.set_ylim(-0.02, 1.05)
        label(ax, "age k of the batches (iterations; 0 = fresh)", ylabel)
    if title:
        fig.suptitle(title)
    handles, texts = axes[0].get_legend_handles_labels()
    fig.legend(handles, texts, loc="outside lower center", ncol=2, fontsize=8)
    return fig


def plot_sparse_reward(
    horizons: Sequence[int],
    steps: Mapping[str, np.ndarray],
    *,
    slopes: Mapping[str, tuple[float, float]],
    vocab_size: int,
    target_return: float,
):
    """Two panels for the sparse-reward experiment (section 1.6).

    Left: steps to the target return against the horizon, log-log, per reward mode: one small dot per seed, the
    geometric mean joined by a line, the fitted slope (mean ± sd over seeds) in the legend. Right: the cost of
    sparsity, terminal steps / dense steps of the same seed, one dot per seed and the mean, with 1 (no cost) dotted.
    ``steps[mode]`` is ``[len(horizons), seeds]`` (``nan``: not reached).
    """
    names = {"dense": "dense reward (per token)", "terminal": "terminal reward (end only)"}
    fig, axes = new_figure(ncols=2, width=4.8, height=3.8)
    ax1, ax2 = axes[0]
    hs = np.asarray(horizons, dtype=float)
    rng = np.random.default_rng(0)
    for i, (mode, values) in enumerate(steps.items()):
        color = COLORS[i % len(COLORS)]
        values = np.asarray(values, dtype=float)
        shift = 1.0 + 0.04 * (i - 0.5)
        for j in range(values.shape[1]):
            ax1.plot(
                hs * shift * rng.uniform(0.98, 1.02, size=hs.size), values[:, j], "o", color=color, ms=3, alpha=0.45
            )
        geo = np.exp(np.nanmean(np.log(values), axis=1))
        b, sd = slopes.get(mode, (float("nan"), float("nan")))
        ax1.plot(
            hs * shift, geo, "o-", color=color, lw=2, ms=6, label=f"{names.get(mode, mode)}: slope {b:.2f} ± {sd:.2f}"
        )
    ax1.set_xscale("log")
    ax1.set_yscale("log")
    ax1.set_xticks(list(hs))
    ax1.set_xticks([], minor=True)
    ax1.set_xticklabels([f"{int(h)}" for h in hs])
    label(
        ax1,
        "horizon T (tokens per episode)",
        f"steps until greedy return ≥ {target_return:g}",
        f"PPO, {vocab_size} tokens: one dot per seed",
    )
    ax1.legend(loc="upper left", fontsize=8)
    ratio = np.asarray(steps["terminal"], dtype=float) / np.asarray(steps["dense"], dtype=float)
    for j in range(ratio.shape[1]):
        ax2.plot(hs * rng.uniform(0.97, 1.03, size=hs.size), ratio[:, j], "o", color=COLORS[1], ms=4, alpha=0.5)
    ax2.plot(hs, np.nanmean(ratio, axis=1), "o-", color=COLORS[1], lw=2, ms=6, label="mean over seeds")
    ax2.axhline(1.0, ls=":", color=PALETTE["grey"], label="no cost")
    ax2.set_xscale("log")
    ax2.set_xticks(list(hs))
    ax2.set_xticks([], minor=True)
    ax2.set_xticklabels([f"{int(h)}" for h in hs])
    label(ax2, "horizon T (tokens per episode)", "terminal steps / dense steps (same seed)", "The cost of sparsity")
    ax2.legend(loc="lower center", fontsize=8)
    return fig


def _sig2(x: float) -> float:
    """``x`` rounded to two significant figures (extrapolations deserve no more)."""
    return float(f"{x:.2g}")


def plot_action_space(
    measured: Mapping[str, Mapping[int, Sequence[int | None]]],
    fits: Mapping[str, tuple[float, float]],
    *,
    horizon: int,
    target_return: float,
    max_steps: int,
    gpt2_vocab: int = 50_257,
    tiny_vocab: int = 196,
):
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
            ax.plot(
                xs,
                10 ** (a + b * np.log10(xs)),
                "--",
                color=color,
                lw=1,
                label=f"fit steps ∝ $V^{{{b:.2f}}}$; extrapolated to GPT-2: ≈ {_sig2(y):,.0f}",
            )
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
