"""PPO on CartPole-v1: rl4llm's ``ppo-cartpole`` against Stable-Baselines3's PPO, same machine, same run.

Both use the RL Baselines3 Zoo hyperparameters for CartPole-v1 (8 environments x 32 steps, 20 epochs of one
256-sample minibatch, learning rate 1e-3 annealed linearly to 0, gamma 0.98, lambda 0.8, clip 0.2, no entropy bonus,
100k steps, 64-64 tanh MLPs); the zoo also anneals SB3's clip range linearly to 0, rl4llm keeps it at 0.2. Both run
single-threaded (``torch.set_num_threads(1)``), one after the other, for the same seeds. The script prints, per
implementation and seed, the CPU (user + system) and wall seconds of training, the mean return of the last 20
training episodes, the environment step at which that mean first reached 475 (CartPole's "solved" level) and the
mean return of 10 greedy evaluation episodes, then the means and the SB3 / rl4llm ratios. On a shared machine
compare the CPU seconds: wall time depends on the other jobs.

Stable-Baselines3 is *not* a dependency of rl4llm. Install it in a throwaway environment, from the repository's
root (pip keeps the CPU build of torch and gymnasium 1.4; stable-baselines3 2.9.2 was used)::

    python3 -m venv .sb3-venv
    .sb3-venv/bin/pip install torch==2.13.0          # first, so that pip takes the CPU wheel
    .sb3-venv/bin/pip install stable-baselines3      # keeps torch 2.13.0 and gymnasium 1.4.0
    .sb3-venv/bin/pip install -e .                   # rl4llm itself
    .sb3-venv/bin/pip list | grep -i -E "torch|gymnasium|stable"   # check nothing was replaced

then run::

    RL4LLM_QUIET=1 .sb3-venv/bin/python benchmarks/ppo_vs_sb3.py [--seeds 3] [--total-steps 100000]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time

import numpy as np

SOLVED = 475.0


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _steps_to(returns: list[float], steps: list[int], threshold: float = SOLVED, last: int = 20) -> int | None:
    for i in range(len(returns)):
        if i + 1 >= last and np.mean(returns[i + 1 - last : i + 1]) >= threshold:
            return int(steps[i])
    return None


def run_rl4llm(seed: int, total_steps: int) -> dict:
    from rl4llm.experiments import get_experiment

    exp = get_experiment("ppo-cartpole")
    config = exp.config_cls(total_steps=total_steps, seed=seed, eval_episodes=10)
    c0, w0 = _cpu(), time.perf_counter()
    result = exp.run(config)
    cpu, wall = _cpu() - c0, time.perf_counter() - w0
    returns = result.artifacts["episode_returns"]
    steps = result.artifacts["episode_steps"]
    # the experiment's wall clock includes its 10 evaluation episodes and the figure; so does the CPU time
    return {
        "cpu_s": cpu,
        "wall_s": wall,
        "final_return": float(np.mean(returns[-20:])),
        "steps_to_475": _steps_to(returns, steps),
        "eval_return": result.metrics["eval_return"],
    }


def run_sb3(seed: int, total_steps: int) -> dict:
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy

    class Episodes(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.returns: list[float] = []
            self.steps: list[int] = []

        def _on_step(self) -> bool:
            for info in self.locals["infos"]:
                if "episode" in info:
                    self.returns.append(float(info["episode"]["r"]))
                    self.steps.append(int(self.num_timesteps))
            return True

    def linear(start: float):
        return lambda progress_remaining: progress_remaining * start

    c0, w0 = _cpu(), time.perf_counter()
    env = make_vec_env("CartPole-v1", n_envs=8, seed=seed)
    model = PPO(
        "MlpPolicy",
        env,
        n_steps=32,
        batch_size=256,
        gae_lambda=0.8,
        gamma=0.98,
        n_epochs=20,
        ent_coef=0.0,
        learning_rate=linear(1e-3),
        clip_range=linear(0.2),
        seed=seed,
        device="cpu",
        verbose=0,
    )
    episodes = Episodes()
    model.learn(total_timesteps=total_steps, callback=episodes)
    eval_env = make_vec_env("CartPole-v1", n_envs=1, seed=10_000 + seed)
    mean_eval, _ = evaluate_policy(model, eval_env, n_eval_episodes=10, deterministic=True)
    cpu, wall = _cpu() - c0, time.perf_counter() - w0
    return {
        "cpu_s": cpu,
        "wall_s": wall,
        "final_return": float(np.mean(episodes.returns[-20:])),
        "steps_to_475": _steps_to(episodes.returns, episodes.steps),
        "eval_return": float(mean_eval),
    }


def _fmt(v) -> str:
    if v is None:
        return "never"
    return f"{v:,.0f}" if isinstance(v, int) else f"{v:.1f}"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 for both implementations")
    parser.add_argument("--total-steps", type=int, default=100_000)
    args = parser.parse_args(argv)
    os.environ.setdefault("RL4LLM_QUIET", "1")
    import torch

    torch.set_num_threads(1)
    try:
        import stable_baselines3
    except ImportError:
        print("stable-baselines3 is not installed in this environment; see this script's docstring", file=sys.stderr)
        return 2
    print(
        f"torch {torch.__version__}, stable-baselines3 {stable_baselines3.__version__}, "
        f"{args.total_steps:,} steps, seeds 0-{args.seeds - 1}, 1 thread"
    )
    header = f"{'implementation':<10} {'seed':>4} {'CPU s':>7} {'wall s':>7} {'final':>6} {'to 475':>8} {'eval':>6}"
    print(header)
    rows: dict[str, list[dict]] = {"rl4llm": [], "sb3": []}
    for seed in range(args.seeds):
        for name, fn in (("rl4llm", run_rl4llm), ("sb3", run_sb3)):
            r = fn(seed, args.total_steps)
            rows[name].append(r)
            print(
                f"{name:<10} {seed:>4} {r['cpu_s']:>7.1f} {r['wall_s']:>7.1f} {r['final_return']:>6.1f} "
                f"{_fmt(r['steps_to_475']):>8} {r['eval_return']:>6.1f}",
                flush=True,
            )
    print("\nmeans over seeds")
    summary = {}
    for name, rs in rows.items():
        reached = [r["steps_to_475"] for r in rs if r["steps_to_475"] is not None]
        summary[name] = {
            "cpu_s": float(np.mean([r["cpu_s"] for r in rs])),
            "wall_s": float(np.mean([r["wall_s"] for r in rs])),
            "final_return": float(np.mean([r["final_return"] for r in rs])),
            "eval_return": float(np.mean([r["eval_return"] for r in rs])),
            "steps_to_475": float(np.mean(reached)) if len(reached) == len(rs) else None,
            "solved": f"{len(reached)}/{len(rs)}",
        }
        s = summary[name]
        print(
            f"{name:<10} CPU {s['cpu_s']:.1f} s, wall {s['wall_s']:.1f} s, final return {s['final_return']:.1f}, "
            f"eval {s['eval_return']:.1f}, reached 475 in {s['solved']} seeds"
            + (f" after {s['steps_to_475']:,.0f} steps on average" if s["steps_to_475"] else "")
        )
    a, b = summary["sb3"], summary["rl4llm"]
    print(
        f"\nSB3 / rl4llm: CPU time x{a['cpu_s'] / b['cpu_s']:.2f}, wall time x{a['wall_s'] / b['wall_s']:.2f}"
        + (
            f", steps to 475 x{a['steps_to_475'] / b['steps_to_475']:.2f}"
            if a["steps_to_475"] and b["steps_to_475"]
            else ""
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
