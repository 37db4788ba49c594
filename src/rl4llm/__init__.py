"""rl4llm: the package behind *Reinforcement Learning in the Era of LLMs*.

Sub-packages follow the book: ``rl`` (chapter 1), ``offline`` (2), ``imitation`` (3), ``irl`` (4), ``rlhf`` (5),
``prompting`` (6), ``rlvr`` (7); ``lm`` is the tiny-GPT-2 substrate and ``envs`` the gymnasium environments (registered under
the ``rl4llm/`` namespace on import). ``experiments`` holds one module per book experiment.
"""

from __future__ import annotations

__version__ = "0.1.0"

from rl4llm import envs as envs  # noqa: E402  (registers the gymnasium environments)
