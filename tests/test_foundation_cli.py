"""The experiment contract (DESIGN.md "Experiments"): list, run, files written, errors with exit code 2."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import subprocess
import sys
from typing import Literal

import pytest

from rl4llm import experiments
from rl4llm.cli import UsageError, main, parse_value
from rl4llm.config import describe


def _run_cli(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, RL4LLM_QUIET="1", MPLBACKEND="Agg")
    return subprocess.run(
        [sys.executable, "-m", "rl4llm.cli", *args], capture_output=True, text=True, env=env, timeout=300
    )


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
        (["run", "bandit", "--out", "x", "--n-arms", "1"], "--n-arms must be an int in [2, inf), got 1"),
        # a rule that ties two fields together names the field it checks
        (["run", "ppo-cartpole", "--out", "x", "--total-steps", "10"], "--total-steps must be >= n_envs * n_steps"),
        (["run", "ppo-cartpole", "--out", "x", "--clip-eps", "-inf"], "--clip-eps must be in [0, inf], got -inf"),
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


def test_show_prints_defaults_ranges_and_help(capsys):
    assert main(["show", "bandit"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["flag", "default", "range", "help"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert rows["--n-arms"].split()[:5] == ["--n-arms", "10", "int", "in", "[2,"]
    assert "(0, inf)" in rows["--lr"] and "step size" in rows["--lr"]
    assert main(["show", "ppo-cartpole"]) == 0
    assert "[0, inf]" in capsys.readouterr().out  # clip_eps: inf allowed, "no clipping"


@pytest.mark.parametrize("name", experiments.list_experiments())
def test_show_lists_range_and_help_of_every_field(name, capsys):
    """Every field of every experiment is declared: rl4llm show prints its default, range and help."""
    config_cls = experiments.get_experiment(name).config_cls
    rows = describe(config_cls)
    assert [r["name"] for r in rows] == [f.name for f in dataclasses.fields(config_cls)]
    for r in rows:
        assert r["help"].strip() and r["range"].strip(), f"{name}.{r['name']} lacks help or range"
    assert main(["show", name]) == 0
    out = capsys.readouterr().out
    for r in rows:
        assert f"--{r['name'].replace('_', '-')} " in out and r["help"] in out and r["range"] in out


def test_inf_parses_on_the_command_line(tmp_path):
    """``inf`` reaches the config as math.inf where the range allows it (PPO without clipping)."""
    from rl4llm.cli import _parse_overrides

    overrides = _parse_overrides(experiments.get_experiment("ppo-cartpole").config_cls, ["--clip-eps", "inf"])
    assert overrides == {"clip_eps": math.inf}
    assert experiments.config_from_overrides("ppo-cartpole", **overrides).clip_eps == math.inf


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
