"""RLHF (chapter 5): the InstructGPT pipeline on the tiny GPT-2 substrate, measured against the gold reward.

Pure functions (graded in the assignments) are importable from here: :func:`bradley_terry_loss`, :func:`dpo_loss`,
the KL estimators :func:`kl_k1` / :func:`kl_k2` / :func:`kl_k3` and :class:`AdaptiveKLController`. The rest lives
in one module per concept, imported explicitly (they load transformers):

* ``rollout``: responses from ``<bos>`` as token-MDP episodes (a thin adapter over :mod:`rl4llm.lm.generation`);
* ``sft``: step 1, supervised fine-tuning on demonstrations;
* ``preferences``: the noisy Bradley-Terry labeller over the gold reward;
* ``reward_model``: step 2, a GPT-2 backbone with a scalar head, and the PPO critic;
* ``ppo``: step 3, KL-penalised PPO for language models (fixed or adaptive KL coefficient);
* ``best_of_n`` and ``overoptimization``: best-of-n sampling and Gao et al.'s over-optimisation forms;
* ``dpo``: direct preference optimisation on the same pairs;
* ``stages``: the shared, cached SFT -> preferences -> reward-model stages (:class:`StagesConfig`, the one
  place that holds their defaults);
* ``evaluation``: a policy's gold and proxy reward in SFT units and its KL to the SFT policy;
* ``ppo_run``: PPO from the shared stages, evaluated as it trains;
* ``plots``: the chapter's figures.
"""

from __future__ import annotations

from rl4llm.rlhf.kl import AdaptiveKLController, FixedKLController, kl_k1, kl_k2, kl_k3
from rl4llm.rlhf.losses import bradley_terry_loss, dpo_loss

__all__ = [
    "bradley_terry_loss",
    "dpo_loss",
    "kl_k1",
    "kl_k2",
    "kl_k3",
    "AdaptiveKLController",
    "FixedKLController",
]
