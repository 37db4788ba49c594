"""The GPT-2 substrate: a synthetic language with a known gold reward, its tokenizer, a tiny GPT-2, sampling.

* :mod:`rl4llm.lm.language`: the review grammar, :func:`sample_texts`, :func:`parses`, the expert oracle
  (:func:`valid_next`, :func:`expert_next_distribution`) and the exact :func:`gold_reward`;
* :mod:`rl4llm.lm.tokenizer`: :func:`build_tokenizer`, a word-level ``PreTrainedTokenizerFast``;
* :mod:`rl4llm.lm.model`: tiny ``GPT2LMHeadModel`` configs, the shipped checkpoint (:func:`load_tiny_gpt2`) and
  :func:`load_policy` for any GPT-2-family causal LM (e.g. real ``gpt2``);
* :mod:`rl4llm.lm.generation`: :func:`sequence_logprobs`, :func:`token_logprobs`, batched :func:`sample`;
* :mod:`rl4llm.lm.pretrain`: ``rl4llm pretrain``, which trains the shipped checkpoint;
* :mod:`rl4llm.lm.policies`: ``--model tiny|gpt2|FOLDER`` (:func:`resolve_policy`), the text bridge for BPE
  tokenizers, a local GPT-2-style BPE (:func:`build_bpe_tokenizer`) and random GPT-2 folders.
"""

from rl4llm.lm.generation import Samples, generate_texts, left_pad, sample, sequence_logprobs, token_logprobs
from rl4llm.lm.language import (
    BOS,
    EOS,
    PAD,
    UNK,
    expert_next_distribution,
    gold_breakdown,
    gold_reward,
    gold_rewards,
    parse_rate,
    parses,
    sample_texts,
    sentiment_score,
    valid_next,
    vocabulary,
)
from rl4llm.lm.model import CheckpointError, load_policy, load_tiny_gpt2, make_tiny_gpt2, tiny_gpt2_config
from rl4llm.lm.policies import build_bpe_tokenizer, resolve_policy, save_random_gpt2
from rl4llm.lm.tokenizer import build_tokenizer

__all__ = [
    "BOS",
    "EOS",
    "PAD",
    "UNK",
    "build_tokenizer",
    "expert_next_distribution",
    "gold_breakdown",
    "gold_reward",
    "gold_rewards",
    "parse_rate",
    "parses",
    "sample_texts",
    "sentiment_score",
    "valid_next",
    "vocabulary",
    "load_tiny_gpt2",
    "load_policy",
    "make_tiny_gpt2",
    "tiny_gpt2_config",
    "CheckpointError",
    "sequence_logprobs",
    "token_logprobs",
    "sample",
    "Samples",
    "generate_texts",
    "left_pad",
    "resolve_policy",
    "build_bpe_tokenizer",
    "save_random_gpt2",
]
