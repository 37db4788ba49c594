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
and the proxy likewise (its normalisation uses the same samples).
:func:`rl4llm.rlhf.evaluation.evaluate_against_gold` draws its samples with that seed, so it gives the SFT policy
exactly 0 on both scales.

Stages go through :mod:`rl4llm.cache` (in-process memo, and on disk under ``cache_dir("rlhf")``) in two levels:
SFT + preference data keyed by their fields, and the reward model keyed by all fields, so reward models trained
on different subsets of the same pairs share one SFT run. Keys hash the source of this module and of everything
it imports, and the shipped checkpoint, so a cache never outlives the code that wrote it.

:class:`StagesConfig` is the one place that holds the stages' defaults, ranges and help: an experiment that
exposes a stage field declares it with :func:`stage_field` (a copy of the declaration, so its default cannot
drift) and builds the stages' config with :func:`stages_config_from`.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rl4llm import cache
from rl4llm.config import ConfigError, param, validate
from rl4llm.lm.language import gold_rewards, sample_texts
from rl4llm.lm.model import fuse_gelu
from rl4llm.lm.policies import MODEL_HELP, check_model_name, resolve_policy
from rl4llm.rlhf.preferences import label_preferences
from rl4llm.rlhf.reward_model import RewardModel, ValueModel, preference_accuracy, train_reward_model
from rl4llm.rlhf.rollout import SequenceBatch, decode_texts, encode_texts, sample_sequences, special_ids
from rl4llm.rlhf.sft import train_sft
from rl4llm.utils import check_positive_int

__all__ = [
    "StagesConfig",
    "Stages",
    "prepare_stages",
    "gold_of",
    "sample_many",
    "stage_field",
    "stages_config_from",
    "policy_cache_state",
    "restore_policy_artifacts",
    "EVAL_SEED_OFFSET",
]

#: Offset of the evaluation seed from the config seed (evaluation samples never reuse training draws).
EVAL_SEED_OFFSET = 1_000_003
_RM_FIELDS = ("rm_train_pairs", "rm_steps", "rm_lr", "rm_batch_size")
_MODULE = __name__


@dataclass(frozen=True)
class StagesConfig:
    """Configuration of the shared stages (defaults: the chapter's)."""

    sft_positivity: float = param(
        0.7, low=0.0, high=1.0, help="positivity of the grammar that writes the SFT demonstrations"
    )
    n_demos: int = param(2000, low=1, help="SFT demonstrations sampled from the grammar")
    sft_steps: int = param(150, low=0, help="SFT gradient steps (0: the pretrained model is the SFT policy)")
    sft_lr: float = param(5e-4, low=0.0, low_inclusive=False, help="SFT learning rate")
    n_pairs: int = param(3000, low=2, help="preference pairs sampled from the SFT policy and labelled")
    heldout_pairs: int = param(500, low=1, help="last pairs kept out of reward-model training (< n_pairs)")
    rm_train_pairs: int | None = param(
        None,
        low=1,
        allow_none=True,
        kind="int",
        help="pairs the reward model trains on (None: all n_pairs - heldout_pairs)",
    )
    label_temperature: float = param(
        0.1, low=0.0, low_inclusive=False, help="temperature of the Bradley-Terry labeller over the gold reward"
    )
    label_noise: float = param(0.05, low=0.0, high=0.5, help="probability that a label is replaced by a coin flip")
    rm_steps: int = param(400, low=1, help="reward-model gradient steps")
    rm_lr: float = param(3e-4, low=0.0, low_inclusive=False, help="reward-model learning rate")
    rm_batch_size: int = param(32, low=1, help="pairs per reward-model step")
    n_eval: int = param(512, low=2, help="evaluation samples (they define the SFT mean and standard deviation)")
    max_new_tokens: int = param(28, low=1, help="most tokens of a sampled response")
    seed: int = param(0, low=0, help="random seed of every stage")
    model: str = param("tiny", help=MODEL_HELP)

    def __post_init__(self) -> None:
        validate(self)
        try:
            check_model_name(self.model)
        except ValueError as err:
            raise ConfigError("model", str(err)) from None
        if self.heldout_pairs >= self.n_pairs:
            raise ConfigError(
                "heldout_pairs", f"heldout_pairs must be < n_pairs ({self.n_pairs}), got {self.heldout_pairs}"
            )
        if self.rm_train_pairs is not None and self.rm_train_pairs > self.n_pairs - self.heldout_pairs:
            raise ConfigError(
                "rm_train_pairs",
                f"rm_train_pairs must be in [1, n_pairs - heldout_pairs = "
                f"{self.n_pairs - self.heldout_pairs}], got {self.rm_train_pairs}",
            )

    @property
    def n_train(self) -> int:
        """Number of pairs the reward model is trained on."""
        all_train = self.n_pairs - self.heldout_pairs
        return all_train if self.rm_train_pairs is None else self.rm_train_pairs

    @property
    def eval_seed(self) -> int:
        return self.seed + EVAL_SEED_OFFSET

    def data_key(self) -> str:
        """Cache key of the SFT + preference stage (every field but the reward model's)."""
        fields = {k: v for k, v in dataclasses.asdict(self).items() if k not in _RM_FIELDS}
        return cache.cache_key({"stage": "data", "checkpoint": _checkpoint_version(self.model), **fields}, [_MODULE])

    def key(self) -> str:
        """Cache key of the whole pipeline."""
        return cache.cache_key(
            {"stage": "reward-model", "checkpoint": _checkpoint_version(self.model), **dataclasses.asdict(self)},
            [_MODULE],
        )


