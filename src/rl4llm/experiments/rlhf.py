"""``rlhf``: the InstructGPT pipeline end to end on the tiny GPT-2, measured against the exact gold reward.

1. **SFT** on demonstrations sampled from the grammar at ``sft_positivity`` (the labellers' answers);
2. **reward model** fitted with the Bradley-Terry loss to pairs of SFT samples labelled by a noisy
   Bradley-Terry "human" over the gold reward (steps 1-2 are shared and cached: :mod:`rl4llm.rlhf.stages`);
3. **PPO** against the reward model with a per-token KL penalty towards the SFT policy
   (:func:`rl4llm.rlhf.ppo.train_ppo_rlhf`; ``kl_target`` switches on the adaptive coefficient).

``model`` picks the starting checkpoint (``tiny``, ``gpt2`` or a folder), ``device`` and ``mixed_precision`` where
PPO runs; under ``accelerate launch --num_processes N`` the PPO rollouts and gradients are split over N processes
(:mod:`rl4llm.distributed`; under the FSDP config the policy and the critic are sharded too) and only the main
process writes files.

Rewards are in SFT standard deviations with the SFT policy at 0; ``kl`` is :math:`\\mathrm{KL}(\\pi\\|\\pi_{SFT})`
in nats per sequence, both measured on ``n_eval`` fresh samples of the final policy.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from rl4llm.config import param, validate
from rl4llm.distributed import (
    DEVICE_HELP,
    DEVICES,
    PRECISION_HELP,
    PRECISIONS,
    check_device_field,
    main_process_first,
    make_runtime,
)
from rl4llm.experiments import Result
from rl4llm.rlhf.plots import plot_rlhf_run
from rl4llm.rlhf.ppo import PPORLHFConfig
from rl4llm.rlhf.ppo_run import run_ppo
from rl4llm.rlhf.stages import (
    policy_cache_state,
    prepare_stages,
    restore_policy_artifacts,
    stage_field,
    stages_config_from,
)
from rl4llm.utils import set_seed, set_torch_threads

NAME = "rlhf"
SUMMARY = "InstructGPT on the tiny GPT-2: SFT -> Bradley-Terry reward model -> KL-penalised PPO, vs the gold reward"


@dataclass
class Config:
    """Defaults are what the book runs. The stage fields are :class:`~rl4llm.rlhf.stages.StagesConfig`'s own."""

    # steps 1-2 (shared with the overoptimization and dpo experiments, cached on disk)
    sft_positivity: float = stage_field("sft_positivity")
    n_pairs: int = stage_field("n_pairs")
    heldout_pairs: int = stage_field("heldout_pairs")
    rm_train_pairs: int | None = stage_field("rm_train_pairs")
    label_temperature: float = stage_field("label_temperature")
    label_noise: float = stage_field("label_noise")
    rm_steps: int = stage_field("rm_steps")
    # step 3: PPO
    iterations: int = param(40, low=1, help="collect/update rounds, one batch of responses each")
    batch_size: int = param(64, low=1, help="responses sampled per iteration")
    n_minibatches: int = param(2, low=1, help="minibatches of responses per epoch (at most batch_size)")
    n_epochs: int = param(2, low=1, help="passes over each iteration's batch")
    lr: float = param(5e-4, low=0.0, low_inclusive=False, help="Adam learning rate of the policy")
    kl_coef: float = param(0.1, low=0.0, help="KL coefficient beta (initial value if kl_target is set)")
    kl_target: float | None = param(
        None,
        low=0.0,
        low_inclusive=False,
        allow_none=True,
        kind="float",
        help="KL target (nats per sequence) of the adaptive controller; None: fixed",
    )
    kl_horizon: float = param(500.0, low=0.0, low_inclusive=False, help="horizon of the adaptive KL controller")
    clip_eps: float = param(
        0.2, low=0.0, low_inclusive=False, allow_inf=True, help="clip range of the ratio; inf: no clipping"
    )
    gae_lambda: float = param(0.95, low=0.0, high=1.0, help="GAE's lambda")
    eval_every: int = param(10, low=1, help="iterations between gold-reward evaluations")
    seed: int = param(0, low=0, help="random seed (stages and PPO)")
    # where and at what scale (appendix "Scaling up")
    model: str = stage_field("model")
    device: str = param("cpu", choices=DEVICES, help=DEVICE_HELP)
    mixed_precision: str = param("no", choices=PRECISIONS, help=PRECISION_HELP)

    def __post_init__(self) -> None:
        validate(self)
        check_device_field(self.device)
        stages_config_from(self)  # the stages' cross-field rules
        self.ppo_config()  # PPO's cross-field rules

    def ppo_config(self) -> PPORLHFConfig:
        return PPORLHFConfig(
            iterations=self.iterations,
            batch_size=self.batch_size,
            n_minibatches=self.n_minibatches,
            n_epochs=self.n_epochs,
            lr=self.lr,
            kl_coef=self.kl_coef,
            kl_target=self.kl_target,
            kl_horizon=self.kl_horizon,
            clip_eps=self.clip_eps,
            gae_lambda=self.gae_lambda,
            seed=self.seed,
        )


def run(config: Config) -> Result:
    set_torch_threads(1)
    set_seed(config.seed)
    t0, c0 = time.perf_counter(), time.process_time()
    runtime = make_runtime(config.device, config.mixed_precision)  # None: one CPU process, as the book runs
    with main_process_first(runtime):  # rank 0 fills the stage cache, the others read it
        stages = prepare_stages(stages_config_from(config))
    c1 = time.process_time()
    ppo = run_ppo(stages, config.ppo_config(), eval_every=config.eval_every, runtime=runtime)
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
    result = Result(
        metrics=metrics,
        curves=ppo.curves(),
        artifacts={"policy": ppo.policy, "stages": stages, "history": ppo.history, "evals": ppo.evals},
    )
    result.figure = draw(result, config)
    return result


def draw(result: Result, config: Config):
    """The run's figure: gold and proxy reward, and KL, against the PPO iteration."""
    title = (
        f"PPO-RLHF, β = {config.kl_coef:g}"
        if config.kl_target is None
        else f"PPO-RLHF, adaptive β (target {config.kl_target:g} nats)"
    )
    return plot_rlhf_run(
        result.curves, demo_gold=result.metrics["demo_gold_reward"], title=title, kl_target=config.kl_target
    )


#: The result cache keeps the trained policy's weights; a cached run rebuilds it beside the shared stages.
cache_state = policy_cache_state
restore_artifacts = restore_policy_artifacts
