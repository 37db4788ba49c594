"""``overoptimization``: Gao, Schulman & Hilton (2023) in miniature, gold vs proxy reward against √KL.

A reward model fitted to few preference pairs (``rm_train_pairs``) is a *gameable* proxy: the SFT samples it was
trained on almost never repeat a word or break the grammar, so it has never learned that the gold reward
punishes those. Optimising it hard shows the over-optimisation curve:

* **RL**: PPO against the proxy with no (or a low) KL penalty, one run per value of ``kl_coefs``, evaluated every
  ``eval_every`` iterations on fresh samples;
* **best-of-n**: for each ``n``, the expected proxy and gold reward of the proxy's favourite among ``n`` SFT
  samples, from one pool of ``bon_pool`` samples (:mod:`rl4llm.rlhf.best_of_n`), at
  :math:`\\mathrm{KL} = \\log n - (n-1)/n`.

Both are plotted against :math:`d = \\sqrt{\\mathrm{KL}}` with Gao et al.'s fitted forms: :math:`d(\\alpha - \\beta\\log
d)` for RL and :math:`d(\\alpha - \\beta d)` for best-of-n (:mod:`rl4llm.rlhf.overoptimization`). Rewards are in SFT
standard deviations, SFT policy at 0. The penalty rates (``parse_rate``, ``repeat_rate``) name the hack.
"""

from __future__ import annotations

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
from rl4llm.rlhf.best_of_n import best_of_n_curve
from rl4llm.rlhf.overoptimization import fit_gao
from rl4llm.rlhf.plots import plot_overoptimization
from rl4llm.rlhf.ppo import PPORLHFConfig
from rl4llm.rlhf.ppo_run import run_ppo
from rl4llm.rlhf.stages import (
    gold_of,
    policy_cache_state,
    prepare_stages,
    restore_policy_artifacts,
    sample_many,
    stage_field,
    stages_config_from,
)
from rl4llm.utils import set_seed, set_torch_threads

NAME = "overoptimization"
SUMMARY = "reward over-optimisation (Gao et al. 2023): gold vs proxy against sqrt(KL) for PPO and best-of-n"


@dataclass
class Config:
    """Defaults are what the book runs. The stage fields are :class:`~rl4llm.rlhf.stages.StagesConfig`'s own."""

    # fewer pairs than the rlhf experiment's 2500: a more gameable proxy (the other stage fields: the stages')
    rm_train_pairs: int | None = stage_field("rm_train_pairs", default=1000)
    kl_coefs: tuple[float, ...] = param(
        (0.0,), low=0.0, help="KL coefficients, one PPO run each (the first is the main curve)"
    )
    iterations: int = param(50, low=1, help="PPO iterations of each run")
    lr: float = param(1e-3, low=0.0, low_inclusive=False, help="PPO policy learning rate")
    eval_every: int = param(5, low=1, help="iterations between gold-reward evaluations")
    bon_pool: int = param(2048, low=2, help="SFT samples in the best-of-n pool")
    bon_max_n: int = param(1024, low=1, help="largest n of best-of-n (<= bon_pool)")
    seed: int = param(0, low=0, help="random seed (stages, PPO, best-of-n pool)")
    # where and at what scale (appendix "Scaling up")
    model: str = stage_field("model")
    device: str = param("cpu", choices=DEVICES, help=DEVICE_HELP)
    mixed_precision: str = param("no", choices=PRECISIONS, help=PRECISION_HELP)

    def __post_init__(self) -> None:
        validate(self)
        check_device_field(self.device)
        stages_config_from(self)  # the stages' cross-field rules
        if len(self.kl_coefs) == 0:
            raise ConfigError("kl_coefs", "kl_coefs must name at least one KL coefficient")
        if self.bon_max_n > self.bon_pool:
            raise ConfigError("bon_max_n", f"bon_max_n must be <= bon_pool ({self.bon_pool}), got {self.bon_max_n}")