_STAGE_FIELDS = {f.name: f for f in dataclasses.fields(StagesConfig)}


def stage_field(name: str, default: Any = dataclasses.MISSING) -> Any:
    """A dataclass field for an experiment's config that *is* :class:`StagesConfig`'s field ``name``.

    Its default, range and help are copied from :class:`StagesConfig` (the one place that holds them), so an
    experiment cannot drift from the stages it shares. ``default`` overrides the default on purpose (e.g. the
    ``overoptimization`` experiment's smaller ``rm_train_pairs``); the range and help stay the stages'.
    """
    if name not in _STAGE_FIELDS:
        raise ValueError(f"name must be a field of StagesConfig ({', '.join(_STAGE_FIELDS)}), got {name!r}")
    f = _STAGE_FIELDS[name]
    return dataclasses.field(default=f.default if default is dataclasses.MISSING else default, metadata=f.metadata)


def stages_config_from(config: Any) -> StagesConfig:
    """The :class:`StagesConfig` of an experiment's config: its fields named like the stages' fields (``seed``
    included), the stages' defaults for the others. Raises :class:`~rl4llm.config.ConfigError` naming the field."""
    return StagesConfig(**{name: getattr(config, name) for name in _STAGE_FIELDS if hasattr(config, name)})


def _checkpoint_version(model: str) -> str:
    """What identifies a non-shipped checkpoint in a cache key: a folder's file names, sizes and times."""
    folder = Path(model).expanduser()
    if model in ("tiny", "tiny-gpt2") or not folder.is_dir():
        return model
    return ";".join(
        f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in sorted(folder.iterdir()) if p.is_file()
    )


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
        n = (
            self.n_train
            if n is None
            else min(check_positive_int("n", n), self.config.n_pairs - self.config.heldout_pairs)
        )
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


def gold_of(tokenizer, batch: SequenceBatch) -> np.ndarray:
    """Exact gold reward of each response of a batch (raw units; decoded with ``<eos>`` kept)."""
    return gold_rewards(decode_texts(tokenizer, batch))


def _load_base(model: str = "tiny"):
    model, tokenizer = resolve_policy(model)
    return fuse_gelu(model), tokenizer


def _freeze(model: torch.nn.Module) -> torch.nn.Module:
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def sample_many(
    model,
    n: int,
    max_new_tokens: int,
    ids: tuple[int, int, int],
    generator: torch.Generator,
    chunk: int = 256,
    temperature: float = 1.0,
) -> SequenceBatch:
    """``n`` responses from ``<bos>`` in chunks of ``chunk`` (one right-padded batch)."""
    n = check_positive_int("n", n)
    chunk = check_positive_int("chunk", chunk)
    bos, eos, pad = ids
    parts = [
        sample_sequences(
            model, min(chunk, n - i), max_new_tokens, bos, eos, pad, generator=generator, temperature=temperature
        )
        for i in range(0, n, chunk)
    ]
    return SequenceBatch.cat(parts, pad)


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
        batch = sample_many(
            model, config.n_eval, config.max_new_tokens, ids, torch.Generator().manual_seed(config.eval_seed)
        )
        progress_gold["step"].append(step)
        progress_gold["gold"].append(float(gold_of(tok, batch).mean()))

    evaluate_sft(0, sft)
    sft_log = (
        train_sft(
            sft, demos, steps=config.sft_steps, lr=config.sft_lr, seed=config.seed, log_every=25, callback=evaluate_sft
        )
        if config.sft_steps > 0
        else None
    )
    _freeze(sft)
    sft_s = time.process_time() - t0

    # evaluation samples (fixed seed): they define the SFT mean and standard deviation
    t0 = time.process_time()
    sft_eval = sample_many(
        sft, config.n_eval, config.max_new_tokens, ids, torch.Generator().manual_seed(config.eval_seed)
    )
    sft_texts = decode_texts(tok, sft_eval)
    base_texts = decode_texts(
        tok,
        sample_many(base, config.n_eval, config.max_new_tokens, ids, torch.Generator().manual_seed(config.eval_seed)),
    )
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
        "sft": sft.state_dict(),
        "sft_eval": [sft_eval.input_ids, sft_eval.attention_mask],
        "chosen": [chosen.input_ids, chosen.attention_mask],
        "rejected": [rejected.input_ids, rejected.attention_mask],
        "gold_chosen": torch.as_tensor(gold_c),
        "gold_rejected": torch.as_tensor(gold_r),
        "eval_gold": {
            "base": torch.as_tensor(base_gold),
            "sft": torch.as_tensor(sft_gold),
            "demos": torch.as_tensor(demo_gold),
        },
        "stats": stats,
        "logs": {
            "sft_step": [] if sft_log is None else sft_log.step,
            "sft_loss": [] if sft_log is None else sft_log.loss,
            "sft_eval_step": progress_gold["step"],
            "sft_eval_gold_raw": progress_gold["gold"],
        },
    }


