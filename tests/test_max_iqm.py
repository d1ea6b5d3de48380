"""PWM's single-task table (pwm.evaluation.max_iqm, scripts/plot_dflex.py): max-IQM and its PPO normalisations."""

from __future__ import annotations

import csv
import math

import pytest
from test_curves import _write_run

from pwm.evaluation.curves import find_runs, read_curve_run
from pwm.evaluation.max_iqm import PAPER_PPO, max_iqm, table
from scripts.plot_dflex import main

PWM_SEEDS = [[0.0, 10.0, 12.0], [0.0, 20.0, 0.0], [0.0, 30.0, 0.0], [0.0, 1000.0, 0.0]]


def _runs(tmp_path):
    for seed, returns in enumerate(PWM_SEEDS):
        points = list(zip([0, 100, 200], returns, strict=True))
        _write_run(tmp_path / "pwm" / str(seed), "pwm", seed, points, env="dflex_hopper")
    for seed in range(3):
        _write_run(tmp_path / "ppo" / str(seed), "ppo", seed, [(0, 0.0), (50, 50.0), (300, 40.0)], env="dflex_hopper")
    return [read_curve_run(p) for p in find_runs([tmp_path])]


def test_max_is_taken_on_the_iqm_curve_not_per_seed(tmp_path):
    runs = [r for r in _runs(tmp_path) if r.alg == "pwm"]
    peak = max_iqm(runs)
    # IQM over 4 seeds = mean of the middle two: 25 at step 100, 0 at step 200 (a per-seed max would pick 12 there)
    assert peak.env_steps == 100 and peak.iqm == pytest.approx(25.0)
    assert sorted(peak.per_seed.tolist()) == [10.0, 20.0, 30.0, 1000.0]


def test_table_normalises_by_our_ppo_and_the_papers(tmp_path):
    rows = {r.alg: r for r in table(_runs(tmp_path), reps=200)}
    pwm, ppo = rows["pwm"], rows["ppo"]
    assert ppo.max_iqm == pytest.approx(50.0) and ppo.ours == pytest.approx(1.0)
    assert pwm.ours == pytest.approx(25.0 / 50.0)
    assert pwm.paper_scale == pytest.approx(25.0 / PAPER_PPO["dflex_hopper"])
    assert pwm.ours_low <= pwm.ours <= pwm.ours_high and pwm.ours_high > pwm.ours_low
    assert pwm.paper == 1.20 and math.isnan(ppo.paper)


def test_script_prints_the_table_and_writes_its_csv_next_to_the_figure(tmp_path, capsys):
    _runs(tmp_path / "runs")
    assert main([str(tmp_path / "runs"), "--out", str(tmp_path / "fig" / "curves.png"), "--reps", "100"]) == 0
    text = capsys.readouterr().out
    assert "| dflex_hopper | pwm | 4 | 100 | 25.0 | 0.50 [" in text
    with open(tmp_path / "fig" / "curves_table.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["env"], r["alg"]) for r in rows] == [("dflex_hopper", "ppo"), ("dflex_hopper", "pwm")]
    assert float(rows[1]["ours"]) == pytest.approx(0.5)
