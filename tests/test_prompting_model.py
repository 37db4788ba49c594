"""Chapter 6: the shipped arithmetic GPT-2 (checksums, competence regions) and its pretraining command."""

import argparse
import hashlib
import shutil

import numpy as np
import pytest

from rl4llm.lm.model import CHECKSUM_FILE, CheckpointError, verify_checksums
from rl4llm.prompting import PROMPTS, QUERY_TYPES, check_answer, sample_queries
from rl4llm.prompting.model import CHECKPOINT_DIR, answer, load_arithmetic_lm, prompt_features
from rl4llm.prompting.pretrain import HOME_TYPE, PretrainConfig, add_arguments, main, train


def test_shipped_checkpoint_is_small_and_verified():
    verify_checksums(CHECKPOINT_DIR)
    total = sum(p.stat().st_size for p in CHECKPOINT_DIR.iterdir())
    assert total < 3_000_000
    for name in ("model.safetensors", "config.json", "tokenizer.json", CHECKSUM_FILE):
        assert (CHECKPOINT_DIR / name).is_file()
    # the substrate's format (sha256sum's): "<64 hex digits>  <file>" for every other file of the folder
    listed = {}
    for line in (CHECKPOINT_DIR / CHECKSUM_FILE).read_text().splitlines():
        digest, name = line.split("  ")
        assert len(digest) == 64 and int(digest, 16) >= 0
        listed[name] = digest
    others = {p.name for p in CHECKPOINT_DIR.iterdir() if p.is_file() and p.name != CHECKSUM_FILE}
    assert set(listed) == others
    assert (
        listed["model.safetensors"] == hashlib.sha256((CHECKPOINT_DIR / "model.safetensors").read_bytes()).hexdigest()
    )


def test_tampered_checkpoint_is_refused(tmp_path):
    copy = tmp_path / "ckpt"
    shutil.copytree(CHECKPOINT_DIR, copy)
    data = bytearray((copy / "model.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (copy / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="model.safetensors is corrupted"):
        load_arithmetic_lm(copy)
    (copy / CHECKSUM_FILE).unlink()
    with pytest.raises(CheckpointError, match="missing"):
        load_arithmetic_lm(copy)


def test_competence_depends_on_query_type_and_prompt():
    """Each format is >= 50% right on its home query type, and no single prompt is best on every type."""
    model, tok = load_arithmetic_lm()
    queries = sample_queries(4 * 25, np.random.default_rng(7))
    logged = [p for p in PROMPTS if p.logged]
    pairs = [(q, p) for q in queries for p in logged]
    answers, _ = answer(model, tok, pairs)
    acc = np.zeros((4, len(logged)))
    for (q, p), a in zip(pairs, answers):
        acc[QUERY_TYPES.index(q.type), logged.index(p)] += check_answer(q, p, a) / 25
    for j, p in enumerate(logged):
        assert acc[QUERY_TYPES.index(HOME_TYPE[p.format]), j] >= 0.5, (p, acc[:, j])
    best_per_type = acc.argmax(axis=1)
    assert len({logged[j].format for j in best_per_type}) >= 3


def test_prompt_features_are_deterministic_and_group_paraphrases():
    model, tok = load_arithmetic_lm()
    texts = [p.text for p in PROMPTS]
    f1, f2 = prompt_features(model, tok, texts), prompt_features(model, tok, texts)
    np.testing.assert_array_equal(f1, f2)
    assert f1.shape[0] == 12 and np.isfinite(f1).all()
    unit = f1 / np.linalg.norm(f1, axis=1, keepdims=True)
    logged = [p for p in PROMPTS if p.logged]
    for p in PROMPTS:
        if not p.logged:  # a held-out paraphrase sits nearest to a logged paraphrase of its own format
            nearest = max(logged, key=lambda q: float(unit[p.id] @ unit[q.id]))
            assert nearest.format == p.format, (p, nearest)


def test_pretrain_cli_tiny_run_is_deterministic_and_loadable(tmp_path):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    outs = []
    for name in ("a", "b"):
        args = parser.parse_args(
            [
                "--out",
                str(tmp_path / name),
                "--steps",
                "3",
                "--n-examples",
                "64",
                "--batch-size",
                "8",
                "--table-per-type",
                "2",
            ]
        )
        assert main(args) == 0
        outs.append((tmp_path / name / "model.safetensors").read_bytes())
    assert outs[0] == outs[1]
    assert (tmp_path / "a" / CHECKSUM_FILE).is_file() and not (tmp_path / "a" / "checksums.sha256").exists()
    verify_checksums(tmp_path / "a")
    model, tok = load_arithmetic_lm(tmp_path / "a")
    assert model.config.n_layer == 2 and tok.vocab_size == model.config.vocab_size


def test_pretrain_config_validation():
    with pytest.raises(ValueError, match="home_frac"):
        PretrainConfig(home_frac=1.5)
    with pytest.raises(ValueError, match="n_embd"):
        PretrainConfig(n_embd=65, n_head=4)
    with pytest.raises(ValueError, match="steps"):
        train(PretrainConfig(steps=0))


def test_principal_components_fitted_on_some_rows_project_the_others_inductively():
    from rl4llm.prompting.model import principal_components

    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 6)) * np.array([5.0, 3.0, 1.0, 0.5, 0.2, 0.1])
    logged = np.arange(12) < 8
    full = principal_components(x, 2)
    assert np.array_equal(principal_components(x, 2, fit_rows=np.ones(12, bool)), full)  # all rows: the default
    inductive = principal_components(x, 2, fit_rows=logged)
    # the fitted rows get exactly the features they would get alone
    np.testing.assert_allclose(inductive[logged], principal_components(x[logged], 2), atol=1e-12)
    # a held-out row's features depend on its own features only, not on the other held-out rows
    moved = x.copy()
    moved[9:] += 100.0
    np.testing.assert_allclose(principal_components(moved, 2, fit_rows=logged)[8], inductive[8], atol=1e-12)
    assert not np.allclose(principal_components(moved, 2)[8], full[8])  # the transductive fit does move it
    # hand-computed case: points on a line through the fitted mean
    line = np.array([[0.0, 0.0], [2.0, 0.0], [4.0, 0.0], [10.0, 0.0]])
    np.testing.assert_allclose(principal_components(line, 1, fit_rows=[0, 1, 2])[:, 0], [-2.0, 0.0, 2.0, 8.0])
    with pytest.raises(ValueError, match="fit_rows"):
        principal_components(x, 2, fit_rows=[0])


