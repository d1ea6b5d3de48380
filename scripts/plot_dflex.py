"""Collect single-task runs (seeds x algorithms), plot return vs env steps with IQM and 95% CI bands, and (for the
eval metric) print PWM's table: per task, PPO-normalised max-IQM with 95% CIs (``pwm.evaluation.max_iqm``),
written as CSV next to the figure (``<figure stem>_table.csv``).

python scripts/plot_dflex.py runs/dflex --out curves.png             # every run under runs/dflex
python scripts/plot_dflex.py run_a run_b run_c --metric train         # stochastic training returns
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from pwm.evaluation.aggregate import ResultsError
from pwm.evaluation.curves import curves, find_runs, format_curves, plot_curves, read_curve_run
from pwm.evaluation.max_iqm import format_table, table, write_table


def write_points(runs, path: str) -> None:
    """Long-format CSV of the runs' points, one row per (run, evaluation)."""
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["env", "alg", "seed", "env_steps", "return"])
        for run in runs:
            out.writerows(
                [run.env, run.alg, run.seed, int(s), f"{r:.2f}"] for s, r in zip(run.steps, run.returns, strict=True)
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="+", help="run directories or folders holding them")
    parser.add_argument("--metric", choices=["eval", "train"], default="eval")
    parser.add_argument("--points", type=int, default=50, help="env-step grid points per curve")
    parser.add_argument("--reps", type=int, default=2000, help="bootstrap resamples")
    parser.add_argument("--out", default="dflex_curves.png")
    parser.add_argument("--csv", help="also write every run's points here (env, alg, seed, env_steps, return)")
    args = parser.parse_args(argv)
    try:
        runs = [read_curve_run(p, args.metric) for p in find_runs(args.paths)]
        if args.csv:
            write_points(runs, args.csv)
        result = curves(runs, args.points, args.reps)
        path = plot_curves(result, args.out, args.metric)
        rows = table(runs, args.reps) if args.metric == "eval" else []
    except ResultsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(format_curves(result))
    print(f"wrote {path}")
    if rows:
        print(format_table(rows))
        print(f"wrote {write_table(rows, Path(args.out).with_name(Path(args.out).stem + '_table.csv'))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
