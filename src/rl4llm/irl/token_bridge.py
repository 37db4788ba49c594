"""RLHF as online inverse RL on the token MDP (book section 4.3).

The two-step recipe of inverse RL, on a language model whose dynamics ("append the token") are known:

1. **Learn a reward from demonstrations.** A linear reward on the n-gram counts of a text,
   :math:`r_\\psi(y) = \\psi^\\top \\phi(y)` (:class:`NGramReward`), is fitted as a discriminator between the
   demonstrations (label 1) and texts sampled from the behaviour-cloned policy (label 0), with the same logistic
   loss as GAIL (:func:`rl4llm.irl.adversarial.discriminator_loss`). Its logit estimates the log density ratio
   :math:`\\log p_E(y) / \\pi_{\\text{ref}}(y)` (plus a constant), which is exactly the reward MaxEnt IRL assigns to
   the demonstrator when the reference policy is the base measure: :math:`p_E(y) \\propto \\pi_{\\text{ref}}(y)\\,
   e^{r(y)}`.
2. **Optimise it online.** Sample texts from the current policy (no environment model is needed: the
   simulator is the model itself), score them, and improve the policy by a policy gradient on the KL-regularised
   objective of RLHF (:func:`optimise_reward`):

   .. math::
      J(\\theta) = \\mathbb E_{y \\sim \\pi_\\theta}\\big[r_\\psi(y)\\big] - \\beta\\,
                   \\mathrm{KL}\\big(\\pi_\\theta \\,\\|\\, \\pi_{\\text{ref}}\\big),

   whose maximiser is :math:`\\pi^* \\propto \\pi_{\\text{ref}}\\, e^{r_\\psi / \\beta}`. With :math:`\\beta = 1` and a
   perfect discriminator this is the demonstrator's distribution itself.

Behaviour cloning (:func:`sft`, supervised fine-tuning) is trained only on the demonstrators' prefixes; the
policy of step 2 is trained on the prefixes it writes itself. Chapter 3's
:func:`rl4llm.imitation.exposure.validity_by_position` measures the difference the survey's takeaway 2 is about,
the fraction of samples still inside the language after each number of generated words; :func:`error_hazard`
adds the per-word mistake rate given a clean prefix, which does not improve merely because a policy writes shorter
texts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from rl4llm.config import param, validate
from rl4llm.irl.adversarial import discriminator_loss
from rl4llm.lm.generation import sample, token_logprobs
from rl4llm.lm.language import EOS, valid_next, words_of
from rl4llm.rl.losses import ppo_clip_loss
from rl4llm.utils import check_positive_int, check_range, progress

__all__ = ["error_hazard", "sft", "NGramReward", "fit_text_reward", "RLConfig", "optimise_reward", "sample_responses"]


def error_hazard(texts: Sequence[str], horizon: int, min_count: int = 20) -> np.ndarray:
    """The probability of a *first* mistake at word ``t``, among texts still writing and still valid there.

    .. math::  h_t = \\frac{\\#\\{\\text{texts whose first invalid word is word } t\\}}
                       {\\#\\{\\text{texts valid up to } t-1 \\text{ that write a word } t\\}}

    Unlike the fraction still inside the language (:func:`rl4llm.imitation.exposure.validity_by_position`), this
    does not improve when a policy simply writes shorter texts: it
    asks how often each word the policy does write is a mistake, given a clean prefix. Behaviour cloning's
    compounding errors show as a hazard that grows along the text. Positions with fewer than ``min_count``
    texts at risk are ``nan``. Returns ``[horizon]``.
    """
    horizon = check_positive_int("horizon", horizon)
    min_count = check_positive_int("min_count", min_count)
    if isinstance(texts, str) or len(texts) == 0:
        raise ValueError("texts must be a non-empty sequence of strings")
    at_risk = np.zeros(horizon)
    errors = np.zeros(horizon)
    for text in texts:
        words = words_of(text)
        for t in range(min(horizon, len(words))):
            at_risk[t] += 1
            if words[t] not in valid_next(words[:t]):
                errors[t] += 1
                break
            if words[t] == EOS:
                break
    with np.errstate(invalid="ignore", divide="ignore"):
        hazard = errors / at_risk
    hazard[at_risk < min_count] = np.nan
    return hazard


def _lm_loss(model, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1]
    targets = ids[:, 1:].masked_fill(mask[:, 1:] == 0, -100)
    return nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1), ignore_index=-100
    )


def sft(
    model,
    tokenizer,
    texts: Sequence[str],
    epochs: int = 30,
    lr: float = 3e-3,
    batch_size: int = 32,
    weight_decay: float = 0.01,
    seed: int = 0,
    desc: str = "SFT",
) -> list[float]:
    """Behaviour cloning of a language model: supervised fine-tuning on demonstrations, in place.

    .. math::  \\min_\\theta\\; -\\frac{1}{\\sum_i |y^i|} \\sum_i \\sum_t \\log \\pi_\\theta(y^i_t \\mid y^i_{<t})

    (AdamW, shuffled minibatches). Returns the mean loss of each epoch; leaves the model in eval mode.
    """
    if isinstance(texts, str) or len(texts) == 0:
        raise ValueError("texts must be a non-empty sequence of strings")
    epochs = check_positive_int("epochs", epochs)
    lr = check_range("lr", lr, 0.0, None, low_inclusive=False)
    batch_size = check_positive_int("batch_size", batch_size)
    weight_decay = check_range("weight_decay", weight_decay, 0.0, None)
    enc = tokenizer(list(texts), padding=True, return_tensors="pt")
    ids, mask = enc["input_ids"], enc["attention_mask"]
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    gen = torch.Generator().manual_seed(check_positive_int("seed", seed, 0))
    model.train()
    losses = []
    for _ in progress(range(epochs), desc=desc):
        perm = torch.randperm(ids.shape[0], generator=gen)
        total, n = 0.0, 0
        for start in range(0, ids.shape[0], batch_size):
            idx = perm[start : start + batch_size]
            loss = _lm_loss(model, ids[idx], mask[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            n += len(idx)
        losses.append(total / n)
    model.eval()
    return losses


class NGramReward(nn.Module):
    """A linear reward on unigram and bigram counts: :math:`r_\\psi(y) = b + \\sum_{n\\text{-grams } g \\in y} \\psi_g`.

    The text is read as token ids ``<bos> y_1 ... y_n``; its features are the unigrams :math:`y_t`, the bigrams
    :math:`(y_{t-1}, y_t)` (``<bos>`` included) and one "no end" feature for a text that does not finish with
    ``<eos>``. Bigrams see which word may follow which, so the reward can learn the grammar's local rules as well
    as which words the demonstrator likes.
    """

    def __init__(self, vocab_size: int, bos_token_id: int, eos_token_id: int) -> None:
        super().__init__()
        self.vocab_size = check_positive_int("vocab_size", vocab_size)
        self.bos, self.eos = int(bos_token_id), int(eos_token_id)
        self.n_features = vocab_size + vocab_size * vocab_size + 1
        self.weights = nn.EmbeddingBag(self.n_features, 1, mode="sum")
        nn.init.zeros_(self.weights.weight)
        self.bias = nn.Parameter(torch.zeros(()))

    def feature_ids(self, responses: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Flat feature ids and per-text offsets for ``nn.EmbeddingBag``."""
        flat: list[int] = []
        offsets: list[int] = []
        v = self.vocab_size
        for tokens in responses:
            offsets.append(len(flat))
            prev = self.bos
            for tok in tokens:
                tok = int(tok)
                if not 0 <= tok < v:
                    raise ValueError(f"token ids must be in [0, {v - 1}], got {tok}")
                flat += [tok, v + prev * v + tok]
                prev = tok
            if len(tokens) == 0 or int(tokens[-1]) != self.eos:
                flat.append(self.n_features - 1)
        return torch.as_tensor(flat, dtype=torch.long), torch.as_tensor(offsets, dtype=torch.long)

    def forward(self, responses: Sequence[Sequence[int]]) -> torch.Tensor:
        """``[B]`` rewards of the responses (token-id lists without ``<bos>``)."""
        if len(responses) == 0:
            raise ValueError("responses must not be empty")
        flat, offsets = self.feature_ids(responses)
        return self.weights(flat, offsets).squeeze(-1) + self.bias


def fit_text_reward(
    demo_responses: Sequence[Sequence[int]],
    policy_responses: Sequence[Sequence[int]],
    vocab_size: int,
    bos_token_id: int,
    eos_token_id: int,
    epochs: int = 200,
    lr: float = 0.05,
    l2: float = 1e-3,
    model: NGramReward | None = None,
) -> NGramReward:
    """Fit an :class:`NGramReward` as the discriminator between demonstrations and policy samples.

    Full-batch Adam on :func:`~rl4llm.irl.adversarial.discriminator_loss` (demonstrations = "expert") plus
    ``l2`` times the sum of squared weights; the objective is convex, so the result does not depend on a seed.
    Pass ``model`` to continue training an existing reward on new policy samples (the adversarial refit).
    """
    if len(demo_responses) == 0 or len(policy_responses) == 0:
        raise ValueError("demo_responses and policy_responses must not be empty")
    epochs = check_positive_int("epochs", epochs)
    lr = check_range("lr", lr, 0.0, None, low_inclusive=False)
    l2 = check_range("l2", l2, 0.0, None)
    if model is None:
        model = NGramReward(vocab_size, bos_token_id, eos_token_id)
    elif not isinstance(model, NGramReward):
        raise TypeError(f"model must be an NGramReward or None, got {type(model).__name__}")
    demo_feats = model.feature_ids(demo_responses)
    pol_feats = model.feature_ids(policy_responses)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in progress(range(epochs), desc="reward model"):
        f_e = model.weights(*demo_feats).squeeze(-1) + model.bias
        f_p = model.weights(*pol_feats).squeeze(-1) + model.bias
        loss = discriminator_loss(f_e, f_p) + l2 * model.weights.weight.pow(2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    return model


def sample_responses(
    model, tokenizer, n: int, max_new_tokens: int, generator: torch.Generator, temperature: float = 1.0
):
    """``n`` unconditional samples (prompt ``<bos>``): the :class:`~rl4llm.lm.Samples` batch and, per row, the
    generated token ids."""
    prompt = [tokenizer.bos_token_id]
    s = sample(
        model,
        [prompt] * n,
        max_new_tokens=max_new_tokens,
        temperature=temperature,
        generator=generator,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return s, s.responses


@dataclass
class RLConfig:
    """Online policy optimisation of a learned text reward (:func:`optimise_reward`)."""

    iterations: int = param(60, low=1, help="sampling-and-update rounds")
    batch_size: int = param(64, low=2, help="texts sampled per round")
    epochs: int = param(2, low=1, help="PPO epochs over each batch (clipped surrogate, rl4llm.rl.ppo_clip_loss)")
    lr: float = param(1e-3, low=0.0, low_inclusive=False, help="Adam step size")
    kl_coef: float = param(1.0, low=0.0, help="beta, the weight of the KL penalty to the reference policy")
    clip_eps: float = param(0.2, low=0.0, low_inclusive=False, help="PPO's clip range")
    max_new_tokens: int = param(24, low=1, help="horizon of the token MDP")

    def __post_init__(self) -> None:
        validate(self)


def optimise_reward(
    policy,
    reference,
    tokenizer,
    reward_fn: Callable[[list[list[int]]], torch.Tensor],
    config: RLConfig | None = None,
    seed: int = 0,
    log_fn: Callable[[list[list[int]]], dict[str, float]] | None = None,
    on_samples: Callable[[int, list[list[int]]], None] | None = None,
) -> list[dict[str, float]]:
    """Maximise :math:`\\mathbb E_{\\pi_\\theta}[r(y)] - \\beta\\,\\mathrm{KL}(\\pi_\\theta\\|\\pi_{\\text{ref}})` online, in place.

    Each round samples ``batch_size`` texts from the current policy, scores each with
    :math:`R(y) = r(y) - \\beta \\sum_t [\\log\\pi_\\theta(y_t|y_{<t}) - \\log\\pi_{\\text{ref}}(y_t|y_{<t})]`, uses the
    leave-one-out baseline :math:`A(y_i) = R(y_i) - \\frac{1}{B-1}\\sum_{j \\ne i} R(y_j)` as every token's advantage,
    and takes ``epochs`` Adam steps on PPO's clipped surrogate over the batch's tokens. No value network and no
    environment model: the transition "append the token" is the policy's own sampling.

    Args:
        policy: the causal LM to train (modified in place).
        reference: the frozen reference LM of the KL penalty.
        reward_fn: ``reward_fn(responses) -> [B]``, responses as lists of generated token ids.
        log_fn: optional extra statistics of each round's responses (e.g. their gold reward).
        on_samples: optional ``on_samples(iteration, responses)`` called after each round's sampling and before its
            scoring, e.g. to update the reward on the policy's fresh samples (adversarial IRL).

    Returns:
        One dict per round: ``iteration``, ``learned_reward`` (mean :math:`r`), ``kl`` (mean summed log-ratio),
        ``length`` and whatever ``log_fn`` adds.
    """
    config = RLConfig() if config is None else config
    if not isinstance(config, RLConfig):
        raise ValueError(f"config must be an RLConfig, got {type(config).__name__}")
    gen = torch.Generator().manual_seed(check_positive_int("seed", seed, 0))
    opt = torch.optim.Adam(policy.parameters(), lr=config.lr)
    reference.eval()
    curves: list[dict[str, float]] = []
    for it in progress(range(config.iterations), desc="online RL"):
        policy.eval()
        batch, responses = sample_responses(policy, tokenizer, config.batch_size, config.max_new_tokens, gen)
        if on_samples is not None:
            on_samples(it, responses)
        ids, attn = batch.input_ids, batch.attention_mask
        resp = batch.response_mask.bool()
        with torch.no_grad():
            old_lp = token_logprobs(policy, ids, attn)
            ref_lp = token_logprobs(reference, ids, attn)
            reward = torch.as_tensor(reward_fn(responses), dtype=torch.float32).reshape(-1)
        kl = ((old_lp - ref_lp) * resp).sum(-1)
        score = reward - config.kl_coef * kl
        n = score.shape[0]
        advantage = score - (score.sum() - score) / (n - 1)
        token_adv = advantage[:, None].expand_as(old_lp)
        policy.train()
        for _ in range(config.epochs):
            new_lp = token_logprobs(policy, ids, attn)
            loss = ppo_clip_loss(new_lp[resp], old_lp[resp], token_adv[resp], config.clip_eps)
            opt.zero_grad()
            loss.backward()
            opt.step()
        row = {
            "iteration": it + 1,
            "learned_reward": float(reward.mean()),
            "kl": float(kl.mean()),
            "length": float(resp.sum(-1).float().mean()),
        }
        if log_fn is not None:
            row.update(log_fn(responses))
        curves.append(row)
    policy.eval()
    return curves
