"""Figures of chapter 7. Each function draws measured numbers (experiment curves and metrics); none trains."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rl4llm.plotting import COLORS, PALETTE, format_value, label, new_figure, plot_sweep, smooth

__all__ = [
    "RLVR_METHOD_LABELS",
    "KNOB_DIAGNOSTICS",
    "plot_rlvr_methods",
    "plot_pass_at_k",
    "plot_length_bias",
    "plot_verifier_hacking",
    "plot_knob_sweep",
    "plot_knob_run",
]

RLVR_METHOD_LABELS = {
    "grpo": "GRPO",
    "dr-grpo": "Dr. GRPO",
    "rloo": "RLOO",
    "ppo": "PPO + critic",
    "reinforce": "REINFORCE (no baseline)",
}


def _runs(curves: Sequence[Mapping[str, Any]], method: str, x: str, y: str) -> tuple[np.ndarray, np.ndarray]:
    """``x`` values and ``[n_seeds, n_points]`` ``y`` values of one method's evaluated iterations."""
    seeds = sorted({r["seed"] for r in curves if r["method"] == method})
    xs, ys = [], []
    for s in seeds:
        rows = [
            r
            for r in curves
            if r["method"] == method
            and r["seed"] == s
            and r.get(y) not in (None, "")
            and not (isinstance(r.get(y), float) and np.isnan(r[y]))
        ]
        xs.append([float(r[x]) for r in rows])
        ys.append([float(r[y]) for r in rows])
    n = min(len(v) for v in ys)
    return np.mean([v[:n] for v in xs], axis=0), np.array([v[:n] for v in ys])


def plot_rlvr_methods(curves: Sequence[Mapping[str, Any]], methods: Sequence[str], sft_pass_at_1: float):
    """Held-out pass@1 against the iteration and against training wall-clock, mean and min-max over seeds."""
    fig, axes = new_figure(ncols=2, width=4.6, height=3.4)
    for ax, x, xlabel in (
        (axes[0][0], "iteration", "iteration (same completions per iteration)"),
        (axes[0][1], "wall_s", "training wall-clock (s)"),
    ):
        for i, m in enumerate(methods):
            xs, ys = _runs(curves, m, x, "pass_at_1")
            if xs.size == 0:
                continue
            xs = np.concatenate([[0.0], xs])
            ys = np.concatenate([np.full((ys.shape[0], 1), sft_pass_at_1), ys], axis=1)
            (line,) = ax.plot(xs, ys.mean(0), "o-", ms=3, color=COLORS[i], label=RLVR_METHOD_LABELS.get(m, m))
            if ys.shape[0] > 1:
                ax.fill_between(xs, ys.min(0), ys.max(0), alpha=0.15, color=line.get_color(), lw=0)
        ax.axhline(sft_pass_at_1, color=PALETTE["grey"], ls="--", lw=0.9, label="SFT")
        label(ax, xlabel, "held-out pass@1")
    axes[0][0].legend(loc="lower right", fontsize=8)
    return fig


def plot_pass_at_k(pass_at_k: Mapping[str, Mapping[int, float]]):
    """pass@k against k (log scale) for each policy, and the difference to the first one."""
    fig, axes = new_figure(ncols=2, width=4.6, height=3.4)
    names = list(pass_at_k)
    base_k = np.array(sorted(pass_at_k[names[0]]), dtype=int)
    base = np.array([pass_at_k[names[0]][k] for k in base_k])
    for i, name in enumerate(names):
        ks = np.array(sorted(pass_at_k[name]), dtype=int)
        v = np.array([pass_at_k[name][k] for k in ks])
        axes[0][0].plot(ks, v, "o-", ms=3, color=COLORS[i], label=name)
        if i:
            axes[0][1].plot(ks, v - base[: len(ks)], "o-", ms=3, color=COLORS[i], label=f"{name} − {names[0]}")
    axes[0][1].axhline(0, color=PALETTE["grey"], lw=0.9, ls="--")
    for ax in axes[0]:
        ax.set_xscale("log", base=2)
    label(axes[0][0], "k (samples per problem)", "pass@k (held-out)")
    label(axes[0][1], "k (samples per problem)", "difference in pass@k")
    axes[0][0].legend(loc="lower right")
    axes[0][1].legend(loc="upper right")
    return fig


def plot_length_bias(curves: Sequence[Mapping[str, Any]], methods: Sequence[str]):
    """Mean length of wrong and of correct completions during training, per method (mean over seeds)."""
    fig, axes = new_figure(ncols=2, width=4.6, height=3.4)
    for ax, key, title in (
        (axes[0][0], "length_wrong", "wrong completions"),
        (axes[0][1], "length_correct", "correct completions"),
    ):
        for i, m in enumerate(methods):
            xs, ys = _runs(curves, m, "iteration", key)
            if xs.size == 0:
                continue
            (line,) = ax.plot(xs, np.nanmean(ys, 0), color=COLORS[i], label=RLVR_METHOD_LABELS.get(m, m))
            if ys.shape[0] > 1:
                ax.fill_between(xs, np.nanmin(ys, 0), np.nanmax(ys, 0), alpha=0.15, color=line.get_color(), lw=0)
        label(ax, "iteration", "mean length (tokens)", title)
    axes[0][0].legend(loc="upper left")
    return fig


