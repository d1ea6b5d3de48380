"""Aggregation of results.csv files: IQM / bootstrap CIs by hand, normalised scores, the script on synthetic trees."""

from __future__ import annotations

import csv
import importlib.util
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pwm.evaluation.aggregate import (
    RESULTS_HEADER,
    ResultsError,
    interval_estimates,
    iqm,
    load_runs,
    normalized_score,
    read_run,
)

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "aggregate_results.py"
_spec = importlib.util.spec_from_file_location("aggregate_results", SCRIPT)
aggregate_results = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(aggregate_results)


def write_run(root: Path, task: str, seed: int, rows: list[tuple[int, float, float]], task_set: str = "mt30") -> Path:
    """rows: (iteration, episode_reward, episode_success), written in the given order."""
    d = root / task_set / task / f"seed{seed}"
    d.mkdir(parents=True, exist_ok=True)
    with open(d / "results.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(RESULTS_HEADER)
        for it, reward, success in rows:
            w.writerow([it, task, task_set, seed, "pwm", reward, success, 500, 0.5 * it])
    return d / "results.csv"


def run_main(capsys, *argv: str) -> str:
    """stdout of the script run in this process (its warnings reach pytest's log capture, ``caplog``)."""
    aggregate_results.main([str(a) for a in argv])
    return capsys.readouterr().out


def metrics_of(out: str, group: str) -> dict[str, tuple[float, float, float]]:
    """{metric: (point, low, high)} of one group block of the script's output."""
    block = out.split(f"{group}:", 1)[1].split("\n\n")[0]
    found = re.findall(r"^  (mean|median|IQM)\s+([-\d.]+)  \[([-\d.]+), ([-\d.]+)\]$", block, flags=re.M)
    return {name: tuple(map(float, v)) for name, *v in found[:3]}


def script(*argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, str(SCRIPT), *map(str, argv)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)


# --- statistics on hand-computed examples -------------------------------------------------------------------


def test_iqm_is_the_mean_of_the_middle_half():
    assert iqm(np.arange(8.0)) == pytest.approx(np.mean([2, 3, 4, 5]))  # = 3.5
    assert iqm(np.arange(8.0).reshape(2, 4)) == pytest.approx(3.5)  # over runs x tasks, not per task
    assert iqm([0, 0, 1, 1, 1, 1, 100, 100]) == pytest.approx(1.0)  # outliers at both ends do not count


def test_bootstrap_ci_of_two_runs_by_hand():
    # One task, runs {0, 1}: resampled means are 0, 0.5, 1 with probabilities 1/4, 1/2, 1/4, so the 95% percentile
    # interval is [0, 1]; a constant matrix has a zero-width interval.
    est = interval_estimates(np.array([[0.0], [1.0]]), reps=2000, seed=0)
    assert (est["mean"].point, est["mean"].low, est["mean"].high) == pytest.approx((0.5, 0.0, 1.0))
    const = interval_estimates(np.full((3, 4), 0.25), reps=200)
    assert all((e.point, e.low, e.high) == pytest.approx((0.25,) * 3) for e in const.values())


def test_ci_contains_the_estimate_and_shrinks_with_more_runs():
    rng = np.random.default_rng(0)
    widths = {}
    for runs in (3, 30):
        scores = rng.uniform(0.2, 0.9, size=(runs, 10))
        est = interval_estimates(scores, reps=500, seed=1)
        for e in est.values():
            assert e.low <= e.point <= e.high
        assert est["mean"].point == pytest.approx(scores.mean())
        assert est["median"].point == pytest.approx(np.median(scores.mean(axis=0)))  # rliable: median of task means
        widths[runs] = {k: e.high - e.low for k, e in est.items()}
    assert all(widths[30][k] < widths[3][k] for k in widths[3])


def test_seeded_bootstrap_is_deterministic():
    scores = np.random.default_rng(0).uniform(size=(3, 5))
    a = interval_estimates(scores, reps=300, seed=7)
    np.random.rand(3)  # the global stream in between does not matter
    assert interval_estimates(scores, reps=300, seed=7) == a
    assert interval_estimates(scores, reps=300, seed=8)["iqm"] != a["iqm"]
    state = np.random.get_state()
    expected = np.random.rand()
    np.random.set_state(state)
    interval_estimates(scores, reps=300, seed=7)
    assert np.random.rand() == expected  # NumPy's global stream is left untouched


def test_normalised_scores():
    assert normalized_score("walker-walk", 734.0, 0.0) == pytest.approx(0.734)
    assert normalized_score("mw-assembly", 4321.0, 0.6) == pytest.approx(0.6)  # Meta-World: success, not reward


def test_header_matches_the_runner():
    from pwm.training.multitask import RESULTS_HEADER as RUNNER_HEADER

    assert tuple(RUNNER_HEADER) == RESULTS_HEADER


# --- loading ---------------------------------------------------------------------------------------------------


def test_final_row_is_the_largest_iteration(tmp_path):
    path = write_run(tmp_path, "mw-reach", 1, [(0, 10.0, 0.0), (400, 900.0, 0.9), (200, 500.0, 0.3)], "mt80")
    run = read_run(path)
    assert run.final_iteration == 400 and run.score == pytest.approx(0.9)
    assert run.iterations.tolist() == [0, 200, 400] and run.scores.tolist() == pytest.approx([0.0, 0.3, 0.9])


def test_duplicate_run_keeps_the_one_that_got_further(tmp_path, caplog):
    write_run(tmp_path / "a", "walker-walk", 1, [(0, 0.0, 0), (200, 100.0, 0)])
    write_run(tmp_path / "b", "walker-walk", 1, [(0, 0.0, 0), (400, 700.0, 0)])
    with caplog.at_level(logging.WARNING):
        runs = load_runs([tmp_path / "a", tmp_path / "b", tmp_path])  # overlapping dirs count each file once
    assert len(runs) == 1 and runs[0].score == pytest.approx(0.7)
    assert "found twice" in caplog.text


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("iteration,task,seed\n0,walker-walk,1\n", "malformed header"),
        (",".join(RESULTS_HEADER) + "\n", "no evaluation rows"),
        (",".join(RESULTS_HEADER) + "\n0,walker-walk,mt30,1,pwm,abc,0,500,1\n", "episode_reward must be float"),
        (",".join(RESULTS_HEADER) + "\n0,walker-walk,mt30,1,pwm,1\n", "expected 9 fields"),
        (",".join(RESULTS_HEADER) + "\n0,walker-flyy,mt30,1,pwm,1,0,500,1\n", "unknown task 'walker-flyy'"),
        (",".join(RESULTS_HEADER) + "\n0,mw-reach,mt30,1,pwm,1,0,500,1\n", "unknown task 'mw-reach' for mt30"),
        (",".join(RESULTS_HEADER) + "\n0,walker-walk,mt99,1,pwm,1,0,500,1\n", "unknown task_set 'mt99'"),
    ],
)  # fmt: skip
def test_invalid_files_raise_one_line(tmp_path, content, match):
    path = tmp_path / "results.csv"
    path.write_text(content)
    with pytest.raises(ResultsError, match=match) as err:
        read_run(path)
    assert "\n" not in str(err.value)


