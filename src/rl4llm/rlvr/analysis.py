"""Trained policies of chapter 7 and their evaluations, cached on disk so that pages and experiments share them.

* :func:`sft_evaluation`: pass@k of the shipped SFT checkpoint on the held-out problems (``k = 1 .. n_samples``).
* :func:`train_method`: one GRPO-family run (``"grpo"``, ``"dr-grpo"``, ``"rloo"``, ``"reinforce"``) or the PPO
  arm (``"ppo"``: chapter 5's :func:`rl4llm.rlhf.train_ppo_rlhf` with a critic, on the verifier's reward), from the
  SFT start, with a held-out pass@1 curve and a final held-out evaluation.

Every result is keyed by its arguments and the source of the modules that compute it (:func:`rl4llm.cache.cache_key`),
so it is recomputed only when the code, the checkpoint or the arguments change.
"""

from __future__ import annotations

import copy
import time
from typing import Any

import numpy as np
import torch

from rl4llm import cache
from rl4llm.distributed import make_runtime
from rl4llm.lm.policies import check_model_name, resolve_reasoning_policy
from rl4llm.prompting.tokenizer import CharTokenizer
from rl4llm.rlhf.kl import kl_k3
from rl4llm.rlvr.evaluation import MAX_NEW_TOKENS, completion_logprobs, evaluate_pass_at_k, sample_completions
from rl4llm.rlvr.grpo import METHODS, GRPOConfig, train_grpo
from rl4llm.rlvr.task import held_out_problems, prompt_text, train_problems, verify
from rl4llm.utils import check_choice, check_positive_int, set_seed, set_torch_threads

__all__ = [
    "ARMS",
    "sft_model",
    "sft_evaluation",
    "train_method",
    "kl_to_reference",
    "verifier_reward_fn",
    "where_of",
    "where_key",
    "one_process_runtime",
]

#: Every arm of the comparison: the group-baseline methods and PPO with a critic.
ARMS = tuple(METHODS) + ("ppo",)
_MODULES = ["rl4llm.rlvr.analysis"]


def sft_model(model: str = "reasoning"):
    """``(model, tokenizer)``: the starting policy, a fresh copy (the loaded one is kept in memory).

    ``"reasoning"`` is the shipped SFT checkpoint with its character tokenizer; ``"gpt2"`` or a folder is a GPT-2
    reading the same prompt texts through its own tokenizer (:func:`rl4llm.lm.policies.resolve_reasoning_policy`).
    """
    key = "rlvr-sft" if model == "reasoning" else f"rlvr-sft:{check_model_name(model)}"
    got = cache.memo_get(key)
    if got is None:
        got = cache.memo_put(key, resolve_reasoning_policy(model))
    policy, tok = got
    return copy.deepcopy(policy), tok


def where_key(model: str, device: str, mixed_precision: str) -> dict[str, str]:
    """The cache-key entries of a run's model, device and precision: none on the book's path (the shipped
    checkpoint, one CPU process, float32), so that the book's cached results keep their keys."""
    out = {"model": model, "device": device, "mixed_precision": mixed_precision}
    return {k: v for k, v in out.items() if v != {"model": "reasoning", "device": "cpu", "mixed_precision": "no"}[k]}


def where_of(config: Any) -> dict[str, str]:
    """``{"model", "device", "mixed_precision"}`` of an experiment's config, as :func:`train_method` and
    :func:`sft_evaluation` take them."""
    return {"model": config.model, "device": config.device, "mixed_precision": config.mixed_precision}


def one_process_runtime(device: str = "cpu", mixed_precision: str = "no"):
    """:func:`rl4llm.distributed.make_runtime` for the chapter's comparisons, which run in one process: ``None``
    on the book's path, else a runtime on ``device``. Under a launcher with several processes, ``ValueError``
    naming the experiment that trains across processes (``grpo``)."""
    runtime = make_runtime(device, mixed_precision)
    if runtime is not None and runtime.distributed:
        raise ValueError(
            f"chapter 7's comparisons run in one process (world_size must be 1, got {runtime.world_size}); "
            "the grpo experiment trains across processes (rl4llm run grpo under accelerate launch)"
        )
    return runtime


def _cached(description: dict[str, Any], compute) -> dict[str, Any]:
    key = cache.cache_key(description, _MODULES)
    path = cache.cache_dir("rlvr", f"{description['what']}-{key}.pt")
    got = cache.memo_get(str(path))
    if got is None:
        got = cache.load(path)
        if got is None:
            got = compute()
            cache.save(path, got)
        cache.memo_put(str(path), got)
    return got


