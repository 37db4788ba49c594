"""``stale-rollouts``: PPO fed rollouts ``k`` iterations old, with and without the importance ratio and the clip.

The survey's takeaway 5 (Sun 2023) credits PPO's stability to "(almost) on-policy data and conservative policy
updates". Section 1.5's why-PPO experiment isolates the conservative update; this one isolates the data's age
(book section 1.5). PPO collects a fresh batch every iteration as usual, but the update of iteration :math:`i`
trains on the batch collected at iteration :math:`i - k`, exactly as it was stored then (actions,
:math:`\\log\\mu(a|s)` of the policy :math:`\\mu` that acted, advantages from the critic of that time), like an
asynchronous actor and learner ``k`` iterations apart: during the first ``k`` iterations the learner waits (no
update), and the run lasts ``k`` iterations longer, so that every run makes the same number of gradient updates,
each on one batch of the same size used once; only the age ``k`` of the data changes (``k = 0``: ordinary PPO). Three objectives face the same stale batches:

* **clip**: PPO's clipped ratio to the policy that acted,
  :math:`\\min(\\rho A, \\text{clip}(\\rho, 1 \\pm \\epsilon) A)` with :math:`\\rho = \\pi_\\theta / \\mu`;
* **ratio**: the importance ratio without the clip, :math:`\\rho A` (:math:`\\epsilon = \\infty`);
* **pg**: a plain policy gradient that ignores who collected the data, :math:`A \\log \\pi_\\theta` (the ratio is
  dropped: ``logp = None`` in :func:`rl4llm.rl.ppo.ppo_update`).

The task is the token MDP of section 1.6 (:class:`rl4llm.envs.TokenMDPEnv`): write a random target sequence of
``horizon`` tokens from ``vocab_size``, terminal reward (the fraction matched), PPO with the chapter's token-MDP
settings at a constant learning rate. A run's score is the *expected* return of its final policy, estimated from ``eval_episodes`` sampled
episodes (a smoother measure than the greedy return, which moves in steps of ``1/horizon``).
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from rl4llm.config import ConfigError, param, validate
from rl4llm.experiments import Result
from rl4llm.utils import progress, set_torch_threads

NAME = "stale-rollouts"
SUMMARY = "takeaway 5: PPO trained on rollouts k iterations old, clipped ratio vs ratio vs plain policy gradient"

OBJECTIVES = ("clip", "ratio", "pg")
LABELS = {
    "clip": "PPO: clipped ratio to the acting policy",
    "ratio": "importance ratio, no clip",
    "pg": "plain policy gradient (no ratio)",
}


def _int_list(name: str, text: str, minimum: int) -> list[int]:
    try:
        values = [int(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or min(values) < minimum or len(set(values)) != len(values):
        raise ConfigError(name, f"{name} must be distinct ints >= {minimum}, comma-separated, got {text!r}")
    return sorted(values)


@dataclass(frozen=True)
class Config:
    """Defaults are what ``rl4llm run stale-rollouts`` runs and what section 1.5 quotes."""

    vocab_size: int = param(16, low=2, help="tokens of the action space")
    horizon: int = param(8, low=1, help="tokens of the target sequence (the episode length)")
    total_steps: int = param(
        12_288, low=512, help="environment steps the learner trains on (iterations of 512 steps; k more are waited)"
    )
    staleness: str = param("0,1,2,4,8", help="comma-separated ages k of the batch each update trains on, ints >= 0")
    objectives: str = param(",".join(OBJECTIVES), help=f"comma-separated objectives from {', '.join(OBJECTIVES)}")
    seeds: int = param(3, low=1, help="seeds per (k, objective)")
    eval_episodes: int = param(64, low=1, help="sampled episodes that estimate a final policy's expected return")
    seed: int = param(0, low=0, help="random seed of the first run")

    def __post_init__(self) -> None:
        validate(self)
        _int_list("staleness", self.staleness, 0)
        names = self.objective_list()
        if not names or any(n not in OBJECTIVES for n in names) or len(set(names)) != len(names):
            raise ConfigError(
                "objectives",
                f"objectives must be distinct names from {', '.join(OBJECTIVES)} (comma-separated), "
                f"got {self.objectives!r}",
            )

    def staleness_list(self) -> list[int]:
        return _int_list("staleness", self.staleness, 0)

    def objective_list(self) -> list[str]:
        return [n.strip() for n in self.objectives.split(",") if n.strip()]

    def seed_list(self) -> list[int]:
        return [self.seed + i for i in range(self.seeds)]


def stale_batches(k: int, drop_ratio: bool = False):
    """An ``on_batch`` hook for :func:`rl4llm.rl.train_ppo` that trains each update on the batch of ``k``
    iterations ago.

    It keeps the last ``k + 1`` fresh batches; at iteration :math:`i \\ge k` it returns the batch of iteration
    :math:`i - k` (``k = 0``: the fresh batch itself), and before that an empty batch (no update: the learner
    waits for its first batch). ``drop_ratio`` sets ``logp`` to ``None`` (a plain policy gradient).
    """
    if not isinstance(k, int) or k < 0:
        raise ValueError(f"k must be an int >= 0, got {k!r}")
    kept: deque[dict[str, Any]] = deque()

    def on_batch(iteration: int, batch: dict[str, Any], agent) -> dict[str, Any]:  # noqa: ARG001
        kept.append(batch)
        if len(kept) <= k:  # nothing k iterations old yet: an empty batch, no update
            return {key: value[:0] for key, value in batch.items()}
        out = dict(kept.popleft())
        if drop_ratio:
            out["logp"] = None
        return out

    return on_batch


def train_stale(config: Config, k: int, objective: str, seed: int) -> dict[str, float]:
    """One run: PPO on batches ``k`` iterations old with ``objective``; the final policy's expected return
    (``eval_episodes`` sampled episodes), its greedy return and the mean approx-KL of the last iterations."""
    from rl4llm.envs import TokenMDPEnv
    from rl4llm.rl import evaluate, token_ppo_config, train_ppo

    target = np.random.default_rng([seed, config.vocab_size, config.horizon]).integers(
        0, config.vocab_size, size=config.horizon
    )

    def make_env():
        return TokenMDPEnv(vocab_size=config.vocab_size, horizon=config.horizon, reward_mode="terminal", target=target)

    ppo = token_ppo_config(
        total_steps=config.total_steps + k * 512,  # the learner waits k iterations: the same updates for every k
        anneal_lr=False,
        seed=seed,
        clip_eps=0.2 if objective == "clip" else math.inf,
    )
    res = train_ppo(
        make_env, ppo, on_batch=stale_batches(k, drop_ratio=objective == "pg"), desc=f"k={k} {objective} {seed}"
    )
    sampled = evaluate(res.agent, make_env, n_episodes=config.eval_episodes, seed=10_000 + seed, deterministic=False)
    greedy = evaluate(res.agent, make_env, n_episodes=1, seed=seed, deterministic=True)
    return {"return": float(np.mean(sampled)), "greedy": float(greedy[0])}


def table(metrics: dict[str, Any], config: Config, what: str = "return") -> dict[str, np.ndarray]:
    """Per objective, the final expected (``what = "return"``) or greedy (``"greedy"``) returns
    ``[len(staleness), seeds]`` read back from the flat metrics (``{what}_k{k}_{objective}_seed{s}``), so that a
    figure can be drawn from the metrics alone."""
    return {
        obj: np.array(
            [[metrics[f"{what}_k{k}_{obj}_seed{s}"] for s in config.seed_list()] for k in config.staleness_list()]
        )
        for obj in config.objective_list()
    }


def summarise(per_run: dict[str, Any], config: Config) -> dict[str, Any]:
    """The summary metrics from the per-run ones (``return_k{k}_{objective}_seed{s}``, ``greedy_...``): mean and
    sd over seeds of each (k, objective), and the run's sizes."""
    out: dict[str, Any] = {}
    for what in ("return", "greedy"):
        for obj, values in table(per_run, config, what).items():
            for k, row in zip(config.staleness_list(), values, strict=True):
                out[f"{what}_k{k}_{obj}_mean"] = float(row.mean())
                out[f"{what}_k{k}_{obj}_std"] = float(row.std())
    out.update(
        {
            "seeds": config.seeds,
            "updates": max(1, config.total_steps // 512),
            "env_steps": config.total_steps,
            "random_return": 1.0 / config.vocab_size,
        }
    )
    return out


def run(config: Config) -> Result:
    set_torch_threads(1)
    t0 = time.perf_counter()
    metrics: dict[str, Any] = {}
    rows: list[dict[str, Any]] = []
    jobs = [(k, o, s) for k in config.staleness_list() for o in config.objective_list() for s in config.seed_list()]
    for k, obj, s in progress(jobs, desc="stale-rollouts"):
        out = train_stale(config, k, obj, s)
        metrics[f"return_k{k}_{obj}_seed{s}"] = out["return"]
        metrics[f"greedy_k{k}_{obj}_seed{s}"] = out["greedy"]
        rows.append({"k": k, "objective": obj, "seed": s, **out})
    metrics.update(summarise(metrics, config))
    metrics["wall_s"] = round(time.perf_counter() - t0, 3)
    result = Result(metrics=metrics, curves=rows)
    result.figure = draw(result, config)
    return result


def draw(result: Result, config: Config):
    """Final expected and greedy returns against the data's age ``k``, one line per objective (every seed drawn)."""
    from rl4llm.rl.plots import plot_staleness

    return plot_staleness(
        config.staleness_list(),
        table(result.metrics, config),
        greedy=table(result.metrics, config, "greedy") if _has_greedy(result.metrics, config) else None,
        labels=LABELS,
        random_return=1.0 / config.vocab_size,
        title=f"{config.vocab_size} tokens, horizon {config.horizon}: {config.total_steps // 512} updates "
        f"of 512 steps per run",
    )


def _has_greedy(metrics: dict[str, Any], config: Config) -> bool:
    k, obj = config.staleness_list()[0], config.objective_list()[0]
    return f"greedy_k{k}_{obj}_seed{config.seed}" in metrics
