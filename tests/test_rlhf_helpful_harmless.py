"""Section 5.6: the helpful/harm split of the gold reward, the two-objective PPO reward and the frontier's reading."""

import numpy as np
import pytest
import torch

from rl4llm.experiments import config_from_overrides
from rl4llm.experiments.helpful_harmless import (
    frontier_points,
    helpful_and_harm,
    plot_helpful_harmless,
    two_objective_reward,
)
from rl4llm.lm import gold_reward


def test_helpful_minus_harm_is_the_gold_reward_with_hand_computed_parts():
    texts = [
        "the phone is great . <eos>",  # S = 0.5, no penalty
        "great great great great <eos>",  # S = 1 (clipped), U = 1, D = 3: P = 1 + 0.75
        "the phone is great .",  # S = 0.5, cut off: not in the language either, P = 1 + 0.5
    ]
    helpful, harm = helpful_and_harm(texts)
    assert helpful.tolist() == pytest.approx([0.5, 1.0, 0.5])
    assert harm.tolist() == pytest.approx([0.0, 1.75, 1.5])
    assert (helpful - harm).tolist() == pytest.approx([gold_reward(t) for t in texts])


def test_two_objective_reward_weights_the_harm():
    from types import SimpleNamespace

    from rl4llm.lm import build_tokenizer
    from rl4llm.rlhf.rollout import SequenceBatch

    tok = build_tokenizer()
    v = tok.get_vocab()
    texts = [["great", "great", "<eos>"], ["the", "phone", "is"]]  # repetitive; unfinished and broken
    ids = torch.tensor([[v["<bos>"]] + [v[w] for w in t] for t in texts])
    batch = SequenceBatch(input_ids=ids, attention_mask=torch.ones_like(ids), response_mask=torch.ones(2, 3))
    helpful, harm = helpful_and_harm([" ".join(t) for t in texts])
    assert harm.tolist() == pytest.approx([1.25, 1.5])  # U + 0.25 D; U + 0.5 E
    stages = SimpleNamespace(tokenizer=tok, gold_std=0.5)
    for lam in (0.0, 1.0, 4.0):
        r = two_objective_reward(stages, lam)(batch)
        assert r.numpy() == pytest.approx((helpful - lam * harm) / 0.5, abs=1e-6)
    with pytest.raises(ValueError, match="harm_weight"):
        two_objective_reward(stages, -1.0)


def test_frontier_is_read_back_from_flat_metrics_and_drawn():
    lams, seeds = (0.0, 1.0), (0, 1)
    metrics = {"sft_helpful": 0.1, "sft_harm": 0.01}
    for i, lam in enumerate(lams):
        for s in seeds:
            for stat in ("helpful", "harm", "kl", "gold"):
                metrics[f"{stat}_lam{lam:g}_seed{s}"] = i + s / 10
    pts = frontier_points(metrics, lams, seeds)
    assert pts["helpful"].shape == (2, 2) and pts["kl"][1].tolist() == [1.0, 1.1]
    fig = plot_helpful_harmless(metrics, lams, seeds)
    assert all(ax.get_xlabel() and ax.get_ylabel() for ax in fig.axes)


@pytest.mark.parametrize(
    "overrides, field", [(dict(harm_weights=()), "harm_weights"), (dict(seeds=(1, 1)), "harm_weights")]
)
def test_config_rejects_empty_or_repeated_values(overrides, field):
    with pytest.raises(ValueError, match=field):
        config_from_overrides("helpful-harmless", **overrides)


def test_stages_keep_their_own_seed():
    from rl4llm.rlhf.stages import StagesConfig, stages_config_from

    cfg = config_from_overrides("helpful-harmless", seed=3)
    assert stages_config_from(cfg).rm_train_pairs == StagesConfig().rm_train_pairs
    assert cfg.stage_seed == 0 and np.array_equal(cfg.seeds, (0, 1, 2))
