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


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    """An empty disk cache and memory cache for one test (its runs neither read nor leave the book's results)."""
    from rl4llm.cache import clear_memory_cache

    monkeypatch.setenv("RL4LLM_CACHE_DIR", str(tmp_path / "cache"))
    clear_memory_cache()
    yield


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
def test_rlhf_experiment_runs_on_a_local_bpe_gpt2(tmp_path, fresh_cache, bpe):
    from rl4llm.experiments import run_experiment

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


@pytest.mark.slow
def test_helpful_harmless_runs_on_a_local_bpe_gpt2_under_bf16(tmp_path, fresh_cache, bpe):
    """Section 5.6's frontier with ``--model FOLDER --mixed-precision bf16``: the two-objective reward reads the
    BPE texts, PPO trains under bfloat16 autocast, and the measured halves add up to the gold reward."""
    from rl4llm.experiments import run_experiment

    folder = save_random_gpt2(tmp_path / "small", bpe, n_layer=1, n_embd=32, n_head=2, n_positions=64)
    result = run_experiment(
        "helpful-harmless",
        model=str(folder),
        mixed_precision="bf16",
        harm_weights=(0.0, 1.0),
        seeds=(0,),
        iterations=1,
        n_eval=8,
        rm_train_pairs=40,
    )
    m = result.metrics
    for lam in (0, 1):
        helpful, harm, gold = (m[f"{s}_lam{lam}_seed0"] for s in ("helpful", "harm", "gold"))
        assert gold == pytest.approx(helpful - harm, abs=1e-9)  # S - P = R, the gold reward's own split
    assert np.isfinite([m["kl_lam0_seed0"], m["kl_lam1_seed0"]]).all()


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
    """Chapter 7's GRPO on a randomly initialised BPE GPT-2 (--model FOLDER): the prompts go through the BPE
    tokenizer, the verifier reads decoded text, and the run reports its throughput and evaluations."""
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


def _left_padded_batch(tok, prompts: list[list[int]], responses: list[list[int]]):
    """A batch laid out as :func:`rl4llm.rlhf.rollout.sample_prompted_sequences` lays it out: prompts left-padded
    to a common width ``P``, responses from column ``P``, right-padded; the per-action response mask starts at
    column ``P - 1``."""
    from rl4llm.rlhf.rollout import SequenceBatch

    width = max(map(len, prompts))
    total = width + max(map(len, responses))
    ids = torch.full((len(prompts), total), tok.pad_token_id)
    att = torch.zeros_like(ids)
    resp = torch.zeros_like(ids)
    for i, (p, r) in enumerate(zip(prompts, responses, strict=True)):
        ids[i, width - len(p) : width] = torch.tensor(p)
        ids[i, width : width + len(r)] = torch.tensor(r)
        att[i, width - len(p) : width + len(r)] = 1
        resp[i, width : width + len(r)] = 1
    return SequenceBatch(ids, att, resp[:, 1:].float())


def test_verifier_reward_reads_left_padded_bpe_prompts():
    """Chapter 7's PPO arm on a BPE tokenizer: prompts of different token lengths are left-padded, and the
    reward function finds each prompt and response from the batch itself (``prompt_length=None``)."""
    from rl4llm.lm.policies import TaskTokenizer
    from rl4llm.rlvr.analysis import verifier_reward_fn
    from rl4llm.rlvr.task import prompt_text, train_problems, worked_solution

    rng = np.random.default_rng(3)
    corpus = [prompt_text(q) + worked_solution(q) for q in train_problems(2000, rng)]
    tok = TaskTokenizer(build_bpe_tokenizer(vocab_size=300, texts=corpus))  # digits merge, as in GPT-2's BPE
    qs = train_problems(6, rng)
    prompts = [tok.encode(prompt_text(q)) for q in qs]
    assert len({len(p) for p in prompts}) > 1  # the prompts' token lengths differ
    # even rows answer with the worked solution (correct), odd rows append a wrong digit to it
    texts = [worked_solution(q) + ("" if i % 2 == 0 else "9") for i, q in enumerate(qs)]
    responses = [tok.encode(t, bos=False) + [tok.eos_token_id] for t in texts]
    batch = _left_padded_batch(tok, prompts, responses)
    assert verifier_reward_fn(tok, None)(batch).tolist() == [1.0, 0.0] * 3


