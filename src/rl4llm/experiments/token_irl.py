"""``token-irl``: RLHF as online inverse RL on the token MDP, against behaviour cloning (book section 4.3).

The demonstrator is the grammar at high ``positivity`` (positive reviews); ``n_demos`` of its texts are all the
learners get. Three policies are compared:

* **BC (SFT)**: a tiny GPT-2 fine-tuned on the demonstrations by maximum likelihood
  (:func:`rl4llm.irl.token_bridge.sft`), from a fresh initialisation (``init="scratch"``) or from the shipped
  pretrained checkpoint (``init="pretrained"``);
* **IRL**: step 1, a reward learned from the same demonstrations (an n-gram discriminator between the
  demonstrations and the SFT policy's samples, :func:`~rl4llm.irl.token_bridge.fit_text_reward`); step 2, online
  policy optimisation of that reward with a KL penalty to the SFT policy, starting from it
  (:func:`~rl4llm.irl.token_bridge.optimise_reward`): the RLHF pipeline, with demonstrations in place of
  comparisons;
* the **demonstrator** itself, for reference.

With ``refit_every > 0`` the reward is re-fitted against the current policy's samples every ``refit_every`` RL
iterations (GAIL's alternation; the default 0 keeps it fixed, as RLHF does with its reward model).

None of them ever sees the grammar or the gold reward: both are used only to evaluate ``n_eval`` samples of each
policy (parse rate, validity against position, gold reward).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from rl4llm.config import param, validate
from rl4llm.experiments import Result, from_state, to_state
from rl4llm.imitation.exposure import validity_by_position
from rl4llm.irl.plots import plot_token_bridge
from rl4llm.irl.token_bridge import (
    RLConfig,
    error_hazard,
    fit_text_reward,
    optimise_reward,
    sample_responses,
    sft,
)
from rl4llm.lm import build_tokenizer, gold_rewards, load_tiny_gpt2, make_tiny_gpt2, parse_rate, sample_texts
from rl4llm.lm.language import words_of
from rl4llm.utils import set_seed, set_torch_threads

NAME = "token-irl"
SUMMARY = "reward learning from demonstrations + online RL on the tiny GPT-2 vs SFT: compounding errors and gold reward"


@dataclass
class Config:
    """Defaults are what the book runs."""

    n_demos: int = param(500, low=1, help="demonstrations sampled from the grammar")
    positivity: float = param(0.9, low=0.0, high=1.0, help="positivity of the demonstrator's grammar")
    init: str = param(
        "scratch",
        choices=("scratch", "pretrained"),
        help="the policy before SFT: a fresh tiny GPT-2 or the shipped checkpoint",
    )
    sft_epochs: int = param(30, low=1, help="epochs of SFT on the demonstrations")
    sft_lr: float = param(3e-3, low=0.0, low_inclusive=False, help="SFT learning rate")
    n_policy_samples: int = param(1000, low=1, help="SFT samples that the reward model contrasts with the demos")
    reward_l2: float = param(1e-3, low=0.0, help="L2 penalty of the learned reward")
    refit_every: int = param(0, low=0, help="RL iterations between refits of the reward (0: never refit)")
    rl_iterations: int = param(150, low=1, help="iterations of KL-regularised RL on the learned reward")
    rl_batch_size: int = param(64, low=2, help="responses per RL iteration")
    rl_lr: float = param(3e-3, low=0.0, low_inclusive=False, help="RL learning rate")
    kl_coef: float = param(1.0, low=0.0, help="KL penalty towards the SFT policy")
    horizon: int = param(24, low=1, help="most tokens of a response")
    n_eval: int = param(500, low=1, help="samples of each evaluation")
    seed: int = param(0, low=0, help="random seed")

    def __post_init__(self) -> None:
        validate(self)


DEMO, BC, IRL = "demonstrator (grammar)", "BC (SFT)", "IRL (reward + RL)"


def _two_clauses(text: str) -> bool:
    """Does the review have a second clause (joined by ", but/and" or a second sentence)?"""
    words = words_of(text)
    if "," in words and any(w in ("but", "and") for w in words):
        return True
    return sum(w in (".", "!") for w in words) >= 2


def _decode(tokenizer, responses: list[list[int]]) -> list[str]:
    return [" ".join(tokenizer.convert_ids_to_tokens(r)) for r in responses]


def run(config: Config) -> Result:
    set_torch_threads(1)
    set_seed(config.seed)
    if config.init == "pretrained":
        policy, tokenizer = load_tiny_gpt2()
    else:
        tokenizer = build_tokenizer()
        policy = make_tiny_gpt2(tokenizer, seed=config.seed)
    demos = sample_texts(config.n_demos, np.random.default_rng(config.seed), positivity=config.positivity)

    # behaviour cloning = supervised fine-tuning on the demonstrations
    sft(policy, tokenizer, demos, epochs=config.sft_epochs, lr=config.sft_lr, seed=config.seed)
    reference = copy.deepcopy(policy)
    gen = torch.Generator().manual_seed(config.seed + 1)

    # step 1: a reward from the demonstrations (discriminator: demonstrations vs the SFT policy's own samples)
    _, policy_samples = sample_responses(policy, tokenizer, config.n_policy_samples, config.horizon, gen)
    demo_responses = [tokenizer(d)["input_ids"][1:] for d in demos]
    reward_model = fit_text_reward(
        demo_responses,
        policy_samples,
        len(tokenizer),
        tokenizer.bos_token_id,
        tokenizer.eos_token_id,
        l2=config.reward_l2,
    )

    def learned_reward(responses: list[list[int]]) -> torch.Tensor:
        with torch.no_grad():
            return reward_model(responses)

    def evaluate(model, seed: int) -> tuple[list[str], list[list[int]]]:
        _, responses = sample_responses(
            model, tokenizer, config.n_eval, config.horizon, torch.Generator().manual_seed(seed)
        )
        return _decode(tokenizer, responses), responses

    sft_texts, sft_responses = evaluate(policy, 10_000 + config.seed)

    # step 2: optimise it online, KL-regularised towards the SFT policy (the known dynamics: sample and append)
    rl = RLConfig(
        iterations=config.rl_iterations,
        batch_size=config.rl_batch_size,
        lr=config.rl_lr,
        kl_coef=config.kl_coef,
        max_new_tokens=config.horizon,
    )

    def log_fn(responses: list[list[int]]) -> dict[str, float]:
        texts = _decode(tokenizer, responses)
        return {"gold_reward": float(gold_rewards(texts).mean()), "parse_rate": parse_rate(texts)}

    recent: list[list[int]] = []

    def refit(iteration: int, responses: list[list[int]]) -> None:
        # adversarial IRL: every `refit_every` rounds, re-fit the reward against the current policy's samples
        recent.extend(responses)
        if config.refit_every and (iteration + 1) % config.refit_every == 0:
            fit_text_reward(
                demo_responses,
                recent,
                len(tokenizer),
                tokenizer.bos_token_id,
                tokenizer.eos_token_id,
                epochs=50,
                l2=config.reward_l2,
                model=reward_model,
            )
            recent.clear()

    curves = optimise_reward(
        policy,
        reference,
        tokenizer,
        learned_reward,
        rl,
        seed=config.seed,
        log_fn=log_fn,
        on_samples=refit if config.refit_every else None,
    )
    irl_texts, irl_responses = evaluate(policy, 10_000 + config.seed)

    H = config.horizon
    texts = {DEMO: demos, BC: sft_texts, IRL: irl_texts}
    validity = {name: validity_by_position(t, H).inside for name, t in texts.items()}  # chapter 3's measure
    hazard = {name: error_hazard(t, H) for name, t in texts.items()}
    lengths = {name: [len(words_of(x)) for x in t] for name, t in texts.items()}
    gold = {name: float(gold_rewards(t).mean()) for name, t in texts.items()}
    metrics = {
        "demo_gold": gold[DEMO],
        "sft_gold": gold[BC],
        "irl_gold": gold[IRL],
        "sft_parse_rate": parse_rate(sft_texts),
        "irl_parse_rate": parse_rate(irl_texts),
        "sft_learned_reward": float(learned_reward(sft_responses).mean()),
        "irl_learned_reward": float(learned_reward(irl_responses).mean()),
        "demo_learned_reward": float(learned_reward(demo_responses).mean()),
        "final_kl": curves[-1]["kl"],
        "demo_mean_length": float(np.mean(lengths[DEMO])),
        "sft_mean_length": float(np.mean(lengths[BC])),
        "irl_mean_length": float(np.mean(lengths[IRL])),
        "demo_two_clause_rate": float(np.mean([_two_clauses(t) for t in demos])),
        "sft_two_clause_rate": float(np.mean([_two_clauses(t) for t in sft_texts])),
        "irl_two_clause_rate": float(np.mean([_two_clauses(t) for t in irl_texts])),
    }
    for t in (4, 8, 12):
        metrics[f"sft_valid_at_{t}"] = float(validity[BC][t - 1])
        metrics[f"irl_valid_at_{t}"] = float(validity[IRL][t - 1])
    result = Result(
        metrics=metrics,
        curves=curves,
        artifacts={
            "validity": validity,
            "hazard": hazard,
            "lengths": lengths,
            "gold": gold,
            "texts": texts,
            "reward_model": reward_model,
            "tokenizer": tokenizer,
        },
    )
    result.figure = draw(result, config)
    return result


def draw(result: Result, config: Config):
    """Validity and error hazard by position, lengths and gold reward of the demonstrator, SFT and IRL."""
    a = result.artifacts
    return plot_token_bridge(np.arange(1, config.horizon + 1), a["validity"], a["hazard"], a["lengths"], a["gold"])


def cache_state(result: Result) -> dict[str, Any]:
    """The arrays the figure draws (the models are not kept)."""
    return {k: to_state(result.artifacts[k]) for k in _FIGURE_ARTIFACTS}


def restore_artifacts(state: dict[str, Any], config: Config) -> dict[str, Any]:  # noqa: ARG001
    return {k: from_state(state[k]) for k in _FIGURE_ARTIFACTS}


_FIGURE_ARTIFACTS = ("validity", "hazard", "lengths", "gold")