def test_encode_prompt_completions_masks_the_prompt_and_pads_right():
    from rl4llm.prompting.pretrain import encode_prompt_completions
    from rl4llm.prompting.tokenizer import default_tokenizer

    tok = default_tokenizer()
    ids, labels = encode_prompt_completions(tok, [("1+2=", "3"), ("1+2+3=", "6")])
    p1, p2 = tok.encode("1+2="), tok.encode("1+2+3=")  # each starts with <bos>
    assert p1[0] == tok.bos_token_id
    row1 = p1 + tok.encode("3", bos=False) + [tok.eos_token_id]
    row2 = p2 + tok.encode("6", bos=False) + [tok.eos_token_id]
    assert ids.shape == (2, len(row2))
    assert ids[0].tolist() == row1 + [tok.pad_token_id] * (len(row2) - len(row1))
    assert ids[1].tolist() == row2
    # the loss sees the completion and <eos> only
    assert labels[0].tolist() == [-100] * len(p1) + row1[len(p1) :] + [-100] * (len(row2) - len(row1))
    assert labels[1].tolist() == [-100] * len(p2) + row2[len(p2) :]


def test_train_on_completions_trimming_the_padding_keeps_the_loss():
    """Cutting a batch to its longest row drops only padded, unlabelled columns: the same losses step by step."""
    import torch

    from rl4llm.prompting.pretrain import completion_lm, encode_prompt_completions, train_on_completions
    from rl4llm.prompting.tokenizer import default_tokenizer

    tok = default_tokenizer()
    pairs = [("1+2=", "3"), ("10+20=", "30"), ("4+4=", "8"), ("5+6=", "11")]
    ids, labels = encode_prompt_completions(tok, pairs + [("1+2+3+4+5=", "15")])
    ids, labels = ids[:4], labels[:4]  # the long row is gone: every batch has padded columns at the end
    runs = []
    for trim in (False, True):
        torch.manual_seed(0)
        model = completion_lm(tok, n_positions=16, n_layer=1, n_embd=16, n_head=2)
        losses = train_on_completions(
            model, ids, labels, tok.pad_token_id, steps=3, batch_size=2, lr=1e-2, seed=0, trim_padding=trim
        )
        assert not model.training
        runs.append(losses)
    np.testing.assert_allclose(runs[1], runs[0], rtol=1e-5)
    assert runs[0][-1] < runs[0][0]  # it learns
