"""Learning curves of single-task runs (seeds x algorithms): return vs env steps, IQM with bootstrap CIs.

A run directory is one written by ``scripts/train_dflex.py`` (``run_info.json`` + ``metrics.csv``) or by
``benchmarks/sb3_baseline.py`` (same two files). Runs are grouped by (env, alg); each run's curve is linearly
interpolated onto a shared env-step grid (no extrapolation past its last point), and at each grid point the IQM
over the runs that reached it is reported with a 95% stratified-bootstrap interval (rliable), as PWM's figures.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pwm.evaluation.aggregate import ResultsError, interval_estimates

METRIC_COLUMNS = {"eval": "eval/return", "train": "train/episode_return"}


@dataclass(frozen=True)
class CurveRun:
    path: Path
    env: str
    alg: str
    seed: int
    steps: np.ndarray  # env steps, increasing
    returns: np.ndarray


@dataclass(frozen=True)
class Curve:
    env: str
    alg: str
    runs: int
    steps: np.ndarray
    iqm: np.ndarray
    low: np.ndarray
    high: np.ndarray


def read_curve_run(run_dir: str | Path, metric: str = "eval") -> CurveRun:
    """One run's (env steps, return) points; a missing file or column is a one-line ResultsError."""
    run_dir = Path(run_dir)
    info_path, csv_path = run_dir / "run_info.json", run_dir / "metrics.csv"
    for path in (info_path, csv_path):
        if not path.is_file():
            raise ResultsError(f"{run_dir}: missing {path.name} (not a train_dflex/sb3_baseline run directory)")
    info = json.loads(info_path.read_text())
    column = METRIC_COLUMNS[metric]
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or "env_steps" not in rows[0]:
        raise ResultsError(f"{csv_path}: no env_steps column")
    points = [(float(r["env_steps"]), float(r[column])) for r in rows if r.get(column) not in (None, "", "nan")]
    if not points:
        raise ResultsError(f"{csv_path}: no {column} values")
    steps, returns = (np.array(x) for x in zip(*sorted(points), strict=True))
    return CurveRun(run_dir, info["env"], info["alg"], int(info["seed"]), steps, returns)


def find_runs(paths: Iterable[str | Path]) -> list[Path]:
    """Every directory under ``paths`` holding a ``run_info.json``, following symlinks (a folder of links to runs
    is a common way to pick which runs go into one figure)."""
    found = []
    for p in map(Path, paths):
        if (p / "run_info.json").is_file():
            found.append(p)
        elif p.is_dir():
            found.extend(sorted(Path(d) for d, _, files in os.walk(p, followlinks=True) if "run_info.json" in files))
        else:
            raise ResultsError(f"{p} does not exist")
    if not found:
        raise ResultsError("no run directories (with run_info.json) found")
    return found


def interpolate(run: CurveRun, grid: np.ndarray) -> np.ndarray:
    """The run's return at each grid step (linear between its points); NaN outside the steps it covered."""
    values = np.interp(grid, run.steps, run.returns)
    values[(grid < run.steps[0]) | (grid > run.steps[-1])] = np.nan
    return values


def curve(runs: Sequence[CurveRun], points: int = 50, reps: int = 2000, seed: int = 0) -> Curve:
    """IQM over ``runs`` (one env and alg) with 95% CIs on ``points`` env-step values from the earliest first
    point to the latest point that every run reached."""
    start = min(r.steps[0] for r in runs)
    stop = min(r.steps[-1] for r in runs)
    grid = np.linspace(start, stop, points) if stop > start else np.array([stop])
    values = np.stack([interpolate(r, grid) for r in runs])  # [runs, points]
    iqm, low, high = (np.full(len(grid), np.nan) for _ in range(3))
    for k in range(len(grid)):
        column = values[:, k][~np.isnan(values[:, k])]
        if column.size:
            est = interval_estimates(column[:, None], reps=reps, seed=seed)["iqm"]
            iqm[k], low[k], high[k] = est.point, est.low, est.high
    return Curve(runs[0].env, runs[0].alg, len(runs), grid, iqm, low, high)


def curves(runs: Sequence[CurveRun], points: int = 50, reps: int = 2000) -> list[Curve]:
    groups: dict[tuple[str, str], list[CurveRun]] = {}
    for r in runs:
        groups.setdefault((r.env, r.alg), []).append(r)
    return [curve(group, points, reps) for _, group in sorted(groups.items())]


def plot_curves(all_curves: Sequence[Curve], path: str | Path, metric: str = "eval") -> Path:
    """One panel per env: IQM line and 95% CI band per algorithm against env steps."""
    from matplotlib.figure import Figure

    envs = sorted({c.env for c in all_curves})
    fig = Figure(figsize=(5.5 * len(envs), 4), layout="constrained")
    axes = fig.subplots(1, len(envs), squeeze=False)[0]
    for ax, env in zip(axes, envs, strict=True):
        for c in (c for c in all_curves if c.env == env):
            (line,) = ax.plot(c.steps, c.iqm, label=f"{c.alg} (IQM, {c.runs} runs)")
            ax.fill_between(c.steps, c.low, c.high, color=line.get_color(), alpha=0.25)
        ax.set_title(env)
        ax.set_xlabel("env steps")
        ax.set_ylabel(f"{metric} episode return")
        ax.grid(alpha=0.3)
        ax.legend(loc="best")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def format_curves(all_curves: Sequence[Curve]) -> str:
    lines = [f"{'env':<22} {'alg':<8} {'runs':>4} {'env steps':>11} {'IQM':>10} {'95% CI':>22}"]
    for c in all_curves:
        lines.append(
            f"{c.env:<22} {c.alg:<8} {c.runs:>4} {c.steps[-1]:>11.0f} {c.iqm[-1]:>10.1f} "
            f"[{c.low[-1]:>9.1f}, {c.high[-1]:>9.1f}]"
        )
    return "\n".join(lines)
