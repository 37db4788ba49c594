"""``action-space``: how the size of the vocabulary and the sparsity of the reward slow PPO down on the token MDP.

The survey's takeaway 4 (Sun 2023): policy learning for language models is harder than the problems classical RL
and IRL study, because the action space is huge (every token of the vocabulary) and the feedback is sparse (one
score for a whole response). This experiment measures both effects with PPO on :class:`rl4llm.envs.TokenMDPEnv`
(book section 1.6):

* the **vocabulary** :math:`V` is swept (4 to 1,024 tokens);
* the **reward** is either ``"dense"`` (one point per correct token, paid at once) or ``"terminal"`` (the same total,
  paid at the end). The return of every episode is the same in both modes, only its timing differs.

The task is to write a fixed random target sequence of ``horizon`` tokens; the reward is the fraction of positions
that match it. For each setting and seed, PPO (the chapter's token-MDP settings, constant learning rate) runs until
its greedy policy reaches ``target_return`` or ``max_steps`` environment steps have passed; the figure plots the
steps needed against :math:`V` on log-log axes. A power law :math:`\\text{steps} = c V^b` fitted to the measured
points is extrapolated to GPT-2's 50,257 tokens: an *extrapolation*, drawn as such, from a from-scratch policy, not a
measurement (a pretrained language model starts far from uniform, which is why RLHF starts from one).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from rl4llm.config import ConfigError, param, validate
from rl4llm.experiments import Result, from_state, to_state
from rl4llm.utils import progress, set_torch_threads

NAME = "action-space"
SUMMARY = "takeaway 4: PPO's steps to solve the token MDP against vocabulary size, dense vs terminal reward"

GPT2_VOCAB = 50_257
TINY_GPT2_VOCAB = 196
MODES = ("dense", "terminal")


def _int_list(name: str, text: str, minimum: int) -> list[int]:
    if not isinstance(text, str):
        raise TypeError(f"{name} must be a comma-separated string of ints, got {type(text).__name__}")
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError as err:
        raise ValueError(f"{name} must be a comma-separated string of ints >= {minimum}, got {text!r}") from err
    if not values or min(values) < minimum or len(set(values)) != len(values):
        raise ValueError(f"{name} must be distinct ints >= {minimum}, comma-separated, got {text!r}")
    return sorted(values)


@dataclass
class Config:
    """Defaults are what ``rl4llm run action-space`` runs; the book's page runs a smaller sweep (see its caption)."""

    vocab_sizes: str = param("4,16,64,256,1024", help="comma-separated vocabulary sizes, distinct ints >= 2")
    modes: str = param("dense,terminal", help=f"comma-separated reward modes from {', '.join(MODES)}")
    horizon: int = param(8, low=1, help="tokens of the target sequence")
    target_return: float = param(
        0.75, low=0.0, high=1.0, low_inclusive=False, help="greedy return at which a run counts as solved"
    )
    max_steps: int = param(200_000, low=512, help="environment steps before a run gives up")
    seeds: int = param(2, low=1, help="seeds per vocabulary size and mode")
    eval_every: int = param(512, low=1, help="environment steps between greedy evaluations")
    seed: int = param(0, low=0, help="random seed of the first run")

    def __post_init__(self) -> None:
        validate(self)
        try:
            _int_list("vocab_sizes", self.vocab_sizes, 2)
        except ValueError as err:
            raise ConfigError("vocab_sizes", str(err)) from None
        modes = self.mode_list()
        if not modes or any(m not in MODES for m in modes) or len(set(modes)) != len(modes):
            raise ConfigError(
                "modes", f"modes must be distinct names from {', '.join(MODES)} (comma-separated), got {self.modes!r}"
            )

    def vocab_list(self) -> list[int]:
        return _int_list("vocab_sizes", self.vocab_sizes, 2)

    def mode_list(self) -> list[str]:
        return [m.strip() for m in self.modes.split(",") if m.strip()]


def steps_to_target(
    vocab_size: int, mode: str, horizon: int, target_return: float, max_steps: int, seed: int, eval_every: int = 512
) -> tuple[int | None, list[tuple[int, float]]]:
    """Train PPO on one token MDP until its greedy return reaches ``target_return``.

    Returns ``(steps, evaluations)``: the environment steps the policy had learned from when its greedy policy
    first reached the target (``None`` if it did not within ``max_steps``) and the greedy return after every
    ``eval_every`` steps. Evaluations run in :func:`~rl4llm.rl.train_ppo`'s callback, after an update.
    """
    from rl4llm.envs import TokenMDPEnv
    from rl4llm.rl import evaluate, token_ppo_config, train_ppo

    target = np.random.default_rng([seed, vocab_size]).integers(0, vocab_size, size=horizon)

    def make_env():
        return TokenMDPEnv(vocab_size=vocab_size, horizon=horizon, reward_mode=mode, target=target)

    evals: list[tuple[int, float]] = []
    reached: list[int] = []
    next_eval = [0]

    def callback(iteration: int, info: dict, agent) -> bool | None:
        # called after each update: the agent has learned from info["env_steps"] steps
        used = int(info["env_steps"])
        if used >= next_eval[0]:
            ret = float(evaluate(agent, make_env, n_episodes=1, deterministic=True)[0])
            evals.append((int(used), ret))
            next_eval[0] = used + eval_every
            if ret >= target_return - 1e-9:
                reached.append(int(used))
                return False
        return None

    config = token_ppo_config(total_steps=max_steps, anneal_lr=False, seed=seed)
    result = train_ppo(make_env, config, callback=callback, desc=f"V={vocab_size} {mode}")
    if not reached and (not evals or evals[-1][0] != result.env_steps):  # the final agent, if not evaluated yet
        ret = float(evaluate(result.agent, make_env, n_episodes=1, deterministic=True)[0])
        evals.append((int(result.env_steps), ret))
        if ret >= target_return - 1e-9:
            reached.append(int(result.env_steps))
    return (reached[0] if reached else None), evals


