"""Learning-curve aggregation of single-task runs (scripts/plot_dflex.py)."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from pwm.evaluation.aggregate import ResultsError
from pwm.evaluation.curves import curve, find_runs, interpolate, read_curve_run
from scripts.plot_dflex import main


def _write_run(path, alg, seed, points, env="dflex_cartpole"):
    path.mkdir(parents=True)
    (path / "run_info.json").write_text(json.dumps({"env": env, "alg": alg, "seed": seed}))
    with open(path / "metrics.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["step", "env_steps", "eval/return"])
        writer.writeheader()
        for k, (steps, ret) in enumerate(points):
            writer.writerow({"step": k, "env_steps": steps, "eval/return": ret})


def test_interpolation_and_iqm_match_hand_computation(tmp_path):
    finals = [10.0, 20.0, 30.0, 1000.0]
    for seed, final in enumerate(finals):
        _write_run(tmp_path / f"s{seed}", "shac", seed, [(0, 0.0), (100, final)])
    runs = [read_curve_run(p) for p in find_runs([tmp_path])]
    assert interpolate(runs[0], np.array([50.0, 150.0])).tolist()[0] == pytest.approx(5.0)
    assert np.isnan(interpolate(runs[0], np.array([150.0]))[0])
    result = curve(runs, points=3, reps=200)
    assert result.steps.tolist() == [0.0, 50.0, 100.0]
    assert result.iqm[-1] == pytest.approx(25.0)  # IQM of 4 values = mean of the middle two
    assert result.iqm[1] == pytest.approx(12.5)
    assert result.low[-1] <= result.iqm[-1] <= result.high[-1]


def test_script_groups_by_algorithm_and_writes_a_plot(tmp_path, capsys):
    for alg in ("pwm", "shac"):
        for seed in range(3):
            _write_run(tmp_path / alg / str(seed), alg, seed, [(0, -100.0), (64, -50.0 + seed), (128, -10.0)])
    out = tmp_path / "curves.png"
    assert main([str(tmp_path), "--out", str(out), "--reps", "100", "--points", "5"]) == 0
    text = capsys.readouterr().out
    assert "dflex_cartpole" in text and " pwm " in text and " shac " in text and out.stat().st_size > 0


def test_missing_files_are_one_line_errors(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "run_info.json").write_text("{}")
    with pytest.raises(ResultsError, match=r"missing metrics\.csv"):
        read_curve_run(tmp_path / "run")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ResultsError, match="no run directories"):
        find_runs([tmp_path / "empty"])


def test_find_runs_follows_links_to_run_directories(tmp_path):
    _write_run(tmp_path / "store" / "a", "pwm", 0, [(0, 1.0)])
    _write_run(tmp_path / "store" / "b", "pwm", 1, [(0, 1.0)])
    (tmp_path / "figure" / "pwm").mkdir(parents=True)
    (tmp_path / "figure" / "pwm" / "1").symlink_to(tmp_path / "store" / "b", target_is_directory=True)
    assert find_runs([tmp_path / "figure"]) == [tmp_path / "figure" / "pwm" / "1"]
