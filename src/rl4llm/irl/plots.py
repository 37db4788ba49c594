"""Figures of chapter 4 (inverse RL), in the book's style.

* :func:`plot_grid_maps`: per-cell values of the gridworld (rewards, state visits) as heat maps with the
  terrain drawn on top;
* :func:`plot_demo_sweep`: returns and reward correlation of MaxEnt IRL and behaviour cloning against the number
  of demonstrations;
* :func:`plot_adversarial`: GAIL's learning curves and final returns next to behaviour cloning's;
* :func:`plot_bc_demo_sweep`: behaviour cloning's return against the amount of demonstration;
* :func:`plot_token_bridge` / :func:`plot_rl_curves`: validity, mistake rate, length and gold reward of SFT
  (behaviour cloning) and of the policy optimised online on the learned reward; the RL run itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.colors import PowerNorm

from rl4llm.plotting import COLORS, PALETTE, label, new_figure, smooth

__all__ = [
    "plot_grid_maps",
    "plot_demo_sweep",
    "plot_adversarial",
    "plot_bc_demo_sweep",
    "plot_token_bridge",
    "plot_rl_curves",
]

_SYMBOL = {1: "~", 2: "G"}


def _draw_grid(ax, fig, env, values: np.ndarray, title: str, cmap: str, center: bool) -> None:
    grid = np.asarray(values, dtype=float).reshape(env.height, env.width)
    if center:
        lim = float(np.max(np.abs(grid))) or 1.0
        im = ax.imshow(grid, cmap=cmap, vmin=-lim, vmax=lim)
    else:  # a square-root colour scale, so that rarely visited cells still show next to the goal's many visits
        im = ax.imshow(grid, cmap=cmap, norm=PowerNorm(0.5, vmin=0.0, vmax=max(float(grid.max()), 1e-9)))
    fig.colorbar(im, ax=ax, shrink=0.8)
    for s, kind in enumerate(env.terrain):
        r, c = divmod(s, env.width)
        text = _SYMBOL.get(int(kind), "")
        if env.start is not None and s == env.start:
            text = "S"
        if text:
            ax.text(c, r, text, ha="center", va="center", fontsize=11, fontweight="bold", color="black")
    ax.set_xticks(range(env.width))
    ax.set_yticks(range(env.height))
    ax.grid(False)
    label(ax, "column", "row", title)


def plot_grid_maps(env, panels: Sequence[tuple[str, np.ndarray, str]], ncols: int = 2):
    """Heat maps of per-state values on the gridworld ``env``.

    ``panels`` is a list of ``(title, values [S], kind)`` with ``kind`` ``"reward"`` (diverging colours centred
    on 0) or ``"visits"`` (sequential, from 0, on a square-root scale). Swamp cells are marked ``~``, the goal ``G`` and the start ``S``.
    """
    if not panels:
        raise ValueError("panels must not be empty")
    nrows = int(np.ceil(len(panels) / ncols))
    fig, axes = new_figure(ncols=ncols, nrows=nrows, width=3.7, height=3.2)
    flat = np.atleast_1d(axes).reshape(-1)
    for ax, (title, values, kind) in zip(flat, panels):
        if kind not in ("reward", "visits"):
            raise ValueError(f"panel kind must be 'reward' or 'visits', got {kind!r}")
        _draw_grid(ax, fig, env, values, title, "RdBu" if kind == "reward" else "Blues", kind == "reward")
    for ax in flat[len(panels) :]:
        ax.set_visible(False)
    return fig


def plot_demo_sweep(sweeps: Mapping[str, Sequence[Mapping[str, float]]], highlight: int | None = None):
    """Two panels against the number of demonstrations (log scale), mean and spread over seeds.

    Left: the true expected return of the IRL policy (the optimal policy of the learned reward) for each feature
    set, of behaviour cloning (from the first sweep; BC does not use features) and of the expert. Right: the
    correlation between the learned and the true reward. ``sweeps`` maps a name (e.g. ``"terrain features"``)
    to rows with ``n_demos``, ``irl_return``, ``bc_return``, ``expert_return``, ``random_return`` and
    ``reward_correlation`` (as made by :func:`rl4llm.experiments.maxent_irl.demo_sweep`); ``highlight`` marks
    one number of demonstrations with a vertical line.
    """
    if not sweeps or any(len(rows) == 0 for rows in sweeps.values()):
        raise ValueError("sweeps must map names to non-empty lists of rows")

    def stat(rows, key: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        ns = sorted({int(r["n_demos"]) for r in rows})
        vals = [[r[key] for r in rows if int(r["n_demos"]) == n] for n in ns]
        return np.array(ns), np.array([np.mean(v) for v in vals]), np.array([np.std(v) for v in vals])

    def line(ax, ns, mean, std, color, name, ls="-"):
        ax.plot(ns, mean, "o" + ls, color=color, label=name, ms=4, zorder=3)
        ax.fill_between(ns, mean - std, mean + std, color=color, alpha=0.2, linewidth=0)

    fig, axes = new_figure(ncols=2, width=4.8, height=3.4)
    ax1, ax2 = axes[0]
    first = next(iter(sweeps.values()))
    ax1.axhline(
        float(np.mean([r["expert_return"] for r in first])),
        ls=":",
        color=PALETTE["black"],
        lw=1.5,
        label="expert",
        zorder=4,
    )
    for i, (name, rows) in enumerate(sweeps.items()):
        line(ax1, *stat(rows, "irl_return"), COLORS[[0, 2, 4, 5][i % 4]], f"MaxEnt IRL, {name}")
        line(ax2, *stat(rows, "reward_correlation"), COLORS[[0, 2, 4, 5][i % 4]], name)
    line(ax1, *stat(first, "bc_return"), COLORS[1], "behaviour cloning", ls="--")
    ax2.set_ylim(0.0, 1.02)
    for ax in (ax1, ax2):
        ax.set_xscale("log")
        if highlight is not None:
            ax.axvline(highlight, color=PALETTE["red"], lw=1, alpha=0.6)
    label(ax1, "number of demonstrations", "expected return (true reward)", "Return of the learned policies")
    label(ax2, "number of demonstrations", "corr(learned reward, true reward)", "Recovered reward")
    ax1.legend(loc="lower right")
    ax2.legend(loc="lower right")
    return fig


def plot_adversarial(
    curves: Sequence[Mapping[str, float]],
    finals: Mapping[str, Sequence[float]],
    expert_return: float,
    n_pairs: int | None = None,
):
    """Left: the return of the GAIL generator (true reward, which it never sees) against environment steps, one
    line per seed, with the frozen-discriminator control if present. Right: the final return of every method
    and seed (dots) and their mean (bars).

    ``curves`` rows hold ``arm`` (``"gail"`` / ``"control"``), ``seed``, ``env_steps`` and ``mean_return``;
    ``finals`` maps ``"bc"``, ``"gail"`` (and ``"control"``) to the per-seed final returns.
    """
    if not finals:
        raise ValueError("finals must not be empty")
    names = {"bc": "behaviour\ncloning", "gail": "GAIL", "control": "GAIL, frozen\ndiscriminator"}
    colors = {"bc": COLORS[1], "gail": COLORS[0], "control": PALETTE["grey"]}
    fig, axes = new_figure(ncols=2, width=4.8, height=3.4)
    ax1, ax2 = axes[0]
    for arm in ("gail", "control"):
        rows = [r for r in curves if r.get("arm") == arm]
        for i, seed in enumerate(sorted({r["seed"] for r in rows})):
            rs = [r for r in rows if r["seed"] == seed]
            ax1.plot(
                [r["env_steps"] for r in rs],
                [r["mean_return"] for r in rs],
                color=colors[arm],
                ls="-" if arm == "gail" else "--",
                lw=1.3,
                alpha=0.9,
                label=names[arm].replace("\n", " ") if i == 0 else None,
            )
    ax1.axhline(expert_return, ls=":", color=PALETTE["black"], label=f"expert ({expert_return:.0f})")
    if "bc" in finals:
        ax1.axhline(
            float(np.mean(finals["bc"])),
            ls="-.",
            color=colors["bc"],
            label=f"behaviour cloning (mean {np.mean(finals['bc']):.0f})",
        )
    demos = f" ({n_pairs} demonstrated pairs)" if n_pairs else ""
    label(ax1, "environment steps", "training episode return (true reward)", f"Learning curves{demos}")
    ax1.legend(loc="lower right", fontsize=8)
    arms = [a for a in ("bc", "gail", "control") if a in finals]
    for i, arm in enumerate(arms):
        vals = np.asarray(finals[arm], dtype=float)
        ax2.bar(i, vals.mean(), color=colors[arm], alpha=0.35, width=0.6)
        jitter = np.linspace(-0.12, 0.12, len(vals)) if len(vals) > 1 else np.zeros(1)
        ax2.plot(i + jitter, vals, "o", color=colors[arm], ms=6)
    ax2.axhline(expert_return, ls=":", color=PALETTE["black"])
    ax2.set_xticks(range(len(arms)), [names[a] for a in arms])
    label(ax2, "method", "final return (deterministic policy)", "Final returns: dots = seeds, bars = mean")
    return fig


def plot_bc_demo_sweep(
    rows: Sequence[Mapping[str, float]], gail: Mapping[str, object] | None = None, expert_return: float | None = None
):
    """Behaviour cloning's return against the number of demonstrated state-action pairs (dots: seeds; line: mean),
    with GAIL's returns at its demonstration budget. ``rows`` hold ``n_pairs`` and ``bc_return``; ``gail`` holds
    ``n_pairs`` and ``returns`` (one per seed)."""
    if not rows:
        raise ValueError("rows must not be empty")
    ns = sorted({int(r["n_pairs"]) for r in rows})
    means = [np.mean([r["bc_return"] for r in rows if int(r["n_pairs"]) == n]) for n in ns]
    fig, ax = new_figure(width=5.8, height=3.5)
    ax.plot([r["n_pairs"] for r in rows], [r["bc_return"] for r in rows], "o", color=COLORS[1], alpha=0.45, ms=5)
    ax.plot(ns, means, "-", color=COLORS[1], lw=2, label="behaviour cloning (dots: seeds, line: mean)")
    if gail is not None:
        g = np.asarray(gail["returns"], dtype=float)
        ax.plot(
            np.full(g.shape, float(gail["n_pairs"])),
            g,
            "*",
            ms=13,
            color=COLORS[0],
            alpha=0.8,
            label=f"GAIL, {int(gail['n_pairs'])} pairs (stars: seeds)",
        )
    if expert_return is not None:
        ax.axhline(expert_return, ls=":", color=PALETTE["black"], label="expert")
    ax.set_xscale("log")
    ax.set_xticks(ns, [str(n) for n in ns])
    ax.minorticks_off()
    label(
        ax,
        "demonstrated state-action pairs",
        "return (deterministic policy)",
        "How much demonstration does behaviour cloning need?",
    )
    ax.legend(loc="lower right")
    return fig


def plot_token_bridge(
    positions: np.ndarray,
    validity: Mapping[str, np.ndarray],
    hazard: Mapping[str, np.ndarray],
    lengths: Mapping[str, Sequence[int]],
    gold: Mapping[str, float],
):
    """Four panels comparing the demonstrator, behaviour cloning (SFT) and the IRL policy on the token MDP.

    Top left: the fraction of samples still in the language after ``t`` generated words (``validity``). Top right:
    the probability of a first mistake at word ``t`` given a clean prefix (``hazard``, ``nan`` where too few
    texts are still being written). Bottom left: the distribution of text lengths (``lengths``). Bottom right:
    the mean gold reward (``gold``), which no learner saw. All mappings share the policies' names as keys.
    """
    if not validity:
        raise ValueError("validity must not be empty")
    names = list(validity)
    colors = {name: (PALETTE["black"] if i == 0 else COLORS[i - 1]) for i, name in enumerate(names)}
    styles = {name: (":" if i == 0 else "-") for i, name in enumerate(names)}
    fig, axes = new_figure(ncols=2, nrows=2, width=4.6, height=3.2)
    (ax1, ax2), (ax3, ax4) = axes
    for name in names:
        ax1.plot(positions, 100 * np.asarray(validity[name]), styles[name], color=colors[name], label=name, lw=1.8)
        if name in hazard:
            ax2.plot(
                positions,
                100 * np.asarray(hazard[name]),
                styles[name] + "o",
                color=colors[name],
                ms=3,
                label=name,
                lw=1.5,
            )
    label(ax1, "words generated t", "samples still in the language (%)", "Validity against length")
    ax1.legend(loc="lower left")
    label(ax2, "word position t", "P(first mistake at t | clean prefix) (%)", "Per-word mistake rate")
    ax2.set_ylim(bottom=0)
    max_len = int(max(max(v) for v in lengths.values() if len(v))) + 1
    bins = np.arange(0.5, max_len + 1.5)
    for name in names:
        if name in lengths:
            ax3.hist(
                lengths[name],
                bins=bins,
                histtype="step",
                lw=1.8,
                color=colors[name],
                ls=styles[name],
                density=True,
                label=name,
            )
    label(ax3, "text length (words)", "fraction of texts", "How long the texts are")
    ax4.bar(range(len(names)), [gold[n] for n in names], color=[colors[n] for n in names], alpha=0.8)
    for i, n in enumerate(names):
        ax4.text(i, gold[n], f"{gold[n]:+.2f}", ha="center", va="bottom" if gold[n] >= 0 else "top", fontsize=9)
    ax4.set_xticks(range(len(names)), [n.replace(" (", "\n(") for n in names], fontsize=8)
    ax4.axhline(0.0, color="black", lw=0.8)
    label(ax4, "policy", "mean gold reward", "Gold reward (never seen in training)")
    return fig


def plot_rl_curves(curves: Sequence[Mapping[str, float]]):
    """The online RL run of section 4.3 against its iterations: the learned reward, the gold reward and the
    parse rate of each batch (left); the KL to the reference policy and the mean length (right)."""
    if not curves:
        raise ValueError("curves must not be empty")
    it = np.array([r["iteration"] for r in curves], dtype=float)
    fig, axes = new_figure(ncols=2, width=4.6, height=3.2)
    ax1, ax2 = axes[0]
    ax1.plot(it, smooth([r["learned_reward"] for r in curves], 5), color=COLORS[0], label="learned reward")
    ax1.plot(it, smooth([r["gold_reward"] for r in curves], 5), color=COLORS[2], label="gold reward")
    ax1.plot(it, smooth([r["parse_rate"] for r in curves], 5), color=COLORS[4], ls="--", label="parse rate")
    label(ax1, "RL iteration", "batch mean (smoothed)", "What the policy optimises, and the truth")
    ax1.legend(loc="lower right")
    ax2.plot(it, smooth([r["kl"] for r in curves], 5), color=COLORS[3], label="KL to the SFT policy (nats)")
    ax2.plot(it, smooth([r["length"] for r in curves], 5), color=COLORS[5], label="tokens per text")
    label(ax2, "RL iteration", "batch mean (smoothed)", "Drift from the reference")
    ax2.legend(loc="upper right")
    return fig
