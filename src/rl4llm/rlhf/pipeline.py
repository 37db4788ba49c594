"""The shared first steps of the InstructGPT pipeline, cached: SFT -> preference pairs -> reward model.

:func:`prepare_stages` runs (or loads) the stages that the ``rlhf``, ``overoptimization`` and ``dpo`` experiments
share, so that the chapter's pages (separate kernels) pay for them once:

1. **SFT.** Load the shipped tiny GPT-2 (pretrained on the review language at ``positivity = 0.5``) and fine-tune
   it on ``n_demos`` demonstrations sampled from the grammar at ``sft_positivity`` (the "preferred"
   distribution standing in for labellers' answers).
2. **Preferences.** Sample ``n_pairs`` pairs of responses from the SFT policy and label them with the noisy
   Bradley-Terry "human" over the gold reward (:mod:`rl4llm.rlhf.preferences`); the last ``heldout_pairs``
   are kept for the reward model's held-out accuracy.
3. **Reward model.** A copy of the SFT backbone with a scalar head, trained with the Bradley-Terry loss on the
   first ``rm_train_pairs`` training pairs (default: all of them; fewer pairs make a more gameable proxy), then
   normalised so that the SFT policy's evaluation samples score mean 0 and standard deviation 1.

Rewards are reported in **SFT standard deviations with the SFT policy at 0**: the gold reward as
:math:`(g - \\bar g_{SFT}) / \\sigma_{SFT}`, measured on ``n_eval`` SFT samples drawn with a fixed evaluation seed,
and the proxy likewise (its normalisation uses the same samples). :func:`evaluate_policy` draws its samples with
that seed, so it gives the SFT policy exactly 0 on both scales.

Stages are cached in-process and on disk (``$RL4LLM_CACHE_DIR`` or ``~/.cache/rl4llm``, under ``rlhf/``) in two
levels: SFT + preference data keyed by their fields, and the reward model keyed by all fields, so reward models
trained on different subsets of the same pairs share one SFT run. Keys include a hash of the source code of the
stages and of the shipped checkpoint, so a cache never outlives the code that wrote it.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rl4llm.lm.language import EOS, GOLD_WEIGHTS, MAX_WORDS, gold_rewards, parses, sample_texts, sentiment_score
from rl4llm.lm.language import words_of
from rl4llm.lm.policies import check_model_name, resolve_policy
from rl4llm.rlhf.preferences import label_preferences
from rl4llm.rlhf.reward_model import RewardModel, ValueModel, preference_accuracy, train_reward_model
from rl4llm.rlhf.rollout import SequenceBatch, decode_texts, encode_texts, response_logprobs, sample_sequences
from rl4llm.rlhf.rollout import special_ids
from rl4llm.rlhf.sft import train_sft
from rl4llm.utils import check_positive_int, check_range

__all__ = ["StagesConfig", "Stages", "prepare_stages", "evaluate_policy", "gold_breakdown", "gold_of",
           "sample_many", "run_ppo", "PPORun", "fuse_gelu", "cache_dir", "clear_memory_cache", "CACHE_VERSION"]

#: Bump to invalidate every cache by hand (keys also hash the stages' source code automatically).
CACHE_VERSION = "rlhf-stages-3"
#: Offset of the evaluation seed from the config seed (evaluation samples never reuse training draws).
EVAL_SEED_OFFSET = 1_000_003
_RM_FIELDS = ("rm_train_pairs", "rm_steps", "rm_lr", "rm_batch_size")
_SOURCES = ("rlhf/rollout.py", "rlhf/sft.py", "rlhf/preferences.py", "rlhf/reward_model.py", "rlhf/losses.py",
            "rlhf/pipeline.py", "lm/generation.py", "lm/language.py", "lm/policies.py", "lm/checkpoints/tiny-gpt2/SHA256SUMS.txt")


@dataclass(frozen=True)
class StagesConfig:
    """Configuration of the shared stages (defaults: the chapter's)."""

    sft_positivity: float = 0.7
    n_demos: int = 2000
    sft_steps: int = 150
    sft_lr: float = 5e-4
    n_pairs: int = 3000
    heldout_pairs: int = 500
    rm_train_pairs: int | None = None  # None: all n_pairs - heldout_pairs
    label_temperature: float = 0.1
    label_noise: float = 0.05
    rm_steps: int = 400
    rm_lr: float = 3e-4
    rm_batch_size: int = 32
    n_eval: int = 512
    max_new_tokens: int = 28
    seed: int = 0
    model: str = "tiny"  # the pretrained checkpoint: 'tiny', 'gpt2' or a folder (rl4llm.lm.policies)

    def __post_init__(self) -> None:
        check_model_name(self.model)
        check_range("sft_positivity", self.sft_positivity, 0.0, 1.0)
        check_positive_int("n_demos", self.n_demos)
        check_positive_int("sft_steps", self.sft_steps, 0)
        check_range("sft_lr", self.sft_lr, 0.0, None, low_inclusive=False)
        check_positive_int("n_pairs", self.n_pairs, 2)
        check_positive_int("heldout_pairs", self.heldout_pairs)
        if self.heldout_pairs >= self.n_pairs:
            raise ValueError(f"heldout_pairs must be < n_pairs ({self.n_pairs}), got {self.heldout_pairs}")
        if self.rm_train_pairs is not None:
            check_positive_int("rm_train_pairs", self.rm_train_pairs)
            if self.rm_train_pairs > self.n_pairs - self.heldout_pairs:
                raise ValueError(f"rm_train_pairs must be in [1, n_pairs - heldout_pairs = "
                                 f"{self.n_pairs - self.heldout_pairs}], got {self.rm_train_pairs}")
        check_range("label_temperature", self.label_temperature, 0.0, None, low_inclusive=False)
        check_range("label_noise", self.label_noise, 0.0, 0.5)
        check_positive_int("rm_steps", self.rm_steps)
        check_range("rm_lr", self.rm_lr, 0.0, None, low_inclusive=False)
        check_positive_int("rm_batch_size", self.rm_batch_size)
        check_positive_int("n_eval", self.n_eval, 2)
        check_positive_int("max_new_tokens", self.max_new_tokens)
        check_positive_int("seed", self.seed, 0)

    @property
    def n_train(self) -> int:
        """Number of pairs the reward model is trained on."""
        all_train = self.n_pairs - self.heldout_pairs
        return all_train if self.rm_train_pairs is None else self.rm_train_pairs

    @property
    def eval_seed(self) -> int:
        return self.seed + EVAL_SEED_OFFSET

    def _hash(self, fields: dict[str, Any]) -> str:
        payload = json.dumps({"v": CACHE_VERSION, "code": _code_version(), "torch": torch.__version__,
                              "checkpoint": _checkpoint_version(self.model), **fields}, sort_keys=True)
        return hashlib.sha1(payload.encode()).hexdigest()[:16]

    def data_key(self) -> str:
        """Cache key of the SFT + preference stage (every field but the reward model's)."""
        return self._hash({k: v for k, v in dataclasses.asdict(self).items() if k not in _RM_FIELDS})

    def key(self) -> str:
        """Cache key of the whole pipeline."""
        return self._hash(dataclasses.asdict(self))


@lru_cache(maxsize=1)
def _code_version() -> str:
    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha1()
    for rel in _SOURCES:
        path = root / rel
        h.update(rel.encode())
        h.update(path.read_bytes() if path.is_file() else b"missing")
    return h.hexdigest()[:16]


def _checkpoint_version(model: str) -> str:
    """What identifies a non-shipped checkpoint in a cache key: a folder's file names, sizes and times."""
    folder = Path(model).expanduser()
    if model in ("tiny", "tiny-gpt2") or not folder.is_dir():
        return model
    return ";".join(f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in sorted(folder.iterdir())
                    if p.is_file())


@dataclass
class Stages:
    """The outputs of the shared stages. Models are frozen: :meth:`new_policy` / :meth:`new_critic` copy them."""

    config: StagesConfig
    tokenizer: Any
    base_model: torch.nn.Module  # the pretrained checkpoint
    sft_model: torch.nn.Module
    reward_model: RewardModel
    chosen: SequenceBatch  # all labelled pairs: [0, n_pairs - heldout_pairs) train, the rest held out
    rejected: SequenceBatch
    gold_chosen: np.ndarray
    gold_rejected: np.ndarray
    gold_mean: float  # the SFT policy's gold reward on the evaluation samples: mean and standard deviation
    gold_std: float
    eval_gold: dict[str, np.ndarray] = field(default_factory=dict)  # raw gold of "base", "sft", "demos" samples
    stats: dict[str, float] = field(default_factory=dict)
    logs: dict[str, list[float]] = field(default_factory=dict)

    @property
    def ids(self) -> tuple[int, int, int]:
        """``(bos, eos, pad)`` token ids."""
        return special_ids(self.tokenizer)

    @property
    def n_train(self) -> int:
        return self.config.n_train

    def train_pairs(self, n: int | None = None) -> tuple[SequenceBatch, SequenceBatch]:
        """The first ``n`` training pairs (default: those the reward model saw)."""
        n = self.n_train if n is None else min(check_positive_int("n", n), self.config.n_pairs -
                                                self.config.heldout_pairs)
        return self.chosen.index(slice(0, n)), self.rejected.index(slice(0, n))

    def heldout_pairs(self) -> tuple[SequenceBatch, SequenceBatch]:
        """The held-out pairs (never trained on)."""
        start = self.config.n_pairs - self.config.heldout_pairs
        return self.chosen.index(slice(start, None)), self.rejected.index(slice(start, None))

    def gold_z(self, gold: np.ndarray | float) -> np.ndarray | float:
        """Raw gold reward -> SFT standard deviations (SFT policy at 0)."""
        return (np.asarray(gold, dtype=float) - self.gold_mean) / self.gold_std

    def gold(self, batch: SequenceBatch) -> np.ndarray:
        """Exact gold reward of each response, in SFT standard deviations."""
        return self.gold_z(gold_of(self.tokenizer, batch))

    def proxy(self, batch: SequenceBatch) -> torch.Tensor:
        """The reward model's normalised score of each response (SFT samples: mean 0, std 1)."""
        return self.reward_model.score(batch)

    def new_policy(self) -> torch.nn.Module:
        """A trainable copy of the SFT policy."""
        policy = copy.deepcopy(self.sft_model)
        for p in policy.parameters():
            p.requires_grad_(True)
        return policy

    def new_critic(self) -> ValueModel:
        """A trainable PPO critic initialised from the reward model (as in InstructGPT)."""
        return ValueModel.from_reward_model(self.reward_model)


def cache_dir() -> Path:
    """Where stages are cached on disk: ``$RL4LLM_CACHE_DIR`` or ``~/.cache/rl4llm`` (then ``rlhf/``)."""
    root = os.environ.get("RL4LLM_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "rl4llm")
    return Path(root) / "rlhf"


_MEMORY: dict[str, Any] = {}


def clear_memory_cache() -> None:
    """Forget the in-process cache (the disk cache is kept)."""
    _MEMORY.clear()


def gold_of(tokenizer, batch: SequenceBatch) -> np.ndarray:
    """Exact gold reward of each response of a batch (raw units; decoded with ``<eos>`` kept)."""
    return gold_rewards(decode_texts(tokenizer, batch))


def gold_breakdown(texts: list[str]) -> dict[str, np.ndarray]:
    """The terms of the gold reward of each text (see :func:`rl4llm.lm.gold_reward`).

    Returns arrays ``sentiment`` (:math:`S`), ``ungrammatical`` (:math:`U`), ``unfinished`` (:math:`E`),
    ``repeats`` (:math:`D`, repeated content words) and ``gold``, so that a reward hack can be traced to the penalty
    that catches it. :math:`D` is recovered from the exact decomposition
    :math:`R = S - U - 0.5E - 0.25D - 0.05\\max(0, n - 24)`.
    """
    sent = np.array([sentiment_score(t) for t in texts], dtype=float)
    ungr = np.array([not parses(t) for t in texts], dtype=float)
    unfin = np.array([not (words_of(t) and words_of(t)[-1] == EOS) for t in texts], dtype=float)
    over = np.array([max(0, sum(w != EOS for w in words_of(t)) - MAX_WORDS) for t in texts], dtype=float)
    gold = gold_rewards(texts)
    rest = sent - GOLD_WEIGHTS["ungrammatical"] * ungr - GOLD_WEIGHTS["no_eos"] * unfin \
        - GOLD_WEIGHTS["overlength"] * over - gold
    repeats = np.round(rest / GOLD_WEIGHTS["repeat"]).astype(float)
    return {"sentiment": sent, "ungrammatical": ungr, "unfinished": unfin, "repeats": repeats, "gold": gold}


def fuse_gelu(model: torch.nn.Module) -> torch.nn.Module:
    """Swap GPT-2's ``gelu_new`` activation modules for PyTorch's fused kernel of the same formula, in place.

    Both compute :math:`\\tfrac12 x (1 + \\tanh(\\sqrt{2/\\pi}(x + 0.044715 x^3)))`; the fused kernel
    (``gelu_pytorch_tanh``) agrees to about 2e-7 and is about four times faster on a CPU, where the activation
    was a sixth of the chapter's compute. Returns the model.
    """
    from transformers.activations import ACT2FN, NewGELUActivation

    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, NewGELUActivation):
                setattr(module, name, ACT2FN["gelu_pytorch_tanh"])
    return model


def _load_base(model: str = "tiny"):
    model, tokenizer = resolve_policy(model)
    return fuse_gelu(model), tokenizer


def _freeze(model: torch.nn.Module) -> torch.nn.Module:
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def sample_many(model, n: int, max_new_tokens: int, ids: tuple[int, int, int], generator: torch.Generator,
                chunk: int = 256, temperature: float = 1.0) -> SequenceBatch:
    """``n`` responses from ``<bos>`` in chunks of ``chunk`` (one right-padded batch)."""
    n = check_positive_int("n", n)
    chunk = check_positive_int("chunk", chunk)
    bos, eos, pad = ids
    parts = [sample_sequences(model, min(chunk, n - i), max_new_tokens, bos, eos, pad, generator=generator,
                              temperature=temperature) for i in range(0, n, chunk)]
    return SequenceBatch.cat(parts, pad)


def _save(path: Path, state: dict[str, Any]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        torch.save(state, tmp)
        os.replace(tmp, path)  # atomic: a concurrent reader sees the old file or the new one
    except OSError:  # a read-only home: run without the disk cache
        pass


def _load(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    try:
        return torch.load(path, weights_only=True)
    except Exception:  # noqa: BLE001 - a corrupt or incompatible file: recompute
        return None


def _run_data_stage(config: StagesConfig) -> dict[str, Any]:
    """SFT and preference data (stages 1 and 2) as a cacheable state dict."""
    from rl4llm.lm import parse_rate

    rng = np.random.default_rng(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)
    base, tok = _load_base(config.model)
    ids = special_ids(tok)

    # 1. SFT on demonstrations from the "preferred" distribution
    t0 = time.process_time()
    demo_texts = sample_texts(config.n_demos, rng, positivity=config.sft_positivity)
    demos = encode_texts(tok, demo_texts, config.max_new_tokens)
    sft = copy.deepcopy(base)
    progress_gold: dict[str, list[float]] = {"step": [], "gold": []}

    def evaluate_sft(step: int, model: torch.nn.Module) -> None:  # gold reward during SFT, same draws each time
        model.eval()
        batch = sample_many(model, config.n_eval, config.max_new_tokens, ids,
                            torch.Generator().manual_seed(config.eval_seed))
        progress_gold["step"].append(step)
        progress_gold["gold"].append(float(gold_of(tok, batch).mean()))

    evaluate_sft(0, sft)
    sft_log = (train_sft(sft, demos, steps=config.sft_steps, lr=config.sft_lr, seed=config.seed, log_every=25,
                         callback=evaluate_sft) if config.sft_steps > 0 else None)
    _freeze(sft)
    sft_s = time.process_time() - t0

    # evaluation samples (fixed seed): they define the SFT mean and standard deviation
    t0 = time.process_time()
    sft_eval = sample_many(sft, config.n_eval, config.max_new_tokens, ids,
                           torch.Generator().manual_seed(config.eval_seed))
    sft_texts = decode_texts(tok, sft_eval)
    base_texts = decode_texts(tok, sample_many(base, config.n_eval, config.max_new_tokens, ids,
                                               torch.Generator().manual_seed(config.eval_seed)))
    sft_gold, base_gold = gold_rewards(sft_texts), gold_rewards(base_texts)
    demo_gold = gold_rewards(demo_texts)

    # 2. preference pairs sampled from the SFT policy, labelled by the noisy Bradley-Terry "human"
    a = sample_many(sft, config.n_pairs, config.max_new_tokens, ids, gen)
    b = sample_many(sft, config.n_pairs, config.max_new_tokens, ids, gen)
    ga, gb = gold_of(tok, a), gold_of(tok, b)
    prefer_a = label_preferences(ga, gb, rng, config.label_temperature, config.label_noise)
    take_a = torch.as_tensor(prefer_a)
    chosen = SequenceBatch.select(take_a, a, b, ids[2])
    rejected = SequenceBatch.select(~take_a, a, b, ids[2])
    gold_c, gold_r = np.where(prefer_a, ga, gb), np.where(prefer_a, gb, ga)
    pref_s = time.process_time() - t0

    held = slice(config.n_pairs - config.heldout_pairs, None)
    untied = gold_c[held] != gold_r[held]
    stats = {
        "sft_gold_raw": float(sft_gold.mean()),
        "sft_gold_std_raw": float(sft_gold.std()),
        "sft_parse_rate": parse_rate(sft_texts),
        "base_gold_raw": float(base_gold.mean()),
        "base_parse_rate": parse_rate(base_texts),
        "demo_gold_raw": float(demo_gold.mean()),
        # the labeller: how often the label follows the gold order on held-out pairs of different gold reward
        "label_gold_accuracy": float(np.mean(gold_c[held][untied] > gold_r[held][untied])) if untied.any() else 0.5,
        "tie_rate": float(np.mean(~untied)),
        "sft_cpu_s": sft_s,
        "preferences_cpu_s": pref_s,
    }
    return {
        "sft": sft.state_dict(), "sft_eval": [sft_eval.input_ids, sft_eval.attention_mask],
        "chosen": [chosen.input_ids, chosen.attention_mask], "rejected": [rejected.input_ids, rejected.attention_mask],
        "gold_chosen": torch.as_tensor(gold_c), "gold_rejected": torch.as_tensor(gold_r),
        "eval_gold": {"base": torch.as_tensor(base_gold), "sft": torch.as_tensor(sft_gold),
                      "demos": torch.as_tensor(demo_gold)},
        "stats": stats,
        "logs": {"sft_step": [] if sft_log is None else sft_log.step,
                 "sft_loss": [] if sft_log is None else sft_log.loss,
                 "sft_eval_step": progress_gold["step"], "sft_eval_gold_raw": progress_gold["gold"]},
    }


def _batch(pair: list[torch.Tensor]) -> SequenceBatch:
    return SequenceBatch(pair[0], pair[1], pair[1][:, 1:].float())


def _data_stage(config: StagesConfig, use_disk_cache: bool) -> dict[str, Any]:
    key = "data-" + config.data_key()
    if key in _MEMORY:
        return _MEMORY[key]
    path = cache_dir() / f"{key}.pt"
    state = _load(path) if use_disk_cache else None
    if state is None:
        state = _run_data_stage(config)
        if use_disk_cache:
            _save(path, state)
    _MEMORY[key] = state
    return state


def _run_rm_stage(config: StagesConfig, sft: torch.nn.Module, data: dict[str, Any]) -> dict[str, Any]:
    t0 = time.process_time()
    torch.manual_seed(config.seed)
    chosen, rejected = _batch(data["chosen"]), _batch(data["rejected"])
    n = config.n_train
    rm = RewardModel.from_lm(sft)
    log = train_reward_model(rm, chosen.index(slice(0, n)), rejected.index(slice(0, n)), steps=config.rm_steps,
                             batch_size=config.rm_batch_size, lr=config.rm_lr, seed=config.seed)
    _freeze(rm)
    rm.set_normalisation(_batch(data["sft_eval"]))
    return {"rm": rm.state_dict(), "stats": {"rm_cpu_s": time.process_time() - t0},
            "logs": {"rm_step": log.step, "rm_loss": log.loss, "rm_train_accuracy": log.train_accuracy}}


def prepare_stages(config: StagesConfig | None = None, *, use_disk_cache: bool = True) -> Stages:
    """SFT -> preferences -> reward model for ``config``: from the in-process cache, the disk cache, or fresh.

    The result is the same either way (same seed, same weights); ``stats["from_cache"]`` says which it was.
    """
    config = config or StagesConfig()
    if not isinstance(config, StagesConfig):
        raise TypeError(f"config must be a StagesConfig, got {type(config).__name__}")
    key = config.key()
    if key in _MEMORY:
        return _MEMORY[key]
    rm_path = cache_dir() / f"rm-{key}.pt"
    rm_state = _load(rm_path) if use_disk_cache else None
    from_cache = rm_state is not None
    data = _data_stage(config, use_disk_cache)
    base, tok = _load_base(config.model)
    _freeze(base)
    sft = copy.deepcopy(base)
    sft.load_state_dict(data["sft"])
    _freeze(sft)
    if rm_state is None:
        rm_state = _run_rm_stage(config, sft, data)
        if use_disk_cache:
            _save(rm_path, rm_state)
    rm = _freeze(RewardModel.from_lm(sft))
    rm.load_state_dict(rm_state["rm"])
    _freeze(rm)

    chosen, rejected = _batch(data["chosen"]), _batch(data["rejected"])
    gold_c, gold_r = data["gold_chosen"].numpy(), data["gold_rejected"].numpy()
    eval_gold = {k: v.numpy() for k, v in data["eval_gold"].items()}
    stats = dict(data["stats"])
    stats.update(rm_state["stats"])
    stages = Stages(config=config, tokenizer=tok, base_model=base, sft_model=sft, reward_model=rm, chosen=chosen,
                    rejected=rejected, gold_chosen=gold_c, gold_rejected=gold_r,
                    gold_mean=float(eval_gold["sft"].mean()), gold_std=max(float(eval_gold["sft"].std()), 1e-6),
                    eval_gold=eval_gold, stats=stats, logs={**data["logs"], **rm_state["logs"]})
    stats.update(_rm_quality(stages, _batch(data["sft_eval"])))
    stats["base_gold"] = float(stages.gold_z(stats["base_gold_raw"]))
    stats["demo_gold"] = float(stages.gold_z(stats["demo_gold_raw"]))
    stats["from_cache"] = float(from_cache)
    _MEMORY[key] = stages
    return stages


def _rm_quality(stages: Stages, sft_eval: SequenceBatch) -> dict[str, float]:
    """Held-out accuracy of the reward model against the labels and against the gold order."""
    n_train = stages.n_train
    held_c, held_r = stages.heldout_pairs()
    start = stages.config.n_pairs - stages.config.heldout_pairs
    rc, rr = stages.proxy(held_c).numpy(), stages.proxy(held_r).numpy()
    gc, gr = stages.gold_chosen[start:], stages.gold_rejected[start:]
    untied = gc != gr
    proxy_sft = stages.proxy(sft_eval).numpy()
    return {
        "rm_accuracy": float(np.mean(rc > rr)),
        "rm_train_accuracy": preference_accuracy(stages.reward_model, *stages.train_pairs(n_train)),
        "rm_gold_accuracy": float(np.mean((rc > rr)[untied] == (gc > gr)[untied])) if untied.any() else 0.5,
        "rm_gold_correlation": float(np.corrcoef(proxy_sft, stages.eval_gold["sft"])[0, 1]),
        "n_rm_train_pairs": float(n_train),
    }


@torch.no_grad()
def evaluate_policy(policy: torch.nn.Module, stages: Stages, n: int | None = None, seed: int | None = None,
                    return_texts: bool = False) -> dict[str, Any]:
    """Sample ``n`` responses from ``policy`` and measure them against the gold reward and the proxy.

    Defaults: ``n = config.n_eval`` samples drawn with the evaluation seed, the draws that define the SFT
    normalisation, so the SFT policy itself scores exactly 0 in gold and proxy. Returns

    * ``gold``, ``proxy``: mean rewards in SFT standard deviations; ``gold_raw``: the gold reward itself;
    * ``kl``: :math:`\\mathbb E_{y\\sim\\pi}[\\log\\pi(y) - \\log\\pi_{SFT}(y)]` in nats per sequence (the k1
      estimator summed over tokens, averaged over the samples);
    * ``parse_rate``, ``unfinished_rate``, ``repeat_rate`` (texts with a repeated content word): the gold
      reward's penalties, which show *how* a policy games a proxy; ``length``: mean tokens per response;
    * with ``return_texts``, also ``texts``.
    """
    n = stages.config.n_eval if n is None else check_positive_int("n", n)
    seed = stages.config.eval_seed if seed is None else check_positive_int("seed", seed, 0)
    was_training = policy.training
    policy.eval()
    batch = sample_many(policy, n, stages.config.max_new_tokens, stages.ids, torch.Generator().manual_seed(seed))
    texts = decode_texts(stages.tokenizer, batch)
    parts = gold_breakdown(texts)
    proxy = stages.proxy(batch).numpy()
    kl = (response_logprobs(policy, batch) - response_logprobs(stages.sft_model, batch)).sum(1)
    policy.train(was_training)
    out: dict[str, Any] = {
        "gold": float(stages.gold_z(parts["gold"].mean())),
        "proxy": float(proxy.mean()),
        "kl": float(kl.mean()),
        "gold_raw": float(parts["gold"].mean()),
        "parse_rate": float(1.0 - parts["ungrammatical"].mean()),
        "unfinished_rate": float(parts["unfinished"].mean()),
        "repeat_rate": float((parts["repeats"] > 0).mean()),
        "length": float(batch.response_mask.sum(1).mean()),
    }
    if return_texts:
        out["texts"] = texts
    return out


@dataclass
class PPORun:
    """A PPO-RLHF run from the shared stages: the trained policy, its per-iteration history and evaluations.

    ``evals`` holds one row per evaluation (iteration 0 is the SFT policy): ``iteration`` and the keys of
    :func:`evaluate_policy`.
    """

    policy: torch.nn.Module
    history: Any
    evals: list[dict[str, float]]

    def curves(self) -> list[dict[str, float]]:
        """History rows merged with the evaluations, ``eval_*`` columns, one row per iteration (0 = SFT)."""
        by_it = {int(e["iteration"]): e for e in self.evals}
        rows = []
        first = by_it.get(0)
        if first is not None:
            rows.append({"iteration": 0, **{f"eval_{k}": v for k, v in first.items() if k != "iteration"}})
        for r in self.history.rows:
            row = dict(r)
            e = by_it.get(int(r["iteration"]))
            if e is not None:
                row.update({f"eval_{k}": v for k, v in e.items() if k != "iteration"})
            rows.append(row)
        return rows


def run_ppo(stages: Stages, config: Any, eval_every: int = 10, eval_n: int | None = None,
            reward_fn: Any = None, runtime: Any = None) -> PPORun:
    """KL-penalised PPO from the SFT policy against the stages' reward model (or ``reward_fn``).

    The reference is the frozen SFT policy and the critic starts from the reward model. Every ``eval_every``
    iterations (and at the start and the end) :func:`evaluate_policy` measures gold, proxy and KL on fresh samples.
    ``runtime`` (:func:`rl4llm.distributed.make_runtime`) trains on its device and across its processes; the
    evaluations stay on the CPU (every process draws the same evaluation samples from the same weights).
    """
    from rl4llm.rlhf.ppo import train_ppo_rlhf

    eval_every = check_positive_int("eval_every", eval_every)
    policy, critic = stages.new_policy(), stages.new_critic()
    ref, proxy = stages.sft_model, reward_fn or stages.proxy
    on_cpu = runtime is None or runtime.device.type == "cpu"
    if not on_cpu:  # copies on the device: the stages (cached) stay on the CPU
        policy, critic, ref = policy.to(runtime.device), critic.to(runtime.device), copy.deepcopy(ref).to(
            runtime.device)
        if reward_fn is None:
            proxy = copy.deepcopy(stages.reward_model).to(runtime.device).score
    evals = [{"iteration": 0, **evaluate_policy(stages.sft_model, stages, n=eval_n)}]

    def callback(it: int, pol: torch.nn.Module) -> None:
        if it % eval_every == 0 or it == config.iterations:
            pol = pol if on_cpu else copy.deepcopy(pol).cpu()
            evals.append({"iteration": it, **evaluate_policy(pol, stages, n=eval_n)})

    bos, eos, pad = stages.ids
    history = train_ppo_rlhf(policy, ref, critic, proxy, config, bos_id=bos, eos_id=eos, pad_id=pad,
                             gold_fn=stages.gold, callback=callback, runtime=runtime)
    return PPORun(policy=policy if on_cpu else policy.cpu(), history=history, evals=evals)