# --- the script ------------------------------------------------------------------------------------------------


@pytest.fixture
def results_tree(tmp_path) -> Path:
    """mt30: 4 tasks x 2 seeds with final scores 0, .1, .2, .3, .4, .5, .6, 1.0 (earlier rows differ);
    mt80: walker-walk reward 500 and mw-assembly success 1 (reward 20), one seed each."""
    finals = iter([0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 1.0])
    for task in ["walker-walk", "cheetah-run", "cup-catch", "pendulum-spin"]:
        for seed in (1, 2):
            write_run(tmp_path, task, seed, [(0, 999.0, 1.0), (100, 1000 * next(finals), 0.0)])
    write_run(tmp_path, "walker-walk", 1, [(0, 10.0, 0.0), (100, 500.0, 0.0)], "mt80")
    write_run(tmp_path, "mw-assembly", 1, [(0, 10.0, 0.0), (100, 20.0, 1.0)], "mt80")
    return tmp_path


def test_script_prints_mean_median_iqm_with_cis(results_tree, capsys, caplog):
    out = run_main(capsys, results_tree, "--reps", "500")
    assert "mt30 pwm: 4/30 tasks, 8 runs (2 per task), final iteration 100" in out
    mt30 = metrics_of(out, "mt30 pwm")
    assert mt30["mean"][0] == pytest.approx(3.1 / 8, abs=1e-4)
    assert mt30["median"][0] == pytest.approx(np.median([0.05, 0.25, 0.45, 0.8]), abs=1e-4)  # of per-task means
    assert mt30["IQM"][0] == pytest.approx(np.mean([0.2, 0.3, 0.4, 0.5]), abs=1e-4)
    assert all(low <= point <= high for point, low, high in mt30.values())
    assert "mt80 pwm: 2/80 tasks, 2 runs (1 per task)" in out
    assert metrics_of(out, "mt80 pwm")["mean"][0] == pytest.approx(0.75, abs=1e-4)
    assert "no runs for 26 task(s)" in caplog.text and "one run per task" in caplog.text


def test_script_subprocess_prints_summary_and_warnings(results_tree):
    proc = script(results_tree / "mt80", "--reps", "50")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("mt80 pwm: 2/80 tasks, 2 runs (1 per task), final iteration 100\n")
    assert "warning: mt80 pwm: no runs for 78 task(s)" in proc.stderr


def test_script_per_task_table(results_tree, capsys):
    out = run_main(capsys, results_tree / "mt30", "--per-task", "--reps", "50")
    rows = {line.split()[2]: line for line in out.splitlines() if line.startswith("mt30     pwm")}
    assert list(rows) == ["walker-walk", "cheetah-run", "cup-catch", "pendulum-spin"]  # registry order
    assert rows["walker-walk"].split()[3:] == ["2", "0.0500", "±", "0.0500"]
    assert rows["pendulum-spin"].split()[3:] == ["2", "0.8000", "±", "0.2000"]


def test_script_plot_writes_png(results_tree, capsys, tmp_path):
    out_png = tmp_path / "figs" / "summary.png"
    out = run_main(capsys, results_tree, "--reps", "50", "--plot", out_png)
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"wrote {out_png}" in out


def test_script_unequal_seeds_use_the_common_count(results_tree, capsys, caplog):
    write_run(results_tree, "walker-walk", 3, [(100, 1000.0, 0.0)])
    out = run_main(capsys, results_tree / "mt30", "--reps", "50")
    assert "8 runs (2 per task)" in out and "leaving out walker-walk/seed3" in caplog.text


@pytest.mark.parametrize(
    ("setup", "match"),
    [
        (lambda d: (d / "results.csv").write_text("iteration,task\n0,walker-walk\n"), "malformed header"),
        (lambda d: write_run(d, "walker-flyy", 1, [(0, 1.0, 0.0)]), "unknown task 'walker-flyy'"),
        (lambda d: (d / "empty").mkdir(), "no results.csv found"),
    ],
    ids=["malformed-header", "unknown-task", "no-results"],
)
def test_script_invalid_input_exits_1_with_one_line(tmp_path, setup, match):
    setup(tmp_path)
    proc = script(tmp_path / "empty" if match.startswith("no results") else tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and match in lines[0]
