"""Chapter 5 shared stages: reward model, cached SFT -> preferences -> RM pipeline, evaluation in SFT units."""

import numpy as np
import pytest
import torch

from rl4llm.cache import clear_memory_cache
from rl4llm.lm import load_tiny_gpt2
from rl4llm.lm.language import gold_breakdown
from rl4llm.lm.model import fuse_gelu
from rl4llm.rlhf.evaluation import evaluate_against_gold
from rl4llm.rlhf.reward_model import RewardModel, ValueModel, last_token_index, train_reward_model
from rl4llm.rlhf.rollout import encode_texts, response_logprobs
from rl4llm.rlhf.stages import StagesConfig, prepare_stages

TINY = dict(
    n_demos=64, sft_steps=5, n_pairs=60, heldout_pairs=20, rm_steps=10, rm_batch_size=16, n_eval=32, max_new_tokens=20
)


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("RL4LLM_CACHE_DIR", str(tmp_path))
    clear_memory_cache()
    yield tmp_path
    clear_memory_cache()


def test_reward_model_reads_the_last_real_token_whatever_the_padding():
    model, tok = load_tiny_gpt2()
    torch.manual_seed(0)
    rm = RewardModel.from_lm(model)
    texts = ["the phone is great . <eos>", "i love this lamp , but the price was very bad . <eos>"]
    batch = encode_texts(tok, texts, 28)
    assert last_token_index(batch.attention_mask).tolist() == [6, 13]
    together = rm.score(batch)
    alone = torch.cat([rm.score(encode_texts(tok, [t], 28)) for t in texts])
    assert torch.allclose(together, alone, atol=1e-5)
    # normalisation: mean 0, standard deviation 1 on the given batch
    rm.set_normalisation(batch)
    s = rm.score(batch)
    assert s.mean().item() == pytest.approx(0.0, abs=1e-5) and s.std().item() == pytest.approx(1.0, abs=1e-5)
    # the critic starts as the normalised reward model, read at every prefix
    critic = ValueModel.from_reward_model(rm)
    h = rm.hidden(batch.input_ids, batch.attention_mask)
    assert torch.allclose(critic.head(h).squeeze(-1), (rm.head(h).squeeze(-1) - rm.offset) / rm.scale, atol=1e-5)
    assert critic.values(batch).shape == batch.response_mask.shape
    assert all(p.requires_grad for p in critic.parameters())


def test_reward_model_trains_above_chance_on_a_tiny_run():
    model, tok = load_tiny_gpt2()
    rng = np.random.default_rng(0)
    pos, neg = (
        ["great", "excellent", "solid", "lovely", "superb", "sleek"],
        ["bad", "awful", "poor", "flimsy", "ugly", "dull"],
    )
    nouns = ["phone", "lamp", "kettle", "case", "mouse", "desk", "fan", "bag"]

    def pairs(n):
        c = [f"the {rng.choice(nouns)} is {rng.choice(pos)} . <eos>" for _ in range(n)]
        r = [f"the {rng.choice(nouns)} is {rng.choice(neg)} . <eos>" for _ in range(n)]
        return encode_texts(tok, c, 28), encode_texts(tok, r, 28)

    train_c, train_r = pairs(64)
    test_c, test_r = pairs(64)
    torch.manual_seed(0)
    rm = RewardModel.from_lm(model)
    before = float((rm.score(test_c) > rm.score(test_r)).float().mean())
    log = train_reward_model(rm, train_c, train_r, steps=40, batch_size=16, lr=1e-3, seed=0)
    after = float((rm.score(test_c) > rm.score(test_r)).float().mean())
    assert after >= 0.9 and after > before
    assert log.loss[-1] < np.log(2)
    with pytest.raises(ValueError, match="same, non-zero"):
        train_reward_model(rm, train_c, test_r.index(slice(0, 3)), steps=1)


def test_gold_breakdown_names_each_penalty():
    parts = gold_breakdown(["great great great great <eos>", "the phone is great .", "the phone is great . <eos>"])
    assert parts["sentiment"].tolist() == [1.0, 0.5, 0.5]
    assert parts["ungrammatical"].tolist() == [1.0, 1.0, 0.0]
    assert parts["unfinished"].tolist() == [0.0, 1.0, 0.0]
    assert parts["repeats"].tolist() == [3.0, 0.0, 0.0]
    assert parts["gold"] == pytest.approx([-0.75, -1.0, 0.5])


def test_fused_gelu_matches_the_original_model():
    model, tok = load_tiny_gpt2()
    fast = fuse_gelu(load_tiny_gpt2()[0])
    batch = encode_texts(tok, ["the phone is great . <eos>", "it works fast ! <eos>"], 28)
    assert torch.allclose(response_logprobs(model, batch), response_logprobs(fast, batch), atol=1e-5)


def test_stages_run_cache_and_put_the_sft_policy_at_zero(cache):
    config = StagesConfig(**TINY)
    stages = prepare_stages(config)
    assert stages.stats["from_cache"] == 0.0
    assert len(stages.chosen) == 60 and stages.n_train == 40
    # evaluation uses the draws that define the SFT normalisation: SFT is exactly 0 in gold and ~0 in proxy
    ev = evaluate_against_gold(stages.sft_model, stages)
    assert ev["gold"] == pytest.approx(0.0, abs=1e-12) and ev["proxy"] == pytest.approx(0.0, abs=1e-5)
    assert ev["kl"] == pytest.approx(0.0, abs=1e-5)
    assert stages.gold_z(stages.gold_mean + stages.gold_std) == pytest.approx(1.0)
    # labels are consistent with the stored gold rewards of the pairs' responses
    from rl4llm.rlhf.stages import gold_of

    assert np.allclose(gold_of(stages.tokenizer, stages.chosen), stages.gold_chosen)
    # a new policy is a trainable copy; the stages' models stay frozen
    policy = stages.new_policy()
    assert all(p.requires_grad for p in policy.parameters())
    assert not any(p.requires_grad for p in stages.sft_model.parameters())
    # the disk cache gives the same models and numbers
    clear_memory_cache()
    again = prepare_stages(config)
    assert again.stats["from_cache"] == 1.0
    for a, b in zip(stages.reward_model.state_dict().values(), again.reward_model.state_dict().values()):
        assert torch.equal(a, b)
    assert again.stats["rm_accuracy"] == stages.stats["rm_accuracy"]
    # a reward model on fewer pairs reuses the SFT and preference stage (same data key)
    fewer = StagesConfig(**{**TINY, "rm_train_pairs": 10})
    assert fewer.data_key() == config.data_key() and fewer.key() != config.key()
    assert len(list(cache.glob("rlhf/data-*.pt"))) == 1  # through rl4llm.cache, under its folder
    assert len(list(cache.glob("rlhf/rm-*.pt"))) == 1


def test_stages_config_validation():
    with pytest.raises(ValueError, match="heldout_pairs"):
        StagesConfig(n_pairs=10, heldout_pairs=10)
    with pytest.raises(ValueError, match="rm_train_pairs"):
        StagesConfig(n_pairs=100, heldout_pairs=20, rm_train_pairs=90)
    with pytest.raises(ValueError, match="sft_positivity"):
        StagesConfig(sft_positivity=1.5)
    with pytest.raises(TypeError, match="config"):
        prepare_stages({"seed": 0})
