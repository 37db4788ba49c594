"""Time per iteration of GRPO against PPO with a critic on the same batch of completions (chapter 7).

    .venv/bin/python benchmarks/grpo_vs_ppo.py [--iterations 10] [--group-size 8] [--prompts-per-iter 8]

Both start from the shipped reasoning checkpoint and sample ``group_size x prompts_per_iter`` completions per
iteration, rewarded by the exact verifier, with the same epochs, minibatches and learning rate. PPO also runs
its value model (a second GPT-2 trunk with a scalar head) forward on every rollout and trains it; GRPO has no
value model. Prints seconds per iteration (median over iterations, the first one dropped as warm-up), the
parameters each method trains, and the peak memory of each run (RSS, measured in a fresh process for each).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import statistics
import time


def _run(method: str, iterations: int, group_size: int, prompts_per_iter: int, queue) -> None:
    import numpy as np

    from rl4llm.rlvr.analysis import sft_model, verifier_reward_fn
    from rl4llm.rlvr.grpo import GRPOConfig, train_grpo
    from rl4llm.rlvr.task import prompt_text, train_problems
    from rl4llm.utils import set_torch_threads

    set_torch_threads(1)
    policy, tok = sft_model()
    ref, _ = sft_model()
    g = GRPOConfig(iterations=iterations, group_size=group_size, prompts_per_iter=prompts_per_iter)
    times: list[float] = []
    stamp = {"t": time.perf_counter()}

    def tick(*_args) -> None:
        now = time.perf_counter()
        times.append(now - stamp["t"])
        stamp["t"] = now

    if method == "grpo":
        train_grpo(policy, ref, tok, g, callback=lambda it, pol, wall: tick())
        n_params = sum(p.numel() for p in policy.parameters())
    else:
        from rl4llm.rlhf.ppo import PPORLHFConfig, train_ppo_rlhf
        from rl4llm.rlhf.reward_model import RewardModel, ValueModel

        n = group_size * prompts_per_iter
        config = PPORLHFConfig(
            iterations=iterations,
            batch_size=n,
            n_minibatches=g.n_minibatches,
            n_epochs=g.n_epochs,
            lr=g.lr,
            critic_lr=g.lr,
            clip_eps=g.clip_eps,
            kl_coef=0.0,
            max_new_tokens=g.max_new_tokens,
            seed=g.seed,
        )
        critic = ValueModel.from_reward_model(RewardModel.from_lm(policy))
        prompt_len = len(tok.encode(prompt_text(train_problems(1, np.random.default_rng(0))[0])))

        def prompt_fn(k: int, rng) -> list[list[int]]:
            return [tok.encode(prompt_text(q)) for q in train_problems(k, rng)]

        train_ppo_rlhf(
            policy,
            ref,
            critic,
            verifier_reward_fn(tok, prompt_len),
            config,
            bos_id=tok.bos_token_id,
            eos_id=tok.eos_token_id,
            pad_id=tok.pad_token_id,
            callback=lambda it, info, pol: tick(),
            prompt_fn=prompt_fn,
        )
        n_params = sum(p.numel() for p in policy.parameters()) + sum(p.numel() for p in critic.parameters())
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put(
        {
            "method": method,
            "s_per_iter": statistics.median(times[1:] or times),
            "trained_params": n_params,
            "peak_rss_mb": round(peak_mb, 1),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--group-size", type=int, default=8)
    parser.add_argument("--prompts-per-iter", type=int, default=8)
    args = parser.parse_args()
    ctx = mp.get_context("spawn")
    rows = []
    for method in ("grpo", "ppo"):
        q = ctx.Queue()
        p = ctx.Process(target=_run, args=(method, args.iterations, args.group_size, args.prompts_per_iter, q))
        p.start()
        rows.append(q.get())
        p.join()
    print(f"{'method':<6} {'s / iteration':>14} {'trained params':>15} {'peak RSS MB':>12}")
    for r in rows:
        print(f"{r['method']:<6} {r['s_per_iter']:>14.3f} {r['trained_params']:>15,} {r['peak_rss_mb']:>12.1f}")
    print(json.dumps({"grpo_over_ppo_time": rows[0]["s_per_iter"] / rows[1]["s_per_iter"]}))


if __name__ == "__main__":
    main()
