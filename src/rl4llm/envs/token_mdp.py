"""The token-level MDP of a language model (book section 1.4, "The language model as an agent").

A language model that writes a response one token at a time is an agent in an MDP whose parts are all known:

* **state** :math:`s_t = (x, y_{<t})`: the prompt :math:`x` followed by the tokens generated so far;
* **action** :math:`a_t = y_t \\in \\{0, \\dots, V-1\\}`: the next token (``Discrete(vocab_size)``);
* **transition** :math:`s_{t+1} = s_t \\oplus a_t`: append the token. It is deterministic and *known*, which is the
  survey's first takeaway (Sun 2023): RLHF never has to learn a dynamics model, so it can always collect fresh,
  on-policy data and avoid the pitfalls of offline RL;
* **horizon**: the episode terminates after ``horizon`` generated tokens or as soon as ``eos_token_id`` is emitted;
* **reward**: a score :math:`F(y)` of the generated sequence (prompt excluded), by default the fraction of positions
  where the token equals a target sequence.

Two reward modes give the *same return* with different timing:

* ``"terminal"``: :math:`r_t = 0` for :math:`t < T` and :math:`r_T = F(y_{\\le T})` (sparse, like RLHF);
* ``"dense"``: :math:`r_t = F(y_{\\le t}) - F(y_{< t})` with :math:`F(y_{<1}) := 0` (potential-based shaping, Ng et
  al. 1999). The sum telescopes, :math:`\\sum_t r_t = F(y_{\\le T})`, so sparse and dense can be compared at equal
  returns.

Observations have a fixed length ``len(prompt) + horizon``: the prompt, then the generated tokens, then the padding
symbol ``vocab_size`` (outside the action range) in the positions not generated yet.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from rl4llm.utils import check_choice, check_positive_int

__all__ = ["TokenMDPEnv", "target_match_reward", "token_mdp_from_tokenizer"]

RewardFn = Callable[[tuple[int, ...]], float]


def target_match_reward(target: Sequence[int], horizon: int | None = None) -> RewardFn:
    """The default reward: :math:`F(y) = \\frac{1}{H} \\sum_{t < |y|} \\mathbb 1[y_t = \\text{target}_t]`.

    ``H`` is ``horizon`` (default ``len(target)``), so a sequence cut short by an early end-of-sequence token
    scores less, and a prefix's score is the partial sum (what dense mode uses as the potential).
    """
    target = tuple(int(t) for t in target)
    h = len(target) if horizon is None else int(horizon)
    if h < 1:
        raise ValueError(f"horizon must be >= 1, got {h}")

    def reward_fn(tokens: tuple[int, ...]) -> float:
        hits = 0
        for t, tok in enumerate(tokens[: len(target)]):
            hits += int(tok == target[t])
        return hits / h

    return reward_fn


class TokenMDPEnv(gymnasium.Env):
    """State = prompt + generated prefix, action = next token, transition = append, reward = score of the text.

    Args:
        vocab_size: number of tokens ``V`` (the action space is ``Discrete(V)``), >= 2.
        horizon: maximum number of generated tokens per episode, >= 1.
        reward_fn: ``reward_fn(tokens) -> float`` scoring a generated sequence (a tuple of ints, prompt excluded).
            ``None`` uses :func:`target_match_reward` on ``target``.
        reward_mode: ``"terminal"`` (whole reward at the last step) or ``"dense"`` (potential differences, same
            return); see the module docstring.
        prompt: token ids that every episode starts from (each in ``[0, V)``); part of the observation.
        target: target tokens of the default reward, length ``horizon`` (default ``t % V`` for ``t < horizon``).
            Only allowed when ``reward_fn`` is ``None``.
        eos_token_id: a token in ``[0, V)`` that ends the episode when emitted (it is part of the sequence), or
            ``None`` for fixed-length episodes.
        render_mode: ``None`` or ``"ansi"`` (``render()`` returns the prefix as text).

    ``info`` holds ``"length"`` (tokens generated so far) and, once the episode has ended, ``"tokens"``.
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(
        self,
        vocab_size: int = 8,
        horizon: int = 8,
        reward_fn: RewardFn | None = None,
        reward_mode: str = "terminal",
        prompt: Sequence[int] = (),
        target: Sequence[int] | None = None,
        eos_token_id: int | None = None,
        render_mode: str | None = None,
    ) -> None:
        super().__init__()
        self.vocab_size = check_positive_int("vocab_size", vocab_size, 2)
        self.horizon = check_positive_int("horizon", horizon, 1)
        self.reward_mode = check_choice("reward_mode", reward_mode, ("terminal", "dense"))
        self.render_mode = check_choice("render_mode", render_mode, (None, "ansi"))
        try:
            prompt = tuple(int(p) for p in prompt)
        except (TypeError, ValueError) as err:
            raise ValueError(f"prompt must be a sequence of ints, got {prompt!r}") from err
        bad = [p for p in prompt if not 0 <= p < self.vocab_size]
        if bad:
            raise ValueError(f"prompt tokens must be in [0, {self.vocab_size - 1}], got {bad}")
        self.prompt = prompt
        if eos_token_id is not None:
            eos_token_id = check_positive_int("eos_token_id", eos_token_id, 0)
            if eos_token_id >= self.vocab_size:
                raise ValueError(f"eos_token_id must be in [0, {self.vocab_size - 1}], got {eos_token_id}")
        self.eos_token_id = eos_token_id
        if reward_fn is not None:
            if not callable(reward_fn):
                raise ValueError(f"reward_fn must be callable or None, got {type(reward_fn).__name__}")
            if target is not None:
                raise ValueError("target is only used by the default reward; pass reward_fn or target, not both")
            self.target: tuple[int, ...] | None = None
            self.reward_fn: RewardFn = reward_fn
        else:
            if target is None:
                target = tuple(t % self.vocab_size for t in range(self.horizon))
            try:
                target = tuple(int(t) for t in target)
            except (TypeError, ValueError) as err:
                raise ValueError(f"target must be a sequence of ints, got {target!r}") from err
            if len(target) != self.horizon:
                raise ValueError(f"target must have length horizon={self.horizon}, got {len(target)}")
            bad = [t for t in target if not 0 <= t < self.vocab_size]
            if bad:
                raise ValueError(f"target tokens must be in [0, {self.vocab_size - 1}], got {bad}")
            self.target = target
            self.reward_fn = target_match_reward(target, self.horizon)
        self.pad_token = self.vocab_size  # outside the action range
        self.obs_length = len(self.prompt) + self.horizon
        self.action_space = spaces.Discrete(self.vocab_size)
        self.observation_space = spaces.MultiDiscrete(np.full(self.obs_length, self.vocab_size + 1, dtype=np.int64))
        self.id_to_text: Callable[[int], str] | None = None  # set by token_mdp_from_tokenizer for rendering
        self._tokens: list[int] = []
        self._potential = 0.0
        self._done = True

    # ----------------------------------------------------------------------------------------------------------
    def _obs(self) -> np.ndarray:
        obs = np.full(self.obs_length, self.pad_token, dtype=np.int64)
        seq = self.prompt + tuple(self._tokens)
        obs[: len(seq)] = seq
        return obs

    def _score(self, tokens: tuple[int, ...]) -> float:
        value = float(self.reward_fn(tokens))
        if not np.isfinite(value):
            raise ValueError(f"reward_fn returned a non-finite value {value} for tokens {tokens}")
        return value

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Start from the prompt alone. The MDP is deterministic, so ``seed`` only seeds ``self.np_random``."""
        super().reset(seed=seed)
        self._tokens = []
        self._potential = 0.0  # F(empty prefix) := 0, so dense rewards telescope to the terminal reward
        self._done = False
        return self._obs(), {"length": 0}

    def step(self, action):
        """Append ``action`` to the prefix; return ``(obs, reward, terminated, truncated, info)``."""
        if self._done:
            raise RuntimeError("episode has ended: call reset() before step()")
        if not self.action_space.contains(action):
            try:
                ok = float(action) == int(action) and 0 <= int(action) < self.vocab_size
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise ValueError(f"action must be a token in [0, {self.vocab_size - 1}], got {action!r}")
        token = int(action)
        self._tokens.append(token)  # the known, deterministic transition: append the token
        terminated = len(self._tokens) >= self.horizon or (self.eos_token_id is not None and token == self.eos_token_id)
        tokens = tuple(self._tokens)
        if self.reward_mode == "dense":
            potential = self._score(tokens)
            reward = potential - self._potential
            self._potential = potential
        else:
            reward = self._score(tokens) if terminated else 0.0
        info: dict[str, Any] = {"length": len(self._tokens)}
        if terminated:
            self._done = True
            info["tokens"] = tokens
        return self._obs(), float(reward), bool(terminated), False, info

    def render(self) -> str | None:
        """The prompt and the prefix as text (``"ansi"`` mode); tokens are ids unless a tokenizer was given."""
        if self.render_mode != "ansi":
            return None
        show = self.id_to_text or str
        prompt = " ".join(show(t) for t in self.prompt)
        gen = " ".join(show(t) for t in self._tokens)
        return f"{prompt} | {gen}" if prompt else gen

    @classmethod
    def from_tokenizer(
        cls,
        tokenizer,
        text_reward: Callable[[str], float],
        horizon: int = 16,
        prompt: str = "",
        reward_mode: str = "terminal",
        render_mode: str | None = None,
    ) -> TokenMDPEnv:
        """See :func:`token_mdp_from_tokenizer`."""
        return token_mdp_from_tokenizer(
            tokenizer, text_reward, horizon=horizon, prompt=prompt, reward_mode=reward_mode, render_mode=render_mode
        )


def token_mdp_from_tokenizer(
    tokenizer,
    text_reward: Callable[[str], float],
    horizon: int = 16,
    prompt: str = "",
    reward_mode: str = "terminal",
    render_mode: str | None = None,
) -> TokenMDPEnv:
    """The token MDP over a real tokenizer's vocabulary, scored by a reward on decoded text.

    The action space is the tokenizer's vocabulary (``len(tokenizer)``), the prompt is ``tokenizer(prompt)``
    (with whatever special tokens the tokenizer adds, e.g. ``<bos>``), the episode ends at the tokenizer's
    ``eos_token_id``, and the reward of generated tokens ``y`` is ``text_reward(tokenizer.decode(y))`` (special
    tokens kept, so a reward can check that the text was ended). With the book's tokenizer
    (:func:`rl4llm.lm.build_tokenizer`) and ``text_reward=rl4llm.lm.gold_reward`` this is the MDP that the RLHF
    chapter optimises; with GPT-2's tokenizer it has 50,257 actions.
    """
    if not callable(text_reward):
        raise ValueError(f"text_reward must be callable, got {type(text_reward).__name__}")
    vocab_size = len(tokenizer)
    prompt_ids = tokenizer(prompt)["input_ids"] if prompt or _adds_special_tokens(tokenizer) else []

    def reward_fn(tokens: tuple[int, ...]) -> float:
        return float(text_reward(tokenizer.decode(list(tokens), skip_special_tokens=False)))

    env = TokenMDPEnv(
        vocab_size=vocab_size,
        horizon=horizon,
        reward_fn=reward_fn,
        reward_mode=reward_mode,
        prompt=list(prompt_ids),
        eos_token_id=tokenizer.eos_token_id,
        render_mode=render_mode,
    )
    env.id_to_text = lambda i: tokenizer.convert_ids_to_tokens(int(i))
    return env


def _adds_special_tokens(tokenizer) -> bool:
    try:
        return len(tokenizer("")["input_ids"]) > 0
    except Exception:  # pragma: no cover - tokenizers that reject empty text
        return False
