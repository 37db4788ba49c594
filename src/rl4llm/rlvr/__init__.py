"""RL with verifiable rewards (chapter 7): a reasoning task with an exact verifier, group advantages (GRPO,
Dr. GRPO, RLOO), loss aggregation, the GRPO trainer and pass@k."""

from rl4llm.rlvr.advantages import group_advantages
from rl4llm.rlvr.evaluation import evaluate_pass_at_k, sample_completions
from rl4llm.rlvr.grpo import METHODS, GRPOConfig, GRPOHistory, train_grpo
from rl4llm.rlvr.losses import aggregate_token_loss, grpo_loss
from rl4llm.rlvr.metrics import pass_at_k
from rl4llm.rlvr.pretrain import load_reasoning_lm
from rl4llm.rlvr.task import VERIFIERS, exact_verifier, parse_final_answer, worked_solution

__all__ = [
    "group_advantages",
    "aggregate_token_loss",
    "grpo_loss",
    "pass_at_k",
    "GRPOConfig",
    "GRPOHistory",
    "METHODS",
    "train_grpo",
    "evaluate_pass_at_k",
    "sample_completions",
    "load_reasoning_lm",
    "VERIFIERS",
    "exact_verifier",
    "parse_final_answer",
    "worked_solution",
]