def sft_evaluation(
    n_problems: int = 100,
    n_samples: int = 64,
    seed: int = 0,
    *,
    model: str = "reasoning",
    device: str = "cpu",
    mixed_precision: str = "no",
) -> dict[str, Any]:
    """pass@k (``k = 1 .. n_samples``) of the starting policy on ``n_problems`` held-out problems, and the mean
    lengths of its correct and wrong completions.

    The defaults give the pass@k curve; ``sft_evaluation(500, 4)`` is the pass@1 the trained arms are compared
    with (the same problems and samples per problem as :func:`train_method`'s final evaluation). ``model``,
    ``device`` and ``mixed_precision`` are :func:`train_method`'s."""
    runtime = one_process_runtime(device, mixed_precision)

    def compute():
        set_torch_threads(1)
        policy, tok = sft_model(model)
        ev = evaluate_pass_at_k(  # on the run's device, in float32 like every evaluation
            policy if runtime is None else policy.to(runtime.device),
            tok,
            n_problems=n_problems,
            n_samples=n_samples,
            ks=tuple(range(1, n_samples + 1)),
            seed=seed,
        )
        return {**ev, "correct": ev["correct"].tolist()}

    description = {"what": "sft-eval", "n_problems": n_problems, "n_samples": n_samples, "seed": seed}
    return _cached({**description, **where_key(model, device, mixed_precision)}, compute)


@torch.no_grad()
def kl_to_reference(policy, reference, tokenizer: CharTokenizer, *, n: int = 64, seed: int = 0) -> float:
    """KL(π ‖ π_ref) in nats per completion, estimated on ``n`` completions that ``policy`` samples for ``n``
    held-out problems: the mean over completions of :math:`\\sum_t k_3` (Schulman's per-token estimator, unbiased
    and never negative; :func:`rl4llm.rlhf.kl_k3`). The sampling uses its own generator (``seed``)."""
    n = check_positive_int("n", n)
    comp = sample_completions(
        policy, tokenizer, held_out_problems(n, seed=1), generator=torch.Generator().manual_seed(seed)
    )
    k3 = kl_k3(completion_logprobs(policy, comp), completion_logprobs(reference, comp)) * comp.mask
    return float(k3.sum(1).mean())


def verifier_reward_fn(tokenizer: CharTokenizer, prompt_length: int | None, verifier: str = "exact"):
    """A ``reward_fn(batch)`` for :func:`rl4llm.rlhf.train_ppo_rlhf`: decode each row's prompt and response, and
    score the response with the verifier.

    ``prompt_length``: every prompt is the row's first ``prompt_length`` tokens (the character tokenizer gives all
    prompts one length). ``None``: prompts of different token lengths (a BPE tokenizer), left-padded by
    :func:`rl4llm.rlhf.rollout.sample_prompted_sequences` to a common width ``P``; ``P`` is read from the batch
    (the responses start at the first column of ``response_mask``, which is column ``P - 1`` of the actions), and
    a prompt is its unpadded tokens after ``<bos>``."""
    lookup: dict[str, Any] = {}

    def reward_fn(batch) -> torch.Tensor:
        from rl4llm.prompting.task import Query

        problems, texts = [], []
        width = prompt_length
        if width is None:
            width = int(torch.nonzero(batch.response_mask.sum(0))[0]) + 1
        for ids, att in zip(batch.input_ids, batch.attention_mask):
            prompt_ids = ids[:width] if prompt_length is not None else ids[:width][att[:width].bool()][1:]
            prompt = tokenizer.decode(prompt_ids.tolist())
            if prompt not in lookup:
                a, op, b = prompt[:2], prompt[2], prompt[3:5]
                lookup[prompt] = Query(int(a), int(b), op)
            problems.append(lookup[prompt])
            texts.append(tokenizer.decode(ids[width:].tolist()))
        return torch.as_tensor(verify(problems, texts, verifier), dtype=torch.float32, device=batch.input_ids.device)

    return reward_fn


