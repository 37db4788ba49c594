"""Measurements behind chapter 5's comparisons: quality against generation length, and the LM's action space.

* :func:`quality_by_length`: gold reward and parse rate of a policy's samples, grouped by their length, and the
  per-position "still inside the language" curve of :func:`rl4llm.imitation.exposure.validity_by_position`
  (chapter 3's measure of exposure bias), so SFT and RLHF are compared the way chapter 3 compares BC and DAgger.
* :func:`action_space_profile`: at each position of the policy's own samples, how many of the vocabulary's
  tokens keep the text in the language, how much probability the policy puts on them, and how fast a policy
  that ignored the pretraining (uniform over the vocabulary) would leave the language.
* :func:`seed_flips`: where one seed orders two settings of a comparison differently from the settings' means.
* :func:`preference_curves` and :func:`heldout_scores`: the simulated labeller's preference probability, and the
  reward model's scores of held-out responses beside their gold reward (section 5.1's figures).

:mod:`rl4llm.rlhf.plots` draws what these functions return.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from rl4llm.lm.generation import position_ids_from_mask
from rl4llm.lm.language import parses, valid_next
from rl4llm.rlhf.rollout import decode_texts
from rl4llm.rlhf.stages import Stages, sample_many
from rl4llm.utils import check_positive_int

__all__ = [
    "quality_by_length",
    "action_space_profile",
    "sample_table",
    "kl_estimates",
    "best_of_n_path",
    "preference_curves",
    "heldout_scores",
    "seed_flips",
]


@torch.no_grad()
def quality_by_length(
    policies: Mapping[str, torch.nn.Module],
    stages: Stages,
    n: int = 1024,
    seed: int = 2024,
    edges: Sequence[int] = (1, 7, 9, 11, 13, 15, 29),
    horizon: int = 20,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Sample ``n`` responses from each policy; group them by length (number of words, ``<eos>`` included).

    Returns ``(rows, validity)``: one row per policy and length bin ``[edges[i], edges[i+1])`` with ``policy``,
    ``length`` (the bin's mean length), ``n``, ``gold`` (SFT standard deviations) and ``parse_rate``; and, per
    policy, the :class:`~rl4llm.imitation.exposure.ValidityCurves` of its samples over ``horizon`` words.
    """
    from rl4llm.imitation.exposure import validity_by_position

    n = check_positive_int("n", n)
    horizon = check_positive_int("horizon", horizon)
    if len(edges) < 2 or any(b <= a for a, b in zip(edges, edges[1:])):
        raise ValueError(f"edges must be increasing with at least two values, got {list(edges)}")
    rows: list[dict[str, Any]] = []
    validity: dict[str, Any] = {}
    for name, policy in policies.items():
        batch = sample_many(policy, n, stages.config.max_new_tokens, stages.ids, torch.Generator().manual_seed(seed))
        texts = decode_texts(stages.tokenizer, batch)
        lengths = np.array([len(t.split()) for t in texts])
        gold = stages.gold(batch)
        ok = np.array([parses(t) for t in texts], dtype=float)
        for lo, hi in zip(edges, edges[1:]):
            m = (lengths >= lo) & (lengths < hi)
            if m.sum() >= 10:  # too few texts make a meaningless point
                rows.append(
                    {
                        "policy": name,
                        "length": float(lengths[m].mean()),
                        "n": int(m.sum()),
                        "gold": float(gold[m].mean()),
                        "parse_rate": float(ok[m].mean()),
                    }
                )
        validity[name] = validity_by_position(texts, horizon)
    return rows, validity


