"""The tightrope: a chain where one mistake leaves the expert's states (book section 3.1, "Compounding error").

A walker crosses a rope in ``horizon`` steps. At every step a gust of wind blows from the left or the right
(:math:`w_t \\in \\{0, 1\\}`, uniform, independent); to stay on the rope the walker must lean into it
(action :math:`a_t = w_t`). Leaning the wrong way (or trying to climb while on the rope) makes it fall. Once off
the rope, the only good action is ``CLIMB`` (action 2), which puts it back on the rope for the next step.

* **expert** (privileged, it feels the wind): :math:`\\pi^*(s_t) = w_t` on the rope, ``CLIMB`` off it. It never
  falls, so its demonstrations contain *no* off-rope state.
* **observation** ``[fallen, cue]`` (``MultiDiscrete([2, 2])``): whether the walker is off the rope, and a noisy
  wind sensor :math:`c_t` that equals :math:`w_t` with probability :math:`1 - \\epsilon` and is flipped with
  probability :math:`\\epsilon`. A learner that sees only the observation therefore errs with probability at
  least :math:`\\epsilon` on the rope, whatever it learns: :math:`\\epsilon` plays the role of the generalisation
  error in Ross, Gordon & Bagnell (2011).
* **cost** :math:`c(s_t, a_t) = \\mathbb 1[a_t \\neq \\pi^*(s_t)]` (the reward is its negative): the 0-1 loss against
  the expert, exactly the loss :math:`\\ell` of Theorems 1.1 and 1.4 in the survey (Sun 2023). The total cost of an
  episode is the number of steps at which the walker did not do what the expert would have done.
* **transition**: on the rope, ``a == w`` keeps it there and anything else makes it fall; off the rope, ``CLIMB``
  brings it back and anything else leaves it off. After every step a new gust (and cue) is drawn.
* the episode is **truncated** after ``horizon`` steps; it never terminates early.

Two learners have exact costs (derived in :mod:`rl4llm.imitation.tightrope`): a behaviour-cloned walker, which
follows the cue on the rope but, never having seen a fall, never climbs, pays
:math:`\\sum_{t=1}^T [1 - (1 - \\epsilon)^t] \\approx \\epsilon T^2 / 2`; a walker that also learned to climb
(DAgger) pays about :math:`\\epsilon T / (1 + \\epsilon)`.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from rl4llm.utils import check_positive_int, check_range

__all__ = ["TightropeEnv", "LEAN_LEFT", "LEAN_RIGHT", "CLIMB"]

LEAN_LEFT, LEAN_RIGHT, CLIMB = 0, 1, 2


class TightropeEnv(gymnasium.Env):
    """Cross a rope in ``horizon`` steps, leaning into the wind seen through a sensor that lies with prob. ``eps``.

    Args:
        horizon: number of steps ``T`` per episode (truncation), >= 1.
        eps: probability that the wind cue is flipped, in ``[0, 0.5)``: the learner's unavoidable error rate.
        render_mode: ``None`` or ``"ansi"``.

    ``info`` holds ``"expert_action"`` (what the expert does in the *new* state), ``"on_rope"`` and ``"t"``.
    :meth:`expert_action` gives the expert's action in the current state (the expert may be queried in any
    state, which is what DAgger needs).
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(self, horizon: int = 20, eps: float = 0.1, render_mode: str | None = None) -> None:
        self.horizon = check_positive_int("horizon", horizon)
        self.eps = check_range("eps", eps, 0.0, 0.5, high_inclusive=False)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or 'ansi', got {render_mode!r}")
        self.render_mode = render_mode
        self.observation_space = spaces.MultiDiscrete([2, 2])
        self.action_space = spaces.Discrete(3)
        self._t = 0
        self._on_rope = True
        self._wind = 0
        self._cue = 0

    # -- helpers -------------------------------------------------------------------------------------------
    def _draw_wind(self) -> None:
        self._wind = int(self.np_random.integers(2))
        flip = bool(self.np_random.random() < self.eps)
        self._cue = 1 - self._wind if flip else self._wind

    def _obs(self) -> np.ndarray:
        return np.array([0 if self._on_rope else 1, self._cue], dtype=np.int64)

    def _info(self) -> dict[str, Any]:
        return {"expert_action": self.expert_action(), "on_rope": self._on_rope, "t": self._t}

    def expert_action(self) -> int:
        """The expert's action in the current state: lean into the true wind on the rope, climb off it."""
        return self._wind if self._on_rope else CLIMB

    # -- gymnasium API -------------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._t = 0
        self._on_rope = True
        self._draw_wind()
        return self._obs(), self._info()

    def step(self, action):
        if not self.action_space.contains(action):
            raise ValueError(f"action must be 0 (lean left), 1 (lean right) or 2 (climb), got {action!r}")
        a = int(action)
        cost = float(a != self.expert_action())
        if self._on_rope:
            self._on_rope = a == self._wind
        else:
            self._on_rope = a == CLIMB
        self._t += 1
        self._draw_wind()
        truncated = self._t >= self.horizon
        return self._obs(), -cost, False, truncated, self._info()

    def render(self) -> str | None:
        if self.render_mode != "ansi":
            return None
        rope = ["-"] * self.horizon
        pos = min(self._t, self.horizon - 1)
        rope[pos] = "o" if self._on_rope else "v"
        return f"t={self._t:3d} {''.join(rope)} wind={'LR'[self._wind]} cue={'LR'[self._cue]}"
