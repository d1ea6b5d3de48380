"""PWM's single-task table: PPO-normalised max-IQM per task and algorithm, with 95% bootstrap CIs over seeds.

The metric, as PWM's single-task results compute it (Georgiev et al. 2024, "PWM: Policy Learning with Multi-Task
World Models", https://arxiv.org/abs/2407.02466): take the IQM-across-seeds learning curve of one (task,
algorithm), find the evaluation at which it peaks, take every seed's return at that same point, and divide by a
PPO scale. The table's value is the IQM of those normalised per-seed returns (the curve's maximum divided by the
scale), and its 95% CI is the stratified bootstrap over seeds (rliable, as the curves).

Two scales are shown: our own PPO's max-IQM on the same task (from the same folder of runs; treated as a fixed
number, so its own seed variation is not in the CI) and the PPO scale the paper normalised by (``PAPER_PPO``).
The paper's PPO-normalised values for PWM and SHAC (``PAPER_SCORES``) sit next to ours.

Curves are compared at the evaluations the runs made: the grid is the union of the runs' evaluation env steps that
every run covers, with each run linearly interpolated onto it (exact when seeds share an evaluation schedule).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from pwm.evaluation.aggregate import interval_estimates, iqm
from pwm.evaluation.curves import CurveRun, interpolate

PAPER_PPO: dict[str, float] = {
    "dflex_hopper": 4742.3, "dflex_ant": 6604.7, "dflex_anymal": 12029.0, "dflex_humanoid": 7292.8,
    "dflex_snu_humanoid": 4246.0,
}  # fmt: skip
PAPER_SCORES: dict[tuple[str, str], float] = {
    ("dflex_hopper", "pwm"): 1.20, ("dflex_ant", "pwm"): 1.46, ("dflex_anymal", "pwm"): 1.22,
    ("dflex_humanoid", "pwm"): 1.29, ("dflex_snu_humanoid", "pwm"): 1.39,
    ("dflex_hopper", "shac"): 1.02, ("dflex_ant", "shac"): 1.16, ("dflex_anymal", "shac"): 1.26,
    ("dflex_humanoid", "shac"): 1.15, ("dflex_snu_humanoid", "shac"): 1.44,
}  # fmt: skip
PPO_ALGS = ("ppo", "sb3-ppo")


@dataclass(frozen=True)
class MaxIqm:
    """One (task, algorithm): where its IQM curve peaks and every seed's return there."""

    env: str
    alg: str
    seeds: int
    env_steps: float
    iqm: float
    per_seed: np.ndarray


@dataclass(frozen=True)
class TableRow:
    env: str
    alg: str
    seeds: int
    env_steps: float
    max_iqm: float
    ours: float  # / our PPO's max-IQM (NaN without our PPO runs)
    ours_low: float
    ours_high: float
    paper_scale: float  # / the paper's PPO scale (NaN for tasks outside the paper's table)
    paper_scale_low: float
    paper_scale_high: float
    paper: float  # the paper's value for this task and algorithm (NaN when it has none)


def max_iqm(runs: Sequence[CurveRun]) -> MaxIqm:
    """The peak of the IQM-across-``runs`` curve (one task and algorithm) and each run's return at the peak."""
    start = max(r.steps[0] for r in runs)
    stop = min(r.steps[-1] for r in runs)
    grid = np.unique(np.concatenate([r.steps for r in runs]))
    grid = grid[(grid >= start) & (grid <= stop)]
    values = np.stack([interpolate(r, grid) for r in runs])  # [runs, points]
    curve = [iqm(values[:, k]) for k in range(len(grid))]
    best = int(np.argmax(curve))
    return MaxIqm(runs[0].env, runs[0].alg, len(runs), float(grid[best]), float(curve[best]), values[:, best])


def _normalised(per_seed: np.ndarray, scale: float | None, reps: int, seed: int) -> tuple[float, float, float]:
    if scale is None or not math.isfinite(scale) or scale == 0:
        return math.nan, math.nan, math.nan
    est = interval_estimates(per_seed[:, None] / scale, reps=reps, seed=seed)["iqm"]
    return est.point, est.low, est.high


def table(runs: Sequence[CurveRun], reps: int = 2000, seed: int = 0) -> list[TableRow]:
    """One row per (task, algorithm) in ``runs``, normalised by our PPO and by the paper's PPO scale."""
    groups: dict[tuple[str, str], list[CurveRun]] = {}
    for r in runs:
        groups.setdefault((r.env, r.alg), []).append(r)
    peaks = {key: max_iqm(group) for key, group in sorted(groups.items())}
    ours = {env: p.iqm for (env, alg), p in peaks.items() if alg in PPO_ALGS}
    rows = []
    for (env, alg), p in peaks.items():
        rows.append(
            TableRow(
                env, alg, p.seeds, p.env_steps, p.iqm,
                *_normalised(p.per_seed, ours.get(env), reps, seed),
                *_normalised(p.per_seed, PAPER_PPO.get(env), reps, seed),
                PAPER_SCORES.get((env, alg), math.nan),
            )
        )  # fmt: skip
    return rows


def _cell(point: float, low: float, high: float) -> str:
    return "—" if math.isnan(point) else f"{point:.2f} [{low:.2f}, {high:.2f}]"


def format_table(rows: Sequence[TableRow]) -> str:
    """A Markdown table: per task and algorithm, max-IQM raw and PPO-normalised with 95% CIs."""
    lines = [
        "| task | alg | seeds | env steps at max | max-IQM return | / our PPO [95% CI] | / paper PPO [95% CI] "
        "| paper |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        paper = "—" if math.isnan(r.paper) else f"{r.paper:.2f}"
        lines.append(
            f"| {r.env} | {r.alg} | {r.seeds} | {r.env_steps:.0f} | {r.max_iqm:.1f} | "
            f"{_cell(r.ours, r.ours_low, r.ours_high)} | "
            f"{_cell(r.paper_scale, r.paper_scale_low, r.paper_scale_high)} | {paper} |"
        )
    return "\n".join(lines)


def write_table(rows: Sequence[TableRow], path: str | Path) -> Path:
    """The table as CSV (one row per task and algorithm, the fields of ``TableRow``; NaN where not defined)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(TableRow.__dataclass_fields__))
        writer.writeheader()
        writer.writerows(asdict(r) for r in rows)
    return path
