"""The GPT-2 substrate: a synthetic language with a known gold reward, its tokenizer, a tiny GPT-2, sampling.

* :mod:`rl4llm.lm.language`: the review grammar, :func:`sample_texts`, :func:`parses`, the expert oracle
  (:func:`valid_next`, :func:`expert_next_distribution`) and the exact :func:`gold_reward`;
* :mod:`rl4llm.lm.tokenizer`: :func:`build_tokenizer`, a word-level ``PreTrainedTokenizerFast``.
"""

from rl4llm.lm.language import (
    BOS,
    EOS,
    PAD,
    UNK,
    expert_next_distribution,
    gold_reward,
    gold_rewards,
    parse_rate,
    parses,
    sample_texts,
    sentiment_score,
    valid_next,
    vocabulary,
)
from rl4llm.lm.tokenizer import build_tokenizer

__all__ = [
    "BOS", "EOS", "PAD", "UNK", "build_tokenizer", "expert_next_distribution", "gold_reward", "gold_rewards",
    "parse_rate", "parses", "sample_texts", "sentiment_score", "valid_next", "vocabulary",
]
