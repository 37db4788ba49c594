"""Figures of chapter 5 (RLHF on the tiny GPT-2). Every reward is in SFT standard deviations, SFT policy at 0.

Each function takes measured numbers (experiment curves, stage outputs, the results of
:mod:`rl4llm.rlhf.analysis`) and returns a figure; none computes or trains anything, so the experiments' figures
and the pages' figures look alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rl4llm.plotting import COLORS, PALETTE, format_value, label, new_figure, plot_sweep, smooth, sweep_columns

__all__ = [
    "plot_rlhf_run",
    "plot_stages",
    "plot_reward_model",
    "plot_preference_model",
    "plot_overoptimization",
    "plot_kl_sweep",
    "plot_rlhf_clip_sweep",
    "plot_by_length",
    "plot_rlhf_action_space",
    "plot_dpo",
    "plot_kl_estimators",
    "plot_frontier",
    "plot_seed_spread",
]


def _col(rows: Sequence[Mapping[str, Any]], x: str, y: str) -> tuple[np.ndarray, np.ndarray]:
    pts = [
        (r[x], r[y])
        for r in rows
        if r.get(x) is not None and r.get(y) is not None and r.get(x) != "" and r.get(y) != ""
    ]
    if not pts:
        return np.array([]), np.array([])
    a = np.asarray(pts, dtype=float)
    return a[:, 0], a[:, 1]


def plot_rlhf_run(
    curves: Sequence[Mapping[str, Any]],
    demo_gold: float | None = None,
    title: str | None = None,
    kl_target: float | None = None,
):
    """Two panels of a PPO-RLHF run: gold and proxy reward against the iteration, and the KL from SFT.

    Lines with markers are evaluations on fresh samples (``eval_*`` columns); the faint lines are the rollout
    batches' own means (``gold``, ``proxy``), smoothed. ``kl_target`` (adaptive runs) is drawn as a dashed line.
    """
    fig, axes = new_figure(ncols=2, width=4.6, height=3.3)
    ax1, ax2 = axes[0]
    for key, name, color in (("gold", "gold reward", COLORS[0]), ("proxy", "proxy (reward model)", COLORS[1])):
        it, v = _col(curves, "iteration", key)
        if it.size:
            ax1.plot(it, smooth(v, 3), color=color, alpha=0.35, lw=1)
        it, v = _col(curves, "iteration", f"eval_{key}")
        ax1.plot(it, v, "o-", ms=3.5, color=color, label=name)
    ax1.axhline(0, color=PALETTE["grey"], lw=0.8, ls="--", label="SFT policy")
    if demo_gold is not None:
        ax1.axhline(demo_gold, color=PALETTE["green"], lw=1, ls=":", label="demonstrations")
    label(ax1, "PPO iteration", "reward (SFT std devs)", title or "Rewards during PPO")
    ax1.legend(loc="upper left")
    it, kl = _col(curves, "iteration", "eval_kl")
    ax2.plot(it, kl, "o-", ms=3.5, color=COLORS[3], label="KL(π ‖ π_SFT), fresh samples")
    it, kl_roll = _col(curves, "iteration", "kl")
    if it.size:
        ax2.plot(it, smooth(kl_roll, 3), color=COLORS[3], alpha=0.35, lw=1, label="rollout batches")
    if kl_target is not None:
        ax2.axhline(kl_target, color=PALETTE["grey"], ls="--", lw=1, label=f"KL target {kl_target:g} nats")
    label(ax2, "PPO iteration", "KL (nats per sequence)", "Drift from the SFT policy")
    it, coef = _col(curves, "iteration", "kl_coef")
    if it.size and np.ptp(coef) > 0:
        twin = ax2.twinx()
        twin.plot(it, coef, color=COLORS[4], lw=1.2, label="KL coefficient β")
        twin.set_ylabel("KL coefficient β", color=COLORS[4])
        twin.grid(False)
        twin.spines["right"].set_visible(True)
    ax2.legend(loc="upper left")
    return fig


def plot_stages(stages, title: str | None = None):
    """Step 1 (SFT): the gold reward of the policy during SFT (512 samples, the same random draws at every
    checkpoint), and the distribution of the gold reward of pretrained, SFT and demonstration texts."""
    fig, axes = new_figure(ncols=2, width=4.6, height=3.3)
    ax1, ax2 = axes[0]
    steps, gold = stages.logs["sft_eval_step"], stages.gold_z(np.asarray(stages.logs["sft_eval_gold_raw"]))
    ax1.plot(steps, gold, "o-", ms=4, color=COLORS[1], label="policy being fine-tuned")
    ax1.axhline(stages.stats["demo_gold"], color=COLORS[2], ls=":", label="demonstrations")
    ax1.axhline(0, color=PALETTE["grey"], lw=0.8, ls="--", label="final SFT policy")
    label(ax1, "SFT step", "gold reward (SFT std devs)", "Supervised fine-tuning")
    ax1.legend(loc="lower right")
    groups = [
        ("pretrained", stages.eval_gold["base"]),
        ("SFT", stages.eval_gold["sft"]),
        ("demonstrations", stages.eval_gold["demos"]),
    ]
    values = np.unique(np.round(np.concatenate([g for _, g in groups]), 3))
    values = values[values >= -1.5]
    width = 0.8 / len(groups)
    for i, (name, g) in enumerate(groups):
        frac = np.array([np.mean(np.isclose(g, v, atol=1e-3)) for v in values]) * 100
        ax2.bar(
            np.arange(len(values)) + (i - 1) * width,
            frac,
            width,
            color=COLORS[i],
            label=f"{name} (mean {stages.gold_z(g.mean()):+.2f} SFT sd)",
        )
    ax2.set_xticks(np.arange(len(values)), [f"{v:+.2f}" for v in values], rotation=45)
    ax2.set_ylim(0, ax2.get_ylim()[1] * 1.4)  # room for the legend above the bars
    label(ax2, "gold reward R(x) (raw)", "% of texts", title or "Gold reward of samples")
    ax2.legend(loc="upper left")
    return fig


def plot_preference_model(curves: Mapping[str, Any], highlight: float | None = None):
    """The simulated labeller: :math:`P(y_1 \\succ y_2)` against the gold difference, one line per temperature
    (``curves`` from :func:`rl4llm.rlhf.analysis.preference_curves`); ``highlight`` draws one temperature bold."""
    fig, ax = new_figure(width=5.4, height=3.3)
    d, label_noise = curves["gold_difference"], curves["label_noise"]
    for i, (tau, p) in enumerate(curves["probability"].items()):
        lw = 2.4 if highlight is not None and np.isclose(tau, highlight) else 1.4
        ax.plot(d, p, color=COLORS[i % len(COLORS)], lw=lw, label=f"τ = {tau:g}")
    ax.axhline(label_noise, color=PALETTE["grey"], ls=":", lw=0.8)
    ax.axhline(1 - label_noise, color=PALETTE["grey"], ls=":", lw=0.8, label=f"noise floor ε = {label_noise:g}")
    label(ax, "gold difference g(y₁) − g(y₂)", "P(label prefers y₁)", "The simulated labeller")
    ax.legend(loc="upper left")
    return fig


def plot_reward_model(stages, scores: Mapping[str, np.ndarray]):
    """Step 2: the reward model's training curve (``stages.logs``), and its score against the gold reward on
    held-out responses (``scores`` from :func:`rl4llm.rlhf.analysis.heldout_scores`)."""
    fig, axes = new_figure(ncols=2, width=4.6, height=3.4)
    ax1, ax2 = axes[0]
    logs = stages.logs
    ax1.plot(logs["rm_step"], logs["rm_loss"], color=COLORS[0], alpha=0.4, lw=1)
    ax1.plot(logs["rm_step"], smooth(logs["rm_loss"], 5), color=COLORS[0], label="Bradley–Terry loss")
    ax1.plot(logs["rm_step"], smooth(logs["rm_train_accuracy"], 5), color=COLORS[1], label="minibatch accuracy")
    ax1.axhline(
        stages.stats["rm_accuracy"],
        color=COLORS[2],
        ls="--",
        label=f"held-out accuracy {stages.stats['rm_accuracy']:.2f}",
    )
    ax1.axhline(np.log(2), color=PALETTE["grey"], ls=":", lw=0.8, label="log 2 (chance loss)")
    label(ax1, "reward-model step", "loss (nats) / accuracy", "Training the reward model")
    ax1.legend(loc="lower left")
    gold, proxy = scores["gold"], scores["proxy"]
    rng = np.random.default_rng(0)
    jitter = rng.uniform(-0.08, 0.08, size=gold.size)
    ax2.scatter(gold + jitter, proxy, s=5, alpha=0.35, color=COLORS[0], linewidths=0)
    levels = np.array([v for v in np.unique(np.round(gold, 6)) if np.isclose(gold, v).sum() >= 10])
    means = [proxy[np.isclose(gold, v)].mean() for v in levels]
    ax2.plot(levels, means, "o-", color=COLORS[3], ms=4, label="mean proxy per gold level (≥ 10 texts)")
    r = np.corrcoef(gold, proxy)[0, 1]
    label(ax2, "gold reward (SFT std devs)", "proxy reward (SFT std devs)", f"Held-out responses (correlation {r:.2f})")
    ax2.legend(loc="upper left")
    return fig


def _name(param: str, value: Any) -> str:
    return f"{param} = {format_value(value)}" if isinstance(value, (int, float)) else str(value)


def plot_kl_sweep(sweep: Sequence[tuple[Any, Any]], param: str = "β"):
    """Runs of a KL-coefficient sweep (``[(value, Result)]``; a value may be a label such as "adaptive"):
    gold and proxy reward against the KL (fresh-sample evaluations), and the KL against the iteration."""
    fig, axes = new_figure(ncols=3, width=3.7, height=3.4)
    ax1, ax2, ax3 = axes[0]
    names = [_name(param, value) for value, _ in sweep]
    plot_sweep(
        ax1, sweep_columns(sweep, "eval_kl", "eval_gold"), param=param, labels=names, legend=None, fmt="o-", ms=3.5
    )
    plot_sweep(
        ax2, sweep_columns(sweep, "eval_kl", "eval_proxy"), param=param, labels=names, legend=None, fmt="s-", ms=3
    )
    plot_sweep(
        ax3,
        sweep_columns(sweep, "iteration", "eval_kl"),
        param=param,
        labels=names,
        legend="upper left",
        fmt="o-",
        ms=3.5,
    )
    for ax in (ax1, ax2):
        ax.axhline(0, color=PALETTE["grey"], lw=0.8)
    label(ax1, "KL(π ‖ π_SFT) (nats per sequence)", "gold reward (SFT std devs)", "Gold reward")
    label(ax2, "KL(π ‖ π_SFT) (nats per sequence)", "proxy reward (SFT std devs)", "Proxy reward")
    label(ax3, "PPO iteration", "KL (nats per sequence)", "KL during training")
    return fig


def plot_rlhf_clip_sweep(sweep: Sequence[tuple[Any, Any]], param: str = "clip ε"):
    """Runs of a clip-range sweep: gold reward, KL and parse rate (fresh samples) against the PPO iteration."""
    fig, axes = new_figure(ncols=3, width=3.7, height=3.4)
    ax1, ax2, ax3 = axes[0]
    names = [
        "no clipping (ε = ∞)" if isinstance(value, float) and np.isinf(value) else _name(param, value)
        for value, _ in sweep
    ]
    for ax, key, scale in ((ax1, "eval_gold", 1.0), (ax2, "eval_kl", 1.0), (ax3, "eval_parse_rate", 100.0)):
        lines = [(value, it, scale * v) for value, it, v in sweep_columns(sweep, "iteration", key)]
        plot_sweep(ax, lines, param=param, labels=names, legend=None, fmt="o-", ms=3.5)
    ax1.axhline(0, color=PALETTE["grey"], lw=0.8)
    label(ax1, "PPO iteration", "gold reward (SFT std devs)", "Gold reward")
    label(ax2, "PPO iteration", "KL(π ‖ π_SFT) (nats per sequence)", "Drift from SFT")
    label(ax3, "PPO iteration", "texts that parse (%)", "Grammaticality")
    ax3.set_ylim(-3, 103)
    ax1.legend(loc="lower left")
    return fig


def plot_by_length(rows: Sequence[Mapping[str, Any]], validity: Mapping[str, Any] | None = None):
    """Left: gold reward against the generation length, one line per policy (``rows`` of
    :func:`rl4llm.rlhf.analysis.quality_by_length`). Right: the percentage of texts still inside the language
    after :math:`t` words (``validity``: policy -> ``ValidityCurves``), or the parse rate by length."""
    fig, axes = new_figure(ncols=2, width=4.6, height=3.3)
    ax1, ax2 = axes[0]
    names = list(dict.fromkeys(r["policy"] for r in rows))
    for i, name in enumerate(names):
        rs = [r for r in rows if r["policy"] == name]
        x = [r["length"] for r in rs]
        ax1.plot(x, [r["gold"] for r in rs], "o-", ms=4, color=COLORS[i], label=name)
        if validity is None:
            ax2.plot(x, [100 * r["parse_rate"] for r in rs], "o-", ms=4, color=COLORS[i], label=name)
        else:
            c = validity[name]
            ax2.plot(np.arange(1, c.horizon + 1), 100 * c.inside, color=COLORS[i], label=name)
            ax2.set_ylim(min(90.0, 100 * float(c.inside.min()) - 1.0, ax2.get_ylim()[0]), 100.5)
    ax1.axhline(0, color=PALETTE["grey"], lw=0.8)
    label(ax1, "generation length (words, <eos> included)", "gold reward (SFT std devs)", "Gold reward by length")
    if validity is None:
        label(ax2, "generation length (words)", "texts that parse (%)", "Grammaticality by length")
    else:
        label(ax2, "generated words t", "texts inside the language (%)", "Staying inside the language")
    ax1.legend()
    ax2.legend(loc="lower left")
    return fig


def plot_rlhf_action_space(profile: Mapping[str, np.ndarray]):
    """Left: valid next tokens per position against the vocabulary size (log scale). Right: the probability of
    staying in the language, for the policy (its mass on valid tokens, per step) and for a uniform policy."""
    fig, axes = new_figure(ncols=2, width=4.6, height=3.3)
    ax1, ax2 = axes[0]
    count = profile["count"]
    t = np.arange(1, count.size + 1)[count >= 20]
    k = t - 1
    vocab = int(profile["vocab_size"])
    ax1.semilogy(t, profile["valid"][k], "o-", ms=4, color=COLORS[0], label="tokens that keep the text grammatical")
    ax1.axhline(vocab, color=COLORS[3], ls="--", label=f"vocabulary |A| = {vocab}")
    ax1.set_ylim(0.8, vocab * 2)
    label(ax1, "position t in the response", "number of tokens (log scale)", "The action space")
    ax1.legend(loc="lower left")
    ax2.semilogy(t, 100 * profile["policy_inside"][k], "o-", ms=4, color=COLORS[0], label="the SFT policy")
    ax2.semilogy(
        t, 100 * profile["uniform_inside"][k], "s-", ms=4, color=COLORS[3], label=f"uniform over the {vocab} tokens"
    )
    label(
        ax2,
        "position t in the response",
        "P(still grammatical after t tokens), % (log)",
        "Why RL starts from a pretrained LM",
    )
    ax2.legend(loc="lower left")
    return fig


def plot_overoptimization(curves: Sequence[Mapping[str, Any]], metrics: Mapping[str, Any]):
    """Gao et al. (2023) in miniature: gold and proxy against :math:`d = \\sqrt{KL}` for PPO (left) and best-of-n
    (right), with the fitted functional forms (dashed). ``curves`` and ``metrics`` are the ``overoptimization``
    experiment's."""
    m = metrics
    fig, axes = new_figure(ncols=2, width=4.6, height=3.5, sharey=True)
    ax1, ax2 = axes[0]
    methods = [k for k in dict.fromkeys(r["method"] for r in curves) if k != "best-of-n"]
    for j, method in enumerate(methods):
        rows = [r for r in curves if r["method"] == method]
        d = np.array([r["d"] for r in rows])
        coef = method.split("=")[-1]
        ls = "-" if j == 0 else ":"
        ax1.plot(d, [r["proxy"] for r in rows], ls, marker="s", ms=3, color=COLORS[1], label=f"proxy, β = {coef}")
        ax1.plot(d, [r["gold"] for r in rows], ls, marker="o", ms=3.5, color=COLORS[0], label=f"gold, β = {coef}")
    dd = np.linspace(1e-3, max(1e-3, float(m["rl_d_max"])), 200)
    ax1.plot(
        dd,
        dd * (m["rl_alpha"] - m["rl_beta"] * np.log(dd)),
        "--",
        color=COLORS[3],
        lw=1.3,
        label=f"gold fit d(α − β log d): α={m['rl_alpha']:.2f}, β={m['rl_beta']:.2f}",
    )
    ax1.axhline(0, color=PALETTE["grey"], lw=0.8)
    label(ax1, "d = √KL(π ‖ π_SFT)  (√nats)", "reward (SFT std devs)", "PPO against the proxy")
    ax1.legend(loc="upper left", fontsize=8)
    bon = [r for r in curves if r["method"] == "best-of-n"]
    d = np.array([r["d"] for r in bon])
    ax2.plot(d, [r["proxy"] for r in bon], "s-", ms=3, color=COLORS[1], label="proxy")
    ax2.plot(d, [r["gold"] for r in bon], "o-", ms=3.5, color=COLORS[0], label="gold")
    for r, dx in zip(bon, d):
        if int(r["n"]) in (4, 32, 256) or r is bon[-1]:
            ax2.annotate(f"n={int(r['n'])}", (dx, r["proxy"]), textcoords="offset points", xytext=(-10, 6), fontsize=7)
    dd = np.linspace(0, d.max(), 200)
    ax2.plot(
        dd,
        dd * (m["bon_alpha"] - m["bon_beta"] * dd),
        "--",
        color=COLORS[3],
        lw=1.3,
        label=f"gold fit d(α − β d): α={m['bon_alpha']:.2f}, β={m['bon_beta']:.2f}",
    )
    ax2.axhline(0, color=PALETTE["grey"], lw=0.8)
    label(ax2, "d = √KL_bon = √(log n − (n−1)/n)", "", "Best-of-n against the proxy")
    ax2.legend(loc="upper left", fontsize=8)
    return fig


