"""``offline-cartpole``: the offline-RL comparison on CartPole, with data from a partly trained PPO agent.

The behaviour policy is PPO after ``ppo_steps`` environment steps (chapter 1's trainer), acting greedily except
for a uniformly random action with probability ``epsilon``. From ``n_episodes`` of its logs, behaviour cloning,
fitted Q-iteration and CQL learn without touching the environment again. Their greedy policies are then run
(that is the evaluation, not training) to measure their returns and the over-estimation of the Q-learners:
:math:`\\max_a \\hat Q(s_0, a)` minus the discounted return actually obtained (Monte Carlo, ``eval_episodes``
episodes from fixed start states).

Metrics: ``behaviour_return`` (mean episode return in the data), ``bc_return``, ``fqi_return``, ``cql_return``
(undiscounted episode returns, at most 500), ``fqi_overestimation``, ``cql_overestimation``,
``fqi_predicted``/``cql_predicted`` and ``fqi_true``/``cql_true`` (discounted), ``n_transitions``.
Book section 2.3.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import gymnasium
import numpy as np

from rl4llm.config import param, validate
from rl4llm.experiments import Result
from rl4llm.imitation.bc import behaviour_cloning
from rl4llm.offline.cartpole import ENV_ID, log_cartpole, train_behaviour_agent
from rl4llm.offline.evaluation import monte_carlo_value_gap
from rl4llm.offline.fqi import OfflineQConfig, train_offline_q
from rl4llm.offline.plots import plot_offline_comparison
from rl4llm.rl import evaluate
from rl4llm.utils import progress, set_torch_threads

NAME = "offline-cartpole"
SUMMARY = "BC, fitted Q-iteration and CQL on CartPole logs of a partly trained PPO agent"


@dataclass
class Config:
    """Defaults are what the book runs."""

    ppo_steps: int = param(8192, low=1, help="training of the behaviour agent (solving CartPole takes about 100k)")
    epsilon: float = param(0.1, low=0.0, high=1.0, help="probability of a random action in the logs")
    n_episodes: int = param(30, low=1, help="logged episodes")
    cql_alpha: float = param(1.0, low=0.0, low_inclusive=False, help="weight of CQL's conservative penalty")
    gamma: float = param(0.98, low=0.0, high=1.0, high_inclusive=False, help="discount factor")
    n_iterations: int = param(80, low=1, help="fitted Q-iterations (target refreshes)")
    steps_per_iteration: int = param(50, low=1, help="gradient steps per iteration")
    batch_size: int = param(128, low=1, help="transitions per gradient step")
    lr: float = param(1e-3, low=0.0, low_inclusive=False, help="Adam learning rate")
    hidden: int = param(64, low=1, help="hidden units of the Q-network and the BC policy")
    bc_steps: int = param(1000, low=1, help="gradient steps of behaviour cloning")
    eval_every: int = param(10, low=1, help="iterations between Monte-Carlo checks of the greedy policy")
    eval_episodes: int = param(10, low=1, help="episodes of each evaluation")
    n_seeds: int = param(1, low=1, help="independent datasets (and network initialisations)")
    seed: int = param(0, low=0, help="random seed of the first dataset")

    def __post_init__(self) -> None:
        validate(self)


def run_one(config: Config, seed: int) -> dict[str, Any]:
    """Train the behaviour agent, log a dataset and run the three learners once; return their results."""
    agent = train_behaviour_agent(config.ppo_steps, seed=seed)
    dataset = log_cartpole(agent, config.epsilon, config.n_episodes, seed=seed)
    env = gymnasium.make(ENV_ID)
    eval_seed = 10_000 + seed  # start states the data never began from
    out: dict[str, Any] = {"dataset": dataset, "behaviour": {"return": float(dataset.episode_returns().mean())}}
    for method in ("fqi", "cql"):
        cfg = OfflineQConfig(
            n_iterations=config.n_iterations,
            steps_per_iteration=config.steps_per_iteration,
            batch_size=config.batch_size,
            lr=config.lr,
            gamma=config.gamma,
            hidden=config.hidden,
            cql_alpha=config.cql_alpha if method == "cql" else 0.0,
            seed=seed,
        )

        def check(iteration: int, q_net, method: str = method) -> dict[str, float] | None:
            if iteration % config.eval_every and iteration != config.n_iterations:
                return None
            n = config.eval_episodes if iteration == config.n_iterations else max(1, config.eval_episodes // 2)
            return monte_carlo_value_gap(env, q_net, n, config.gamma, seed=eval_seed)

        result = train_offline_q(
            dataset, env.observation_space, env.action_space, cfg, callback=check, desc=method.upper()
        )
        curves = [row for row in result.curves if "predicted" in row]
        final = curves[-1]
        out[method] = {
            "q_net": result.q_net,
            "curves": curves,
            "return": final["return"],
            "predicted": final["predicted"],
            "true": final["true"],
            "overestimation": final["overestimation"],
        }
    bc = behaviour_cloning(
        dataset.observations,
        dataset.actions,
        env.observation_space,
        env.action_space,
        steps=config.bc_steps,
        batch_size=256,
        lr=3e-3,
        hidden=config.hidden,
        seed=seed,
        desc="BC",
    )
    out["bc"] = {"agent": bc, "return": float(evaluate(bc, ENV_ID, config.eval_episodes, seed=eval_seed).mean())}
    env.close()
    return out


def run(config: Config) -> Result:
    set_torch_threads(1)
    runs = [run_one(config, config.seed + i) for i in progress(range(config.n_seeds), desc="offline-cartpole")]

    def mean(method: str, key: str) -> float:
        return float(np.mean([r[method][key] for r in runs]))

    metrics: dict[str, Any] = {f"{m}_return": mean(m, "return") for m in ("behaviour", "bc", "fqi", "cql")}
    for m in ("fqi", "cql"):
        for key in ("overestimation", "predicted", "true"):
            metrics[f"{m}_{key}"] = mean(m, key)
    metrics["n_transitions"] = float(np.mean([len(r["dataset"]) for r in runs]))
    metrics["max_discounted_value"] = float((1 - config.gamma**500) / (1 - config.gamma))
    curves = []
    for i, row in enumerate(runs[0]["fqi"]["curves"]):
        out = {"iteration": row["iteration"]}
        for m in ("fqi", "cql"):
            for key in ("predicted", "true", "return"):
                out[f"{m}_{key}"] = float(np.mean([r[m]["curves"][i][key] for r in runs]))
        curves.append(out)
    result = Result(metrics=metrics, curves=curves, artifacts={"runs": runs})
    result.figure = draw(result, config)
    return result


def draw(result: Result, config: Config):  # noqa: ARG001 - the experiment contract's signature
    """FQI's and CQL's value estimates per iteration, and every learner's CartPole return."""
    runs = result.artifacts["runs"]
    return plot_offline_comparison(
        runs,
        {"max_value": result.metrics["max_discounted_value"]},
        ylabel="discounted value from the start state",
        returns_ylabel="episode return (max 500)",
        show_predicted=False,
        title=f"CartPole policies learned offline ({len(runs)} dataset{'s' if len(runs) > 1 else ''})",
    )


def cache_state(result: Result) -> dict[str, Any]:
    """What the figure needs of each seed's run: per learner its curves and return (JSON)."""
    keep = ("curves", "return", "predicted")
    runs = [
        {m: {k: v for k, v in r[m].items() if k in keep} for m in ("behaviour", "bc", "fqi", "cql") if m in r}
        for r in result.artifacts["runs"]
    ]
    return {"runs": json.dumps(runs)}


def restore_artifacts(state: dict[str, Any], config: Config) -> dict[str, Any]:  # noqa: ARG001
    return {"runs": json.loads(state["runs"])}
