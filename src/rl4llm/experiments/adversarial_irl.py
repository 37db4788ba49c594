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

from dataclasses import dataclass

import gymnasium
import numpy as np

from rl4llm.experiments import Result
from rl4llm.irl.adversarial import GAILConfig, train_gail
from rl4llm.imitation.bc import behaviour_cloning
from rl4llm.irl.demos import collect_demonstrations, train_expert
from rl4llm.irl.plots import plot_adversarial
from rl4llm.rl.ppo import PPOConfig, evaluate
from rl4llm.utils import check_choice, check_positive_int, progress, set_torch_threads

NAME = "adversarial-irl"
SUMMARY = "GAIL (PPO generator) vs behaviour cloning on CartPole from a few subsampled expert demonstrations"


@dataclass
class Config:
    """Defaults are what the book runs."""

    env_id: str = "CartPole-v1"
    expert_steps: int = 40_000
    expert_seed: int = 0
    demo_episodes: int = 1
    subsample: int = 20
    gail_steps: int = 60_000
    n_seeds: int = 3
    reward_form: str = "gail"
    absorbing: bool = False
    control: bool = True
    eval_episodes: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.env_id, str) or self.env_id not in gymnasium.registry:
            raise ValueError(f"env_id must be a registered gymnasium id with discrete actions, got {self.env_id!r}")
        check_positive_int("expert_steps", self.expert_steps)
        check_positive_int("expert_seed", self.expert_seed, 0)
        check_positive_int("demo_episodes", self.demo_episodes)
        check_positive_int("subsample", self.subsample)
        check_positive_int("gail_steps", self.gail_steps)
        check_positive_int("n_seeds", self.n_seeds)
        check_choice("reward_form", self.reward_form, ("gail", "logit"))
        for flag in ("absorbing", "control"):
            if not isinstance(getattr(self, flag), bool):
                raise ValueError(f"{flag} must be a bool, got {getattr(self, flag)!r}")
        check_positive_int("eval_episodes", self.eval_episodes)
        check_positive_int("seed", self.seed, 0)


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
        obs, actions, _ = collect_demonstrations(expert, env_id, config.demo_episodes, seed=100 * s,
                                                 subsample=config.subsample)
        n_pairs = len(actions)
        bc = behaviour_cloning(obs, actions, obs_space, act_space, weight_decay=1e-4, seed=s)
        finals["bc"].append(float(evaluate(bc, env_id, config.eval_episodes, seed=10_000).mean()))
        for arm in arms[1:]:
            gail_config = GAILConfig(ppo=PPOConfig(total_steps=config.gail_steps, seed=s),
                                     reward_form=config.reward_form, absorbing=config.absorbing,
                                     disc_steps=0 if arm == "control" else GAILConfig.disc_steps,
                                     eval_episodes=config.eval_episodes)
            res = train_gail(env_id, obs, actions, gail_config, desc=f"{arm} (seed {s})")
            finals[arm].append(float(res.eval_returns.mean()))
            for row in res.curves:
                curves.append({"arm": arm, "seed": s, **row})
    metrics: dict[str, float | int | str] = {"expert_return": expert_return, "n_pairs": n_pairs,
                                             "n_seeds": config.n_seeds, "reward_form": config.reward_form}
    for arm, values in finals.items():
        metrics[f"{arm}_return"] = float(np.mean(values))
        metrics[f"{arm}_return_sd"] = float(np.std(values))
        metrics[f"{arm}_solved"] = float(np.mean(np.asarray(values) >= 0.95 * expert_return))
        for i, v in enumerate(values):
            metrics[f"{arm}_return_seed{config.seed + i}"] = v
    fig = plot_adversarial(curves, finals, expert_return, n_pairs=n_pairs)
    return Result(metrics=metrics, curves=curves, figure=fig,
                  artifacts={"expert": expert, "finals": finals, "obs_space": obs_space, "act_space": act_space})


def bc_sweep(expert, demo_episodes=(1, 2, 4, 8, 16), seeds=(0, 1, 2), subsample: int = 20,
             env_id: str = "CartPole-v1", eval_episodes: int = 10) -> list[dict]:
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
            rows.append({"demo_episodes": int(n), "n_pairs": len(actions), "seed": s,
                         "bc_return": float(evaluate(bc, env_id, eval_episodes, seed=10_000).mean())})
    return rows