def plot_dpo(curves: Sequence[Mapping[str, Any]]):
    """DPO training. Left: gold and proxy reward of fresh samples against the step, with the KL from SFT on a
    second axis. Right: the DPO loss and the implicit reward's accuracy on the training minibatches."""
    fig, axes = new_figure(ncols=2, width=4.6, height=3.4)
    ax1, ax2 = axes[0]
    step, gold = _col(curves, "step", "eval_gold")
    _, proxy = _col(curves, "step", "eval_proxy")
    _, kl = _col(curves, "step", "eval_kl")
    ax1.plot(step, gold, "o-", ms=3.5, color=COLORS[0], label="gold reward")
    ax1.plot(step, proxy, "s-", ms=3, color=COLORS[1], label="proxy (reward model)")
    ax1.axhline(0, color=PALETTE["grey"], lw=0.8, ls="--", label="SFT policy")
    label(ax1, "DPO step", "reward (SFT std devs)", "DPO on the preference pairs")
    twin = ax1.twinx()
    twin.plot(step, kl, "^:", ms=3, color=COLORS[3], label="KL (right axis)")
    twin.set_ylabel("KL(π ‖ π_SFT) (nats per sequence)", color=COLORS[3])
    twin.grid(False)
    twin.spines["right"].set_visible(True)
    h1, l1 = ax1.get_legend_handles_labels()
    h2, l2 = twin.get_legend_handles_labels()
    ax1.legend(h1 + h2, l1 + l2, loc="upper left")
    step, loss = _col(curves, "step", "loss")
    _, acc = _col(curves, "step", "implicit_accuracy")
    ax2.plot(step, loss, color=COLORS[0], alpha=0.35, lw=1)
    ax2.plot(step, smooth(loss, 5), color=COLORS[0], label="DPO loss")
    ax2.plot(step, smooth(acc, 5), color=COLORS[1], label="implicit-reward accuracy")
    ax2.axhline(np.log(2), color=PALETTE["grey"], ls=":", lw=1, label="log 2 (the loss at the start)")
    label(ax2, "DPO step", "loss (nats) / accuracy", "Training minibatches (smoothed)")
    ax2.legend(loc="lower left")
    return fig


