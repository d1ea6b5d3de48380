"""Gradient variance and ESNR vs horizon through the true double pendulum and two TD-MPC2 world models.

python scripts/gradient_esnr.py                      # H = 1..50, N = 100; trains (or reuses) both world models
python scripts/gradient_esnr.py --max-horizon 10 --samples 20 --steps 200 --episodes 32   # a quick look

World models are cached in --cache-dir and reused when rerun with the same settings. Writes gradient_esnr.csv
and gradient_esnr.png to --out. Details: docs/pedagogy.md.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import torch

from pwm.pedagogy import esnr
from pwm.pedagogy import esnr_models as em

REPORT_HORIZONS = (1, 10, 25, 50)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-horizon", type=int, default=50)
    parser.add_argument("--samples", type=int, default=100, help="gradient samples N per horizon")
    parser.add_argument("--train-horizons", type=int, nargs="+", default=[3, 16], help="world-model horizons")
    parser.add_argument("--steps", type=int, default=em.TrainConfig.steps, help="world-model training steps")
    parser.add_argument("--episodes", type=int, default=em.DataConfig.episodes, help="training episodes")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a busy machine)")
    parser.add_argument("--cache-dir", default="runs/esnr")
    parser.add_argument("--out", default="docs/results")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    print(f"output directory: {out.resolve()}", flush=True)
    start = time.time()
    data = em.DataConfig(episodes=args.episodes, seed=args.seed)
    episodes: list = []

    def get_episodes():
        if not episodes:
            episodes.extend(em.collect_episodes(data))
        return episodes

    models = {}
    for h in args.train_horizons:
        cfg = em.TrainConfig(horizon=h, steps=args.steps, seed=args.seed)
        t = time.time()
        models[h], cached = em.load_or_train(
            args.cache_dir, cfg, data, get_episodes, log_every=max(args.steps // 10, 1), log=_log(h)
        )
        origin = "loaded from" if cached else "trained and saved to"
        print(f"world model H={h}: {origin} {em.cache_path(args.cache_dir, cfg, data)} ({time.time() - t:.0f} s)")
    curves = _measure(models, args)
    _write_csv(curves, out / "gradient_esnr.csv")
    print(esnr.format_curves(curves, [h for h in REPORT_HORIZONS if h <= args.max_horizon]))
    print(f"wrote {esnr.plot(curves, out / 'gradient_esnr.png')} and {out / 'gradient_esnr.csv'}")
    print(f"total {time.time() - start:.0f} s\noutput directory: {out.resolve()}")
    return 0


def _log(h: int):
    return lambda row: print(
        f"  H={h} step {row['step']}: " + ", ".join(f"{k}={v:.4g}" for k, v in row.items() if k != "step"), flush=True
    )


def _measure(models: dict, args) -> list[esnr.Curve]:
    """One curve through the simulator (policy input: the longest-horizon model's encoder, as the reference
    does) and one per world model, all with the same re-initialised policy and the same noise draws."""
    horizons = list(range(1, args.max_horizon + 1))
    encoder_model = models[max(models)]
    policy = esnr.Policy.for_world_model(encoder_model, seed=args.seed)
    env = em.make_pendulum(args.samples, grad=True, episode_length=max(240, args.max_horizon))
    obs0 = em.make_pendulum(args.samples).reset()
    rollouts = {"True (simulator)": esnr.simulator_rollout(env, encoder_model.encode, policy)}
    rollouts.update({f"World model H={h}": esnr.model_rollout(m, policy, obs0) for h, m in models.items()})
    curves = []
    for name, rollout in rollouts.items():
        t = time.time()
        curves.append(esnr.measure(name, rollout, policy.head, horizons, args.samples, seed=args.seed))
        print(f"{name}: {time.time() - t:.0f} s", flush=True)
    return curves


def _write_csv(curves: list[esnr.Curve], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["curve", "H", "variance", "esnr"])
        for c in curves:
            for h, v, e in zip(c.horizons, c.variance, c.esnr, strict=True):
                writer.writerow([c.name, h, f"{v:.6g}", f"{e:.6g}"])


if __name__ == "__main__":
    sys.exit(main())
