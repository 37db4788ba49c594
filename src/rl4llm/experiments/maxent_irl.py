"""``maxent-irl``: maximum-entropy IRL on the gridworld, exact, against behaviour cloning (book section 4.1).

1. The **expert** is the optimal policy of the true reward (finite-horizon value iteration on the known
   dynamics); ``n_demos`` episodes sampled from it are the demonstrations.
2. **MaxEnt IRL** (Ziebart et al. 2008) fits a linear reward :math:`r_\\theta = \\phi\\theta` on the state features
   by ascending the feature-matching gradient (:func:`rl4llm.irl.maxent.maxent_irl`), with exact soft value
   iteration and visitation frequencies at every step.
3. The **IRL policy** is the optimal policy of the *learned* reward (value iteration again: planning with known
   dynamics); **behaviour cloning** is the demonstrated action frequencies per state (uniform where no demonstration
   went).

Every policy is scored exactly under the true reward (expected visits times reward, no sampling noise), and the
learned reward is compared with the true one by their Pearson correlation over states (a reward is only
identified up to shift and scale, so the correlation is the fair measure).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from rl4llm.config import param, validate
from rl4llm.envs.gridworld import GridWorldEnv
from rl4llm.envs.tabular import finite_horizon_value_iteration
from rl4llm.experiments import Result
from rl4llm.imitation.bc import tabular_bc
from rl4llm.irl.maxent import maxent_irl, state_visitation_frequencies
from rl4llm.irl.planning import expected_return, sample_trajectories, uniform_policy
from rl4llm.irl.plots import plot_grid_maps
from rl4llm.utils import progress

NAME = "maxent-irl"
SUMMARY = "maximum-entropy IRL (exact soft value iteration) on a gridworld vs behaviour cloning, by demo count"


@dataclass
class Config:
    """Defaults are what the book runs."""

    n_demos: int = param(5, low=1, help="expert demonstrations (trajectories)")
    horizon: int = param(20, low=1, help="steps of an episode")
    slip: float = param(0.1, low=0.0, high=1.0, help="probability that a move goes to a random neighbour")
    features: str = param(
        "terrain",
        choices=("terrain", "onehot"),
        help="reward features: three terrain types, or one indicator per state",
    )
    lr: float = param(0.05, low=0.0, low_inclusive=False, help="step size of the reward weights")
    n_iters: int = param(200, low=1, help="gradient steps of maximum-entropy IRL")
    l2: float = param(0.01, low=0.0, help="L2 penalty on the reward weights")
    seed: int = param(0, low=0, help="random seed of the demonstrations")

    def __post_init__(self) -> None:
        validate(self)


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    denom = float(np.sqrt((a @ a) * (b @ b)))
    return float(a @ b / denom) if denom > 0 else 0.0


def fit(config: Config, log_curves: bool = True) -> tuple[GridWorldEnv, dict, list[dict], dict]:
    """Run one experiment without drawing: ``(env, metrics, curves, arrays)``."""
    env = GridWorldEnv(slip=config.slip, horizon=config.horizon, features=config.features)
    P, p0, r_true, H = env.P, env.p0, env.reward, env.horizon
    _, pi_expert = finite_horizon_value_iteration(P, r_true, H)
    rng = np.random.default_rng(config.seed)
    states, actions = sample_trajectories(P, pi_expert, p0, config.n_demos, rng)

    curves: list[dict] = []

    def log(it: int, theta: np.ndarray, policy: np.ndarray, visits: np.ndarray) -> None:
        if log_curves:
            curves.append({"iteration": it, "soft_policy_return": float(visits @ r_true)})

    res = maxent_irl(P, env.features, p0, states, lr=config.lr, n_iters=config.n_iters, l2=config.l2, callback=log)
    for row, h in zip(curves, res.history):
        row.update(grad_norm=h["grad_norm"], objective=h["objective"])
    _, pi_irl = finite_horizon_value_iteration(P, res.reward, H)
    pi_bc = tabular_bc(states, actions, env.n_states, env.n_actions, H)
    visits_expert = state_visitation_frequencies(P, pi_expert, p0)
    visits_irl = state_visitation_frequencies(P, pi_irl, p0)
    metrics = {
        "expert_return": expected_return(P, pi_expert, p0, r_true),
        "irl_return": float(visits_irl @ r_true),
        "irl_soft_return": float(res.visitation @ r_true),
        "bc_return": expected_return(P, pi_bc, p0, r_true),
        "random_return": expected_return(P, uniform_policy(H, env.n_states, env.n_actions), p0, r_true),
        "reward_correlation": _pearson(res.reward, r_true),
        "feature_gap": float(res.history[-1]["grad_norm"]),
        "demo_states_seen": int(np.unique(states).size),
        "n_demos": config.n_demos,
    }
    if config.features == "terrain":
        for name, w in zip(("floor", "swamp", "goal"), res.theta):
            metrics[f"theta_{name}"] = float(w)
    arrays = {
        "learned_reward": res.reward,
        "true_reward": r_true,
        "visits_expert": visits_expert,
        "visits_irl": visits_irl,
        "demo_states": states,
        "demo_actions": actions,
        "theta": res.theta,
    }
    return env, metrics, curves, arrays


def draw(result: Result, config: Config):
    """The experiment's figure: true and learned reward maps, expert's and IRL policy's state visits."""
    env = GridWorldEnv(slip=config.slip, horizon=config.horizon, features=config.features)
    metrics, arrays = result.metrics, result.artifacts
    return plot_grid_maps(
        env,
        [
            ("true reward r(s)", arrays["true_reward"], "reward"),
            (f"learned reward (corr {metrics['reward_correlation']:.2f})", arrays["learned_reward"], "reward"),
            (f"expert's visits (return {metrics['expert_return']:.2f})", arrays["visits_expert"], "visits"),
            (f"IRL policy's visits (return {metrics['irl_return']:.2f})", arrays["visits_irl"], "visits"),
        ],
    )


def run(config: Config) -> Result:
    env, metrics, curves, arrays = fit(config)
    result = Result(metrics=metrics, curves=curves, artifacts={"env": env, **arrays})
    result.figure = draw(result, config)
    return result


def cache_state(result: Result) -> dict[str, Any]:
    """The learned and true rewards, visits, demonstrations and weights (arrays, as tensors)."""
    return {k: torch.as_tensor(np.asarray(result.artifacts[k])) for k in _ARRAYS}


def restore_artifacts(state: dict[str, Any], config: Config) -> dict[str, Any]:
    arrays = {k: state[k].numpy() for k in _ARRAYS}
    return {"env": GridWorldEnv(slip=config.slip, horizon=config.horizon, features=config.features), **arrays}


_ARRAYS = ("learned_reward", "true_reward", "visits_expert", "visits_irl", "demo_states", "demo_actions", "theta")


def demo_sweep(
    n_demos: Sequence[int] = (1, 2, 5, 10, 20, 50, 100), seeds: Sequence[int] = range(10), **overrides
) -> list[dict]:
    """MaxEnt IRL and BC at several numbers of demonstrations and seeds; one row of metrics per run.

    ``overrides`` are further :class:`Config` fields (e.g. ``features="onehot"``). Each run takes a tenth of a
    second: the MDP is small and every step is exact.
    """
    base = Config(**overrides)
    rows = []
    runs = [(int(n), int(s)) for n in n_demos for s in seeds]
    for n, s in progress(runs, desc="demo sweep"):
        _, metrics, _, _ = fit(replace(base, n_demos=n, seed=s), log_curves=False)
        rows.append({"seed": s, **metrics})
    return rows
