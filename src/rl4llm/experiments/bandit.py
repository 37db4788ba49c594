"""``bandit``: the agent-environment loop at its smallest, a policy-gradient agent on a k-armed bandit.

The gradient bandit algorithm (Sutton & Barto 2018, section 2.8) keeps preferences :math:`H(a)` and a softmax
policy :math:`\\pi(a) = e^{H(a)} / \\sum_b e^{H(b)}`. After pulling :math:`A_t` and receiving :math:`R_t`,

.. math::  H(a) \\leftarrow H(a) + \\alpha (R_t - b_t)(\\mathbb 1[a = A_t] - \\pi(a)),

which is stochastic gradient ascent on the expected reward (REINFORCE with one step). The baseline :math:`b_t`
(here the running mean reward) leaves the gradient unbiased but shrinks its variance; without it, learning is
slow when all rewards share a large offset. This is the smallest experiment in the book: it runs in well under a
second and is the CLI's built-in smoke test.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rl4llm.config import param, validate
from rl4llm.experiments import Result
from rl4llm.plotting import label, new_figure, smooth
from rl4llm.utils import progress, set_seed

NAME = "bandit"
SUMMARY = "gradient bandit (one-step REINFORCE) with and without a baseline on a k-armed bandit"


@dataclass
class Config:
    """Defaults are what the book runs."""

    n_arms: int = param(10, low=2, help="arms of the bandit")
    steps: int = param(1000, low=1, help="pulls per run")
    runs: int = param(50, low=1, help="independent bandits averaged")
    lr: float = param(0.1, low=0.0, low_inclusive=False, help="step size of the preferences")
    reward_offset: float = param(4.0, help="added to every arm's mean: harmless with a baseline, harmful without")
    seed: int = param(0, low=0, help="random seed")

    def __post_init__(self) -> None:
        validate(self)


def gradient_bandit(
    q_true: np.ndarray, steps: int, lr: float, use_baseline: bool, rng: np.random.Generator
) -> np.ndarray:
    """Run one gradient-bandit agent; return a 0/1 array: was the optimal arm pulled at each step."""
    k = q_true.size
    best = int(np.argmax(q_true))
    h = np.zeros(k)
    mean_reward = 0.0
    optimal = np.zeros(steps)
    for t in range(steps):
        pi = np.exp(h - h.max())
        pi /= pi.sum()
        a = int(rng.choice(k, p=pi))
        r = rng.normal(q_true[a], 1.0)
        baseline = mean_reward if use_baseline else 0.0
        one_hot = np.zeros(k)
        one_hot[a] = 1.0
        h += lr * (r - baseline) * (one_hot - pi)
        mean_reward += (r - mean_reward) / (t + 1)
        optimal[t] = float(a == best)
    return optimal


def run(config: Config) -> Result:
    rng = set_seed(config.seed)
    curves = {True: np.zeros(config.steps), False: np.zeros(config.steps)}
    for _ in progress(range(config.runs), desc="bandit runs"):
        q_true = rng.normal(config.reward_offset, 1.0, size=config.n_arms)
        for use_baseline in (True, False):
            curves[use_baseline] += gradient_bandit(q_true, config.steps, config.lr, use_baseline, rng)
    with_b = curves[True] / config.runs
    without_b = curves[False] / config.runs
    last = max(1, config.steps // 10)
    metrics = {
        "optimal_rate_baseline": float(with_b[-last:].mean()),
        "optimal_rate_no_baseline": float(without_b[-last:].mean()),
        "steps": config.steps,
        "runs": config.runs,
    }
    rows = [
        {"step": t + 1, "optimal_baseline": float(with_b[t]), "optimal_no_baseline": float(without_b[t])}
        for t in range(config.steps)
    ]
    result = Result(metrics=metrics, curves=rows)
    result.figure = draw(result, config)
    return result


def draw(result: Result, config: Config):
    """P(optimal arm) against the step, with and without the baseline (smoothed over 20 steps)."""
    with_b = np.array([r["optimal_baseline"] for r in result.curves])
    without_b = np.array([r["optimal_no_baseline"] for r in result.curves])
    fig, ax = new_figure()
    steps = np.array([r["step"] for r in result.curves])
    ax.plot(steps, smooth(with_b, 20), label="with baseline $b_t = \\bar R_t$")
    ax.plot(steps, smooth(without_b, 20), label="without baseline ($b_t = 0$)")
    ax.axhline(1.0 / config.n_arms, ls=":", color="grey", label="random policy")
    label(ax, "step", "P(optimal arm)", f"Gradient bandit, {config.n_arms} arms, {config.runs} runs")
    ax.legend()
    return fig