def fit_power_law(vocab: np.ndarray, steps: np.ndarray) -> tuple[float, float]:
    """Least-squares fit of :math:`\\log_{10} \\text{steps} = a + b \\log_{10} V`; returns ``(a, b)``."""
    vocab = np.asarray(vocab, dtype=float)
    steps = np.asarray(steps, dtype=float)
    if vocab.size < 2 or np.unique(vocab).size < 2:
        raise ValueError("fit_power_law needs measurements at two or more vocabulary sizes")
    b, a = np.polyfit(np.log10(vocab), np.log10(steps), 1)
    return float(a), float(b)


def run(config: Config) -> Result:

    set_torch_threads(1)
    t0 = time.perf_counter()
    vocab = config.vocab_list()
    modes = config.mode_list()
    seeds = [config.seed + i for i in range(config.seeds)]
    measured: dict[str, dict[int, list[int | None]]] = {m: {v: [] for v in vocab} for m in modes}
    rows: list[dict[str, object]] = []
    jobs = [(m, v, s) for m in modes for v in vocab for s in seeds]
    for mode, v, s in progress(jobs, desc="action-space"):
        steps, evals = steps_to_target(
            v, mode, config.horizon, config.target_return, config.max_steps, s, config.eval_every
        )
        measured[mode][v].append(steps)
        rows.append(
            {"mode": mode, "vocab_size": v, "seed": s, "steps_to_target": steps, "final_greedy_return": evals[-1][1]}
        )
    metrics: dict[str, object] = {}
    fits: dict[str, tuple[float, float]] = {}
    for mode in modes:
        xs, ys = [], []
        for v in vocab:
            runs = measured[mode][v]
            ok = [r for r in runs if r is not None]
            metrics[f"{mode}_V{v}_steps"] = float(np.median(ok)) if len(ok) == len(runs) else None
            metrics[f"{mode}_V{v}_reached_frac"] = len(ok) / len(runs)
            if len(ok) == len(runs):
                xs.append(v)
                ys.append(float(np.median(ok)))
        if len(xs) >= 2:
            a, b = fit_power_law(np.array(xs), np.array(ys))
            fits[mode] = (a, b)
            metrics[f"{mode}_slope"] = b
            metrics[f"{mode}_steps_gpt2_extrapolated"] = float(10 ** (a + b * np.log10(GPT2_VOCAB)))
    if {"dense", "terminal"} <= set(modes):
        common = [v for v in vocab if metrics[f"dense_V{v}_steps"] and metrics[f"terminal_V{v}_steps"]]
    else:
        common = []
    if common:
        ratios = [metrics[f"terminal_V{v}_steps"] / metrics[f"dense_V{v}_steps"] for v in common]
        metrics["terminal_over_dense_median"] = float(np.median(ratios))
    total = sum(r["steps_to_target"] or config.max_steps for r in rows)
    metrics.update(
        {
            "horizon": config.horizon,
            "target_return": config.target_return,
            "seeds": config.seeds,
            "max_steps": config.max_steps,
            "env_steps": int(total),
            "wall_s": round(time.perf_counter() - t0, 3),
        }
    )
    result = Result(metrics=metrics, curves=rows, artifacts={"measured": measured, "fits": fits})
    result.figure = draw(result, config)
    return result


def draw(result: Result, config: Config):
    """Environment steps to the target return against the vocabulary size, per reward mode, with the fits."""
    from rl4llm.rl.plots import plot_action_space

    return plot_action_space(
        result.artifacts["measured"],
        result.artifacts["fits"],
        horizon=config.horizon,
        target_return=config.target_return,
        max_steps=config.max_steps,
    )


def cache_state(result: Result) -> dict[str, Any]:
    """The arrays the figure draws (the models are not kept)."""
    return {k: to_state(result.artifacts[k]) for k in _FIGURE_ARTIFACTS}


def restore_artifacts(state: dict[str, Any], config: Config) -> dict[str, Any]:  # noqa: ARG001
    return {k: from_state(state[k]) for k in _FIGURE_ARTIFACTS}


_FIGURE_ARTIFACTS = ("measured", "fits")