def plot_verifier_hacking(curves: Sequence[Mapping[str, Any]], flawed_name: str):
    """The flawed verifier's reward on the training rollouts and the exact held-out pass@1, per iteration."""
    fig, ax = new_figure(width=5.6, height=3.6)
    it = np.array([r["iteration"] for r in curves], dtype=float)
    ax.plot(it, [r["reward"] for r in curves], color=COLORS[1], label=f"flawed reward ({flawed_name}), training")
    ev = [
        (r["iteration"], r["pass_at_1"])
        for r in curves
        if r.get("pass_at_1") not in (None, "") and not np.isnan(r["pass_at_1"])
    ]
    if ev:
        e = np.array(ev, dtype=float)
        ax.plot(e[:, 0], e[:, 1], "o-", ms=3, color=COLORS[0], label="exact pass@1, held-out")
    if "exact_reward" in curves[0]:
        ax.plot(
            it, [r["exact_reward"] for r in curves], color=COLORS[0], alpha=0.35, lw=1, label="exact reward, training"
        )
    ax.set_ylim(0, 1.02)
    label(ax, "iteration", "reward / pass@1")
    ax.legend(loc="lower right", fontsize=8)
    return fig


#: Per-iteration columns of a GRPO run that the knob panels draw beside the reward, with their axis labels.
KNOB_DIAGNOSTICS = {
    "kl_sft": "KL from SFT (nats per completion)",
    "clip_frac": "fraction of clipped tokens",
    "zero_adv_frac": "share of groups with equal rewards",
    "length_wrong": "mean length of wrong completions",
    "length": "mean completion length (tokens)",
}

#: Trailing window of the moving average drawn over the (noisy) per-iteration training reward.
REWARD_WINDOW = 5


def _column(curves: Sequence[Mapping[str, Any]], key: str) -> tuple[np.ndarray, np.ndarray]:
    rows = [r for r in curves if r.get(key) not in (None, "")]
    return np.array([r["iteration"] for r in rows], dtype=float), np.array([r[key] for r in rows], dtype=float)


def plot_knob_sweep(
    runs: Sequence[tuple[Any, Sequence[Mapping[str, Any]], float]],
    *,
    knob: str,
    diagnostic: str,
    sft_pass_at_1: float,
):
    """One knob of GRPO at several values: final held-out pass@1 per value (left), the training reward (moving
    average, middle) and a diagnostic column of the runs (right) against the iteration, one line per value.

    ``runs`` is ``[(value, curves, final pass@1)]`` in slider order; ``knob`` names it in the legend.
    """
    if diagnostic not in KNOB_DIAGNOSTICS:
        raise ValueError(f"diagnostic must be one of {', '.join(KNOB_DIAGNOSTICS)}; got {diagnostic!r}")
    fig, axes = new_figure(ncols=3, width=3.3, height=3.0)
    ax = axes[0][0]
    names = [format_value(v) for v, _, _ in runs]
    ax.plot(range(len(runs)), [p for _, _, p in runs], "o-", color=COLORS[0])
    ax.axhline(sft_pass_at_1, color=PALETTE["grey"], ls="--", lw=0.9, label="SFT")
    ax.set_xticks(range(len(runs)), names, fontsize=8, rotation=20 if max(map(len, names)) > 6 else 0)
    label(ax, knob, "held-out pass@1 after training")
    ax.legend(loc="lower right", fontsize=8)
    reward = [(v, *_column(c, "reward")) for v, c, _ in runs]
    plot_sweep(axes[0][1], [(v, x, smooth(y, REWARD_WINDOW)) for v, x, y in reward], param=knob, legend=None)
    label(axes[0][1], "iteration", f"training reward ({REWARD_WINDOW}-iteration mean)")
    plot_sweep(axes[0][2], [(v, *_column(c, diagnostic)) for v, c, _ in runs], param=knob, legend="best", lw=1.2)
    label(axes[0][2], "iteration", KNOB_DIAGNOSTICS[diagnostic])
    axes[0][2].legend(fontsize=7)
    return fig


def plot_knob_run(
    curves: Sequence[Mapping[str, Any]],
    *,
    diagnostic: str,
    name: str,
    reference: Sequence[Mapping[str, Any]] | None = None,
    reference_name: str = "default",
):
    """One GRPO run of a knob panel: the training reward (moving average) and a diagnostic column against the
    iteration, with the ``reference`` run (the default setting) in grey for comparison."""
    if diagnostic not in KNOB_DIAGNOSTICS:
        raise ValueError(f"diagnostic must be one of {', '.join(KNOB_DIAGNOSTICS)}; got {diagnostic!r}")
    fig, axes = new_figure(ncols=2, width=3.8, height=2.8)
    for ax, key, ylabel in (
        (axes[0][0], "reward", f"training reward ({REWARD_WINDOW}-iteration mean)"),
        (axes[0][1], diagnostic, KNOB_DIAGNOSTICS[diagnostic]),
    ):
        if reference is not None:
            x, y = _column(reference, key)
            ax.plot(x, smooth(y, REWARD_WINDOW) if key == "reward" else y, color=PALETTE["grey"], label=reference_name)
        x, y = _column(curves, key)
        ax.plot(x, smooth(y, REWARD_WINDOW) if key == "reward" else y, color=COLORS[0], label=name)
        label(ax, "iteration", ylabel)
    axes[0][0].legend(loc="lower right", fontsize=8)
    return fig
