"""World-model error study on a locally recorded dataset (PolyGRAD's world-model-only experiment): train each model
on the replay buffer of an online PolyGRAD run, imagine h steps with its final policy, replay the actions in the
simulator restored to each start (MuJoCo set_state) and write the open-loop MSE per step k = 1..h-1.

    python scripts/trajectory_error.py --run runs/bench/gym_hopper/polygrad_cpu/seed1 --out docs/results/polygrad \
        --steps 1500 --starts 200

Writes ``<out>/trajectory_error.csv`` (model, k, mse), ``trajectory_error.png`` and prints a markdown table.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import torch

from pwm.evaluation.error_study import MODELS, load_run, run_study
from pwm.utils.errors import ConfigError


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True, help="an online PolyGRAD run directory (train_online.py)")
    p.add_argument("--out", required=True)
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    p.add_argument("--steps", type=int, default=1500, help="training steps per model (batch 256)")
    p.add_argument("--starts", type=int, default=200, help="start states (windows inside one episode)")
    p.add_argument("--tune-rounds", type=int, default=30, help="guidance-tuning imaginations before measuring")
    p.add_argument("--mlp", type=int, nargs=2, default=[256, 3], metavar=("WIDTH", "BLOCKS"))
    p.add_argument(
        "--transformer",
        type=int,
        nargs=2,
        default=[64, 2],
        metavar=("WIDTH", "BLOCKS"),
        help="the paper: 312 6; on a CPU even 128 3 is ~20x the MLP's FLOPs per step",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    return p.parse_args(argv)


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, mse in results.items():
        ax.plot(range(1, len(mse)), mse[1:], marker="o", label=name)
    ax.set_yscale("log")
    ax.set_xlabel("open-loop step k")
    ax.set_ylabel("MSE vs simulator (obs space)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        rec = load_run(args.run)
        sizes = {"mlp": tuple(args.mlp), "transformer": tuple(args.transformer)}
        results = run_study(rec, args.models, args.steps, args.starts, args.tune_rounds, args.seed, sizes)
    except ConfigError as err:
        sys.exit(f"error: {err}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "trajectory_error.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["model", "k", "mse"])
        for name, mse in results.items():
            writer.writerows([name, k, f"{v:.6g}"] for k, v in enumerate(mse) if k > 0)
    plot(results, out / "trajectory_error.png")
    h = len(next(iter(results.values())))
    print("| model | " + " | ".join(f"k={k}" for k in range(1, h)) + " |")
    print("|---|" + "---|" * (h - 1))
    for name, mse in results.items():
        print(f"| {name} | " + " | ".join(f"{v:.3g}" for v in mse[1:]) + " |")


if __name__ == "__main__":
    main()
