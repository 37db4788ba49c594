"""The tiny GPT-2: configs, the shipped checkpoint (checksums, quality), load_policy offline, pretraining."""

import shutil

import numpy as np
import pytest
import torch
from transformers import GPT2LMHeadModel

from rl4llm.lm import build_tokenizer, parse_rate, sample_texts
from rl4llm.lm.generation import generate_texts
from rl4llm.lm.model import (
    CHECKPOINT_DIR,
    CheckpointError,
    count_parameters,
    load_policy,
    load_tiny_gpt2,
    make_tiny_gpt2,
    tiny_gpt2_config,
    verify_checksums,
    write_checksums,
)
from rl4llm.lm.pretrain import PretrainConfig, grammar_perplexity, heldout_perplexity, train


def test_tiny_config_puts_special_ids_inside_the_vocabulary_and_has_no_dropout():
    tok = build_tokenizer()
    cfg = tiny_gpt2_config(tok, "tiny")
    assert cfg.vocab_size == len(tok)
    for name in ("bos_token_id", "eos_token_id", "pad_token_id"):
        assert 0 <= getattr(cfg, name) < cfg.vocab_size
    assert (cfg.bos_token_id, cfg.eos_token_id, cfg.pad_token_id) == (
        tok.bos_token_id,
        tok.eos_token_id,
        tok.pad_token_id,
    )
    assert cfg.resid_pdrop == cfg.embd_pdrop == cfg.attn_pdrop == 0.0
    with pytest.raises(ValueError, match="size"):
        tiny_gpt2_config(tok, "huge")


def test_count_parameters_counts_tied_embeddings_once():
    tok = build_tokenizer()
    model = make_tiny_gpt2(tok, "tiny")
    v, d, n_pos, layers = len(tok), 64, 64, 2
    # embeddings (tied with the LM head) + positions + per block (2 layer norms, attention, MLP) + final norm
    per_block = 2 * 2 * d + (d * 3 * d + 3 * d) + (d * d + d) + (d * 4 * d + 4 * d) + (4 * d * d + d)
    expected = v * d + n_pos * d + layers * per_block + 2 * d
    assert count_parameters(model) == expected


def test_shipped_checkpoint_loads_offline_and_is_a_gpt2():
    model, tok = load_tiny_gpt2()
    assert isinstance(model, GPT2LMHeadModel)
    assert not model.training
    assert model.config.n_layer == 2 and model.config.n_embd == 64
    assert tok.convert_ids_to_tokens([tok.bos_token_id, tok.eos_token_id, tok.pad_token_id]) == [
        "<bos>",
        "<eos>",
        "<pad>",
    ]
    files = {p.name for p in CHECKPOINT_DIR.iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer.json", "SHA256SUMS.txt"} <= files
    assert sum(p.stat().st_size for p in CHECKPOINT_DIR.iterdir()) < 5_000_000  # a few MB at most


def test_shipped_checkpoint_is_near_the_grammar_and_its_samples_parse():
    """Measured afresh (not read from the training log): perplexity within 5% of the true distribution's,
    and at least 95% of samples in the language."""
    model, tok = load_tiny_gpt2()
    texts = sample_texts(300, np.random.default_rng(12345))
    ppl, floor = heldout_perplexity(model, tok, texts), grammar_perplexity(texts)
    assert floor <= ppl * 1.001  # nothing beats the true distribution (up to sampling noise of the estimate)
    assert ppl < 1.05 * floor
    samples = generate_texts(model, tok, 400, seed=3)
    assert parse_rate(samples) >= 0.95


def test_corrupted_checkpoint_gives_a_clear_error(tmp_path):
    folder = tmp_path / "ckpt"
    shutil.copytree(CHECKPOINT_DIR, folder)
    load_tiny_gpt2(folder)  # an intact copy loads
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="model.safetensors.*corrupted"):
        load_tiny_gpt2(folder)
    (folder / "SHA256SUMS.txt").unlink()
    with pytest.raises(CheckpointError, match="SHA256SUMS.txt is missing"):
        verify_checksums(folder)
    write_checksums(folder)  # re-recording the sums accepts the (now different) file
    verify_checksums(folder)
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_tiny_gpt2(tmp_path / "nowhere")


def test_load_policy_from_a_locally_saved_checkpoint_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model, tok = load_tiny_gpt2()
    model.save_pretrained(tmp_path / "saved")
    tok.save_pretrained(tmp_path / "saved")
    loaded, ltok = load_policy(tmp_path / "saved")
    assert ltok.padding_side == "left"
    ids = torch.tensor([tok("the phone is great .")["input_ids"]])
    with torch.no_grad():
        assert torch.allclose(loaded(input_ids=ids).logits, model(input_ids=ids).logits, atol=1e-6)
    same, _ = load_policy("tiny-gpt2", padding_side="right")
    assert isinstance(same, GPT2LMHeadModel)


def test_load_policy_gives_pad_to_a_tokenizer_without_one(tmp_path, monkeypatch):
    """GPT-2's own tokenizer has no pad token; load_policy uses eos, as for real gpt2."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model, tok = load_tiny_gpt2()
    tok.pad_token = None
    model.config.pad_token_id = None
    model.save_pretrained(tmp_path / "nopad")
    tok.save_pretrained(tmp_path / "nopad")
    _, ltok = load_policy(tmp_path / "nopad")
    assert ltok.pad_token == ltok.eos_token == "<eos>"


def test_load_policy_names_what_it_could_not_load(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ValueError, match="cannot load a causal LM from 'no-such-model-xyz'"):
        load_policy("no-such-model-xyz")
    with pytest.raises(ValueError, match="padding_side"):
        load_policy("tiny-gpt2", padding_side="middle")


def test_pretraining_is_deterministic_and_lowers_the_loss():
    cfg = PretrainConfig(n_train=256, n_heldout=64, steps=40, batch_size=32, warmup=5, eval_every=40, n_eval_samples=16)
    m1, tok, log1 = train(cfg)
    m2, _, log2 = train(cfg)
    for (n, a), (_, b) in zip(m1.state_dict().items(), m2.state_dict().items()):
        assert torch.equal(a, b), n
    assert log1["train_loss"] == log2["train_loss"]
    assert log1["heldout_loss"][-1] < log1["heldout_loss"][0] - 1.0  # well below the uniform model's loss
    with pytest.raises(ValueError, match="lr"):
        PretrainConfig(lr=0.0)
