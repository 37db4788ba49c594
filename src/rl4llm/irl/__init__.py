"""Inverse reinforcement learning (chapter 4): learn a reward from demonstrations, then optimise it online.

* :mod:`~rl4llm.irl.maxent`: maximum-entropy IRL, exact, on a known MDP: soft value iteration, state-visitation
  frequencies, the feature-matching gradient, :func:`maxent_irl` (section 4.1);
* :mod:`~rl4llm.irl.planning`: exact expected returns and trajectory sampling on the same MDP (section 4.1),
  where behaviour cloning is :func:`~rl4llm.imitation.bc.tabular_bc`; the planners themselves (value iteration, soft value iteration) are those of the
  package's one tabular MDP, :mod:`rl4llm.envs.tabular`;
* :mod:`~rl4llm.irl.adversarial`: GAIL's discriminator loss and rewards, and :func:`train_gail` with the
  package's PPO as the generator (section 4.2);
* :mod:`~rl4llm.irl.demos`: a PPO expert and its demonstrations (section 4.2), cloned by the package's
  :func:`~rl4llm.imitation.bc.behaviour_cloning`;
* :mod:`~rl4llm.irl.token_bridge`: the same recipe on the token MDP of the tiny GPT-2, validity and mistake rate
  against position (section 4.3);
* :mod:`~rl4llm.irl.plots`: the chapter's figures.
"""

from rl4llm.imitation.bc import behaviour_cloning, tabular_bc
from rl4llm.irl.adversarial import (
    Discriminator,
    GAILConfig,
    GAILResult,
    adversarial_reward,
    discriminator_loss,
    train_gail,
)
from rl4llm.irl.demos import collect_demonstrations, train_expert
from rl4llm.irl.maxent import (
    MaxEntResult,
    feature_expectations,
    maxent_gradient,
    maxent_irl,
    soft_value_iteration,
    state_visitation_frequencies,
)
from rl4llm.irl.planning import expected_return, sample_trajectories, uniform_policy
from rl4llm.irl.token_bridge import (
    NGramReward,
    RLConfig,
    error_hazard,
    fit_text_reward,
    optimise_reward,
    sft,
)

__all__ = [
    "soft_value_iteration",
    "state_visitation_frequencies",
    "feature_expectations",
    "maxent_gradient",
    "maxent_irl",
    "MaxEntResult",
    "expected_return",
    "sample_trajectories",
    "tabular_bc",
    "uniform_policy",
    "discriminator_loss",
    "adversarial_reward",
    "Discriminator",
    "GAILConfig",
    "GAILResult",
    "train_gail",
    "train_expert",
    "collect_demonstrations",
    "behaviour_cloning",
    "error_hazard",
    "sft",
    "NGramReward",
    "fit_text_reward",
    "RLConfig",
    "optimise_reward",
]
