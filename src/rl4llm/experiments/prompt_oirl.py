"""``prompt-oirl``: query-dependent prompt evaluation and optimisation with offline inverse RL (chapter 6).

Prompt-OIRL (Sun, Hüyük & van der Schaar, ICLR 2024) in miniature:

1. **Offline logs.** The arithmetic tiny GPT-2 answers ``n_queries`` queries with each of twelve prompts; the
   checker labels every answer (:func:`rl4llm.prompting.collect_logs`, cached on disk). Eight prompts form the
   training logs; four paraphrases are *held out*.
2. **Reward model.** On half of the queries, fit :math:`\\hat r(x, \\pi) \\approx P(\\text{correct} \\mid x, \\pi)`
   from query features and prompt features (the LM's hidden state of the instruction).
3. **Selection.** On the held-out queries, pick per query :math:`\\arg\\max_\\pi \\hat r(x, \\pi)` and count how
   often the LM would then be right, against the best single prompt, a random prompt, the LM's confidence and
   the oracle, plus a prompt-features-only reward model (a negative control).

``--logs-path my.npz`` (or ``.csv``) runs steps 2-3 on any LLM's logs in the layout of
:mod:`rl4llm.prompting.logs` instead of the book's LM.
"""

from __future__ import annotations

from dataclasses import dataclass

from rl4llm.experiments import Result
from rl4llm.prompting.evaluation import k_sweep, oirl_study
from rl4llm.prompting.logs import collect_logs, load_logs
from rl4llm.prompting.plots import plot_choices, plot_k_sweep, plot_methods
from rl4llm.plotting import new_figure
from rl4llm.utils import check_positive_int, check_range, set_seed, set_torch_threads

NAME = "prompt-oirl"
SUMMARY = "Prompt-OIRL: an offline reward model picks a prompt per query for a tiny arithmetic GPT-2"


@dataclass
class Config:
    """Defaults are what the book runs."""

    n_queries: int = 800  # queries in the logs (each tried with all 12 prompts); half train, half test
    test_frac: float = 0.5
    logs_path: str = ""  # empty: the book's LM; else an .npz/.csv of your own logs
    rm_hidden: int = 64
    rm_epochs: int = 400
    rm_lr: float = 0.01
    sweep: bool = True  # also the accuracy-vs-K sweep (one reward model per K)
    seed: int = 0

    def __post_init__(self) -> None:
        check_positive_int("n_queries", self.n_queries, 8)
        check_range("test_frac", self.test_frac, 0.0, 1.0, low_inclusive=False, high_inclusive=False)
        if self.logs_path and not self.logs_path.endswith((".npz", ".csv")):
            raise ValueError(f"logs_path must be empty or end in .npz or .csv, got {self.logs_path!r}")
        check_positive_int("rm_hidden", self.rm_hidden)
        check_positive_int("rm_epochs", self.rm_epochs)
        check_range("rm_lr", self.rm_lr, 0.0, None, low_inclusive=False)
        check_positive_int("seed", self.seed, 0)


def run(config: Config) -> Result:
    set_torch_threads(1)
    set_seed(config.seed)
    logs = load_logs(config.logs_path) if config.logs_path else collect_logs(config.n_queries, config.seed)
    rm_kwargs = {"hidden": config.rm_hidden, "epochs": config.rm_epochs, "lr": config.rm_lr}
    study = oirl_study(logs, test_frac=config.test_frac, seed=config.seed, **rm_kwargs)
    metrics = dict(study["metrics"])
    metrics["n_prompts_total"] = logs.n_prompts
    metrics["n_heldout_prompts"] = int(logs.prompt_heldout.sum())
    metrics["logs"] = config.logs_path or "tiny arithmetic GPT-2"
    rows = k_sweep(logs, seed=config.seed, test_frac=config.test_frac, **rm_kwargs) if config.sweep else []
    fig, axes = new_figure(ncols=3, width=5.0, height=3.6)
    fig.set_layout_engine("constrained")
    plot_methods(metrics, ax=axes[0, 0])
    if rows:
        plot_k_sweep(rows, ax=axes[0, 1])
    else:
        axes[0, 1].set_axis_off()
    plot_choices(logs, study, ax=axes[0, 2])
    return Result(metrics=metrics, curves=rows, figure=fig, artifacts={"logs": logs, "study": study})
