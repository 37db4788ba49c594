"""Behaviour cloning (SFT) and DAgger on tokens, for a tiny GPT-2 (book section 3.3, "Exposure bias").

Supervised fine-tuning is behaviour cloning in the token MDP: the state is the prefix, the action the next word,
and the learner is trained on the prefixes of *demonstrations*. DAgger on tokens trains on the prefixes the
*learner* writes, labelled by an expert that can be asked what it would write next after any prefix. Both minimise
the same loss, a cross-entropy to label distributions :math:`q(\\cdot \\mid s)` over labelled prefixes :math:`s`,

.. math::  L(\\theta) = -\\frac{1}{|M|} \\sum_{(i, t) \\in M} \\sum_{a} q(a \\mid s_{i,t})
           \\log \\pi_\\theta(a \\mid s_{i,t})

(:func:`soft_cross_entropy`); with :math:`q` one-hot on the demonstrated word it is the ordinary next-token loss
of SFT and of pretraining. They differ only in *where* the prefixes come from.

* **Long generations.** A review of the book's language is a dozen words, too short for errors to pile up, so the
  texts here are *streams*: reviews written one after another, each ended by ``<eos>``, cut at ``length`` words
  (:func:`sample_streams`).
* **The expert** is the grammar on the current review (:func:`~rl4llm.imitation.exposure.stream_expert`): its
  next-word distribution while the review is inside the language, and ``<eos>`` once it has left it (end the
  broken review; the next one starts afresh). Experts' demonstrations never contain a broken review.
* **Slips.** Theorems 1.1 and 1.4 compare learners that err with the same probability :math:`\\epsilon` per
  step. A tiny GPT-2 can fit this language almost perfectly, so :func:`generate_streams` can give the learner a
  trembling hand: with probability ``slip`` each word it writes is replaced by a word drawn uniformly from the
  vocabulary, the token-level twin of the tightrope's noisy wind sensor. The expert never slips.
* **Mixing.** DAgger's iteration :math:`i` rolls out :math:`\\pi_i = \\beta_i \\pi^* + (1 - \\beta_i)\\hat\\pi_i`
  word by word (:func:`~rl4llm.imitation.dagger.beta_schedule`) and labels every prefix it visits.

Rollouts are batched through the known transition of the token MDP (append the word, :mod:`rl4llm.envs.token_mdp`)
with a KV cache, which is much faster than stepping one environment per text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from rl4llm.imitation.dagger import beta_schedule
from rl4llm.imitation.exposure import stream_expert, validity_by_position
from rl4llm.lm.language import EOS, sample_text, vocabulary
from rl4llm.utils import check_choice, check_positive_int, check_range, progress

__all__ = [
    "sample_streams",
    "soft_cross_entropy",
    "TokenDataset",
    "fit_token_policy",
    "generate_streams",
    "token_sft",
    "token_dagger",
    "TokenDaggerLog",
]


def sample_streams(n: int, length: int, rng: np.random.Generator | int, positivity: float = 0.5) -> list[list[str]]:
    """``n`` expert demonstrations of ``length`` words: grammar reviews one after another, cut at ``length``."""
    n = check_positive_int("n", n)
    length = check_positive_int("length", length)
    check_range("positivity", positivity, 0.0, 1.0)
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(check_positive_int("rng", rng, 0))
    streams = []
    for _ in range(n):
        words: list[str] = []
        while len(words) < length:
            words += sample_text(rng, positivity).split()
        streams.append(words[:length])
    return streams


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Cross-entropy to label distributions, averaged over the labelled positions.

    .. math::  L = -\\frac{1}{\\sum_{b,t} m_{b,t}} \\sum_{b,t} m_{b,t} \\sum_a q_{b,t,a}
               \\log \\operatorname{softmax}(z_{b,t})_a

    Args:
        logits: ``[B, T, V]`` next-token scores :math:`z` (position ``t`` predicts the word after prefix ``t``).
        targets: ``[B, T, V]`` label distributions :math:`q` (rows of labelled positions sum to 1; one-hot rows
            give the ordinary next-token loss).
        mask: ``[B, T]``, 1 on labelled positions and 0 elsewhere (padding).
    Returns:
        a scalar tensor (0 if no position is labelled).
    """
    if logits.ndim != 3:
        raise ValueError(f"logits must be [B, T, V], got shape {tuple(logits.shape)}")
    if targets.shape != logits.shape:
        raise ValueError(f"targets must have the shape of logits {tuple(logits.shape)}, got {tuple(targets.shape)}")
    if mask.shape != logits.shape[:2]:
        raise ValueError(f"mask must be [B, T] = {tuple(logits.shape[:2])}, got {tuple(mask.shape)}")
    # BEGIN SOLUTION
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    per_position = -(targets * log_probs).sum(-1)
    m = mask.to(per_position.dtype)
    return (per_position * m).sum() / m.sum().clamp(min=1.0)
    # END SOLUTION


