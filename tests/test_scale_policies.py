"""``--model``: any GPT-2 checkpoint as the policy, with its own tokenizer; the gold reward reads only text."""

import numpy as np
import pytest
import torch

from rl4llm.lm import EOS, build_bpe_tokenizer, gold_rewards, load_tiny_gpt2, sample_texts
from rl4llm.lm.model import count_parameters
from rl4llm.lm.policies import (
    check_model_name,
    from_model_text,
    resolve_policy,
    save_random_gpt2,
    to_model_text,
)
from rl4llm.rlhf.rollout import decode_texts, encode_texts, response_logprobs, sample_sequences, special_ids


@pytest.fixture(scope="module")
def bpe():
    return build_bpe_tokenizer()


def test_bpe_tokenizer_is_gpt2_style(bpe):
    # one special token, <|endoftext|>, that is bos, eos and pad at once, as in GPT-2
    assert bpe.eos_token == "<|endoftext|>"
    assert bpe.bos_token_id == bpe.eos_token_id == bpe.pad_token_id == 0
    assert len(bpe) == 400
    # sub-word tokens: the reviews take more BPE tokens than words
    text = "the battery is really not great . <eos>"
    ids = bpe(to_model_text(bpe, text), add_special_tokens=False)["input_ids"]
    assert ids[-1] == bpe.eos_token_id and ids.count(bpe.eos_token_id) == 1


def test_text_bridge_round_trips_and_keeps_the_gold_reward(bpe):
    texts = sample_texts(200, 7)
    back = []
    for t in texts:
        ids = bpe(to_model_text(bpe, t), add_special_tokens=False)["input_ids"]
        back.append(from_model_text(bpe, bpe.decode(ids, skip_special_tokens=False)))
    assert back == texts
    np.testing.assert_array_equal(gold_rewards(back), gold_rewards(texts))


def test_text_bridge_is_the_identity_for_the_word_level_tokenizer():
    _, tok = load_tiny_gpt2()
    text = "i like this phone ! <eos>"
    assert to_model_text(tok, text) == text and from_model_text(tok, text) == text


def test_encode_decode_texts_with_bpe_keep_eos_as_the_stop_token(bpe):
    texts = ["the phone is great . <eos>", "my bag is small ."]  # the second is unfinished
    batch = encode_texts(bpe, texts, max_new_tokens=40)
    bos, eos, _ = special_ids(bpe)
    assert int(batch.input_ids[0, 0]) == bos
    last = batch.lengths[0]
    assert int(batch.input_ids[0, last]) == eos  # the response ends with the eos token, not with "<", "eos", ">"
    assert decode_texts(bpe, batch) == texts
    # gold of the decoded texts, by hand: "great" gives S = 0.5; the unfinished review has S = 0 and pays
    # U = 1 (it does not parse without <eos>) and 0.5 E (unfinished)
    np.testing.assert_allclose(gold_rewards(decode_texts(bpe, batch)), [0.5, -1.5])
    assert EOS not in decode_texts(bpe, batch)[1]


def test_check_model_name():
    assert check_model_name("gpt2") == "gpt2"
    for bad in ("", "  ", None, 3):
        with pytest.raises(ValueError, match="model"):
            check_model_name(bad)


