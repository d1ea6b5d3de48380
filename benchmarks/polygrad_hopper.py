"""PolyGRAD (``alg=polygrad_cpu``) next to SB3 PPO and SAC on Gymnasium Hopper at equal env steps, resumable.

Every run has its own directory under ``--out`` (``<alg>/seed<k>``); rerunning continues each run from its last
state up to ``--steps`` and skips finished ones, so a larger ``--steps`` extends a finished benchmark. All three
are evaluated alike: ``--eval-runs`` deterministic episodes every ``--eval-every`` env steps on a Gymnasium env
reseeded per evaluation (``pwm.training.evaluate``). At the end: ``curves.csv`` (alg, seed, env_steps,
eval_return, wall_s) and ``curves.png`` (mean and range over seeds) in ``--out``.

    python benchmarks/polygrad_hopper.py --seeds 1 2 3 --steps 100000 --out runs/bench      # the full benchmark
    python benchmarks/polygrad_hopper.py --seeds 1 --steps 10000 --out runs/bench           # what fits a session
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ALGS = ("polygrad_cpu", "ppo", "sac")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="gym_hopper")
    p.add_argument("--algs", nargs="+", default=list(ALGS), choices=ALGS)
    p.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    p.add_argument("--steps", type=int, default=100_000, help="env steps per run")
    p.add_argument("--eval-every", type=int, default=2000)
    p.add_argument("--eval-runs", type=int, default=10)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default="runs/bench")
    p.add_argument("--plot-only", action="store_true", help="only collect the curves of existing runs")
    p.add_argument("--dry-run", action="store_true", help="print each run's command")
    return p.parse_args(argv)


def run_command(args: argparse.Namespace, alg: str, seed: int) -> list[str]:
    """The command of one run (a finished run does nothing when rerun)."""
    out = Path(args.out) / args.env / alg / f"seed{seed}"
    if alg == "polygrad_cpu":
        return [
            sys.executable, str(ROOT / "scripts" / "train_online.py"), f"env={args.env}", f"alg={alg}",
            f"seed={seed}", f"general.steps={args.steps}", f"general.eval_every={args.eval_every}",
            f"general.save_every={args.eval_every}", f"general.eval_runs={args.eval_runs}",
            f"general.threads={args.threads}", "logger.progress=false", "logger.log_every=500",
            f"general.run_dir={out.resolve()}",
        ]  # fmt: skip
    ppo = (
        ["--n-steps", "2048", "--minibatches", "32", "--epochs", "10"] if alg == "ppo" else []
    )  # SB3's MuJoCo defaults
    return [
        sys.executable, str(ROOT / "benchmarks" / "sb3_baseline.py"), "--env", args.env, "--algo", alg,
        "--steps", str(args.steps), "--eval-every", str(args.eval_every), "--eval-runs", str(args.eval_runs),
        "--seed", str(seed), "--threads", str(args.threads), "--out", str(out), *ppo,
    ]  # fmt: skip


def read_curve(run_dir: Path) -> list[tuple[int, float, float]]:
    """(env_steps, eval return, wall seconds) of every evaluation row of one run."""
    path = run_dir / "metrics.csv"
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("eval/return") not in (None, "")]
    wall = "time" if rows and "time" in rows[0] else "time/train_s"
    return [(int(r["env_steps"]), float(r["eval/return"]), float(r.get(wall) or "nan")) for r in rows]


def collect(args: argparse.Namespace) -> list[dict]:
    rows = []
    for alg in args.algs:
        for seed in args.seeds:
            for steps, ret, wall in read_curve(Path(args.out) / args.env / alg / f"seed{seed}"):
                rows.append({"alg": alg, "seed": seed, "env_steps": steps, "eval_return": ret, "wall_s": wall})
    return rows


def plot(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for alg in dict.fromkeys(r["alg"] for r in rows):
        by_step: dict[int, list[float]] = {}
        for r in rows:
            if r["alg"] == alg:
                by_step.setdefault(r["env_steps"], []).append(r["eval_return"])
        steps = sorted(by_step)
        mean = [np.mean(by_step[s]) for s in steps]
        counts = sorted({len(v) for v in by_step.values()})
        seeds = f"{counts[0]}" if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"  # unfinished runs: a range
        ax.plot(steps, mean, marker="o", label=f"{alg} ({seeds} seeds per point)")
        ax.fill_between(steps, [min(by_step[s]) for s in steps], [max(by_step[s]) for s in steps], alpha=0.2)
    ax.set_xlabel("env steps")
    ax.set_ylabel("eval return (deterministic policy)")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> None:
    args = parse_args(argv)
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "PYTHONPATH": str(ROOT)}
    if not args.plot_only:
        for alg in args.algs:
            for seed in args.seeds:
                cmd = run_command(args, alg, seed)
                print(" ".join(cmd), flush=True)
                if not args.dry_run:
                    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    rows = collect(args)
    if args.dry_run or not rows:
        return
    out = Path(args.out)
    with open(out / "curves.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    plot(rows, out / "curves.png", f"{args.env}: PolyGRAD (cpu preset) vs SB3 at equal env steps")
    print(f"wrote {out / 'curves.csv'} and {out / 'curves.png'}")


if __name__ == "__main__":
    main()
