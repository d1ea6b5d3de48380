"""Summarise multitask PWM runs: normalised scores with mean, median, IQM and 95% stratified bootstrap CIs.

    python scripts/aggregate_results.py runs/mt30/multirun/<date_time> [more dirs] [--per-task] [--plot out.png]
    python scripts/aggregate_results.py runs/mini_mt/policies --normalise-by data/mini_mt/manifest.json --csv out/

Reads every ``results.csv`` under the given directories (recursively), takes each run's final evaluation of each
algorithm in it (``pwm``, and ``pwm+mppi`` / ``tdmpc2-mppi`` from planning evaluations) and normalises it
(DMControl reward / 1000, or / a per-task reference return with ``--normalise-by``; Meta-World success), then
prints one block per (task_set, alg). The
computation lives in ``pwm.evaluation.aggregate``. Invalid input (no results, a malformed file, an unknown task)
prints one line to stderr and exits with status 1; warnings (missing tasks, unequal seeds, duplicate runs) go to
stderr too.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from pwm.evaluation.aggregate import (
    ResultsError,
    format_per_task,
    format_summary,
    load_runs,
    per_task,
    plot_summary,
    summarize,
)
from pwm.evaluation.mt_tables import (
    read_references,
    score_rows,
    side_by_side,
    summary_rows,
    with_references,
    write_csv,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("dirs", nargs="+", help="directories searched recursively for results.csv (or csv files)")
    p.add_argument("--per-task", action="store_true", help="also print each task's mean ± std over seeds")
    p.add_argument(
        "--normalise-by", metavar="JSON", help="per-task reference returns ({task: return} or a collect manifest)"
    )
    p.add_argument("--csv", metavar="DIR", help="write DIR/scores.csv (one row per run) and DIR/summary.csv")
    p.add_argument("--plot", metavar="PNG", help="write a figure: mean/IQM with CIs, and score vs iteration")
    p.add_argument("--reps", type=int, default=2000, help="bootstrap repetitions (default: 2000, as in PWM)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap random seed (default: 0)")
    p.add_argument("--confidence", type=float, default=0.95, help="CI coverage (default: 0.95)")
    p.add_argument(
        "--task-bootstrap", action="store_true", help="resample tasks as well as runs (CI over the task population)"
    )
    args = p.parse_args(argv)
    if args.reps < 1 or not 0 < args.confidence < 1:
        p.error("--reps must be >= 1 and --confidence in (0, 1)")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="warning: %(message)s", stream=sys.stderr)
    try:
        runs = load_runs(args.dirs)
        if args.normalise_by:
            runs = with_references(runs, read_references(args.normalise_by))
        summaries = summarize(runs, args.reps, args.seed, args.confidence, args.task_bootstrap)
        print(format_summary(summaries, args.reps, args.confidence))
        if args.per_task:
            print()
            print(format_per_task(per_task(runs)))
            print()
            print(side_by_side(runs))
        if args.csv:
            write_csv(Path(args.csv) / "scores.csv", score_rows(runs))
            print(f"wrote {write_csv(Path(args.csv) / 'summary.csv', summary_rows(summaries))}")
        if args.plot:
            print(f"wrote {plot_summary(summaries, runs, args.plot, args.confidence)}")
    except (ResultsError, OSError) as err:
        sys.exit(f"error: {err}")


if __name__ == "__main__":
    main()
