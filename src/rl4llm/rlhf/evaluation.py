"""Evaluation of a policy against the shared stages: gold and proxy reward in SFT units, KL to the SFT policy.

Every chapter-5 experiment measures its policies with :func:`evaluate_against_gold`, on samples drawn with the stages'
fixed evaluation seed, so numbers from different pages and methods (PPO, best-of-n, DPO) sit on one scale with
the SFT policy at 0 (see :mod:`rl4llm.rlhf.stages`).
"""

from __future__ import annotations

from typing import Any

import torch

from rl4llm.lm.language import gold_breakdown
from rl4llm.rlhf.rollout import decode_texts, response_logprobs
from rl4llm.rlhf.stages import Stages, sample_many
from rl4llm.utils import check_positive_int

__all__ = ["evaluate_against_gold"]


@torch.no_grad()
def evaluate_against_gold(
    policy: torch.nn.Module, stages: Stages, n: int | None = None, seed: int | None = None, return_texts: bool = False
) -> dict[str, Any]:
    """Sample ``n`` responses from ``policy`` and measure them against the gold reward and the proxy.

    Defaults: ``n = config.n_eval`` samples drawn with the evaluation seed, the draws that define the SFT
    normalisation, so the SFT policy itself scores exactly 0 in gold and proxy. Returns

    * ``gold``, ``proxy``: mean rewards in SFT standard deviations; ``gold_raw``: the gold reward itself;
    * ``kl``: :math:`\\mathbb E_{y\\sim\\pi}[\\log\\pi(y) - \\log\\pi_{SFT}(y)]` in nats per sequence (the k1
      estimator summed over tokens, averaged over the samples);
    * ``parse_rate``, ``unfinished_rate``, ``repeat_rate`` (texts with a repeated content word): the gold
      reward's penalties, which show *how* a policy games a proxy; ``length``: mean tokens per response;
    * with ``return_texts``, also ``texts``.
    """
    n = stages.config.n_eval if n is None else check_positive_int("n", n)
    seed = stages.config.eval_seed if seed is None else check_positive_int("seed", seed, 0)
    was_training = policy.training
    policy.eval()
    batch = sample_many(policy, n, stages.config.max_new_tokens, stages.ids, torch.Generator().manual_seed(seed))
    texts = decode_texts(stages.tokenizer, batch)
    parts = gold_breakdown(texts)
    proxy = stages.proxy(batch).numpy()
    kl = (response_logprobs(policy, batch) - response_logprobs(stages.sft_model, batch)).sum(1)
    policy.train(was_training)
    out: dict[str, Any] = {
        "gold": float(stages.gold_z(parts["gold"].mean())),
        "proxy": float(proxy.mean()),
        "kl": float(kl.mean()),
        "gold_raw": float(parts["gold"].mean()),
        "parse_rate": float(1.0 - parts["ungrammatical"].mean()),
        "unfinished_rate": float(parts["unfinished"].mean()),
        "repeat_rate": float((parts["repeats"] > 0).mean()),
        "length": float(batch.response_mask.sum(1).mean()),
    }
    if return_texts:
        out["texts"] = texts
    return out
