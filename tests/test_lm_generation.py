"""Log-probs and batched sampling against slow one-sequence-at-a-time references."""

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel

from rl4llm.lm.generation import left_pad, position_ids_from_mask, sample, sequence_logprobs, token_logprobs


def tiny_model(vocab: int = 12, seed: int = 0, eos: int = 2, pad: int = 0) -> GPT2LMHeadModel:
    torch.manual_seed(seed)
    cfg = GPT2Config(
        vocab_size=vocab,
        n_positions=32,
        n_embd=32,
        n_layer=2,
        n_head=2,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=1,
        eos_token_id=eos,
        pad_token_id=pad,
    )
    model = GPT2LMHeadModel(cfg).eval()
    with torch.no_grad():  # sharper logits than the default init, so that samples differ visibly
        model.lm_head.weight.mul_(20.0)
    return model


@torch.no_grad()
def slow_next_logprobs(model, tokens: list[int]) -> torch.Tensor:
    """log pi(. | tokens) for one unpadded sequence, no cache."""
    out = model(input_ids=torch.tensor([tokens]))
    return torch.log_softmax(out.logits[0, -1].float(), -1)


ROWS = [[1, 5, 6, 7, 3], [1, 8], [1, 4, 4]]


def test_position_ids_count_real_tokens():
    mask = torch.tensor([[0, 0, 1, 1], [1, 1, 1, 0]])
    assert position_ids_from_mask(mask).tolist() == [[0, 0, 0, 1], [0, 1, 2, 2]]


def test_token_logprobs_left_padded_match_unpadded_rows():
    model = tiny_model()
    ids, mask = left_pad(ROWS, pad_token_id=0)
    lp = token_logprobs(model, ids, mask)
    for i, row in enumerate(ROWS):
        offset = ids.shape[1] - len(row)
        assert lp[i, : offset + 1].abs().max() == 0  # padding and the first real token are not scored
        for t in range(1, len(row)):
            expected = slow_next_logprobs(model, row[:t])[row[t]]
            assert lp[i, offset + t].item() == pytest.approx(expected.item(), abs=1e-5)


def test_sequence_logprobs_match_slow_reference_with_left_and_right_padding():
    model = tiny_model()
    prompt_len = [2, 1, 2]  # response = the rest of each row
    expected = []
    for row, p in zip(ROWS, prompt_len):
        expected.append(sum(slow_next_logprobs(model, row[:t])[row[t]].item() for t in range(p, len(row))))
    # left padding
    ids, mask = left_pad(ROWS, 0)
    resp = torch.zeros_like(ids)
    for i, (row, p) in enumerate(zip(ROWS, prompt_len)):
        resp[i, ids.shape[1] - len(row) + p :] = 1
    got = sequence_logprobs(model, ids, mask, resp)
    assert got.shape == (3,)
    assert got.tolist() == pytest.approx(expected, abs=1e-4)
    # right padding
    width = max(map(len, ROWS))
    ids_r = torch.zeros((3, width), dtype=torch.long)
    mask_r, resp_r = torch.zeros_like(ids_r), torch.zeros_like(ids_r)
    for i, (row, p) in enumerate(zip(ROWS, prompt_len)):
        ids_r[i, : len(row)] = torch.tensor(row)
        mask_r[i, : len(row)] = 1
        resp_r[i, p : len(row)] = 1
    assert sequence_logprobs(model, ids_r, mask_r, resp_r).tolist() == pytest.approx(expected, abs=1e-4)


def test_sequence_logprobs_has_gradients_and_validates():
    model = tiny_model()
    ids, mask = left_pad(ROWS, 0)
    resp = mask.clone()
    resp[:, 0] = 0
    resp[:, -1] = 1
    out = sequence_logprobs(model, ids, mask, resp)
    out.sum().backward()
    assert model.transformer.wte.weight.grad is not None
    bad = resp.clone()
    bad[:, 0] = 1
    with pytest.raises(ValueError, match="response_mask"):
        sequence_logprobs(model, ids, mask, bad)
    with pytest.raises(ValueError, match="response_mask"):
        sequence_logprobs(model, ids, mask, resp[:, 1:])
    with pytest.raises(ValueError, match="attention_mask"):
        token_logprobs(model, ids, mask[:, 1:])


