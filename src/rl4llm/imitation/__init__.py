"""Imitation learning (chapter 3): behaviour cloning, DAgger, compounding error and exposure bias.

* :mod:`~rl4llm.imitation.policy`: the supervised learner (linear softmax) and the BC loss;
* :mod:`~rl4llm.imitation.bc`: the package's behaviour-cloning routine (a neural policy, used by chapters 2 and 4
  too), and :func:`clone_expert`, a linear learner cloned from an expert on any discrete gymnasium env;
* :mod:`~rl4llm.imitation.dagger`: DAgger with a beta-mixing schedule, for any discrete gymnasium env;
* :mod:`~rl4llm.imitation.tightrope`: exact and measured costs behind Theorems 1.1 (BC, :math:`T^2\\epsilon`) and
  1.4 (DAgger, :math:`T\\epsilon`) on the tightrope chain;
* :mod:`~rl4llm.imitation.token_dagger`: SFT (behaviour cloning on tokens) and DAgger on tokens, for the tiny
  GPT-2;
* :mod:`~rl4llm.imitation.exposure`: how far generated texts stay inside the language, position by position
  (:func:`validity_by_position`), for any model's samples;
* :mod:`~rl4llm.imitation.plots`: the chapter's figures.
"""

from rl4llm.imitation.bc import behaviour_cloning, clone_expert, collect_expert_demonstrations
from rl4llm.imitation.dagger import beta_schedule, dagger, dagger_rollout
from rl4llm.imitation.exposure import (
    ValidityCurves,
    current_review,
    mark_off_language,
    stream_expert,
    validity_by_position,
)
from rl4llm.imitation.plots import plot_validity_curves
from rl4llm.imitation.policy import LinearSoftmaxPolicy, bc_loss, fit_softmax_policy, one_hot_featurizer
from rl4llm.imitation.tightrope import (
    bc_cost_exact,
    dagger_cost_exact,
    simulate_tightrope,
    tightrope_costs,
    tightrope_expert,
    train_tightrope_learner,
    walker_table,
)
from rl4llm.imitation.token_dagger import (
    TokenDataset,
    fit_token_policy,
    generate_streams,
    sample_streams,
    soft_cross_entropy,
    token_dagger,
    token_sft,
)

__all__ = [
    "bc_loss",
    "LinearSoftmaxPolicy",
    "fit_softmax_policy",
    "one_hot_featurizer",
    "behaviour_cloning",
    "clone_expert",
    "collect_expert_demonstrations",
    "beta_schedule",
    "dagger",
    "dagger_rollout",
    "bc_cost_exact",
    "dagger_cost_exact",
    "walker_table",
    "simulate_tightrope",
    "tightrope_costs",
    "tightrope_expert",
    "train_tightrope_learner",
    "current_review",
    "stream_expert",
    "ValidityCurves",
    "validity_by_position",
    "mark_off_language",
    "plot_validity_curves",
    "sample_streams",
    "soft_cross_entropy",
    "TokenDataset",
    "fit_token_policy",
    "generate_streams",
    "token_sft",
    "token_dagger",
]
