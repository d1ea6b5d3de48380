"""Render action-free pretraining clips (frames only) into the layout of docs/prelar.md.

    python scripts/make_videos.py --out data/videos --tasks mw-reach mw-button-press mw-door-open \
        --episodes 10 --frames 100
    python scripts/make_videos.py --out data/videos --tasks cheetah-run --episodes 5      # DMControl, random actions

Meta-World clips come from metaworld's scripted v3 policies with Gaussian action noise; tasks listed in
--exclude (the fine-tuning tasks) are refused, so pretraining never sees them. Existing clips are kept (rerun to
resume).
"""

from __future__ import annotations

import argparse
import sys
import time

from pwm.data.videos import write_clip
from pwm.envs.suites.scripted import render_clip

DEFAULT_TASKS = ["mw-reach", "mw-button-press", "mw-door-open", "mw-window-open", "mw-drawer-close", "mw-push"]
FINETUNE_TASKS = ["mw-drawer-open", "mw-door-lock", "mw-lever-pull", "mw-button-press-topdown-wall",
                  "mw-dial-turn"]  # fmt: skip


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="clip folder (<out>/<source>/<task>/clip_*.npz)")
    p.add_argument("--tasks", nargs="+", default=DEFAULT_TASKS)
    p.add_argument("--exclude", nargs="*", default=FINETUNE_TASKS, help="tasks refused (fine-tuning tasks)")
    p.add_argument("--episodes", type=int, default=10, help="clips per task")
    p.add_argument("--frames", type=int, default=100, help="frames per clip")
    p.add_argument("--noise", type=float, default=0.1, help="std of the scripted actions' Gaussian noise")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    banned = sorted(set(args.tasks) & set(args.exclude))
    if banned:
        sys.exit(f"error: {', '.join(banned)} are fine-tuning tasks (--exclude); pretraining videos must not show them")
    from pathlib import Path

    start = time.perf_counter()
    for task in args.tasks:
        source = "metaworld" if task.startswith("mw-") else "dmcontrol"
        wins = 0.0
        for i in range(args.episodes):
            path = Path(args.out) / source / task / f"clip_{i:05d}.npz"
            if path.exists():
                continue
            frames, success = render_clip(task, args.seed * 100_000 + i, args.frames, args.noise)
            write_clip(args.out, source, task, i, frames)
            wins += success
        print(f"{task}: {args.episodes} clips of {args.frames} frames (new ones succeeded {wins:.0f}x)", flush=True)
    print(f"done in {time.perf_counter() - start:.1f}s: {args.out}")


if __name__ == "__main__":
    main()