def test_greedy_batched_sampling_equals_one_at_a_time_loop():
    model = tiny_model()
    prompts = [[1, 5, 6], [1], [1, 9, 9, 9, 4]]
    s = sample(model, prompts, max_new_tokens=6, temperature=0.0, eos_token_id=2, pad_token_id=0)
    for prompt, resp in zip(prompts, s.responses):
        tokens, expected = list(prompt), []
        for _ in range(6):
            nxt = int(slow_next_logprobs(model, tokens).argmax())
            expected.append(nxt)
            tokens.append(nxt)
            if nxt == 2:
                break
        assert resp == expected
    # the returned batch scores the same under sequence_logprobs as the slow loop does
    lp = sequence_logprobs(model, s.input_ids, s.attention_mask, s.response_mask)
    for i, (prompt, resp) in enumerate(zip(prompts, s.responses)):
        full = prompt + resp
        ref = sum(slow_next_logprobs(model, full[:t])[full[t]].item() for t in range(len(prompt), len(full)))
        assert lp[i].item() == pytest.approx(ref, abs=1e-4)


def test_sampling_is_reproducible_and_stops_at_eos():
    model = tiny_model(seed=3)
    model.lm_head.weight.data.mul_(0.05)  # near-uniform over 12 tokens: P(eos within 10 steps) ~ 0.6 per row
    prompts = [[1]] * 64
    a = sample(model, prompts, max_new_tokens=10, generator=torch.Generator().manual_seed(7), eos_token_id=2)
    b = sample(model, prompts, max_new_tokens=10, generator=torch.Generator().manual_seed(7), eos_token_id=2)
    c = sample(model, prompts, max_new_tokens=10, generator=torch.Generator().manual_seed(8), eos_token_id=2)
    assert torch.equal(a.input_ids, b.input_ids)
    assert not torch.equal(a.input_ids, c.input_ids)
    n_eos = 0
    for ids, m, r in zip(a.input_ids, a.attention_mask, a.response_mask):
        gen = ids[a.prompt_length :]
        real = r[a.prompt_length :].bool()
        assert torch.equal(m[a.prompt_length :].bool(), real)
        toks = gen[real].tolist()
        if 2 in toks:
            n_eos += 1
            assert toks.index(2) == len(toks) - 1  # nothing real after eos
            assert (gen[~real] == 0).all()  # padded with pad id
        else:
            assert len(toks) == 10
    assert 0 < n_eos < 64  # some rows stopped early, some ran to max_new_tokens


def test_sampling_frequencies_follow_tempered_softmax():
    model = tiny_model(vocab=5, seed=1)
    model.lm_head.weight.data.mul_(0.05)  # moderate logits so every token is sampled
    probs = {}
    for temp in (1.0, 0.5):
        s = sample(
            model,
            [[1]] * 6000,
            max_new_tokens=1,
            temperature=temp,
            eos_token_id=4,
            generator=torch.Generator().manual_seed(0),
        )
        first = s.input_ids[:, -1]
        freq = torch.bincount(first, minlength=5).float() / len(first)
        logits = model(input_ids=torch.tensor([[1]])).logits[0, -1]
        expected = torch.softmax(logits / temp, -1)
        assert torch.allclose(freq, expected, atol=0.025), (temp, freq, expected)
        probs[temp] = expected
    assert probs[0.5].max() > probs[1.0].max()  # lower temperature sharpens


def test_sample_accepts_right_padded_tensor_prompts_and_top_k():
    model = tiny_model()
    ids = torch.tensor([[1, 5, 6], [1, 0, 0]])
    mask = torch.tensor([[1, 1, 1], [1, 0, 0]])
    s = sample(model, ids, mask, max_new_tokens=3, temperature=0.0)
    assert s.input_ids[1, : s.prompt_length].tolist() == [0, 0, 1]  # re-padded on the left
    g = sample(model, [[1, 5, 6], [1]], max_new_tokens=3, temperature=0.0)
    assert torch.equal(s.input_ids, g.input_ids)
    k1 = sample(model, [[1, 5, 6], [1]], max_new_tokens=3, top_k=1, generator=torch.Generator().manual_seed(0))
    assert torch.equal(k1.input_ids, g.input_ids)  # top-1 sampling is greedy
    with pytest.raises(ValueError, match="temperature"):
        sample(model, [[1]], temperature=-1.0)
    with pytest.raises(ValueError, match="max_new_tokens"):
        sample(model, [[1]], max_new_tokens=0)
