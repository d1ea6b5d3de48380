"""Multitask tables beyond the paper's /1000 scale: per-task reference returns (the data-collecting agent's final
return, as issue-style evidence tables normalise by), a side-by-side per-task table of several algorithms, and the
CSV files the result folders keep.

A score normalised by the agent whose replay buffer made the data reads "fraction of the data's best behaviour
recovered": 1.0 matches the collecting agent, above 1 improves on it.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from pwm.evaluation.aggregate import METRICS, GroupSummary, ResultsError, Run, group_runs


def read_references(path: str | Path) -> dict[str, float]:
    """Per-task reference returns from JSON: ``{task: return}``, or a ``scripts/collect_mt_data.py`` manifest
    (each task's ``final_return``: the data-collecting agent's)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ResultsError(f"{path}: cannot read reference returns ({err})") from None
    if isinstance(data, dict) and isinstance(data.get("tasks"), dict):
        data = {t: e.get("final_return") if isinstance(e, dict) else None for t, e in data["tasks"].items()}
    if not isinstance(data, dict):
        raise ResultsError(f"{path}: expected a JSON object of task -> reference return")
    for task, value in data.items():
        if not isinstance(value, int | float) or not math.isfinite(value):
            raise ResultsError(f"{path}: reference return of {task!r} is {value!r}; expected a number")
    return {t: float(v) for t, v in data.items()}


def with_references(runs: Iterable[Run], references: dict[str, float]) -> list[Run]:
    """The runs with DMControl scores divided by their task's reference return instead of 1000."""
    out = []
    for run in runs:
        if run.task.startswith("mw-"):
            out.append(run)
            continue
        if run.task not in references:
            raise ResultsError(f"no reference return for task {run.task!r} (have: {', '.join(sorted(references))})")
        if references[run.task] <= 0:
            raise ResultsError(
                f"the reference return of {run.task!r} is {references[run.task]}; a score needs a positive one (an "
                "agent that scored nothing cannot normalise: collect longer, or leave the task out)"
            )
        out.append(dataclasses.replace(run, reference=references[run.task]))
    return out


def score_rows(runs: Sequence[Run]) -> list[dict]:
    """One row per run: identity, final iteration, final return and normalised score."""
    return [
        {"task_set": r.task_set, "alg": r.alg, "task": r.task, "seed": r.seed, "iteration": r.final_iteration,
         "episode_reward": round(float(r.episode_reward[-1]), 3), "reference": r.reference, "score": round(r.score, 5)}
        for r in runs
    ]  # fmt: skip


def summary_rows(summaries: Sequence[GroupSummary]) -> list[dict]:
    """One row per (task_set, alg, metric): point estimate and CI bounds."""
    return [
        {"task_set": s.task_set, "alg": s.alg, "metric": m, "tasks": len(s.tasks), "runs": s.runs,
         "point": round(s.estimates[m].point, 5), "low": round(s.estimates[m].low, 5),
         "high": round(s.estimates[m].high, 5)}
        for s in summaries for m in METRICS
    ]  # fmt: skip


def write_csv(path: str | Path, rows: list[dict]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def side_by_side(runs: Iterable[Run]) -> str:
    """Per-task table with one column per algorithm: mean ± std of the normalised score over seeds (and the number
    of seeds), tasks in registry order."""
    groups = group_runs(runs)
    algs = [alg for _, alg in groups]
    cells: dict[str, dict[str, str]] = {}
    for (_, alg), group in groups.items():
        for task in dict.fromkeys(r.task for r in group):
            s = np.array([r.score for r in group if r.task == task])
            cells.setdefault(task, {})[alg] = f"{s.mean():.3f} ± {s.std():.3f} ({len(s)})"
    width = max(len(t) for t in cells)
    col = max(len(c) for row in cells.values() for c in row.values())
    col = max(col, *(len(a) for a in algs))
    lines = [f"{'task':<{width}}  " + "  ".join(f"{a:>{col}}" for a in algs)]
    for task, row in cells.items():
        lines.append(f"{task:<{width}}  " + "  ".join(f"{row.get(a, '-'):>{col}}" for a in algs))
    return "\n".join(lines)
