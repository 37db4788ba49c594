"""``why-ppo``: PPO against DQN, PPO without clipping and PPO with many epochs on a sparse-reward token MDP.

The survey's takeaway 5 (Sun 2023): PPO's edge over off-policy value-based methods is the *stability* it gets from
(almost) on-policy data and conservative updates. The experiment separates the two ingredients on one token-level
MDP (book section 1.5):

* **ppo**: the clipped surrogate (:math:`\\epsilon = 0.2`), a few epochs over each fresh batch;
* **ppo-noclip**: the same, with the clipping switched off (:math:`\\epsilon = \\infty`): updates are no longer
  conservative;
* **ppo-epochs**: clipped, but ``many_epochs`` passes over each batch: the data are reused long after the policy
  that collected them has changed, i.e. the updates are more off-policy;
* **dqn**: an off-policy value-based method, learning :math:`Q(s, a)` from a replay buffer of old transitions.

The task is the token MDP of :class:`rl4llm.envs.TokenMDPEnv` over a slice of the tiny GPT-2's vocabulary: the
words of a reference review drawn from the book's grammar plus the most frequent other words of the language,
``vocab_size`` in all. An episode writes ``horizon`` words (or stops at ``<eos>``); the only reward comes at the end,
the fraction of positions that match the reference review. Every method gets the same number of environment steps;
each is evaluated every ``eval_every`` steps by its greedy policy (one episode suffices: the MDP and the greedy
policy are deterministic), over ``seeds`` seeds.

PPO's hyperparameters are the chapter's token-MDP settings (``n_envs = 8``, ``n_steps = 64``, 4 epochs of 4
minibatches, learning rate ``3e-3`` annealed, :math:`\\gamma = 1`, :math:`\\lambda = 0.95`, entropy bonus 0.03).
DQN's (learning rate ``1e-3``, target copy every 250 steps, :math:`\\epsilon` from 1 to 0.05 over half the budget,
buffer 20k, one update of 64 transitions every 4 steps) were the best of a small grid on this task.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from rl4llm.config import ConfigError, param, validate
from rl4llm.experiments import Result, from_state, to_state
from rl4llm.utils import set_torch_threads

NAME = "why-ppo"
SUMMARY = "takeaway 5: PPO vs DQN, PPO without clipping, PPO with many epochs on a sparse-reward token MDP"

METHODS = ("ppo", "ppo-noclip", "ppo-epochs", "dqn")
LABELS = {
    "ppo": "PPO (clip 0.2, 4 epochs)",
    "ppo-noclip": "PPO without clipping",
    "ppo-epochs": "PPO with many epochs (clip 0.2)",
    "dqn": "DQN (off-policy, replay)",
}
PPO_BATCH = 512  # 8 environments x 64 steps (rl4llm.rl.ppo.TOKEN_PPO_SETTINGS)
SHORT = {"ppo": "PPO", "ppo-noclip": "PPO\nno clipping", "ppo-epochs": "PPO\nmany epochs", "dqn": "DQN"}


@dataclass
class Config:
    """Defaults are what ``rl4llm run why-ppo`` runs; the book's page runs fewer seeds (see its caption)."""

    vocab_size: int = param(32, low=2, high=193, help="words of the action space, in [horizon, 193]")
    horizon: int = param(12, low=2, help="words of the target review (the episode length)")
    total_steps: int = param(50_000, low=1000, help="environment steps of each run")
    seeds: int = param(5, low=1, help="seeds per method")
    methods: str = param(",".join(METHODS), help=f"comma-separated methods from {', '.join(METHODS)}")
    many_epochs: int = param(20, low=2, help="PPO epochs of the ppo-epochs method")
    ppo_lr: float = param(3e-3, low=0.0, low_inclusive=False, help="PPO learning rate")
    dqn_lr: float = param(1e-3, low=0.0, low_inclusive=False, help="DQN learning rate")
    eval_every: int = param(2_048, low=1, help=f"steps between greedy evaluations (a multiple of {PPO_BATCH})")
    solved: float = param(0.9, low=0.0, high=1.0, low_inclusive=False, help="greedy return that counts as solved")
    seed: int = param(0, low=0, help="random seed of the first run and of the target review")

    def __post_init__(self) -> None:
        validate(self)
        if self.vocab_size < self.horizon:
            raise ConfigError(
                "vocab_size",
                f"vocab_size must be in [horizon={self.horizon}, 193] (the language has "
                f"193 words), got {self.vocab_size}",
            )
        if self.eval_every % PPO_BATCH or self.eval_every > self.total_steps:
            raise ConfigError(
                "eval_every",
                f"eval_every must be a multiple of PPO's batch ({PPO_BATCH} steps) in "
                f"[{PPO_BATCH}, total_steps={self.total_steps}], got {self.eval_every}",
            )
        names = self.method_list()
        bad = [m for m in names if m not in METHODS]
        if bad or not names or len(set(names)) != len(names):
            raise ConfigError(
                "methods",
                f"methods must be distinct names from {', '.join(METHODS)} (comma-separated), got {self.methods!r}",
            )

    def method_list(self) -> list[str]:
        return [m.strip() for m in self.methods.split(",") if m.strip()]


