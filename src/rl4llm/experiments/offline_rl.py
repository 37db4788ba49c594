"""``offline-rl``: behaviour cloning, fitted Q-iteration and CQL on a logged cliff-walk dataset, scored exactly.

A behaviour policy (the cautious top-row route of :func:`rl4llm.offline.tabular.safe_route`, made
:math:`\\epsilon`-greedy) logs ``n_episodes`` episodes of the cliff walk. Three learners then see only that
dataset: behaviour cloning, naive fitted Q-iteration (offline DQN) and CQL. All read a cell as its row and column
(one-hot), so the Q-networks must generalise between cells. Because the MDP is tabular, every policy's value is
computed exactly (:func:`rl4llm.offline.tabular.evaluate_policy`), and so is the over-estimation of each
Q-learner: its predicted value :math:`\\max_a \\hat Q(s_0, a)` minus the true value of its greedy policy.

``learners`` picks which of ``bc``, ``fqi`` and ``cql`` run (a sweep over ``cql_alpha`` needs only ``cql``;
``cql_alpha = 0`` makes CQL plain fitted Q-iteration). Metrics (means over ``n_seeds`` datasets; returns are
expected discounted returns from the start cell), for the learners that ran:
``behaviour_return``, ``bc_return``, ``fqi_return``, ``cql_return``, ``optimal_return``,
``fqi_overestimation``, ``cql_overestimation``, ``fqi_unseen_q_error``/``cql_unseen_q_error`` (mean
:math:`\\hat Q - Q^*` over the actions the data never took at the states it visited), ``coverage`` (fraction
of non-terminal state-action pairs in the data) and ``n_transitions``. Book section 2.3.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium import spaces

from rl4llm.config import ConfigError, param, validate
from rl4llm.experiments import Result
from rl4llm.imitation.bc import behaviour_cloning
from rl4llm.offline.bc import policy_table
from rl4llm.offline.dataset import collect_dataset, table_policy
from rl4llm.offline.evaluation import greedy_value_gap, q_errors, tabular_tracker
from rl4llm.offline.fqi import OfflineQConfig, q_table, train_offline_q
from rl4llm.offline.plots import plot_offline_comparison
from rl4llm.offline.tabular import (
    TabularEnv,
    cliff_walk,
    epsilon_greedy_probs,
    greedy_policy,
    policy_return,
    safe_route,
    value_iteration,
)
from rl4llm.utils import progress, set_torch_threads

NAME = "offline-rl"
SUMMARY = "BC, fitted Q-iteration and CQL on a logged cliff-walk dataset: returns and exact Q over-estimation"

LEARNERS = ("bc", "fqi", "cql")


@dataclass
class Config:
    """Defaults are what the book runs (about 3 s of CPU per seed)."""

    epsilon: float = param(
        0.1, low=0.0, high=1.0, help="behaviour noise: probability of a uniformly random action (dataset coverage)"
    )
    n_episodes: int = param(50, low=1, help="episodes in each logged dataset")
    horizon: int = param(50, low=1, help="time limit of an episode (truncation)")
    cql_alpha: float = param(1.0, low=0.0, help="weight of CQL's conservative penalty (0: CQL is plain FQI)")
    gamma: float = param(0.95, low=0.0, high=1.0, high_inclusive=False, help="discount factor")
    n_iterations: int = param(20, low=1, help="fitted Q-iterations (target refreshes)")
    steps_per_iteration: int = param(50, low=1, help="gradient steps per iteration")
    batch_size: int = param(128, low=1, help="transitions per gradient step")
    lr: float = param(1e-3, low=0.0, low_inclusive=False, help="Adam learning rate")
    hidden: int = param(64, low=1, help="hidden units of the Q-network and the BC policy")
    bc_steps: int = param(500, low=1, help="gradient steps of behaviour cloning")
    n_seeds: int = param(3, low=1, help="independent datasets (and network initialisations)")
    learners: str = param("bc,fqi,cql", help="comma-separated subset of bc, fqi, cql")
    seed: int = param(0, low=0, help="random seed of the first dataset")

    def __post_init__(self) -> None:
        validate(self)
        names = [x.strip() for x in str(self.learners).split(",") if x.strip()]
        if not names or any(x not in LEARNERS for x in names):
            raise ConfigError(
                "learners", f"learners must be a comma-separated subset of {', '.join(LEARNERS)}, got {self.learners!r}"
            )

    @property
    def learner_list(self) -> list[str]:
        return [x for x in LEARNERS if x in {y.strip() for y in self.learners.split(",")}]


def run_one(config: Config, seed: int) -> dict[str, Any]:
    """One dataset and one run of each learner; returns returns, gaps, Q-tables, counts and curves."""
    mdp = cliff_walk(gamma=config.gamma)
    env = TabularEnv(mdp, horizon=config.horizon)
    behaviour = epsilon_greedy_probs(safe_route(mdp), mdp.n_actions, config.epsilon)
    dataset = collect_dataset(env, table_policy(behaviour), config.n_episodes, seed=seed)
    counts = dataset.action_counts(mdp.n_states, mdp.n_actions)
    features = mdp.features
    data = dataset.featurize(features)
    box = spaces.Box(0.0, 1.0, (features.shape[1],), dtype=np.float32)
    q_star = value_iteration(mdp)
    out: dict[str, Any] = {"dataset": dataset, "counts": counts}
    for method in (m for m in ("fqi", "cql") if m in config.learner_list):
        alpha = config.cql_alpha if method == "cql" else 0.0
        cfg = OfflineQConfig(
            n_iterations=config.n_iterations,
            steps_per_iteration=config.steps_per_iteration,
            batch_size=config.batch_size,
            lr=config.lr,
            gamma=config.gamma,
            hidden=config.hidden,
            cql_alpha=alpha,
            seed=seed,
        )
        result = train_offline_q(
            data, box, env.action_space, cfg, callback=tabular_tracker(mdp, features), desc=method.upper()
        )
        q = q_table(result.q_net, features)
        gap = greedy_value_gap(mdp, q)
        errors = q_errors(q, q_star, counts, mdp.terminal)
        out[method] = {
            "q": q,
            "curves": result.curves,
            "return": gap["true"],
            "predicted": gap["predicted"],
            "overestimation": gap["overestimation"],
            "unseen_q_error": float(errors["unseen"].mean()) if errors["unseen"].size else 0.0,
        }
    if "bc" in config.learner_list:
        bc = behaviour_cloning(
            data.observations,
            data.actions,
            box,
            env.action_space,
            steps=config.bc_steps,
            batch_size=256,
            lr=3e-3,
            hidden=config.hidden,
            seed=seed,
            desc="BC",
        )
        bc_policy = policy_table(bc, features)
        out["bc"] = {"policy": bc_policy, "return": policy_return(mdp, bc_policy)}
    return out


def run(config: Config) -> Result:
    set_torch_threads(1)
    mdp = cliff_walk(gamma=config.gamma)
    q_star = value_iteration(mdp)
    behaviour = epsilon_greedy_probs(safe_route(mdp), mdp.n_actions, config.epsilon)
    runs = [run_one(config, config.seed + i) for i in progress(range(config.n_seeds), desc="offline-rl seeds")]

    def mean(method: str, key: str) -> float:
        return float(np.mean([r[method][key] for r in runs]))

    non_terminal = (~mdp.terminal).sum() * mdp.n_actions
    learners = config.learner_list
    q_learners = [m for m in ("fqi", "cql") if m in learners]
    metrics: dict[str, Any] = {"behaviour_return": policy_return(mdp, behaviour)}
    for method in learners:
        metrics[f"{method}_return"] = mean(method, "return")
    metrics["optimal_return"] = policy_return(mdp, greedy_policy(q_star))
    for method in q_learners:
        for key in ("overestimation", "predicted", "unseen_q_error"):
            metrics[f"{method}_{key}"] = mean(method, key)
    metrics.update(
        {
            "coverage": float(np.mean([(r["counts"] > 0).sum() / non_terminal for r in runs])),
            "n_transitions": float(np.mean([len(r["dataset"]) for r in runs])),
            "epsilon": config.epsilon,
            "cql_alpha": config.cql_alpha,
            "n_seeds": config.n_seeds,
        }
    )
    curves = []
    for i in range(config.n_iterations if q_learners else 0):
        row: dict[str, float] = {"iteration": i + 1}
        for method in q_learners:
            for key in ("predicted", "true", "overestimation", "bellman_loss", "cql_penalty"):
                row[f"{method}_{key}"] = float(np.mean([r[method]["curves"][i][key] for r in runs]))
        curves.append(row)
    artifacts = {"mdp": mdp, "q_star": q_star, "behaviour": behaviour, "runs": runs}
    result = Result(metrics=metrics, curves=curves, artifacts=artifacts)
    result.figure = draw(result, config)
    return result


def draw(result: Result, config: Config):  # noqa: ARG001 - the experiment contract's signature
    """Each Q-learner's predicted and true value per iteration, and every learner's return."""
    return plot_offline_comparison(result.artifacts["runs"], result.metrics)


def cache_state(result: Result) -> dict[str, Any]:
    """What the figure needs of each seed's run: per learner its curves, return and predicted value (JSON)."""
    return {"runs": json.dumps(_figure_runs(result.artifacts["runs"]))}


def restore_artifacts(state: dict[str, Any], config: Config) -> dict[str, Any]:  # noqa: ARG001
    return {"runs": json.loads(state["runs"])}


def _figure_runs(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    keep = ("curves", "return", "predicted")
    return [{m: {k: v for k, v in r[m].items() if k in keep} for m in ("behaviour", *LEARNERS) if m in r} for r in runs]
