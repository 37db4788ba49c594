"""Course assignments graded by pytest, generated from the package's own reference code.

* :mod:`~rl4llm.assignments.manifest`: which graded functions each assignment covers;
* :mod:`~rl4llm.assignments.source`: graded regions (``# BEGIN SOLUTION`` ... ``# END SOLUTION``) and the student
  copies made from them;
* :mod:`~rl4llm.assignments.generate`: ``rl4llm make-assignments`` (write, ``--check``, ``--export``);
* :mod:`~rl4llm.assignments.loader`: loading the implementation under test, one top-level statement at a time;
* :mod:`~rl4llm.assignments.grading`: the pytest plugin (``--impl``, ``--grade-json``, points, score table);
* :mod:`~rl4llm.assignments.checks`: assertions whose failures name the likely mistake.

The teachers' page of the book (``book/teachers.md``) explains how a course runs them.
"""

from rl4llm.assignments.manifest import ASSIGNMENTS, Assignment, get_assignment

__all__ = ["ASSIGNMENTS", "Assignment", "get_assignment"]