def plot_kl_estimators(estimates: Mapping[str, np.ndarray]):
    """Distributions of per-sequence KL estimates (``k1``, ``k2``, ``k3`` and ``exact`` of
    :func:`rl4llm.rlhf.analysis.kl_estimates`), with the mean of the exact per-prefix sum as a dashed line."""
    fig, ax = new_figure(width=6.4, height=3.4)
    allv = np.concatenate(list(estimates.values()))
    lo = np.percentile(allv, 0.5)
    hi = max(np.percentile(v, 99.5) for k, v in estimates.items() if k != "k3")  # k3's tail would squash the rest
    bins = np.linspace(lo, hi, 45)
    names = {"k1": "k1", "k2": "k2", "k3": "k3", "exact": "exact per step"}
    for i, (key, v) in enumerate(estimates.items()):
        ax.hist(
            v,
            bins=bins,
            histtype="step",
            lw=1.8,
            color=COLORS[i % len(COLORS)],
            label=f"{names.get(key, key)}: mean {v.mean():.2f}, sd {v.std():.2f}",
        )
    if "exact" in estimates:
        ax.axvline(estimates["exact"].mean(), color=PALETTE["black"], ls="--", lw=1.2, label="mean of exact")
    label(ax, "estimate of KL for one response (nats)", "responses", "Estimating the KL from samples")
    ax.legend(fontsize=8, loc="center right")
    return fig