def review_task(vocab_size: int, horizon: int, text_seed: int = 0):
    """The why-PPO task: ``(make_env, words, target)``.

    ``target`` is the first review of exactly ``horizon`` words (``<eos>`` included) sampled from the grammar with
    ``text_seed``; ``words`` (the action space) are its distinct words followed by the most frequent other words of
    2,000 grammar samples, ``vocab_size`` in all. ``make_env()`` builds the terminal-reward token MDP whose reward
    is the fraction of positions matching ``target`` and which ends early at ``<eos>``.
    """
    from rl4llm.envs import TokenMDPEnv
    from rl4llm.lm import EOS, sample_texts

    rng = np.random.default_rng(text_seed)
    for _ in range(100):
        candidates = [t.split() for t in sample_texts(200, rng)]
        exact = [c for c in candidates if len(c) == horizon and len(set(c)) <= vocab_size]
        if exact:
            reference = exact[0]
            break
    else:
        raise ValueError(f"the grammar has no review of horizon={horizon} words; use a horizon in [4, 24]")
    words = list(dict.fromkeys(reference))
    counts = Counter(w for t in sample_texts(2000, np.random.default_rng(text_seed + 1)) for w in t.split())
    for w, _ in counts.most_common():
        if len(words) >= vocab_size:
            break
        if w not in words:
            words.append(w)
    index = {w: i for i, w in enumerate(words)}
    target = [index[w] for w in reference]
    eos = index[EOS]

    def make_env():
        env = TokenMDPEnv(
            vocab_size=vocab_size, horizon=horizon, reward_mode="terminal", target=target, eos_token_id=eos
        )
        env.id_to_text = lambda i: words[int(i)]
        return env

    return make_env, words, target


def _ppo_config(method: str, config: Config, seed: int):
    from rl4llm.rl import token_ppo_config

    kw: dict[str, object] = dict(total_steps=config.total_steps, lr=config.ppo_lr, seed=seed)
    if method == "ppo-noclip":
        kw["clip_eps"] = math.inf
    if method == "ppo-epochs":
        kw["n_epochs"] = config.many_epochs
    return token_ppo_config(**kw)


def train_method(method: str, make_env, config: Config, seed: int) -> tuple[list[tuple[int, float]], object]:
    """Train one method with one seed; return its greedy evaluations ``[(env_steps, return)]`` and the agent."""
    from rl4llm.rl import DQNConfig, evaluate, train_dqn, train_ppo

    evals: list[tuple[int, float]] = []

    def greedy(agent) -> float:
        return float(evaluate(agent, make_env, n_episodes=1, seed=seed, deterministic=True)[0])

    def callback(iteration: int, info: dict, agent) -> None:
        # both trainers call back after an update, with the steps the agent has learned from
        used = int(info["env_steps"])
        if used % config.eval_every == 0:
            evals.append((used, greedy(agent)))

    desc = f"{method} seed {seed}"
    if method == "dqn":
        dqn = DQNConfig(
            total_steps=config.total_steps,
            lr=config.dqn_lr,
            gamma=1.0,
            learning_starts=1000,
            target_update=250,
            eps_fraction=0.5,
            buffer_size=20_000,
            seed=seed,
        )
        res = train_dqn(make_env, dqn, callback=callback, log_every=config.eval_every, desc=desc)
    else:
        res = train_ppo(make_env, _ppo_config(method, config, seed), callback=callback, desc=desc)
    if not evals or evals[-1][0] != config.total_steps:  # the final policy, if the callback did not see it
        evals.append((config.total_steps, greedy(res.agent)))
    return evals, res.agent


def _on_grid(evals: list[tuple[int, float]], grid: np.ndarray, start: float) -> np.ndarray:
    """The greedy return available at each grid step: the last evaluation at or before it (``start`` before any)."""
    steps = np.array([s for s, _ in evals])
    values = np.array([v for _, v in evals])
    out = np.full(grid.shape, start, dtype=float)
    for i, g in enumerate(grid):
        done = np.flatnonzero(steps <= g)
        if done.size:
            out[i] = values[done[-1]]
    return out


