"""Which graded functions each assignment covers (the only hand-written part of the student copies).

A graded function is a top-level function or class of the package whose body holds a region between a
``# BEGIN SOLUTION`` line and an ``# END SOLUTION`` line (:mod:`rl4llm.assignments.source` finds them). An
assignment names its targets as ``"module:name"``; the generator copies each one with the region replaced by
``raise NotImplementedError``. To grow an assignment when a chapter lands: add the target here, add the grader
items (one test each, ``@pytest.mark.points(n)``) to ``assignments/<slug>/test_<slug>.py``, and run
``rl4llm make-assignments``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Assignment", "ASSIGNMENTS", "get_assignment", "assignment_slugs"]


@dataclass(frozen=True)
class Assignment:
    """One assignment: a folder ``assignments/<slug>/`` with ``student.py``, ``README.md`` and the grader tests.

    Attributes:
        slug: folder name, ``"<nn>-<topic>"`` (``nn`` orders the assignments along the book).
        title: human title, used in the README and the score table.
        chapter: the book chapter the assignment belongs to, as a document path (``"book/01-rl/index"``).
        summary: one paragraph for the README: what the student builds and why it matters.
        targets: graded functions or classes, ``"package.module:name"``, in the order the student meets them.
    """

    slug: str
    title: str
    chapter: str
    summary: str
    targets: tuple[str, ...]

    @property
    def number(self) -> str:
        """The two-digit number of the assignment (``"01"``)."""
        return self.slug.split("-", 1)[0]

    @property
    def names(self) -> tuple[str, ...]:
        """The public names the student copy defines (the part of each target after the colon)."""
        return tuple(t.split(":", 1)[1] for t in self.targets)

    @property
    def test_file(self) -> str:
        """The grader's file name inside the assignment folder: ``test_<slug with underscores>.py``."""
        return "test_" + self.slug.replace("-", "_") + ".py"

    def target_of(self, name: str) -> tuple[str, str]:
        """``(module, name)`` of one target; ``ValueError`` naming the valid names otherwise."""
        for t in self.targets:
            module, _, qual = t.partition(":")
            if qual == name:
                return module, qual
        raise ValueError(f"{name!r} is not graded in assignment {self.slug}; graded: {', '.join(self.names)}")