def _train_ppo(policy, ref, tok, g: GRPOConfig, callback, runtime=None) -> list[dict[str, float]]:
    """PPO with a critic (chapter 5's trainer) on the verifier's reward, the same number of completions."""
    from rl4llm.rlhf.ppo import PPORLHFConfig, train_ppo_rlhf
    from rl4llm.rlhf.reward_model import RewardModel, ValueModel

    n = g.group_size * g.prompts_per_iter
    config = PPORLHFConfig(
        iterations=g.iterations,
        batch_size=n,
        n_minibatches=g.n_minibatches,
        n_epochs=g.n_epochs,
        lr=g.lr,
        critic_lr=g.lr,
        clip_eps=g.clip_eps,
        kl_coef=g.kl_coef,
        max_new_tokens=g.max_new_tokens,
        temperature=g.temperature,
        seed=g.seed,
    )
    critic = ValueModel.from_reward_model(RewardModel.from_lm(policy))
    if runtime is not None:
        critic = critic.to(runtime.device)
    # the character tokenizer gives every prompt one length; a BPE tokenizer does not (read from each batch)
    char = isinstance(tok, CharTokenizer)
    prompt_length = len(tok.encode(prompt_text(held_out_problems(1)[0]))) if char else None
    reward_fn = verifier_reward_fn(tok, prompt_length, g.verifier)

    def prompt_fn(k: int, rng: np.random.Generator) -> list[list[int]]:
        return [tok.encode(prompt_text(q)) for q in train_problems(k, rng)]

    rows: list[dict[str, float]] = []
    state = {"wall": 0.0, "t0": time.perf_counter()}

    def ppo_callback(it: int, info: dict, pol) -> None:  # noqa: ARG001 - chapter 1's callback protocol
        state["wall"] += time.perf_counter() - state["t0"]
        extra = callback(it, pol, state["wall"]) or {}
        rows.append({"iteration": it, "wall_s": state["wall"], **extra})
        state["t0"] = time.perf_counter()

    history = train_ppo_rlhf(
        policy,
        ref,
        critic,
        reward_fn,
        config,
        bos_id=tok.bos_token_id,
        eos_id=tok.eos_token_id,
        pad_id=tok.pad_token_id,
        callback=ppo_callback,
        prompt_fn=prompt_fn,
        runtime=runtime,
    )
    for row, h in zip(rows, history.rows):
        row.update({"reward": h["proxy"], "length": h["length"], "clip_frac": h["clip_frac"]})
    return rows


def train_method(
    method: str,
    seed: int = 0,
    *,
    eval_every: int = 10,
    eval_problems: int = 100,
    final_problems: int = 500,
    final_samples: int = 4,
    model: str = "reasoning",
    device: str = "cpu",
    mixed_precision: str = "no",
    **overrides: Any,
) -> dict[str, Any]:
    """Train one arm from the SFT checkpoint and evaluate it on held-out problems.

    ``overrides`` are :class:`GRPOConfig` fields (the PPO arm maps the shared ones onto chapter 5's config).
    ``model`` is the starting policy (:func:`sft_model`; it is also the frozen reference), ``device`` and
    ``mixed_precision`` where and how it trains (:func:`one_process_runtime`; the evaluations sample on the same
    device, in float32); the defaults are the book's path, one CPU process, bit for bit.
    Returns ``{"rows": per-iteration logs with held-out ``pass_at_1`` and ``kl_sft`` (:func:`kl_to_reference`)
    every ``eval_every`` iterations,
    "pass_at_1": final held-out pass@1 (``final_problems`` x ``final_samples``), "length_correct",
    "length_wrong", "wall_s": training time, "config", "state_dict": the trained policy's weights}``.
    """
    check_choice("method", method, ARMS)
    check_positive_int("eval_every", eval_every)
    g = GRPOConfig.for_method(method if method != "ppo" else "grpo", seed=seed, **overrides)
    description = {
        "what": f"train-{method}",
        "seed": seed,
        "eval_every": eval_every,
        "eval_problems": eval_problems,
        "final_problems": final_problems,
        "final_samples": final_samples,
        "config": vars(g),
        **where_key(model, device, mixed_precision),
    }
    runtime = one_process_runtime(device, mixed_precision)

    def compute():
        set_torch_threads(1)
        set_seed(seed)
        policy, tok = sft_model(model)
        ref, _ = sft_model(model)
        if runtime is not None:
            policy, ref = policy.to(runtime.device), ref.to(runtime.device)

        def callback(it: int, pol, wall: float) -> dict[str, float] | None:
            if it % eval_every and it != g.iterations:
                return None
            ev = evaluate_pass_at_k(
                pol,
                tok,
                n_problems=eval_problems,
                n_samples=2,
                ks=(1,),
                seed=seed + it,
                max_new_tokens=g.max_new_tokens,
            )
            return {"pass_at_1": ev["pass_at_k"][1], "kl_sft": kl_to_reference(pol, ref, tok, seed=seed + it)}

        if method == "ppo":
            rows = _train_ppo(policy, ref, tok, g, callback, runtime)
        else:
            rows = train_grpo(policy, ref, tok, g, callback=callback, runtime=runtime).rows
        final = evaluate_pass_at_k(
            policy,
            tok,
            n_problems=final_problems,
            n_samples=final_samples,
            ks=(1,),
            seed=10_000 + seed,
            max_new_tokens=max(g.max_new_tokens, MAX_NEW_TOKENS),
        )
        out = {
            "rows": rows,
            "pass_at_1": final["pass_at_k"][1],
            "length_correct": final["length_correct"],
            "length_wrong": final["length_wrong"],
            "wall_s": rows[-1]["wall_s"],
            "config": vars(g),
            "state_dict": {k: v.detach().cpu().clone() for k, v in policy.state_dict().items()},
        }
        return out

    return _cached(description, compute)
