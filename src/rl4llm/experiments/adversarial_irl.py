"""``adversarial-irl``: GAIL with PPO as the generator against behaviour cloning, from a few demonstrations.

1. An **expert** is trained by the package's PPO on CartPole-v1 (40,000 steps with ``expert_seed`` 0, return
   500); nothing is downloaded. The expert's seed is separate from ``seed``, which varies the demonstrations and
   the learners only.
2. It plays ``demo_episodes`` episodes; every ``subsample``-th state-action pair is kept (Ho & Ermon 2016
   subsampled the same way). The default, one episode every 20 steps, is 25 pairs.
3. For each of ``n_seeds`` seeds (fresh demonstrations each time): **behaviour cloning** on the pairs; **GAIL**
   (:func:`rl4llm.irl.adversarial.train_gail`) on the same pairs; and, with ``control``, the same GAIL run with a
   discriminator that never trains (``disc_steps=0``), which isolates what the *form* of the reward contributes
   (a positive reward is a survival bonus on CartPole) from what the discriminator *learns*.

Every policy is evaluated deterministically for ``eval_episodes`` episodes under the true reward, which no
learner ever sees. Several seeds are run because both methods vary a lot from one handful of demonstrations to
the next; the metrics are the means (and per-seed values).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import gymnasium
import numpy as np

from rl4llm.config import ConfigError, param, validate
from rl4llm.experiments import Result
from rl4llm.imitation.bc import behaviour_cloning
from rl4llm.irl.adversarial import GAILConfig, train_gail
from rl4llm.irl.demos import collect_demonstrations, train_expert
from rl4llm.irl.plots import plot_adversarial
from rl4llm.rl.ppo import PPOConfig, evaluate
from rl4llm.utils import progress, set_torch_threads

NAME = "adversarial-irl"
SUMMARY = "GAIL (PPO generator) vs behaviour cloning on CartPole from a few subsampled expert demonstrations"


@dataclass
class Config:
    """Defaults are what the book runs."""

    env_id: str = param("CartPole-v1", help="a registered gymnasium id with discrete actions")
    expert_steps: int = param(40_000, low=1, help="PPO steps that train the expert")
    expert_seed: int = param(0, low=0, help="random seed of the expert's training")
    demo_episodes: int = param(1, low=1, help="expert episodes recorded as demonstrations")
    subsample: int = param(20, low=1, help="keep every subsample-th state-action pair of the demonstrations")
    gail_steps: int = param(60_000, low=1, help="PPO steps of the GAIL generator")
    n_seeds: int = param(3, low=1, help="seeds of each arm (demonstrations, BC, GAIL)")
    reward_form: str = param(
        "gail",
        choices=("gail", "logit"),
        help="reward from the discriminator: -log(1 - D) (gail) or its logit (AIRL-style)",
    )
    absorbing: bool = param(False, help="treat the end of an episode as an absorbing state of the discriminator")
    control: bool = param(True, help="also run the control arm: the same PPO without discriminator training")
    eval_episodes: int = param(10, low=1, help="episodes of each evaluation")
    seed: int = param(0, low=0, help="random seed of the first arm seed")

    def __post_init__(self) -> None:
        validate(self)
        if self.env_id not in gymnasium.registry:
            raise ConfigError(
                "env_id", f"env_id must be a registered gymnasium id with discrete actions, got {self.env_id!r}"
            )


def run(config: Config) -> Result:
    set_torch_threads(1)
    env_id = config.env_id
    probe = gymnasium.make(env_id)
    obs_space, act_space = probe.observation_space, probe.action_space
    probe.close()
    expert = train_expert(env_id, config.expert_steps, seed=config.expert_seed)
    expert_return = float(evaluate(expert, env_id, config.eval_episodes, seed=10_000).mean())
    arms = ["bc", "gail"] + (["control"] if config.control else [])
    finals: dict[str, list[float]] = {arm: [] for arm in arms}
    curves: list[dict] = []
    n_pairs = 0
    for i in progress(range(config.n_seeds), desc="seeds"):
        s = config.seed + i
        obs, actions, _ = collect_demonstrations(
            expert, env_id, config.demo_episodes, seed=100 * s, subsample=config.subsample
        )
        n_pairs = len(actions)
        bc = behaviour_cloning(obs, actions, obs_space, act_space, weight_decay=1e-4, seed=s)
        finals["bc"].append(float(evaluate(bc, env_id, config.eval_episodes, seed=10_000).mean()))
        for arm in arms[1:]:
            gail_config = GAILConfig(
                ppo=PPOConfig(total_steps=config.gail_steps, seed=s),
                reward_form=config.reward_form,
                absorbing=config.absorbing,
                disc_steps=0 if arm == "control" else GAILConfig.disc_steps,
                eval_episodes=config.eval_episodes,
            )
            res = train_gail(env_id, obs, actions, gail_config, desc=f"{arm} (seed {s})")
            finals[arm].append(float(res.eval_returns.mean()))
            for row in res.curves:
                curves.append({"arm": arm, "seed": s, **row})
    metrics: dict[str, float | int | str] = {
        "expert_return": expert_return,
        "n_pairs": n_pairs,
        "n_seeds": config.n_seeds,
        "reward_form": config.reward_form,
    }
    for arm, values in finals.items():
        metrics[f"{arm}_return"] = float(np.mean(values))
        metrics[f"{arm}_return_sd"] = float(np.std(values))
        metrics[f"{arm}_solved"] = float(np.mean(np.asarray(values) >= 0.95 * expert_return))
        for i, v in enumerate(values):
            metrics[f"{arm}_return_seed{config.seed + i}"] = v
    result = Result(
        metrics=metrics,
        curves=curves,
        artifacts={"expert": expert, "finals": finals, "obs_space": obs_space, "act_space": act_space},
    )
    result.figure = draw(result, config)
    return result


def draw(result: Result, config: Config):  # noqa: ARG001 - the experiment contract's signature
    """GAIL's (and the control's) return during training, and every arm's final return against the expert's."""
    return plot_adversarial(
        result.curves, result.artifacts["finals"], result.metrics["expert_return"], n_pairs=result.metrics["n_pairs"]
    )


def cache_state(result: Result) -> dict[str, Any]:
    """Each arm's final returns, one per seed (the figure's data; the expert is not kept)."""
    return {"finals": json.dumps(result.artifacts["finals"])}


def restore_artifacts(state: dict[str, Any], config: Config) -> dict[str, Any]:  # noqa: ARG001
    return {"finals": json.loads(state["finals"])}


def bc_sweep(
    expert,
    demo_episodes=(1, 2, 4, 8, 16),
    seeds=(0, 1, 2),
    subsample: int = 20,
    env_id: str = "CartPole-v1",
    eval_episodes: int = 10,
) -> list[dict]:
    """Behaviour cloning's return against the amount of demonstration (``demo_episodes`` episodes, every
    ``subsample``-th pair), one row per (episodes, seed). Cheap: no environment interaction but the evaluation."""
    probe = gymnasium.make(env_id)
    obs_space, act_space = probe.observation_space, probe.action_space
    probe.close()
    rows = []
    for n in progress(demo_episodes, desc="BC sweep"):
        for s in seeds:
            obs, actions, _ = collect_demonstrations(expert, env_id, int(n), seed=100 * s, subsample=subsample)
            bc = behaviour_cloning(obs, actions, obs_space, act_space, weight_decay=1e-4, seed=s)
            rows.append(
                {
                    "demo_episodes": int(n),
                    "n_pairs": len(actions),
                    "seed": s,
                    "bc_return": float(evaluate(bc, env_id, eval_episodes, seed=10_000).mean()),
                }
            )
    return rows