def _word_ids(tokenizer) -> dict[str, int]:
    return dict(tokenizer.get_vocab())


@dataclass
class TokenDataset:
    """Labelled prefixes, padded on the right: a text of words ``w_1..w_n`` gives the inputs
    ``<bos> w_1 .. w_{n-1}`` and one label distribution per position (for the word after each prefix).

    Attributes:
        input_ids: ``[N, L]`` token ids.
        targets: ``[N, L, V]`` label distributions.
        mask: ``[N, L]`` 1 on labelled positions.
        pad_token_id: the id that fills unlabelled positions of ``input_ids``.
    """

    input_ids: torch.Tensor
    targets: torch.Tensor
    mask: torch.Tensor
    pad_token_id: int = 0

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])

    @property
    def n_labels(self) -> int:
        """Number of labelled prefixes (the label budget spent)."""
        return int(self.mask.sum())

    @classmethod
    def from_words(
        cls,
        texts: Sequence[Sequence[str]],
        tokenizer,
        labels: str = "expert",
        positivity: float = 0.5,
        rng: np.random.Generator | None = None,
    ) -> TokenDataset:
        """Label every prefix of every text.

        ``labels="expert"``: the expert's next-word distribution
        (:func:`~rl4llm.imitation.exposure.stream_expert`), what DAgger asks for; ``labels="demonstrated"``: a
        one-hot of the word the text actually has next, what SFT on demonstrations uses; ``labels="sampled"``: a
        one-hot of one word drawn from the expert's distribution with ``rng`` (required), the label a demonstrator
        gives when asked to continue a prefix once: on a demonstration it is distributed like the demonstrated word.
        """
        check_choice("labels", labels, ("expert", "demonstrated", "sampled"))
        check_range("positivity", positivity, 0.0, 1.0)
        if labels == "sampled" and not isinstance(rng, np.random.Generator):
            raise ValueError(f"rng must be a numpy Generator when labels='sampled', got {type(rng).__name__}")
        if len(texts) == 0:
            raise ValueError("texts must not be empty")
        ids = _word_ids(tokenizer)
        width = max(len(t) for t in texts)
        if width == 0:
            raise ValueError("texts must contain at least one word")
        vocab_size = len(tokenizer)
        input_ids = torch.full((len(texts), width), int(tokenizer.pad_token_id), dtype=torch.long)
        targets = torch.zeros((len(texts), width, vocab_size))
        mask = torch.zeros((len(texts), width))
        for i, words in enumerate(texts):
            unknown = [w for w in words if w not in ids]
            if unknown:
                raise ValueError(f"texts[{i}] has words outside the tokenizer's vocabulary: {unknown[:5]}")
            seq = [int(tokenizer.bos_token_id)] + [ids[w] for w in words[:-1]]
            input_ids[i, : len(seq)] = torch.as_tensor(seq)
            mask[i, : len(words)] = 1.0
            review: list[str] = []
            for t, w in enumerate(words):
                if labels == "demonstrated":
                    targets[i, t, ids[w]] = 1.0
                elif labels == "sampled":
                    dist = stream_expert(review, positivity)
                    p = np.fromiter(dist.values(), dtype=float)
                    targets[i, t, ids[list(dist)[int(rng.choice(len(p), p=p / p.sum()))]]] = 1.0
                else:
                    for word, p in stream_expert(review, positivity).items():
                        targets[i, t, ids[word]] = p
                review = [] if w == EOS else review + [w]
        return cls(input_ids=input_ids, targets=targets, mask=mask, pad_token_id=int(tokenizer.pad_token_id))

    def concat(self, other: TokenDataset) -> TokenDataset:
        """Both datasets in one (the aggregation step of DAgger), padded to the longer width."""
        width = max(self.input_ids.shape[1], other.input_ids.shape[1])

        def pad(d: TokenDataset) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
            extra = width - d.input_ids.shape[1]
            if extra == 0:
                return d.input_ids, d.targets, d.mask
            return (
                torch.nn.functional.pad(d.input_ids, (0, extra), value=d.pad_token_id),
                torch.nn.functional.pad(d.targets, (0, 0, 0, extra)),
                torch.nn.functional.pad(d.mask, (0, extra)),
            )

        a, b = pad(self), pad(other)
        ids, targets, mask = (torch.cat([x, y]) for x, y in zip(a, b))
        return TokenDataset(ids, targets, mask, pad_token_id=self.pad_token_id)