@torch.no_grad()
def action_space_profile(
    policy: torch.nn.Module, stages: Stages, n: int = 256, seed: int = 7, horizon: int = 16
) -> dict[str, np.ndarray]:
    """Per position :math:`t = 1..H` of the policy's own grammatical prefixes:

    * ``valid``: mean number of tokens that keep the text in the language, :math:`|\\mathcal V_t|`;
    * ``policy_mass``: mean probability the policy puts on them, :math:`\\pi(\\mathcal V_t \\mid s_t)`;
    * ``policy_inside``: the policy's probability of having stayed in the language for :math:`t` steps along
      these paths, :math:`\\prod_{s \\le t} \\pi(\\mathcal V_s \\mid s_s)` (geometric mean over the prefixes);
    * ``uniform_inside``: probability that a uniform policy over the vocabulary (size :math:`|\\mathcal A|`) is
      still inside the language after :math:`t` tokens along these paths, :math:`\\prod_{s \\le t}|\\mathcal V_s| /
      |\\mathcal A|` (averaged over the prefixes in log space, i.e. a geometric mean);
    * ``count``: how many prefixes reached position :math:`t`.
    """
    n = check_positive_int("n", n)
    horizon = check_positive_int("horizon", horizon)
    tok = stages.tokenizer
    vocab = len(tok)
    batch = sample_many(policy, n, stages.config.max_new_tokens, stages.ids, torch.Generator().manual_seed(seed))
    logits = policy(
        input_ids=batch.input_ids,
        attention_mask=batch.attention_mask,
        position_ids=position_ids_from_mask(batch.attention_mask),
    ).logits.float()
    probs = torch.softmax(logits, -1)
    id_of = tok.get_vocab()
    valid = np.zeros(horizon)
    mass = np.zeros(horizon)
    log_uniform = np.zeros(horizon)
    log_policy = np.zeros(horizon)
    count = np.zeros(horizon)
    for i in range(len(batch)):
        ids = batch.input_ids[i, 1 : int(batch.attention_mask[i].sum())].tolist()
        words = tok.convert_ids_to_tokens(ids)
        log_stay, log_pol = 0.0, 0.0
        for t in range(min(horizon, len(words))):
            allowed = valid_next(words[:t])
            if not allowed:  # the prefix has already left the language
                break
            idx = [id_of[w] for w in allowed]
            log_stay += np.log(len(idx) / vocab)
            valid[t] += len(idx)
            m = float(probs[i, t, idx].sum())  # logits at column t predict the token after the prefix
            log_pol += np.log(max(m, 1e-300))
            mass[t] += m
            log_uniform[t] += log_stay
            log_policy[t] += log_pol
            count[t] += 1
    seen = np.maximum(count, 1)
    return {
        "valid": valid / seen,
        "policy_mass": mass / seen,
        "policy_inside": np.exp(log_policy / seen),
        "uniform_inside": np.exp(log_uniform / seen),
        "count": count,
        "vocab_size": np.array(vocab),
    }


@torch.no_grad()
def sample_table(policies: Mapping[str, torch.nn.Module], stages: Stages, n: int = 5, seed: int = 11):
    """A ``pandas.DataFrame`` of ``n`` samples per policy with their gold and proxy rewards (SFT std devs)."""
    import pandas as pd

    n = check_positive_int("n", n)
    rows = []
    for name, policy in policies.items():
        batch = sample_many(policy, n, stages.config.max_new_tokens, stages.ids, torch.Generator().manual_seed(seed))
        for text, g, p in zip(decode_texts(stages.tokenizer, batch), stages.gold(batch), stages.proxy(batch)):
            rows.append({"policy": name, "text": text, "gold": round(float(g), 2), "proxy": round(float(p), 2)})
    return pd.DataFrame(rows)


@torch.no_grad()
def kl_estimates(
    policy: torch.nn.Module, reference: torch.nn.Module, stages: Stages, n: int = 512, seed: int = 3
) -> dict[str, np.ndarray]:
    """Per-sequence estimates of :math:`\\mathrm{KL}(\\pi\\|\\pi_{ref})` on ``n`` samples of ``policy``.

    ``k1``, ``k2``, ``k3``: Schulman's estimators (:mod:`rl4llm.rlhf.kl`) of the sampled tokens, summed over each
    response. ``exact``: the exact KL of the next-token distributions at every visited prefix, summed,
    :math:`\\sum_t \\sum_a \\pi(a \\mid s_t) \\log \\frac{\\pi(a \\mid s_t)}{\\pi_{ref}(a \\mid s_t)}`; its mean over
    samples is an unbiased estimate of the sequence-level KL with the least variance of the four (it averages over
    the token at each step instead of using the sampled one).
    """
    from rl4llm.rlhf.kl import kl_k1, kl_k2, kl_k3

    n = check_positive_int("n", n)
    batch = sample_many(policy, n, stages.config.max_new_tokens, stages.ids, torch.Generator().manual_seed(seed))
    mask = batch.response_mask
    pos = position_ids_from_mask(batch.attention_mask)
    lp = torch.log_softmax(
        policy(input_ids=batch.input_ids, attention_mask=batch.attention_mask, position_ids=pos).logits[:, :-1].float(),
        -1,
    )
    lr = torch.log_softmax(
        reference(input_ids=batch.input_ids, attention_mask=batch.attention_mask, position_ids=pos)
        .logits[:, :-1]
        .float(),
        -1,
    )
    tokens = batch.input_ids[:, 1:, None]
    logp, ref = lp.gather(-1, tokens).squeeze(-1), lr.gather(-1, tokens).squeeze(-1)
    exact = (lp.exp() * (lp - lr)).sum(-1)
    out = {name: (fn(logp, ref) * mask).sum(1).numpy() for name, fn in (("k1", kl_k1), ("k2", kl_k2), ("k3", kl_k3))}
    out["exact"] = (exact * mask).sum(1).numpy()
    return out


