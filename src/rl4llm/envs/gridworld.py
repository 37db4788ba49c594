"""A small gridworld whose dynamics, features and reward are all known (book section 4.1, maximum-entropy IRL).

Exact maximum-entropy IRL (Ziebart et al. 2008) needs the transition matrix, so this environment exposes it:

* **states** :math:`s \\in \\{0, \\dots, S-1\\}`, the cell ``(row, col)`` numbered ``row * width + col``;
* **actions** ``0..4`` = right, left, down, up, stay. With probability ``1 - slip`` the intended move happens;
  with probability ``slip`` a uniformly random one of the five does instead. Moves into the border stay put;
* **transition matrix** ``P[s, a, s']`` (attribute ``P``, rows sum to one);
* **terrain**: every cell has a type given by a text layout (``.`` floor, ``~`` swamp, ``G`` goal); the state
  features :math:`\\phi(s)` (attribute ``features``, ``[S, d]``) are one-hot terrain types (``features="terrain"``)
  or one-hot states (``features="onehot"``, the tabular case where IRL must learn one reward per cell);
* **true reward** :math:`r(s) = w^\\top \\psi(s)` on terrain indicators ``psi`` with ``w = (floor, swamp, goal)``
  given by ``terrain_rewards`` (attribute ``reward``, ``[S]``). The reward of step ``t`` is the reward of the state
  the agent acts from, :math:`r_t = r(s_t)`, so the return of an episode of ``horizon`` steps is
  :math:`\\sum_{t=0}^{H-1} r(s_t) = \\sum_s D(s) r(s)` where :math:`D(s)` counts the visits of ``s``; that is the
  identity MaxEnt IRL is built on;
* **episodes** start in ``start`` (default the top-left cell; attribute ``p0`` is the start distribution) and are
  truncated after ``horizon`` steps (a finite-horizon problem, never ``terminated``).

The environment is a :class:`~rl4llm.envs.tabular.TabularEnv` over a :class:`~rl4llm.envs.tabular.TabularMDP`
(attribute ``mdp``: ``P``, the state reward, no terminal state, ``gamma = 1``, ``horizon``), so the planners of
:mod:`rl4llm.envs.tabular` apply to it as they do to the cliff walk of chapter 2.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from rl4llm.envs.tabular import TabularEnv, TabularMDP
from rl4llm.utils import check_choice, check_positive_int, check_range

__all__ = ["GridWorldEnv", "DEFAULT_LAYOUT", "ACTIONS", "transition_matrix"]

#: The default 6 x 6 map: the expert walks from the top-left corner to the goal, around the swamp.
DEFAULT_LAYOUT: tuple[str, ...] = (
    "......",
    ".~~~..",
    "...~..",
    ".~.~~.",
    ".~....",
    ".~~..G",
)
#: Action names, in order; the moves are (d_row, d_col).
ACTIONS: tuple[str, ...] = ("right", "left", "down", "up", "stay")
_MOVES: tuple[tuple[int, int], ...] = ((0, 1), (0, -1), (1, 0), (-1, 0), (0, 0))
_TERRAIN = ".~G"


def transition_matrix(height: int, width: int, slip: float) -> np.ndarray:
    """``P[s, a, s']`` of the grid: the intended move with probability ``1 - slip``, else a uniform random move."""
    height = check_positive_int("height", height)
    width = check_positive_int("width", width)
    slip = check_range("slip", slip, 0.0, 1.0)
    n_states, n_actions = height * width, len(_MOVES)
    det = np.zeros((n_states, n_actions), dtype=np.int64)  # where each move leads deterministically
    for r in range(height):
        for c in range(width):
            for a, (dr, dc) in enumerate(_MOVES):
                r2, c2 = r + dr, c + dc
                if not (0 <= r2 < height and 0 <= c2 < width):
                    r2, c2 = r, c
                det[r * width + c, a] = r2 * width + c2
    P = np.zeros((n_states, n_actions, n_states))
    for s in range(n_states):
        for a in range(n_actions):
            P[s, a, det[s, a]] += 1.0 - slip
            for b in range(n_actions):
                P[s, a, det[s, b]] += slip / n_actions
    return P


class GridWorldEnv(TabularEnv):
    """A gridworld with a known transition matrix ``P``, state ``features`` and a true ``reward``.

    Args:
        layout: rows of equal length over ``.`` (floor), ``~`` (swamp), ``G`` (goal); default :data:`DEFAULT_LAYOUT`.
        terrain_rewards: true reward of (floor, swamp, goal) cells.
        slip: probability that a uniformly random action replaces the chosen one, in ``[0, 1]``.
        horizon: steps per episode (the episode is truncated after them), >= 1.
        features: ``"terrain"`` (one-hot terrain type, ``d = 3``) or ``"onehot"`` (one-hot state, ``d = S``).
        start: the start cell as a state index, or ``None`` for a uniformly random cell.
        render_mode: ``None`` or ``"ansi"``.
    """

    def __init__(
        self,
        layout: Sequence[str] = DEFAULT_LAYOUT,
        terrain_rewards: Sequence[float] = (-0.05, -1.0, 1.0),
        slip: float = 0.1,
        horizon: int = 20,
        features: str = "terrain",
        start: int | None = 0,
        render_mode: str | None = None,
    ) -> None:
        layout = tuple(str(row) for row in layout)
        if not layout or any(len(row) != len(layout[0]) or len(row) == 0 for row in layout):
            raise ValueError(f"layout must be non-empty rows of equal length, got {layout!r}")
        bad = sorted({ch for row in layout for ch in row} - set(_TERRAIN))
        if bad:
            raise ValueError(f"layout cells must be one of {_TERRAIN!r}, got {bad}")
        terrain_rewards = tuple(float(x) for x in terrain_rewards)
        if len(terrain_rewards) != len(_TERRAIN):
            raise ValueError(
                f"terrain_rewards must have {len(_TERRAIN)} values (floor, swamp, goal), got {terrain_rewards}"
            )
        for name, value in zip(("floor", "swamp", "goal"), terrain_rewards):
            check_range(f"terrain_rewards[{name}]", value)
        self.layout = layout
        self.height, self.width = len(layout), len(layout[0])
        self.n_states = self.height * self.width
        self.n_actions = len(ACTIONS)
        self.slip = check_range("slip", slip, 0.0, 1.0)
        horizon = check_positive_int("horizon", horizon)
        self.feature_kind = check_choice("features", features, ("terrain", "onehot"))
        render_mode = check_choice("render_mode", render_mode, (None, "ansi"))
        if start is not None:
            start = check_positive_int("start", start, 0)
            if start >= self.n_states:
                raise ValueError(f"start must be in [0, {self.n_states - 1}] or None, got {start}")
        self.start = start

        #: terrain type of each state (0 floor, 1 swamp, 2 goal)
        self.terrain = np.array([_TERRAIN.index(ch) for row in layout for ch in row], dtype=np.int64)
        self.terrain_rewards = np.asarray(terrain_rewards)
        #: state features phi(s), shape [S, d]
        self.features = np.eye(len(_TERRAIN))[self.terrain] if self.feature_kind == "terrain" else np.eye(self.n_states)
        p0 = np.full(self.n_states, 1.0 / self.n_states) if start is None else np.eye(self.n_states)[start]
        mdp = TabularMDP(
            P=transition_matrix(self.height, self.width, self.slip),
            R=self.terrain_rewards[self.terrain],
            terminal=np.zeros(self.n_states, dtype=bool),
            p0=p0,
            gamma=1.0,
            horizon=horizon,
            names=ACTIONS,
            shape=(self.height, self.width),
            info={"start": start},
        )
        super().__init__(mdp, horizon, render_mode)
        #: true reward r(s), shape [S]
        self.reward = mdp.R
        #: known dynamics P[s, a, s']
        self.P = mdp.P
        #: start distribution p0(s)
        self.p0 = mdp.p0

    def render(self) -> str | None:
        """The layout with the agent drawn as ``A`` (``"ansi"`` mode)."""
        if self.render_mode != "ansi":
            return None
        rows = [list(row) for row in self.layout]
        r, c = divmod(self._state, self.width)
        rows[r][c] = "A"
        return "\n".join("".join(row) for row in rows)