def max_drop(returns: np.ndarray) -> float:
    """The largest fall of a learning curve below its best value so far, :math:`\\max_t (\\max_{u \\le t} R_u - R_t)`:
    0 for a curve that never gets worse. The experiment reports its mean over seeds as a measure of instability."""
    returns = np.asarray(returns, dtype=float)
    if returns.size == 0:
        return 0.0
    return float(np.max(np.maximum.accumulate(returns) - returns))


def greedy_tokens(agent, make_env) -> list[int]:
    """The tokens that ``agent``'s greedy policy writes in one episode of ``make_env()``."""
    env = make_env()
    obs, _ = env.reset(seed=0)
    done, tokens = False, []
    while not done:
        action = agent.act(obs, deterministic=True)
        obs, _, terminated, truncated, _ = env.step(action)
        tokens.append(int(action))
        done = terminated or truncated
    return tokens


def run(config: Config) -> Result:

    set_torch_threads(1)
    t0 = time.perf_counter()
    make_env, words, target = review_task(config.vocab_size, config.horizon, config.seed)
    grid = np.arange(config.eval_every, config.total_steps + 1, config.eval_every)
    if grid[-1] != config.total_steps:
        grid = np.append(grid, config.total_steps)
    random_return = 1.0 / config.vocab_size
    seeds = [config.seed + i for i in range(config.seeds)]
    curves: dict[str, np.ndarray] = {}
    finals: dict[str, np.ndarray] = {}
    texts: dict[str, str] = {}
    metrics: dict[str, object] = {}
    for method in config.method_list():
        runs, final = [], []
        for s in seeds:
            evals, agent = train_method(method, make_env, config, s)
            runs.append(_on_grid(evals, grid, random_return))
            final.append(evals[-1][1])
            if s == seeds[0]:
                texts[method] = " ".join(words[t] for t in greedy_tokens(agent, make_env))
        curves[method] = np.array(runs)
        finals[method] = np.array(final)
        reached = [int(grid[np.argmax(r >= config.solved)]) if (r >= config.solved).any() else None for r in runs]
        ok = [r for r in reached if r is not None]
        metrics[f"{method}_final_mean"] = float(np.mean(final))
        metrics[f"{method}_final_std"] = float(np.std(final))
        metrics[f"{method}_final_min"] = float(np.min(final))
        metrics[f"{method}_solved_frac"] = float(np.mean(np.array(final) >= config.solved))
        metrics[f"{method}_steps_to_solved"] = float(np.median(ok)) if len(ok) == len(runs) else None
        metrics[f"{method}_max_drop"] = float(np.mean([max_drop(r) for r in runs]))
    metrics.update(
        {
            "vocab_size": config.vocab_size,
            "horizon": config.horizon,
            "seeds": config.seeds,
            "env_steps": config.total_steps,
            "random_return": random_return,
            "wall_s": round(time.perf_counter() - t0, 3),
        }
    )
    rows = []
    for i, g in enumerate(grid):
        row: dict[str, float] = {"env_steps": int(g)}
        for method, runs in curves.items():
            row[f"{method}_mean"] = float(runs[:, i].mean())
            row[f"{method}_std"] = float(runs[:, i].std())
        rows.append(row)
    reference = " ".join(words[t] for t in target)
    result = Result(
        metrics=metrics,
        curves=rows,
        artifacts={
            "grid": grid,
            "curves": curves,
            "finals": finals,
            "texts": texts,
            "reference": reference,
            "words": words,
        },
    )
    result.figure = draw(result, config)
    return result


def draw(result: Result, config: Config):
    """Greedy return against environment steps for every method (mean and spread over seeds), final returns."""
    from rl4llm.rl.plots import plot_why_ppo

    a = result.artifacts
    return plot_why_ppo(
        a["grid"],
        a["curves"],
        a["finals"],
        labels=LABELS,
        short=SHORT,
        random_return=result.metrics["random_return"],
        title=f"{config.vocab_size}-word vocabulary, {config.horizon} words, terminal reward",
    )


def cache_state(result: Result) -> dict[str, Any]:
    """The arrays the figure draws (the models are not kept)."""
    return {k: to_state(result.artifacts[k]) for k in _FIGURE_ARTIFACTS}


def restore_artifacts(state: dict[str, Any], config: Config) -> dict[str, Any]:  # noqa: ARG001
    return {k: from_state(state[k]) for k in _FIGURE_ARTIFACTS}


_FIGURE_ARTIFACTS = ("grid", "curves", "finals")