ASSIGNMENTS: tuple[Assignment, ...] = (
    Assignment(
        slug="01-returns-gae",
        title="Returns, advantages and policy gradients",
        chapter="book/01-rl/index",
        summary=(
            "Every policy-gradient method needs to know how good an action turned out to be. You compute the "
            "discounted reward-to-go, generalised advantage estimates that tell a true end of an episode "
            "(*terminated*) from a time-limit cut (*truncated*), the REINFORCE surrogate loss whose gradient is "
            "the policy gradient, and the Bellman targets of DQN, the off-policy baseline of the why-PPO "
            "comparison. The behavioural item trains an actor-critic on a small corridor with your functions."
        ),
        targets=(
            "rl4llm.rl.returns:discounted_returns",
            "rl4llm.rl.returns:gae",
            "rl4llm.rl.reinforce:reinforce_loss",
            "rl4llm.rl.dqn:dqn_targets",
        ),
    ),
    Assignment(
        slug="02-ppo",
        title="Proximal policy optimisation",
        chapter="book/01-rl/index",
        summary=(
            "PPO is the workhorse of RLHF. You write its four loss terms as pure functions: the clipped "
            "surrogate (the pessimistic minimum of the unclipped and clipped importance-weighted advantage), the "
            "clipped value loss, the entropy bonus and per-batch advantage normalisation. The graded items check "
            "hand-computed cases, where the gradient vanishes, one PPO update that stays inside the trust "
            "region, and, as the behavioural item, that the package's PPO trainer running on your losses "
            "learns CartPole."
        ),
        targets=(
            "rl4llm.rl.losses:ppo_clip_loss",
            "rl4llm.rl.losses:clipped_value_loss",
            "rl4llm.rl.losses:entropy_bonus",
            "rl4llm.rl.losses:normalize_advantages",
        ),
    ),
    Assignment(
        slug="03-imitation",
        title="Behaviour cloning and DAgger on the tightrope",
        chapter="book/03-imitation/index",
        summary=(
            "Supervised fine-tuning is behaviour cloning on tokens, and its errors compound. You write the "
            "behaviour-cloning loss, DAgger's mixing schedule, and the exact expected costs of a cloned walker "
            "(quadratic in the horizon, Theorem 1.1) and of a DAgger walker (linear, Theorem 1.4) on the "
            "tightrope chain, and the soft cross-entropy that trains a language model on an expert's next-word "
            "distributions (SFT and DAgger on tokens). The behavioural item trains both tightrope learners with "
            "your loss and schedule and checks that the measured costs match the theory."
        ),
        targets=(
            "rl4llm.imitation.policy:bc_loss",
            "rl4llm.imitation.dagger:beta_schedule",
            "rl4llm.imitation.tightrope:bc_cost_exact",
            "rl4llm.imitation.tightrope:dagger_cost_exact",
            "rl4llm.imitation.token_dagger:soft_cross_entropy",
        ),
    ),
    Assignment(
        slug="04-inverse-rl",
        title="Inverse RL: maximum entropy and adversarial",
        chapter="book/04-irl/index",
        summary=(
            "Inverse RL recovers a reward from demonstrations; RLHF is its online version with a reward learned "
            "from people. You write exact maximum-entropy IRL on a gridworld with known dynamics: soft value "
            "iteration (the backward pass that gives the Boltzmann-rational policy of a reward), the expected "
            "state visitation frequencies (the forward pass), and the feature-matching gradient. Then the two "
            "pieces of adversarial IRL: the discriminator's logistic loss and the reward it hands to the policy. "
            "The behavioural item runs the package's MaxEnt IRL loop on your three functions and checks that the "
            "learned reward makes the expert's behaviour optimal again."
        ),
        targets=(
            "rl4llm.envs.tabular:soft_value_iteration",
            "rl4llm.irl.maxent:state_visitation_frequencies",
            "rl4llm.irl.maxent:maxent_gradient",
            "rl4llm.irl.adversarial:discriminator_loss",
            "rl4llm.irl.adversarial:adversarial_reward",
        ),
    ),
    Assignment(
        slug="05-rlhf",
        title="RLHF: preference losses, log-probabilities and KL control",
        chapter="book/05-rlhf/index",
        summary=(
            "The pieces of RLHF that are pure functions: the log-probability a causal language model gives to "
            "each token and to a whole response, the Bradley-Terry loss that fits a reward model to "
            "comparisons, the DPO loss that skips the reward model, Schulman's three estimators of "
            "KL(policy || reference), the adaptive KL controller of Ziegler et al. (2019), and the per-token "
            "rewards and advantages of PPO on a language model (the KL penalty folded into the reward, GAE over "
            "right-padded responses). The behavioural "
            "item fits a reward model to noisy comparisons with your Bradley-Terry loss and aligns a small "
            "policy with your DPO loss."
        ),
        targets=(
            "rl4llm.lm.generation:token_logprobs",
            "rl4llm.lm.generation:sequence_logprobs",
            "rl4llm.rlhf.losses:bradley_terry_loss",
            "rl4llm.rlhf.losses:dpo_loss",
            "rl4llm.rlhf.kl:kl_k1",
            "rl4llm.rlhf.kl:kl_k2",
            "rl4llm.rlhf.kl:kl_k3",
            "rl4llm.rlhf.kl:AdaptiveKLController",
            "rl4llm.rlhf.ppo:kl_penalised_rewards",
            "rl4llm.rlhf.ppo:token_advantages",
        ),
    ),
    Assignment(
        slug="06-prompt-oirl",
        title="Prompt-OIRL: an offline reward model that picks prompts",
        chapter="book/06-prompting/index",
        summary=(
            "Prompt-OIRL learns, from offline logs of (query, prompt, correct?), a reward model that predicts "
            "whether a prompt will make the language model answer a query correctly, and then picks the best "
            "prompt per query without calling the language model. You write the reward model's loss, the ROC AUC "
            "that evaluates it, and the per-query selection. The behavioural item fits the reward model on "
            "synthetic logs with your loss and checks that your selection beats the best single prompt."
        ),
        targets=(
            "rl4llm.prompting.reward_model:prompt_reward_loss",
            "rl4llm.prompting.reward_model:roc_auc",
            "rl4llm.prompting.selection:select_prompts",
        ),
    ),
    Assignment(
        slug="07-offline-rl",
        title="Offline RL: exact policy evaluation and the conservative penalty",
        chapter="book/02-offline-rl/index",
        summary=(
            "Offline RL learns from a fixed log and cannot try the actions the log never took, so a Q-function "
            "is free to over-estimate them. You write exact policy evaluation on a tabular MDP with terminal "
            "states (the linear Bellman system that gives the truth every estimate is measured against) and CQL's "
            "conservative penalty, the log-sum-exp of all actions' values minus the logged action's value. The "
            "behavioural item runs fitted Q-iteration with and without your penalty on a logged cliff walk and "
            "scores both greedy policies with your evaluation."
        ),
        targets=(
            "rl4llm.envs.tabular:evaluate_policy",
            "rl4llm.offline.cql:cql_penalty",
        ),
    ),
    Assignment(
        slug="08-rlvr",
        title="RL with verifiable rewards: GRPO, RLOO, Dr. GRPO and pass@k",
        chapter="book/07-rlvr/index",
        summary=(
            "Reasoning models are trained with a verifier's 0/1 reward and a group of samples per prompt in "
            "place of a critic. You write the group advantages in their three forms (GRPO's mean baseline and "
            "group standard deviation, Dr. GRPO without the division, RLOO's leave-one-out baseline), the three "
            "ways of averaging a per-token loss (per sequence, per token, by a constant), GRPO's clipped loss "
            "with the k3 KL penalty, and the unbiased pass@k estimator. The behavioural item trains a small "
            "two-token policy on verifiable additions with your functions and checks that its pass@1 rises."
        ),
        targets=(
            "rl4llm.rlvr.advantages:group_advantages",
            "rl4llm.rlvr.losses:aggregate_token_loss",
            "rl4llm.rlvr.losses:grpo_loss",
            "rl4llm.rlvr.metrics:pass_at_k",
        ),
    ),
)


def assignment_slugs() -> list[str]:
    """The slugs of all assignments, in order."""
    return [a.slug for a in ASSIGNMENTS]


def get_assignment(slug_or_number: str) -> Assignment:
    """The assignment with this slug (``"01-returns-gae"``) or number (``"01"`` or ``"1"``)."""
    key = str(slug_or_number).strip().strip("/")
    for a in ASSIGNMENTS:
        if key in (a.slug, a.number) or (key.isdigit() and int(key) == int(a.number)):
            return a
    raise ValueError(f"unknown assignment {slug_or_number!r}; choose one of {', '.join(assignment_slugs())}")
