"""Prompt-OIRL (chapter 6): prompting as a one-step RL problem, solved offline with a learned reward model.

* :mod:`~rl4llm.prompting.task`: arithmetic queries, prompts (answer formats x paraphrases), the checker;
* :mod:`~rl4llm.prompting.model` / :mod:`~rl4llm.prompting.pretrain`: the tiny arithmetic GPT-2 and its training;
* :mod:`~rl4llm.prompting.logs`: offline (query, prompt, correct?) logs, cached; NPZ/CSV for any LLM's logs;
* :mod:`~rl4llm.prompting.reward_model`: :func:`fit_prompt_reward_model`, the offline reward model;
* :mod:`~rl4llm.prompting.selection`: :func:`select_prompts` and :func:`evaluate_prompts` (no LM call);
* :mod:`~rl4llm.prompting.evaluation`: a full study against the baselines, sweeps over K and log size, cost;
* :mod:`~rl4llm.prompting.plots`: the chapter's figures.
"""

from rl4llm.prompting.evaluation import (
    call_budget_curve,
    k_sweep,
    log_size_sweep,
    oirl_study,
    split_queries,
    type_prompt_accuracy,
)
from rl4llm.prompting.logs import PromptLogs, collect_logs, load_logs, save_logs
from rl4llm.prompting.model import answer, load_arithmetic_lm, prompt_features
from rl4llm.prompting.reward_model import PromptRewardModel, fit_prompt_reward_model, prompt_reward_loss, roc_auc
from rl4llm.prompting.selection import evaluate_prompts, score_matrix, select_prompts
from rl4llm.prompting.task import (
    FORMATS,
    PROMPTS,
    QUERY_TYPES,
    Prompt,
    Query,
    check_answer,
    parse_answer,
    query_features,
    render_answer,
    sample_queries,
)

__all__ = [
    "FORMATS",
    "PROMPTS",
    "QUERY_TYPES",
    "Prompt",
    "Query",
    "check_answer",
    "parse_answer",
    "render_answer",
    "query_features",
    "sample_queries",
    "answer",
    "load_arithmetic_lm",
    "prompt_features",
    "PromptLogs",
    "collect_logs",
    "load_logs",
    "save_logs",
    "PromptRewardModel",
    "fit_prompt_reward_model",
    "prompt_reward_loss",
    "roc_auc",
    "select_prompts",
    "evaluate_prompts",
    "score_matrix",
    "oirl_study",
    "k_sweep",
    "split_queries",
    "log_size_sweep",
    "call_budget_curve",
    "type_prompt_accuracy",
]