def test_resolve_policy_tiny_is_the_shipped_checkpoint():
    model, tok = resolve_policy("tiny")
    ref, _ = load_tiny_gpt2()
    for a, b in zip(model.state_dict().values(), ref.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert tok.eos_token == EOS


def test_missing_folder_names_the_source(tmp_path):
    with pytest.raises(ValueError, match="cannot load"):
        resolve_policy(str(tmp_path / "nothing-here"))


def test_full_gpt2_124m_configuration_loads_from_a_local_folder(tmp_path, bpe):
    # transformers.GPT2Config() is the real GPT-2 small: 12 layers, width 768, 12 heads, 50,257 tokens
    folder = save_random_gpt2(tmp_path / "gpt2-124m", bpe, vocab_size=50257)
    model, tok = resolve_policy(str(folder))
    assert count_parameters(model) == 124_439_808  # GPT-2 small's published size (tied embeddings)
    assert (model.config.n_layer, model.config.n_embd, model.config.n_head) == (12, 768, 12)
    assert tok.pad_token_id == tok.eos_token_id == bpe.eos_token_id
    bos, eos, pad = special_ids(tok)
    batch = sample_sequences(model, 2, 4, bos, eos, pad, generator=torch.Generator().manual_seed(0))
    logp = response_logprobs(model, batch)
    assert logp.shape == batch.response_mask.shape and bool(torch.isfinite(logp).all())
    assert bool((logp <= 0).all())
    texts = decode_texts(tok, batch)  # ids beyond the tokenizer's 400 tokens decode to nothing
    assert len(gold_rewards(texts)) == 2


@pytest.mark.slow
def test_rlhf_experiment_runs_on_a_local_bpe_gpt2(tmp_path, monkeypatch, bpe):
    from rl4llm.cache import clear_memory_cache
    from rl4llm.experiments import run_experiment

    monkeypatch.setenv("RL4LLM_CACHE_DIR", str(tmp_path / "cache"))
    clear_memory_cache()
    folder = save_random_gpt2(tmp_path / "small", bpe, n_layer=1, n_embd=32, n_head=2, n_positions=64)
    result = run_experiment(
        "rlhf",
        model=str(folder),
        n_pairs=40,
        heldout_pairs=10,
        rm_steps=2,
        iterations=1,
        batch_size=8,
        n_minibatches=1,
        eval_every=1,
    )
    m = result.metrics
    assert m["sft_gold_reward"] == pytest.approx(0.0, abs=1e-12)  # the SFT policy is the zero of the scale
    assert np.isfinite([m["rlhf_gold_reward"], m["kl"], m["rlhf_proxy_reward"]]).all()
    stages = result.artifacts["stages"]
    assert stages.tokenizer.eos_token == "<|endoftext|>" and len(stages.tokenizer) == 400


def test_task_tokenizer_reads_chapter_7_texts_through_bpe(bpe):
    """The reasoning task's interface on a BPE tokenizer: bos first, decode stops at eos, no special tokens."""
    from rl4llm.lm.policies import TaskTokenizer
    from rl4llm.rlvr.task import exact_verifier, prompt_text, train_problems, worked_solution

    tok = TaskTokenizer(bpe)
    assert tok.bos_token_id == tok.eos_token_id == tok.pad_token_id == 0  # GPT-2: one special token
    q = train_problems(1, np.random.default_rng(0))[0]
    ids = tok.encode(prompt_text(q))
    assert ids[0] == 0 and tok.eos_token_id not in ids[1:]
    assert tok.decode(ids) == ""  # stops at the leading eos-as-bos: completions never start with it
    assert tok.decode(ids[1:]) == prompt_text(q)
    solution = worked_solution(q)
    text = tok.decode(tok.encode(solution, bos=False) + [tok.eos_token_id] + tok.encode("9", bos=False))
    assert text == solution and exact_verifier(q, text) == 1.0
    assert exact_verifier(q, tok.decode(tok.encode(solution + "9", bos=False))) == 0.0
    with pytest.raises(ValueError, match="eos"):
        TaskTokenizer(type("NoEos", (), {"eos_token_id": None})())


def test_grpo_experiment_runs_on_a_local_bpe_gpt2(tmp_path, bpe):
    """Chapter 7's GRPO on a randomly initialised BPE GPT-2 (--model FOLDER): prompts of different token
    lengths are left-padded, the verifier reads decoded text, the policy's weights move."""
    from rl4llm.config import ConfigError
    from rl4llm.experiments import config_from_overrides, run_experiment

    folder = save_random_gpt2(tmp_path / "gpt2", bpe, n_layer=2, n_embd=32, n_head=2, n_positions=128)
    config = config_from_overrides("grpo")
    assert (config.model, config.device, config.mixed_precision) == ("reasoning", "cpu", "no")
    with pytest.raises(ConfigError) as err:
        config_from_overrides("grpo", device="tpu")
    assert err.value.field == "device"
    result = run_experiment(
        "grpo",
        model=str(folder),
        iterations=2,
        group_size=2,
        prompts_per_iter=2,
        n_minibatches=1,
        eval_problems=4,
        eval_samples=1,
        eval_every=2,
    )
    m = result.metrics
    assert m["processes"] == 1 and m["n_parameters"] == count_parameters(result.artifacts["policy"])
    assert 0.0 <= m["pass_at_1_final"] <= 1.0 and m["completion_tokens"] > 0 and m["tokens_per_s"] > 0
    assert [r["iteration"] for r in result.curves] == [0, 1, 2]
