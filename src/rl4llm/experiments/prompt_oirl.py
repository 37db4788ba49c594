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
:mod:`rl4llm.prompting.logs` instead of the book's LM; ``--export-logs book.csv`` writes the book's logs in that
layout. ``curves.csv`` holds the accuracy-vs-K sweep (one row per number ``k`` of candidate prompts).
"""

from __future__ import annotations

from dataclasses import dataclass

from rl4llm.config import ConfigError, param, validate
from rl4llm.experiments import Result
from rl4llm.plotting import new_figure
from rl4llm.prompting.evaluation import k_sweep, oirl_study, predicted_success, type_prompt_accuracy
from rl4llm.prompting.logs import collect_logs, load_logs, save_logs
from rl4llm.prompting.plots import plot_choices, plot_k_sweep, plot_methods, plot_prompt_evaluation
from rl4llm.utils import set_seed, set_torch_threads

NAME = "prompt-oirl"
SUMMARY = "Prompt-OIRL: an offline reward model picks a prompt per query for a tiny arithmetic GPT-2"
#: The figure needs the fitted reward model (``artifacts["study"]``), which the result cache does not store.
CACHEABLE = False


@dataclass
class Config:
    """Defaults are what the book runs."""

    n_queries: int = param(800, low=8, help="queries in the logs (each tried with all 12 prompts)")
    test_frac: float = param(
        0.5,
        low=0.0,
        high=1.0,
        low_inclusive=False,
        high_inclusive=False,
        help="share of the queries held out for testing",
    )
    n_candidates: int = param(0, low=0, help="candidate prompts: the first K logged ones (0: every logged prompt)")
    n_train_queries: int = param(0, low=0, help="training queries used from the logs (0: the whole training split)")
    logs_path: str = param("", help="empty: the book's LM; else an .npz/.csv file of your own logs")
    export_logs: str = param("", help="non-empty: also write the logs used to this .npz/.csv file")
    rm_hidden: int = param(64, low=1, help="hidden units of the offline reward model")
    rm_epochs: int = param(400, low=1, help="training epochs of the offline reward model")
    rm_lr: float = param(0.01, low=0.0, low_inclusive=False, help="learning rate of the offline reward model")
    sweep: bool = param(True, help="also the accuracy-vs-K sweep (one reward model per K)")
    seed: int = param(0, low=0, help="random seed")

    def __post_init__(self) -> None:
        validate(self)
        for name in ("logs_path", "export_logs"):
            value = getattr(self, name)
            if value and not value.endswith((".npz", ".csv")):
                raise ConfigError(name, f"{name} must be empty or end in .npz or .csv, got {value!r}")


def run(config: Config) -> Result:
    set_torch_threads(1)
    set_seed(config.seed)
    logs = load_logs(config.logs_path) if config.logs_path else collect_logs(config.n_queries, config.seed)
    if config.export_logs:
        save_logs(logs, config.export_logs)
    rm_kwargs = {"hidden": config.rm_hidden, "epochs": config.rm_epochs, "lr": config.rm_lr}
    sizes = {"n_candidates": config.n_candidates or None, "n_train_queries": config.n_train_queries or None}
    study = oirl_study(logs, test_frac=config.test_frac, seed=config.seed, **sizes, **rm_kwargs)
    metrics = dict(study["metrics"])
    metrics["n_prompts_total"] = logs.n_prompts
    metrics["n_heldout_prompts"] = int(logs.prompt_heldout.sum())
    metrics["logs"] = config.logs_path or "tiny arithmetic GPT-2"
    types, table = type_prompt_accuracy(logs)
    if types != [""]:  # the LM's competence regions: the best prompt per query type, over all logged queries
        for t, row in zip(types, table):
            metrics[f"best_prompt_on_{t}"] = str(logs.prompt_name[int(row.argmax())])
            metrics[f"best_prompt_accuracy_on_{t}"] = float(row.max())
    rows = (
        k_sweep(
            logs, seed=config.seed, test_frac=config.test_frac, n_train_queries=sizes["n_train_queries"], **rm_kwargs
        )
        if config.sweep
        else []
    )
    result = Result(metrics=metrics, curves=rows, artifacts={"logs": logs, "study": study})
    result.figure = draw(result, config)
    return result


def draw(result: Result, config: Config):
    """Accuracy of every prompt-choice method, accuracy against K, the choices made, the held-out prompts."""
    logs, study, rows = result.artifacts["logs"], result.artifacts["study"], result.curves
    fig, axes = new_figure(ncols=2, nrows=2, width=5.6, height=3.8)
    plot_methods(result.metrics, ax=axes[0, 0])
    if rows:
        plot_k_sweep(rows, ax=axes[0, 1])
    else:
        axes[0, 1].set_axis_off()
    plot_choices(logs, study, ax=axes[1, 0])
    plot_prompt_evaluation(logs, study, predicted_success(logs, study), ax=axes[1, 1])
    return fig