def plot_frontier(
    paths: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    title: str | None = None,
    annotate: Mapping[str, Sequence[str]] | None = None,
):
    """Gold reward against KL from SFT for several methods: ``name -> (kl values, gold values)``, one line
    each; ``annotate`` optionally labels a method's points (e.g. best-of-n's ``n``)."""
    fig, ax = new_figure(width=6.0, height=3.6)
    for i, (name, (kl, gold)) in enumerate(paths.items()):
        ax.plot(kl, gold, "o-", ms=4, color=COLORS[i % len(COLORS)], label=name)
        for text, x, y in zip((annotate or {}).get(name, ()), kl, gold):
            if text:
                ax.annotate(text, (x, y), textcoords="offset points", xytext=(4, -10), fontsize=7)
    ax.axhline(0, color=PALETTE["grey"], lw=0.8)
    label(ax, "KL(π ‖ π_SFT) (nats per sequence)", "gold reward (SFT std devs)", title or "Gold reward against KL")
    ax.legend(loc="lower right")
    return fig


def plot_seed_spread(
    panels: Mapping[str, Mapping[Any, Sequence[float]]],
    *,
    xlabel: str,
    seeds: Sequence[int],
    title: str | None = None,
    zero_line: Sequence[str] = (),
    log_y: Sequence[str] = (),
):
    """A comparison over seeds, one panel per measurement: ``panels`` maps a y-axis label to ``{setting: one value
    per seed}`` (the same settings and seeds in every panel). Every seed is drawn (a thin line joins one seed's
    values across the settings, so a seed that reverses an ordering shows as a crossing), with the mean ± sd over
    seeds as a black bar. ``seeds`` names the seeds in the legend; panels named in ``zero_line`` get a line at 0
    (the SFT policy on the reward scales), those in ``log_y`` a logarithmic y axis."""
    fig, axes = new_figure(ncols=len(panels), width=3.4, height=3.3)
    axes = np.atleast_2d(np.asarray(axes, dtype=object))[0]
    markers = "osD^v<>"
    for ax, (ylabel, values) in zip(axes, panels.items()):
        names = list(values)
        x = np.arange(len(names))
        runs = np.array([np.asarray(values[k], dtype=float) for k in names])  # [settings, seeds]
        if runs.shape[1] != len(seeds):
            raise ValueError(f"panel {ylabel!r} holds {runs.shape[1]} seeds, seeds names {len(seeds)}")
        for j, seed in enumerate(seeds):
            ax.plot(
                x, runs[:, j], marker=markers[j % len(markers)], ms=4, lw=0.8, alpha=0.7,
                color=COLORS[j % len(COLORS)], label=f"seed {seed}",
            )  # fmt: skip
        ax.errorbar(
            x + 0.12, runs.mean(1), yerr=runs.std(1), fmt="_", ms=12, mew=2, capsize=3,
            color=PALETTE["black"], label="mean ± sd",
        )  # fmt: skip
        if ylabel in zero_line:
            ax.axhline(0, color=PALETTE["grey"], lw=0.8, ls="--")
        if ylabel in log_y:
            ax.set_yscale("log")
        ax.set_xticks(x)
        ax.set_xticklabels([format_value(k) for k in names], fontsize=8)
        label(ax, xlabel, ylabel)
    axes[0].legend(fontsize=7, loc="best")
    if title:
        fig.suptitle(title)
    return fig