@pytest.mark.parametrize("name", ["rlvr", "verifier-hacking", "length-bias", "pass-at-k", "grpo"])
def test_chapter_7_experiments_take_model_and_device(name):
    from rl4llm.config import ConfigError
    from rl4llm.experiments import config_from_overrides

    config = config_from_overrides(name)
    assert (config.model, config.device, config.mixed_precision) == ("reasoning", "cpu", "no")  # the book's path
    for field, bad in (("device", "tpu"), ("mixed_precision", "fp8")):
        with pytest.raises(ConfigError) as err:
            config_from_overrides(name, **{field: bad})
        assert err.value.field == field
    with pytest.raises(ValueError, match="model"):
        config_from_overrides(name, model="")


def test_chapter_7_cache_keys_name_only_what_leaves_the_book_path():
    """The book's cached chapter-7 runs keep their keys: the default model, device and precision add nothing."""
    from rl4llm.rlvr.analysis import where_key

    assert where_key("reasoning", "cpu", "no") == {}
    assert where_key("gpt2", "cpu", "bf16") == {"model": "gpt2", "mixed_precision": "bf16"}
    assert where_key("reasoning", "cuda", "no") == {"device": "cuda"}


def test_chapter_7_comparisons_refuse_several_processes(monkeypatch):
    import rl4llm.rlvr.analysis as analysis
    from rl4llm.distributed import Runtime

    two = Runtime(torch.device("cpu"), rank=0, world_size=2, shards=2)
    monkeypatch.setattr(analysis, "make_runtime", lambda device, precision: two)
    with pytest.raises(ValueError, match="world_size must be 1, got 2.*grpo experiment"):
        analysis.one_process_runtime("cpu", "no")
    monkeypatch.setattr(analysis, "make_runtime", lambda device, precision: None)
    assert analysis.one_process_runtime("cpu", "no") is None


def test_rlvr_comparison_runs_on_a_local_bpe_gpt2_under_bf16(tmp_path, fresh_cache, bpe):
    """``rlvr --model FOLDER --mixed-precision bf16``: the group method and the PPO arm (critic, left-padded BPE
    prompts) train from a random BPE GPT-2 under bfloat16 autocast on the CPU.

    A random model never answers right, so every GRPO group is all-wrong: every advantage is 0 and GRPO (no KL)
    leaves the weights exactly where they were, while PPO's critic baseline still gives nonzero advantages."""
    from rl4llm.experiments import run_experiment

    folder = save_random_gpt2(tmp_path / "gpt2", bpe, n_layer=1, n_embd=32, n_head=2, n_positions=128)
    result = run_experiment(
        "rlvr",
        model=str(folder),
        mixed_precision="bf16",
        methods=("grpo", "ppo"),
        n_seeds=1,
        iterations=2,
        group_size=2,
        prompts_per_iter=2,
        eval_every=2,
        eval_problems=2,
        final_problems=4,
        final_samples=1,
    )
    m = result.metrics
    for key in ("pass_at_1_sft", "pass_at_1_grpo", "pass_at_1_ppo"):
        assert 0.0 <= m[key] <= 1.0
    assert np.isfinite([m["reward_final_grpo"], m["reward_final_ppo"], m["kl_sft_final_ppo"]]).all()
    assert m["pass_at_1_sft"] == m["reward_final_grpo"] == 0.0 and m["zero_adv_frac_grpo"] == 1.0
    start = resolve_policy(str(folder))[0].state_dict()

    def moved(method: str) -> float:
        trained = result.artifacts["results"][method][0]["state_dict"]
        return max(float((trained[k].float() - start[k].float()).abs().max()) for k in start)

    assert moved("grpo") == 0.0 and moved("ppo") > 0.0
