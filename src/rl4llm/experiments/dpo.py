"""``dpo``: direct preference optimisation on the same preference pairs as ``rlhf``, measured by the gold reward.

DPO (Rafailov et al. 2023) skips the reward model and the sampling: the KL-regularised RLHF objective has the
closed-form optimum :math:`\\pi^*(y) \\propto \\pi_{SFT}(y)\\,e^{r(y)/\\beta}`, so a policy defines an implicit reward
:math:`\\beta\\log\\pi(y)/\\pi_{SFT}(y)`, and fitting it to the preference pairs with the Bradley-Terry likelihood
(:func:`rl4llm.rlhf.dpo_loss`) trains the policy directly. The pairs, the SFT policy and the held-out split are
those of the ``rlhf`` experiment (:mod:`rl4llm.rlhf.stages`, same cache); the reward model is used only to
*report* the proxy reward, never to train.

``online_rounds = k > 0`` is the *online* (iterative) control: the same loss, beta, steps, batch size and number
of labels, but the pairs are sampled from the current policy instead of the SFT policy. Training runs in ``k``
rounds; each round samples ``n_train / k`` fresh pairs from the policy as it is, has them labelled by the same
simulated labeller (the noisy Bradley-Terry "human" over the gold reward that labelled the stages' pairs) and
takes ``steps / k`` DPO steps on them, with the SFT policy as the reference throughout (Xiong et al. 2024; Guo et
al. 2024). Round 1's pairs come from the SFT policy, as the offline run's do; only where later pairs come from
changes.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import numpy as np
import torch

from rl4llm.config import ConfigError, param, validate
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
from rl4llm.rlhf.dpo import DPOLog, train_dpo
from rl4llm.rlhf.evaluation import evaluate_against_gold
from rl4llm.rlhf.plots import plot_dpo
from rl4llm.rlhf.preferences import label_preferences
from rl4llm.rlhf.rollout import SequenceBatch, sequence_logprob
from rl4llm.rlhf.stages import (
    Stages,
    gold_of,
    policy_cache_state,
    prepare_stages,
    restore_policy_artifacts,
    sample_many,
    stage_field,
    stages_config_from,
)
from rl4llm.utils import set_seed, set_torch_threads

#: Offset of the online rounds' sampling and labelling seeds from the config seed (never the stages' draws).
ONLINE_SEED_OFFSET = 7_919

NAME = "dpo"
SUMMARY = "DPO on the rlhf experiment's preference pairs: gold reward and KL without a reward model or PPO"


@dataclass
class Config:
    """Defaults are what the book runs. The stage fields are :class:`~rl4llm.rlhf.stages.StagesConfig`'s own."""

    beta: float = param(0.5, low=0.0, low_inclusive=False, help="DPO's beta: strength of the KL regularisation")
    steps: int = param(300, low=1, help="DPO gradient steps")
    batch_size: int = param(32, low=1, help="preference pairs per step")
    lr: float = param(3e-4, low=0.0, low_inclusive=False, help="learning rate")
    eval_every: int = param(50, low=1, help="steps between gold-reward evaluations")
    online_rounds: int = param(
        0,
        low=0,
        help="0: offline DPO on the stages' pairs; k: online DPO, k rounds of fresh pairs from the current policy",
    )
    # the preference data (as in the rlhf experiment; same values share its cache)
    sft_positivity: float = stage_field("sft_positivity")
    n_pairs: int = stage_field("n_pairs")
    heldout_pairs: int = stage_field("heldout_pairs")
    label_temperature: float = stage_field("label_temperature")
    label_noise: float = stage_field("label_noise")
    seed: int = param(0, low=0, help="random seed (stages and DPO)")
    model: str = stage_field("model")
    device: str = param("cpu", choices=DEVICES, help=DEVICE_HELP)
    mixed_precision: str = param("no", choices=PRECISIONS, help=PRECISION_HELP)

    def __post_init__(self) -> None:
        validate(self)
        check_device_field(self.device)
        stages = stages_config_from(self)  # the stages' cross-field rules
        if self.online_rounds > 0 and (self.steps % self.online_rounds or self.online_rounds > stages.n_train):
            raise ConfigError(
                "online_rounds",
                f"online_rounds must divide steps ({self.steps}) and be at most the {stages.n_train} training "
                f"pairs, got {self.online_rounds}",
            )


@torch.no_grad()
def implicit_reward_accuracy(policy, ref, chosen, rejected, beta: float) -> float:
    """Fraction of pairs where DPO's implicit reward :math:`\\beta\\log\\pi/\\pi_{ref}` ranks chosen above rejected."""
    margin = beta * (
        (sequence_logprob(policy, chosen) - sequence_logprob(ref, chosen))
        - (sequence_logprob(policy, rejected) - sequence_logprob(ref, rejected))
    )
    return float((margin > 0).float().mean())


@torch.no_grad()
def label_fresh_pairs(
    policy, stages: Stages, n: int, generator: torch.Generator, rng: np.random.Generator
) -> tuple[SequenceBatch, SequenceBatch]:
    """``n`` pairs of responses sampled from ``policy``, labelled by the stages' simulated labeller (the noisy
    Bradley-Terry "human" over the gold reward, at the stages' temperature and noise): ``(chosen, rejected)``."""
    cfg = stages.config
    a = sample_many(policy, n, cfg.max_new_tokens, stages.ids, generator)
    b = sample_many(policy, n, cfg.max_new_tokens, stages.ids, generator)
    prefer_a = label_preferences(
        gold_of(stages.tokenizer, a), gold_of(stages.tokenizer, b), rng, cfg.label_temperature, cfg.label_noise
    )
    take_a = torch.as_tensor(prefer_a)
    pad = stages.ids[2]
    return SequenceBatch.select(take_a, a, b, pad), SequenceBatch.select(~take_a, a, b, pad)