def fit_token_policy(
    model, data: TokenDataset, steps: int, batch_size: int = 16, lr: float = 3e-3, seed: int = 0, desc: str = "fit"
) -> list[float]:
    """Train ``model`` in place on ``data`` with :func:`soft_cross_entropy` (AdamW, gradient norm clipped at 1).

    Mini-batches go through the dataset in a seeded random order, epoch after epoch. Returns the loss of each
    step. The model is left in eval mode.
    """
    steps = check_positive_int("steps", steps)
    batch_size = check_positive_int("batch_size", batch_size)
    lr = check_range("lr", lr, 0.0, 1.0, low_inclusive=False)
    check_positive_int("seed", seed, 0)
    if len(data) == 0:
        raise ValueError("data must not be empty")
    rng = np.random.default_rng(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    model.train()
    order, cursor, losses = rng.permutation(len(data)), 0, []
    for _ in progress(range(steps), desc=desc):
        if cursor >= len(order):
            order, cursor = rng.permutation(len(data)), 0
        idx = torch.as_tensor(order[cursor : cursor + batch_size])
        cursor += batch_size
        mask = data.mask[idx]
        width = int(mask.sum(1).max())
        ids, targets, mask = data.input_ids[idx, :width], data.targets[idx, :width], mask[:, :width]
        logits = model(input_ids=ids, attention_mask=(mask > 0).long()).logits
        loss = soft_cross_entropy(logits, targets, mask)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(float(loss.detach()))
    model.eval()
    return losses


@torch.no_grad()
def generate_streams(
    model,
    tokenizer,
    n: int,
    length: int,
    *,
    beta: float = 0.0,
    slip: float = 0.0,
    seed: int = 0,
    positivity: float = 0.5,
) -> list[list[str]]:
    """``n`` texts of ``length`` words written by the mixture :math:`\\beta \\pi^* + (1-\\beta)\\hat\\pi_\\epsilon`.

    At every position a coin decides who writes the next word: the expert (probability ``beta``, a draw from
    :func:`~rl4llm.imitation.exposure.stream_expert`) or the learner (a draw from the model's next-token
    distribution at temperature 1), whose word is then replaced, with probability ``slip``, by a word drawn
    uniformly from the language's vocabulary. Generation does not stop at ``<eos>``: the next review follows.
    Reproducible for a ``seed``.
    """
    n = check_positive_int("n", n)
    length = check_positive_int("length", length)
    beta = check_range("beta", beta, 0.0, 1.0)
    slip = check_range("slip", slip, 0.0, 1.0)
    check_positive_int("seed", seed, 0)
    max_len = int(model.config.n_positions) - 1
    if length > max_len:
        raise ValueError(f"length must be <= {max_len} (the model's n_positions - 1), got {length}")
    ids = _word_ids(tokenizer)
    words_of_id = {i: w for w, i in ids.items()}
    slip_ids = np.array([ids[w] for w in vocabulary()])
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng([seed, 1])
    model.eval()
    texts: list[list[str]] = [[] for _ in range(n)]
    reviews: list[list[str]] = [[] for _ in range(n)]
    step_ids = torch.full((n, 1), int(tokenizer.bos_token_id), dtype=torch.long)
    past = None
    for _ in range(length):
        out = model(input_ids=step_ids, past_key_values=past, use_cache=True)
        past = out.past_key_values
        probs = torch.softmax(out.logits[:, -1, :].float(), dim=-1)
        tokens = torch.multinomial(probs, 1, generator=gen).squeeze(-1).numpy().copy()
        expert_acts = rng.random(n) < beta
        slips = (rng.random(n) < slip) & ~expert_acts
        tokens[slips] = slip_ids[rng.integers(len(slip_ids), size=int(slips.sum()))]
        for r in np.flatnonzero(expert_acts):
            dist = stream_expert(reviews[r], positivity)
            choices = list(dist)
            p = np.fromiter(dist.values(), dtype=float)
            tokens[r] = ids[choices[int(rng.choice(len(choices), p=p / p.sum()))]]
        for r in range(n):
            w = words_of_id[int(tokens[r])]
            texts[r].append(w)
            reviews[r] = [] if w == EOS else reviews[r] + [w]
        step_ids = torch.as_tensor(tokens, dtype=torch.long).unsqueeze(-1)
    return texts


def _fresh_model(tokenizer, size: str, seed: int):
    from rl4llm.lm.model import make_tiny_gpt2

    return make_tiny_gpt2(tokenizer, size, seed=seed)


def token_sft(
    demos: Sequence[Sequence[str]],
    tokenizer,
    *,
    labels: str = "demonstrated",
    steps: int = 900,
    batch_size: int = 16,
    lr: float = 3e-3,
    size: str = "tiny",
    seed: int = 0,
):
    """Behaviour cloning on tokens: a fresh tiny GPT-2 trained on the demonstrations' prefixes.

    ``labels="demonstrated"`` is ordinary SFT (the next word of the demonstration); ``labels="expert"`` labels
    the same prefixes with the expert's whole next-word distribution, the fair match for :func:`token_dagger`.
    Returns the trained model (eval mode).
    """
    data = TokenDataset.from_words(demos, tokenizer, labels=labels)
    model = _fresh_model(tokenizer, size, seed)
    fit_token_policy(model, data, steps, batch_size=batch_size, lr=lr, seed=seed, desc=f"SFT ({labels})")
    return model


@dataclass
class TokenDaggerLog:
    """One entry per DAgger iteration (iteration 1 is behaviour cloning on the demonstrations)."""

    iteration: list[int] = field(default_factory=list)
    beta: list[float] = field(default_factory=list)
    n_labels: list[int] = field(default_factory=list)  # labelled prefixes in the dataset after the iteration
    rollout_intact: list[float] = field(default_factory=list)  # mean intact rate of the iteration's rollouts
    rollout_cost: list[float] = field(default_factory=list)  # mean off-language words per rollout

    def record(self, iteration: int, beta: float, n_labels: int, curves=None) -> None:
        """Append one iteration (``curves``: the rollouts' :class:`~rl4llm.imitation.exposure.ValidityCurves`;
        ``None`` for the demonstrations, which are inside the language by construction)."""
        self.iteration.append(iteration)
        self.beta.append(float(beta))
        self.n_labels.append(int(n_labels))
        self.rollout_intact.append(1.0 if curves is None else float(curves.intact.mean()))
        self.rollout_cost.append(0.0 if curves is None else float(curves.off_language.sum()))


def token_dagger(
    demos: Sequence[Sequence[str]],
    tokenizer,
    *,
    n_iterations: int = 2,
    rollouts_per_iteration: int = 32,
    beta_decay: float = 0.5,
    slip: float = 0.0,
    labels: str = "expert",
    steps: int = 900,
    batch_size: int = 16,
    lr: float = 3e-3,
    size: str = "tiny",
    seed: int = 0,
):
    """DAgger on tokens; returns ``(model, log)``.

    First a fresh tiny GPT-2 is trained on the demonstrations, labelled by the expert (behaviour cloning, DAgger's
    iteration 1). Each of the ``n_iterations`` rounds after it, :math:`i = 2, 3, \\dots`, writes
    ``rollouts_per_iteration`` texts as long as the demonstrations with the mixture
    :math:`\\beta_i\\pi^* + (1-\\beta_i)\\hat\\pi_i` (the learner slipping with probability ``slip``), labels every
    prefix with the expert's next-word distribution, adds them to the dataset and trains on. ``steps`` gradient
    steps in all are split evenly over the ``n_iterations + 1`` fits (warm start), so the compute matches
    :func:`token_sft` with the same ``steps``. The label budget is
    ``(len(demos) + n_iterations * rollouts_per_iteration) * length``.

    Args:
        demos: expert demonstrations (word lists, e.g. :func:`sample_streams`); rollouts are as long as the longest.
        n_iterations: rounds of rollouts after the first fit (>= 1), as in :func:`~rl4llm.imitation.dagger.dagger`.
        rollouts_per_iteration: texts the mixture writes per round.
        beta_decay: :math:`p` of :func:`~rl4llm.imitation.dagger.beta_schedule`, :math:`\\beta_i = p^{i-1}`.
        slip: the learner's slip probability :math:`\\epsilon` during the rollouts.
        labels: ``"expert"`` (the expert's whole next-word distribution on every prefix) or ``"sampled"`` (one word
            drawn from it, one-hot: the demonstrations keep their own next word and every rollout prefix gets one
            draw, the same kind of label as :func:`token_sft`'s ``"demonstrated"``).
        steps, batch_size, lr, size, seed: as in :func:`token_sft`.
    """
    n_iterations = check_positive_int("n_iterations", n_iterations)
    rollouts_per_iteration = check_positive_int("rollouts_per_iteration", rollouts_per_iteration)
    check_range("beta_decay", beta_decay, 0.0, 1.0)
    check_range("slip", slip, 0.0, 1.0)
    check_choice("labels", labels, ("expert", "sampled"))
    steps = check_positive_int("steps", steps, n_iterations + 1)
    check_positive_int("seed", seed, 0)
    if len(demos) == 0:
        raise ValueError("demos must not be empty")
    length = max(len(d) for d in demos)
    fits = n_iterations + 1
    per_fit = [steps // fits + (1 if i < steps % fits else 0) for i in range(fits)]
    log = TokenDaggerLog()
    label_rng = np.random.default_rng([seed, 2])
    demo_labels = "expert" if labels == "expert" else "demonstrated"
    data = TokenDataset.from_words(demos, tokenizer, labels=demo_labels)
    model = _fresh_model(tokenizer, size, seed)
    fit_token_policy(model, data, per_fit[0], batch_size=batch_size, lr=lr, seed=seed, desc="DAgger fit 1")
    log.record(1, 1.0, data.n_labels, None)
    # BEGIN SOLUTION
    for i in range(2, n_iterations + 2):
        beta = beta_schedule(i, beta_decay)
        texts = generate_streams(
            model, tokenizer, rollouts_per_iteration, length, beta=beta, slip=slip, seed=seed * 1000 + i
        )
        data = data.concat(TokenDataset.from_words(texts, tokenizer, labels=labels, rng=label_rng))
        fit_token_policy(
            model, data, per_fit[i - 1], batch_size=batch_size, lr=lr, seed=seed + i, desc=f"DAgger fit {i}"
        )
        log.record(i, beta, data.n_labels, validity_by_position(texts, length))
    # END SOLUTION
    return model, log