def _batch(pair: list[torch.Tensor]) -> SequenceBatch:
    return SequenceBatch(pair[0], pair[1], pair[1][:, 1:].float())


def _run_rm_stage(config: StagesConfig, sft: torch.nn.Module, data: dict[str, Any]) -> dict[str, Any]:
    t0 = time.process_time()
    torch.manual_seed(config.seed)
    chosen, rejected = _batch(data["chosen"]), _batch(data["rejected"])
    n = config.n_train
    rm = RewardModel.from_lm(sft)
    log = train_reward_model(
        rm,
        chosen.index(slice(0, n)),
        rejected.index(slice(0, n)),
        steps=config.rm_steps,
        batch_size=config.rm_batch_size,
        lr=config.rm_lr,
        seed=config.seed,
    )
    _freeze(rm)
    rm.set_normalisation(_batch(data["sft_eval"]))
    return {
        "rm": rm.state_dict(),
        "stats": {"rm_cpu_s": time.process_time() - t0},
        "logs": {"rm_step": log.step, "rm_loss": log.loss, "rm_train_accuracy": log.train_accuracy},
    }


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


def _data_stage(config: StagesConfig, use_disk_cache: bool) -> dict[str, Any]:
    key = "data-" + config.data_key()
    state = cache.memo_get(key)
    if state is not None:
        return state
    path = cache.cache_dir("rlhf") / f"{key}.pt"
    state = cache.load(path) if use_disk_cache else None
    if state is None:
        state = _run_data_stage(config)
        if use_disk_cache:
            cache.save(path, state)
    return cache.memo_put(key, state)


def prepare_stages(config: StagesConfig | None = None, *, use_disk_cache: bool = True) -> Stages:
    """SFT -> preferences -> reward model for ``config``: from the in-process memo, the disk cache, or fresh.

    The result is the same either way (same seed, same weights); ``stats["from_cache"]`` says which it was.
    """
    config = config or StagesConfig()
    if not isinstance(config, StagesConfig):
        raise TypeError(f"config must be a StagesConfig, got {type(config).__name__}")
    key = "stages-" + config.key()
    stages = cache.memo_get(key)
    if stages is not None:
        return stages
    rm_path = cache.cache_dir("rlhf") / f"rm-{config.key()}.pt"
    rm_state = cache.load(rm_path) if use_disk_cache else None
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
            cache.save(rm_path, rm_state)
    rm = _freeze(RewardModel.from_lm(sft))
    rm.load_state_dict(rm_state["rm"])
    _freeze(rm)

    chosen, rejected = _batch(data["chosen"]), _batch(data["rejected"])
    gold_c, gold_r = data["gold_chosen"].numpy(), data["gold_rejected"].numpy()
    eval_gold = {k: v.numpy() for k, v in data["eval_gold"].items()}
    stats = dict(data["stats"])
    stats.update(rm_state["stats"])
    stages = Stages(
        config=config,
        tokenizer=tok,
        base_model=base,
        sft_model=sft,
        reward_model=rm,
        chosen=chosen,
        rejected=rejected,
        gold_chosen=gold_c,
        gold_rejected=gold_r,
        gold_mean=float(eval_gold["sft"].mean()),
        gold_std=max(float(eval_gold["sft"].std()), 1e-6),
        eval_gold=eval_gold,
        stats=stats,
        logs={**data["logs"], **rm_state["logs"]},
    )
    stats.update(_rm_quality(stages, _batch(data["sft_eval"])))
    stats["base_gold"] = float(stages.gold_z(stats["base_gold_raw"]))
    stats["demo_gold"] = float(stages.gold_z(stats["demo_gold_raw"]))
    stats["from_cache"] = float(from_cache)
    return cache.memo_put(key, stages)


def policy_cache_state(result: Any) -> dict[str, Any]:
    """An experiment's ``cache_state`` (:mod:`rl4llm.experiments`) when its one artifact worth keeping is the
    trained policy ``result.artifacts["policy"]``: its weights (the stages have their own cache)."""
    return {"policy": result.artifacts["policy"].state_dict()}


def restore_policy_artifacts(state: dict[str, Any], config: Any) -> dict[str, Any]:
    """The matching ``restore_artifacts``: ``{"stages", "policy"}``, the shared stages of ``config`` (from their
    own cache) and the policy rebuilt from the weights :func:`policy_cache_state` kept, in eval mode."""
    stages = prepare_stages(stages_config_from(config))
    policy = stages.new_policy()
    policy.load_state_dict(state["policy"])
    policy.eval()
    return {"stages": stages, "policy": policy}