@torch.no_grad()
def best_of_n_path(
    stages: Stages, pool: int = 2048, ns: Sequence[int] = (1, 2, 4, 8, 16, 32, 64, 128, 256), seed: int = 8
) -> list[dict[str, float]]:
    """Best-of-``n`` from the SFT policy against the stages' reward model: rows ``n``, ``kl`` (analytic),
    ``proxy`` and ``gold`` (SFT standard deviations), from one pool of ``pool`` SFT samples."""
    from rl4llm.rlhf.best_of_n import best_of_n_curve

    pool = check_positive_int("pool", pool)
    batch = sample_many(
        stages.sft_model, pool, stages.config.max_new_tokens, stages.ids, torch.Generator().manual_seed(seed)
    )
    return best_of_n_curve(stages.proxy(batch).numpy(), stages.gold(batch), list(ns))


def preference_curves(
    temperatures: Sequence[float] = (0.05, 0.1, 0.3, 1.0),
    label_noise: float = 0.05,
    gold_difference: np.ndarray | None = None,
) -> dict[str, Any]:
    """The simulated labeller's :math:`P(y_1 \\succ y_2)` (:func:`rl4llm.rlhf.preferences.preference_probability`)
    against the gold difference :math:`g(y_1) - g(y_2)` (default 301 points in :math:`[-1.5, 1.5]`), per temperature.

    Returns ``{"gold_difference": [N], "label_noise": float, "probability": {temperature: [N]}}``.
    """
    from rl4llm.rlhf.preferences import preference_probability

    d = np.linspace(-1.5, 1.5, 301) if gold_difference is None else np.asarray(gold_difference, dtype=float)
    probability = {tau: preference_probability(d, np.zeros_like(d), tau, label_noise) for tau in temperatures}
    return {"gold_difference": d, "label_noise": label_noise, "probability": probability}


@torch.no_grad()
def heldout_scores(stages: Stages) -> dict[str, np.ndarray]:
    """The reward model's score (proxy) and the gold reward, both in SFT standard deviations, of the held-out
    preference pairs' responses (chosen ones first, then rejected ones): ``{"gold": [2n], "proxy": [2n]}``."""
    held_c, held_r = stages.heldout_pairs()
    start = stages.config.n_pairs - stages.config.heldout_pairs
    proxy = np.concatenate([stages.proxy(held_c).numpy(), stages.proxy(held_r).numpy()])
    gold = stages.gold_z(np.concatenate([stages.gold_chosen[start:], stages.gold_rejected[start:]]))
    return {"gold": gold, "proxy": proxy}


def seed_flips(values: Mapping[Any, Sequence[float]]) -> list[dict[str, Any]]:
    r"""The seeds that reverse an ordering of a comparison's settings.

    ``values`` maps each setting to one measurement per seed, the same seeds in the same order for every setting.
    For each pair of settings whose means differ, :math:`\bar v_a > \bar v_b`, the seeds :math:`i` with
    :math:`v_{a,i} \le v_{b,i}` order them the other way (or not at all). Returns one row per pair that some seed
    flips, ``{"higher": a, "lower": b, "seeds": [i, ...]}`` (seed positions, from 0), pairs in order of ``a``'s
    mean, then ``b``'s, highest first; an empty list when every seed agrees with the means.
    """
    if not values:
        raise ValueError("values must hold at least one setting")
    arrays = {k: np.asarray(v, dtype=float).ravel() for k, v in values.items()}
    sizes = {a.size for a in arrays.values()}
    if len(sizes) != 1 or 0 in sizes:
        raise ValueError(f"values must hold the same, non-zero number of seeds per setting, got sizes {sorted(sizes)}")
    order = sorted(arrays, key=lambda k: -arrays[k].mean())
    rows = []
    for i, a in enumerate(order):
        for b in order[i + 1 :]:
            if arrays[a].mean() == arrays[b].mean():
                continue
            seeds = [int(s) for s in np.flatnonzero(arrays[a] <= arrays[b])]
            if seeds:
                rows.append({"higher": a, "lower": b, "seeds": seeds})
    return rows