def run(config: Config) -> Result:
    set_torch_threads(1)
    set_seed(config.seed)
    t0, c0 = time.perf_counter(), time.process_time()
    runtime = make_runtime(config.device, config.mixed_precision)  # None: one CPU process, as the book runs
    device = torch.device("cpu") if runtime is None else runtime.device
    with main_process_first(runtime):  # rank 0 fills the stage cache, the others read it
        stages = prepare_stages(stages_config_from(config))
    policy = stages.new_policy().to(device)
    policy = policy if runtime is None else runtime.prepare(policy)  # sharded in place under FSDP
    ref = stages.sft_model if device.type == "cpu" else copy.deepcopy(stages.sft_model).to(device)
    evals = [{"step": 0, **evaluate_against_gold(stages.sft_model, stages)}]

    def callback(step: int, pol) -> None:
        if step % config.eval_every == 0 or step == config.steps:  # evaluations run on the CPU
            if runtime is not None and runtime.sharded:  # every rank gathers the weights and samples the same
                with runtime.gathered(pol):
                    evals.append({"step": step, **evaluate_against_gold(pol, stages)})
                return
            pol = pol if device.type == "cpu" else copy.deepcopy(pol).cpu()
            evals.append({"step": step, **evaluate_against_gold(pol, stages)})

    chosen, rejected = stages.train_pairs()
    train = dict(beta=config.beta, batch_size=config.batch_size, lr=config.lr, log_every=min(10, config.eval_every))
    if config.online_rounds == 0:
        log = train_dpo(
            policy, ref, chosen.to(device), rejected.to(device), steps=config.steps, seed=config.seed,
            callback=callback, runtime=runtime, **train,
        )  # fmt: skip
    else:  # online: each round's pairs are sampled from the policy as it is, then labelled
        if runtime is not None and runtime.distributed:
            raise ConfigError("online_rounds", "online DPO runs in one process: set online_rounds=0 to launch several")
        log = DPOLog()
        per_round, pairs = config.steps // config.online_rounds, stages.n_train // config.online_rounds
        generator = torch.Generator().manual_seed(config.seed + ONLINE_SEED_OFFSET)
        rng = np.random.default_rng(config.seed + ONLINE_SEED_OFFSET)
        for k in range(config.online_rounds):
            done = k * per_round
            policy.eval()
            chosen, rejected = label_fresh_pairs(policy.cpu(), stages, pairs, generator, rng)
            policy.to(device)
            part = train_dpo(
                policy, ref, chosen.to(device), rejected.to(device), steps=per_round, seed=config.seed + k,
                callback=lambda step, pol, done=done: callback(done + step, pol), runtime=runtime, **train,
            )  # fmt: skip
            log.step += [done + s for s in part.step]
            log.loss += part.loss
            log.reward_accuracy += part.reward_accuracy
            log.margin += part.margin
    if runtime is not None and runtime.sharded:  # an ordinary model again, from the gathered weights
        plain = stages.new_policy()
        plain.load_state_dict(runtime.full_state_dict(policy))
        policy = plain
    policy = policy.cpu()
    held_c, held_r = stages.heldout_pairs()
    final = evals[-1]
    metrics = {
        "dpo_gold_reward": final["gold"],
        "dpo_proxy_reward": final["proxy"],
        "dpo_gold_raw": final["gold_raw"],
        "kl": final["kl"],
        "dpo_parse_rate": final["parse_rate"],
        "dpo_repeat_rate": final["repeat_rate"],
        "sft_gold_reward": evals[0]["gold"],
        "heldout_implicit_accuracy": implicit_reward_accuracy(policy, stages.sft_model, held_c, held_r, config.beta),
        "rm_accuracy": stages.stats["rm_accuracy"],
        "n_train_pairs": stages.n_train,
        "cpu_s": round(time.process_time() - c0, 2),
        "wall_s": round(time.perf_counter() - t0, 2),
    }
    by_step = {e["step"]: e for e in evals}
    curves = [{"step": 0, **{f"eval_{k}": v for k, v in evals[0].items() if k != "step"}}]
    for i, step in enumerate(log.step):
        row = {
            "step": step,
            "loss": log.loss[i],
            "implicit_accuracy": log.reward_accuracy[i],
            "implicit_margin": log.margin[i],
        }
        if step in by_step:
            row.update({f"eval_{k}": v for k, v in by_step[step].items() if k != "step"})
        curves.append(row)
    result = Result(
        metrics=metrics, curves=curves, artifacts={"policy": policy, "stages": stages, "log": log, "evals": evals}
    )
    result.figure = draw(result, config)
    return result


def draw(result: Result, config: Config):  # noqa: ARG001 - the experiment contract's signature
    """The run's figure: gold, proxy and KL against the DPO step, and gold against KL."""
    return plot_dpo(result.curves)


#: The result cache keeps the trained policy's weights; a cached run rebuilds it beside the shared stages.
cache_state = policy_cache_state
restore_artifacts = restore_policy_artifacts
