"""``rlhf``: the InstructGPT pipeline end to end on the tiny GPT-2, measured against the exact gold reward.

1. **SFT** on demonstrations sampled from the grammar at ``sft_positivity`` (the labellers' answers);
2. **reward model** fitted with the Bradley-Terry loss to pairs of SFT samples labelled by a noisy
   Bradley-Terry "human" over the gold reward (steps 1-2 are shared and cached: :mod:`rl4llm.rlhf.pipeline`);
3. **PPO** against the reward model with a per-token KL penalty towards the SFT policy
   (:func:`rl4llm.rlhf.ppo.train_ppo_rlhf`; ``kl_target`` switches on the adaptive coefficient).

Rewards are in SFT standard deviations with the SFT policy at 0; ``kl`` is :math:`\\mathrm{KL}(\\pi\\|\\pi_{SFT})`
in nats per sequence, both measured on ``n_eval`` fresh samples of the final policy.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from rl4llm.experiments import Result
from rl4llm.rlhf.pipeline import StagesConfig, prepare_stages, run_ppo
from rl4llm.rlhf.plots import plot_rlhf_run
from rl4llm.rlhf.ppo import PPORLHFConfig
from rl4llm.utils import check_positive_int, set_seed, set_torch_threads

NAME = "rlhf"
SUMMARY = "InstructGPT on the tiny GPT-2: SFT -> Bradley-Terry reward model -> KL-penalised PPO, vs the gold reward"


@dataclass
class Config:
    """Defaults are what the book runs."""

    # steps 1-2 (shared with the overoptimization and dpo experiments, cached on disk)
    sft_positivity: float = 0.7
    n_pairs: int = 3000
    heldout_pairs: int = 500
    rm_train_pairs: int | None = None  # None: every training pair
    label_temperature: float = 0.1
    label_noise: float = 0.05
    rm_steps: int = 400
    # step 3: PPO
    iterations: int = 40
    batch_size: int = 64
    minibatch_size: int = 32
    epochs: int = 2
    lr: float = 5e-4
    kl_coef: float = 0.1
    kl_target: float | None = None  # nats per sequence; set it for the adaptive KL coefficient
    kl_horizon: float = 500.0
    clip_eps: float = 0.2
    lam: float = 0.95
    eval_every: int = 5
    seed: int = 0

    def __post_init__(self) -> None:
        self.stages_config()  # validates the stage fields
        self.ppo_config()  # validates the PPO fields
        check_positive_int("eval_every", self.eval_every)

    def stages_config(self) -> StagesConfig:
        return StagesConfig(sft_positivity=self.sft_positivity, n_pairs=self.n_pairs,
                            heldout_pairs=self.heldout_pairs, rm_train_pairs=self.rm_train_pairs,
                            label_temperature=self.label_temperature, label_noise=self.label_noise,
                            rm_steps=self.rm_steps, seed=self.seed)

    def ppo_config(self) -> PPORLHFConfig:
        return PPORLHFConfig(iterations=self.iterations, batch_size=self.batch_size,
                             minibatch_size=self.minibatch_size, epochs=self.epochs, lr=self.lr,
                             kl_coef=self.kl_coef, kl_target=self.kl_target, kl_horizon=self.kl_horizon,
                             clip_eps=self.clip_eps, lam=self.lam, seed=self.seed)


def run(config: Config) -> Result:
    set_torch_threads(1)
    set_seed(config.seed)
    t0, c0 = time.perf_counter(), time.process_time()
    stages = prepare_stages(config.stages_config())
    c1 = time.process_time()
    ppo = run_ppo(stages, config.ppo_config(), eval_every=config.eval_every)
    final = ppo.evals[-1]
    sft = ppo.evals[0]
    st = stages.stats
    metrics = {
        "rm_accuracy": st["rm_accuracy"],
        "rm_gold_accuracy": st["rm_gold_accuracy"],
        "label_gold_accuracy": st["label_gold_accuracy"],
        "rm_gold_correlation": st["rm_gold_correlation"],
        "base_gold_reward": st["base_gold"],
        "demo_gold_reward": st["demo_gold"],
        "sft_gold_reward": sft["gold"],
        "sft_gold_raw": st["sft_gold_raw"],
        "sft_gold_std_raw": st["sft_gold_std_raw"],
        "sft_parse_rate": sft["parse_rate"],
        "rlhf_gold_reward": final["gold"],
        "rlhf_proxy_reward": final["proxy"],
        "rlhf_gold_raw": final["gold_raw"],
        "rlhf_parse_rate": final["parse_rate"],
        "rlhf_repeat_rate": final["repeat_rate"],
        "kl": final["kl"],
        "final_kl_coef": ppo.history.rows[-1]["kl_coef"],
        "ppo_cpu_s": round(time.process_time() - c1, 2),
        "cpu_s": round(time.process_time() - c0, 2),
        "wall_s": round(time.perf_counter() - t0, 2),
    }
    result = Result(metrics=metrics, curves=ppo.curves(),
                    artifacts={"policy": ppo.policy, "stages": stages, "history": ppo.history, "evals": ppo.evals})
    result.figure = draw(result, config)
    return result


def draw(result: Result, config: Config):
    """The run's figure: gold and proxy reward, and KL, against the PPO iteration."""
    title = (f"PPO-RLHF, β = {config.kl_coef:g}" if config.kl_target is None
             else f"PPO-RLHF, adaptive β (target {config.kl_target:g} nats)")
    return plot_rlhf_run(result.curves, demo_gold=result.metrics["demo_gold_reward"], title=title,
                        kl_target=config.kl_target)