def run(config: Config) -> Result:
    set_torch_threads(1)
    set_seed(config.seed)
    t0, c0 = time.perf_counter(), time.process_time()
    runtime = make_runtime(config.device, config.mixed_precision)  # None: one CPU process, as the book runs
    with main_process_first(runtime):  # rank 0 fills the stage cache, the others read it
        stages = prepare_stages(stages_config_from(config))

    # RL: PPO against the proxy, one run per KL coefficient
    rl: dict[float, list[dict[str, float]]] = {}
    policy = None
    for coef in config.kl_coefs:
        ppo_cfg = PPORLHFConfig(iterations=config.iterations, lr=config.lr, kl_coef=float(coef), seed=config.seed)
        out = run_ppo(stages, ppo_cfg, eval_every=config.eval_every, runtime=runtime)
        rl[float(coef)] = out.evals
        policy = out.policy if policy is None else policy  # the first coefficient's policy: the hack to inspect

    # best-of-n: one pool of SFT samples scored by the proxy and the gold reward
    pool = sample_many(
        stages.sft_model,
        config.bon_pool,
        stages.config.max_new_tokens,
        stages.ids,
        torch.Generator().manual_seed(config.seed + 7),
    )
    proxy_pool = stages.proxy(pool).numpy()
    gold_pool = stages.gold_z(gold_of(stages.tokenizer, pool))
    ns = sorted({int(n) for n in np.unique(np.round(np.geomspace(1, config.bon_max_n, 11)))})
    bon = best_of_n_curve(proxy_pool, gold_pool, ns)

    # Gao et al.'s functional forms, gold against d = sqrt(KL)
    main = rl[float(config.kl_coefs[0])]
    d_rl = np.sqrt(np.maximum([r["kl"] for r in main], 0.0))
    gold_rl = np.array([r["gold"] for r in main])
    rl_alpha, rl_beta = fit_gao(d_rl, gold_rl, "rl")
    d_bon = np.sqrt([r["kl"] for r in bon])
    bon_alpha, bon_beta = fit_gao(d_bon, [r["gold"] for r in bon], "bon")

    peak = int(np.argmax(gold_rl))
    bon_peak = int(np.argmax([r["gold"] for r in bon]))
    metrics = {
        "rm_train_pairs": config.rm_train_pairs,
        "rm_accuracy": stages.stats["rm_accuracy"],
        "rm_gold_accuracy": stages.stats["rm_gold_accuracy"],
        "gold_peak": float(gold_rl[peak]),
        "kl_at_gold_peak": float(main[peak]["kl"]),
        "proxy_at_gold_peak": float(main[peak]["proxy"]),
        "gold_final": float(gold_rl[-1]),
        "proxy_final": float(main[-1]["proxy"]),
        "kl_final": float(main[-1]["kl"]),
        "final_parse_rate": float(main[-1]["parse_rate"]),
        "final_repeat_rate": float(main[-1]["repeat_rate"]),
        "final_unfinished_rate": float(main[-1]["unfinished_rate"]),
        "rl_alpha": rl_alpha,
        "rl_beta": rl_beta,
        "rl_d_max": float(d_rl.max()),
        "bon_alpha": bon_alpha,
        "bon_beta": bon_beta,
        "bon_gold_peak": float(bon[bon_peak]["gold"]),
        "bon_n_at_gold_peak": int(bon[bon_peak]["n"]),
        "bon_gold_final": float(bon[-1]["gold"]),
        "bon_proxy_final": float(bon[-1]["proxy"]),
        "cpu_s": round(time.process_time() - c0, 2),
        "wall_s": round(time.perf_counter() - t0, 2),
    }
    curves = [
        {
            "method": f"ppo kl_coef={coef:g}",
            "iteration": r["iteration"],
            "kl": r["kl"],
            "d": float(np.sqrt(max(r["kl"], 0.0))),
            "gold": r["gold"],
            "proxy": r["proxy"],
            "parse_rate": r["parse_rate"],
            "repeat_rate": r["repeat_rate"],
        }
        for coef, rows in rl.items()
        for r in rows
    ]
    curves += [
        {
            "method": "best-of-n",
            "n": r["n"],
            "kl": r["kl"],
            "d": float(np.sqrt(r["kl"])),
            "gold": r["gold"],
            "proxy": r["proxy"],
        }
        for r in bon
    ]
    result = Result(metrics=metrics, curves=curves, artifacts={"policy": policy, "stages": stages})
    result.figure = draw(result, config)
    return result


def draw(result: Result, config: Config):  # noqa: ARG001 - the experiment contract's signature
    """Gold and proxy against sqrt(KL) for PPO and best-of-n, with Gao et al.'s fitted forms."""
    return plot_overoptimization(result.curves, result.metrics)


#: The result cache keeps the first coefficient's policy (the hack)'s weights; a cached run rebuilds it beside the shared stages.
cache_state = policy_cache_state
restore_artifacts = restore_policy_artifacts
