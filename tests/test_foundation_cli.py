"""The experiment contract (DESIGN.md "Experiments"): list, run, files written, errors with exit code 2."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import subprocess
import sys
from typing import Literal

import pytest

from rl4llm import experiments
from rl4llm.cli import UsageError, main, parse_value


def _run_cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, RL4LLM_QUIET="1", MPLBACKEND="Agg")
    return subprocess.run([sys.executable, "-m", "rl4llm.cli", *args], capture_output=True, text=True, env=env,
                          timeout=300)


def test_list_names_every_experiment(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    names = [line.split()[0] for line in out.strip().splitlines()]
    assert names == experiments.list_experiments()
    assert "bandit" in names


def test_run_writes_the_three_files(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "bandit", "--out", str(out), "--steps", "50", "--runs", "3", "--seed", "4"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 50 and metrics["runs"] == 3
    assert "wall_s" in metrics
    rows = list(csv.DictReader((out / "curves.csv").open()))
    assert len(rows) == 50 and rows[0]["step"] == "1"
    assert (out / "figure.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((out / "config.json").read_text())["seed"] == 4


def test_same_seed_same_metrics():
    a = experiments.run_experiment("bandit", steps=40, runs=2, seed=7).metrics
    b = experiments.run_experiment("bandit", steps=40, runs=2, seed=7).metrics
    c = experiments.run_experiment("bandit", steps=40, runs=2, seed=8).metrics
    for m in (a, b, c):
        m.pop("wall_s")
    assert a == b
    assert a != c


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "no-such-thing", "--out", "x"], "unknown experiment 'no-such-thing'; choose one of: "),
        (["run", "bandit", "--out", "x", "--no-such-flag", "1"], "unknown flag --no-such-flag; valid flags: "),
        (["run", "bandit", "--out", "x", "--lr", "abc"], "--lr expects float; got 'abc'"),
        (["run", "bandit", "--out", "x", "--lr", "-1"], "--lr must be in (0, inf), got -1.0"),
        (["run", "bandit", "--out", "x", "--n-arms", "1"], "--n-arms must be an int >= 2, got 1"),
        (["run", "bandit", "--out", "x", "--steps"], "--steps needs a value"),
    ],
)
def test_errors_are_one_line_exit_2_no_traceback(tmp_path, args, message):
    args = [a if a != "x" else str(tmp_path / "x") for a in args]
    proc = _run_cli(*args)
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1
    assert message in err
    if "choose one of" in message:
        assert "bandit" in err


def test_show_prints_defaults(capsys):
    assert main(["show", "bandit"]) == 0
    out = capsys.readouterr().out
    assert "--n-arms 10" in out and "--seed 0" in out


def test_parse_value_types():
    assert parse_value("n", int, "3") == 3
    assert parse_value("x", float, "0.5") == 0.5
    assert parse_value("flag", bool, "true") is True
    assert parse_value("flag", bool, "0") is False
    assert parse_value("m", Literal["bc", "dagger"], "dagger") == "dagger"
    assert parse_value("h", tuple[int, ...], "1,2,4") == (1, 2, 4)
    assert parse_value("o", int | None, "none") is None
    with pytest.raises(UsageError, match="--m must be one of bc, dagger; got 'x'"):
        parse_value("m", Literal["bc", "dagger"], "x")
    with pytest.raises(UsageError, match="--flag expects bool"):
        parse_value("flag", bool, "maybe")


def test_every_experiment_follows_the_contract():
    """Each registered experiment: kebab-case name, summary, a Config dataclass with a seed and valid defaults."""
    for name in experiments.list_experiments():
        exp = experiments.get_experiment(name)
        assert name == name.lower() and "_" not in name, name
        assert exp.summary.strip(), name
        assert dataclasses.is_dataclass(exp.config_cls), name
        fields = {f.name: f for f in dataclasses.fields(exp.config_cls)}
        assert "seed" in fields, f"{name}: Config has no seed"
        exp.config_cls()  # defaults validate
        with pytest.raises((ValueError, TypeError)):
            exp.config_cls(seed=-1)


def test_run_experiment_rejects_unknown_parameter():
    with pytest.raises(ValueError, match="bandit has no parameter horizon; valid parameters: "):
        experiments.run_experiment("bandit", horizon=3)
