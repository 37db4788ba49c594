"""Repository-wide pytest setup: the grading plugin of the course assignments.

``rl4llm.assignments.grading`` adds ``--impl=reference|student|PATH`` (or ``RL4LLM_IMPL``), ``--grade-json=FILE``
(or ``RL4LLM_GRADE_JSON``), the ``points`` and ``tier`` markers, the ``impl`` / ``ref`` fixtures and the score
table. It acts only on tests in modules that set ``ASSIGNMENT`` (the graders under ``assignments/``); the
package's own tests under ``tests/`` run unchanged. See ``book/teachers.md``.
"""

pytest_plugins = ["rl4llm.assignments.grading"]
