"""RLHF (chapter 5): the InstructGPT pipeline on the tiny GPT-2 substrate.

Pure functions (graded in the assignments): :func:`bradley_terry_loss`, :func:`dpo_loss`, the KL estimators
:func:`kl_k1` / :func:`kl_k2` / :func:`kl_k3` and :class:`AdaptiveKLController`. Training loops live in their own
modules: ``sft``, ``preferences``, ``reward_model``, ``ppo``, ``best_of_n``, ``dpo`` and ``pipeline`` (the shared,
cached SFT -> preferences -> reward-model stages).
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
