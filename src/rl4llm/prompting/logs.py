"""Offline logs of ``(query, prompt, correct?)``: Prompt-OIRL's demonstration data.

:func:`collect_logs` runs the arithmetic LM once on every (query, prompt) pair, checks each answer, and caches the
result with :mod:`rl4llm.cache` (under ``cache_dir("prompting")``, keyed by its configuration, the checkpoint's
checksums and the code that computes it), so later runs, the book and the widgets never call the LM again. :func:`load_logs` / :func:`save_logs` read and write any LLM's logs in one
documented layout, as NPZ or CSV; one row per (query, prompt) pair:

================  ==========  ======================================================================
name              shape       meaning
================  ==========  ======================================================================
``query_id``      ``[n]``     int, which query the row is about (rows of one query share its id)
``prompt_id``     ``[n]``     int, which prompt was used
``correct``       ``[n]``     0/1, did the LLM answer correctly with that prompt
``query_features`` ``[n, dq]`` features of the query (CSV: columns ``q_0 .. q_{dq-1}``)
``prompt_features`` ``[n, dp]`` features of the prompt (CSV: columns ``p_0 .. p_{dp-1}``)
``confidence``    ``[n]``     optional: the LLM's confidence in its answer (for the confidence baseline)
``heldout_prompt`` ``[n]``    optional 0/1: prompt kept out of the reward model's training logs
                              (default: every third prompt id, in sorted order, when there are >= 3)
``query_type``    ``[n]``     optional string: a query category, for per-type plots
``prompt_name``   ``[n]``     optional string: a readable prompt name
================  ==========  ======================================================================
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rl4llm import cache
from rl4llm.lm.model import CHECKSUM_FILE
from rl4llm.prompting.model import CHECKPOINT_DIR, answer, load_arithmetic_lm, principal_components, prompt_features
from rl4llm.prompting.task import PROMPTS, Query, check_answer, query_features, sample_queries
from rl4llm.utils import check_positive_int

__all__ = ["PromptLogs", "collect_logs", "save_logs", "load_logs"]

#: Prompt features kept: the top principal components of the LM's hidden states of the twelve instructions.
#: Two directions are enough to tell the four answer formats apart; with more, a reward model trained on eight
#: prompts finds directions that separate those eight and mislead it on the held-out paraphrases.
PROMPT_FEATURE_DIM = 2


@dataclass
class PromptLogs:
    """Logs in memory: per-row labels, per-query and per-prompt features (ids index the feature rows)."""

    query_id: np.ndarray  # [n] int, in 0..n_queries-1
    prompt_id: np.ndarray  # [n] int, in 0..n_prompts-1
    correct: np.ndarray  # [n] float 0/1
    confidence: np.ndarray  # [n] float, nan when unknown
    query_feats: np.ndarray  # [n_queries, dq]
    prompt_feats: np.ndarray  # [n_prompts, dp]
    query_type: np.ndarray  # [n_queries] str ("" when unknown)
    prompt_name: np.ndarray  # [n_prompts] str
    prompt_heldout: np.ndarray  # [n_prompts] bool
    answer: np.ndarray  # [n] str ("" when unknown)
    query_text: np.ndarray  # [n_queries] str ("" when unknown)

    @property
    def n_queries(self) -> int:
        return int(self.query_feats.shape[0])

    @property
    def n_prompts(self) -> int:
        return int(self.prompt_feats.shape[0])

    def matrix(self, values: np.ndarray | None = None) -> np.ndarray:
        """``[n_queries, n_prompts]`` table of ``values`` (default ``correct``); ``nan`` where not logged."""
        values = self.correct if values is None else values
        out = np.full((self.n_queries, self.n_prompts), np.nan)
        out[self.query_id, self.prompt_id] = values
        return out

    def to_rows(self) -> dict[str, np.ndarray]:
        """The row layout of the module docstring."""
        return {
            "query_id": self.query_id,
            "prompt_id": self.prompt_id,
            "correct": self.correct,
            "query_features": self.query_feats[self.query_id],
            "prompt_features": self.prompt_feats[self.prompt_id],
            "confidence": self.confidence,
            "heldout_prompt": self.prompt_heldout[self.prompt_id].astype(np.int64),
            "query_type": self.query_type[self.query_id],
            "prompt_name": self.prompt_name[self.prompt_id],
            "answer": self.answer,
            "query_text": self.query_text[self.query_id],
        }

    @classmethod
    def from_rows(cls, rows: dict[str, np.ndarray]) -> "PromptLogs":
        """Build from the row layout; ids may be any integers (they are renumbered 0..)."""
        for key in ("query_id", "prompt_id", "correct", "query_features", "prompt_features"):
            if key not in rows:
                raise ValueError(f"logs are missing the required field {key!r}")
        qid_raw = np.asarray(rows["query_id"]).astype(np.int64).ravel()
        pid_raw = np.asarray(rows["prompt_id"]).astype(np.int64).ravel()
        n = qid_raw.size
        qf = np.asarray(rows["query_features"], dtype=np.float64)
        pf = np.asarray(rows["prompt_features"], dtype=np.float64)
        if qf.ndim == 1:
            qf = qf[:, None]
        if pf.ndim == 1:
            pf = pf[:, None]
        y = np.asarray(rows["correct"], dtype=np.float64).ravel()
        if pid_raw.size != n or y.size != n or qf.shape[0] != n or pf.shape[0] != n:
            raise ValueError("query_id, prompt_id, correct, query_features and prompt_features must all have n rows")
        if not np.isin(y, (0.0, 1.0)).all():
            raise ValueError("correct must contain only 0 and 1")
        if not (np.isfinite(qf).all() and np.isfinite(pf).all()):
            raise ValueError("query_features and prompt_features must be finite")
        q_ids, qid = np.unique(qid_raw, return_inverse=True)
        p_ids, pid = np.unique(pid_raw, return_inverse=True)
        if len(set(zip(qid.tolist(), pid.tolist()))) != n:
            raise ValueError("each (query_id, prompt_id) pair must appear at most once")
        q_first = np.array([np.flatnonzero(qid == i)[0] for i in range(q_ids.size)])
        p_first = np.array([np.flatnonzero(pid == j)[0] for j in range(p_ids.size)])

        def opt(key: str, default, dtype=None) -> np.ndarray:
            if key in rows:
                return np.asarray(rows[key], dtype=dtype).ravel()
            return np.full(n, default, dtype=dtype)

        if "heldout_prompt" in rows:
            heldout = opt("heldout_prompt", 0, np.float64)[p_first] > 0.5
        else:
            heldout = (np.arange(p_ids.size) % 3 == 2) if p_ids.size >= 3 else np.zeros(p_ids.size, dtype=bool)
        names = (
            opt("prompt_name", "", str)[p_first] if "prompt_name" in rows else np.array([f"prompt {i}" for i in p_ids])
        )
        return cls(
            query_id=qid.astype(np.int64),
            prompt_id=pid.astype(np.int64),
            correct=y,
            confidence=opt("confidence", np.nan, np.float64),
            query_feats=qf[q_first],
            prompt_feats=pf[p_first],
            query_type=opt("query_type", "", str)[q_first],
            prompt_name=names,
            prompt_heldout=heldout,
            answer=opt("answer", "", str),
            query_text=opt("query_text", "", str)[q_first],
        )


def save_logs(logs: PromptLogs, path: str | Path) -> Path:
    """Write ``logs`` in the row layout, as NPZ (``.npz``) or CSV (``.csv``)."""
    path = Path(path)
    rows = logs.to_rows()
    if path.suffix == ".npz":
        np.savez_compressed(path, **rows)
    elif path.suffix == ".csv":
        dq, dp = rows["query_features"].shape[1], rows["prompt_features"].shape[1]
        scalars = [k for k in rows if k not in ("query_features", "prompt_features")]
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(scalars + [f"q_{i}" for i in range(dq)] + [f"p_{j}" for j in range(dp)])
            for r in range(rows["query_id"].size):
                w.writerow(
                    [rows[k][r] for k in scalars] + list(rows["query_features"][r]) + list(rows["prompt_features"][r])
                )
    else:
        raise ValueError(f"path must end in .npz or .csv, got {str(path)!r}")
    return path


def load_logs(path: str | Path) -> PromptLogs:
    """Read logs in the row layout of the module docstring from an NPZ or CSV file."""
    path = Path(path)
    if path.suffix not in (".npz", ".csv"):
        raise ValueError(f"logs_path must end in .npz or .csv, got {str(path)!r}")
    if not path.is_file():
        raise ValueError(f"logs_path {str(path)!r} does not exist")
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            return PromptLogs.from_rows({k: data[k] for k in data.files})
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        table = list(reader)
    cols = {name: [r[i] for r in table] for i, name in enumerate(header)}

    def block(prefix: str) -> np.ndarray:
        names = sorted(
            (h for h in header if h.startswith(prefix) and h[len(prefix) :].isdigit()),
            key=lambda h: int(h[len(prefix) :]),
        )
        if not names:
            raise ValueError(f"CSV logs need feature columns {prefix}0, {prefix}1, ...")
        return np.array([[float(x) for x in cols[h]] for h in names]).T

    rows: dict[str, np.ndarray] = {"query_features": block("q_"), "prompt_features": block("p_")}
    for key in ("query_id", "prompt_id", "correct", "confidence", "heldout_prompt"):
        if key in cols:
            rows[key] = np.array([float(x) if x not in ("", "nan") else np.nan for x in cols[key]])
    for key in ("query_type", "prompt_name", "answer", "query_text"):
        if key in cols:
            rows[key] = np.array(cols[key], dtype=str)
    return PromptLogs.from_rows(rows)


def _cache_path(n_queries: int, seed: int, checkpoint: Path) -> Path:
    sums = checkpoint / CHECKSUM_FILE
    listing = sums.read_text() if sums.is_file() else ""
    key = cache.cache_key({"n_queries": n_queries, "seed": seed, "checkpoint": listing}, [__name__])
    return cache.cache_dir("prompting") / f"logs-{key}.pt"


def _to_state(logs: PromptLogs) -> dict[str, Any]:
    """The row layout as a cacheable state: numbers as tensors, strings as lists."""
    return {
        k: v.tolist() if v.dtype.kind in "US" else torch.from_numpy(np.ascontiguousarray(v))
        for k, v in logs.to_rows().items()
    }


def _from_state(state: dict[str, Any]) -> PromptLogs:
    return PromptLogs.from_rows(
        {k: v.numpy() if isinstance(v, torch.Tensor) else np.array(v, dtype=str) for k, v in state.items()}
    )


def collect_logs(
    n_queries: int = 800,
    seed: int = 0,
    *,
    model=None,
    tokenizer=None,
    use_cache: bool = True,
    checkpoint: str | Path | None = None,
) -> PromptLogs:
    """Run the LM on ``n_queries`` fresh queries x all twelve prompts, check every answer, cache the logs.

    A cached file (same ``n_queries``, ``seed`` and checkpoint) is loaded instead, without loading or calling the
    LM. Query features are :func:`~rl4llm.prompting.task.query_features`; prompt features are the LM's hidden state
    at the end of each instruction (:func:`~rl4llm.prompting.model.prompt_features`), reduced to their top
    ``PROMPT_FEATURE_DIM`` principal components over the twelve prompts
    (:func:`~rl4llm.prompting.model.principal_components`).
    """
    check_positive_int("n_queries", n_queries, 4)
    check_positive_int("seed", seed, 0)
    ckpt = Path(checkpoint) if checkpoint is not None else CHECKPOINT_DIR
    path = _cache_path(n_queries, seed, ckpt)
    state = cache.load(path) if use_cache else None
    if state is not None:
        return _from_state(state)
    if model is None or tokenizer is None:
        model, tokenizer = load_arithmetic_lm(ckpt)
    rng = np.random.default_rng(seed)
    queries: list[Query] = sample_queries(n_queries, rng)
    pairs = [(q, p) for q in queries for p in PROMPTS]
    answers, conf = answer(model, tokenizer, pairs)
    correct = np.array([check_answer(q, p, a) for (q, p), a in zip(pairs, answers)], dtype=np.float64)
    logs = PromptLogs(
        query_id=np.repeat(np.arange(n_queries), len(PROMPTS)),
        prompt_id=np.tile(np.arange(len(PROMPTS)), n_queries),
        correct=correct,
        confidence=conf,
        query_feats=query_features(queries).astype(np.float64),
        prompt_feats=principal_components(
            prompt_features(model, tokenizer, [p.text for p in PROMPTS]), PROMPT_FEATURE_DIM
        ),
        query_type=np.array([q.type for q in queries]),
        prompt_name=np.array([f"{p.format} '{p.text}'" for p in PROMPTS]),
        prompt_heldout=np.array([not p.logged for p in PROMPTS]),
        answer=np.array(answers, dtype=str),
        query_text=np.array([q.text for q in queries]),
    )
    if use_cache:
        cache.save(path, _to_state(logs))
    return logs
