"""DreamerV2 vs APV-style vs PreLAR on Meta-World from pixels at equal env steps (docs/prelar.md), resumable.

Stages, each a subprocess writing under ``--out``: (1) render action-free clips of the scripted policies on
tasks other than the fine-tuning ones (``scripts/make_videos.py``); (2) pretrain APV-style and PreLAR models on
them (``alg=apv_pretrain``, ``alg=prelar_pretrain``); (3) per task and seed, train DreamerV2 from scratch and
fine-tune both pretrained models for ``--episodes`` episodes each (equal env steps); (4) collect every evaluation
into ``<results>/prelar_<tag>.csv``, each run's progress, last and best success and wall seconds into
``prelar_<tag>_runs.csv``, the pretraining losses into ``prelar_<tag>_pretrain.csv``, and plot mean success vs
env steps into ``<results>/prelar_<tag>.png``.
``--jobs N`` runs N training processes at once (one thread each; fine-tuning from a pretrained model waits for it).
Rerunning the same command resumes: clips already written are kept and every run resumes from its last run state;
``--plot-only`` tabulates a benchmark in progress (runs without an evaluation yet are left out).

    nice -n 10 python benchmarks/prelar_metaworld.py --out runs/prelar_bench              # the CPU cycle
    python benchmarks/prelar_metaworld.py --out runs/prelar_paper --preset paper --episodes 512 \
        --pretrain-steps 600000 --seeds 1 2 3 --extra general.device=cuda                  # full scale (a GPU)
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
METHODS = {"dreamerv2": "dreamerv2", "apv": "apv_finetune", "prelar": "prelar_finetune"}
PRETRAIN = {"apv": "apv_pretrain", "prelar": "prelar_pretrain"}
PRETRAIN_LOSSES = ("image", "kl", "va_kl", "consistency")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/prelar_bench")
    p.add_argument("--results", default="docs/results/prelar")
    p.add_argument("--tag", default="cpu")
    p.add_argument("--preset", default="cpu")
    p.add_argument("--tasks", nargs="+", default=["mw-drawer-open"])
    p.add_argument("--seeds", nargs="+", type=int, default=[1, 2])
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    p.add_argument("--episodes", type=int, default=8, help="fine-tuning episodes (500 env steps each)")
    p.add_argument("--eval-every", type=int, default=4, help="episodes between evaluations")
    p.add_argument("--eval-runs", type=int, default=3)
    p.add_argument("--pretrain-steps", type=int, default=200)
    p.add_argument("--video-tasks", nargs="+", default=["mw-reach", "mw-button-press", "mw-door-open",
                                                        "mw-window-open", "mw-drawer-close"])  # fmt: skip
    p.add_argument("--clips", type=int, default=4)
    p.add_argument("--frames", type=int, default=100)
    p.add_argument("--jobs", type=int, default=1, help="training runs at once (one thread each)")
    p.add_argument("--extra", nargs="*", default=[], help="overrides given to every train_dreamer.py run")
    p.add_argument("--plot-only", action="store_true", help="only collect the finished runs' evaluations and plot")
    args = p.parse_args(argv)
    if args.jobs < 1:
        p.error(f"--jobs {args.jobs}: at least one run must be allowed at a time")
    return args


def _call(cmd: list[str], log: Path) -> float:
    """Run one stage (appending to its log); returns its wall time; a failure stops the benchmark in one line."""
    log.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with open(log, "a") as f:
        f.write(f"$ {' '.join(cmd)}\n")
        f.flush()
        done = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT)
    if done.returncode != 0:
        sys.exit(f"error: {' '.join(cmd[1:3])} failed; see {log}")
    return time.perf_counter() - start


def _train(args, run_dir: Path, overrides: list[str]) -> float:
    cmd = [sys.executable, str(ROOT / "scripts" / "train_dreamer.py"), f"preset={args.preset}",
           f"general.run_dir={run_dir}", "logger.wandb=false", "logger.progress=false", "general.threads=1",
           *overrides, *args.extra]  # fmt: skip
    return _call(cmd, run_dir / "benchmark.log")


def stages(args) -> list[dict]:
    """Render the clips, then run every training stage, at most ``--jobs`` at once: a fine-tuning run starts once
    its pretrained model is done (DreamerV2 from scratch needs none and is queued first)."""
    out = Path(args.out)
    videos = out / "videos"
    walls = [{"stage": "videos", "wall_s": _call([sys.executable, str(ROOT / "scripts" / "make_videos.py"),
              "--out", str(videos), "--tasks", *args.video_tasks, "--episodes", str(args.clips),
              "--frames", str(args.frames)], out / "videos.log")}]  # fmt: skip
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        pretrained = {}
        for name, alg in PRETRAIN.items():
            if name in args.methods:
                steps = [f"alg={alg}", f"general.video_dir={videos}", f"general.steps={args.pretrain_steps}",
                         "general.eval_every=0", f"general.save_every={max(1, args.pretrain_steps // 4)}"]  # fmt: skip
                pretrained[name] = pool.submit(_train, args, out / "pretrain" / name, steps)
        runs = {f"pretrain_{name}": future for name, future in pretrained.items()}
        for name, task, seed in fine_tuning_order(args):
            over = [f"alg={METHODS[name]}", f"env.task={task}", f"seed={seed}", f"general.steps={args.episodes}",
                    f"general.eval_every={args.eval_every}", f"general.eval_runs={args.eval_runs}",
                    "general.save_every=1"]  # fmt: skip
            if name in PRETRAIN:
                over.append(f"alg.pretrained={out / 'pretrain' / name}")
            runs[f"{task}/{name}/seed{seed}"] = pool.submit(
                _after, pretrained.get(name), _train, args, out / task / name / f"seed{seed}", over
            )
        try:
            walls += [{"stage": stage, "wall_s": future.result()} for stage, future in runs.items()]
        except BaseException as exc:  # a failed run (a one-line SystemExit): start nothing more, let the running end
            pool.shutdown(wait=False, cancel_futures=True)
            print(f"{exc}; waiting for the stages still running (a rerun resumes them)", file=sys.stderr, flush=True)
            raise
    return walls


def fine_tuning_order(args) -> list[tuple[str, str, int]]:
    """(method, task, seed) of every fine-tuning run, those that need no pretrained model first."""
    runs = [(name, task, seed) for task in args.tasks for seed in args.seeds for name in args.methods]
    return sorted(runs, key=lambda run: run[0] in PRETRAIN)


def _after(first: Future | None, fn, *args) -> float:
    """``fn(*args)`` once ``first`` (a pretraining run) has finished; if it failed, its error re-raises here instead.
    Pretraining is submitted before any fine-tuning, so the pool has started it by then and the wait cannot stall."""
    if first is not None:
        first.result()
    return fn(*args)


def _read(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def collect_pretraining(args) -> tuple[list[dict], list[dict]]:
    """Every logged pretraining row (losses: image NLL, balanced KL, the latent-action KL and consistency where
    PreLAR has them), and one progress row per pretrained model."""
    curves, runs = [], []
    for name in PRETRAIN:
        path = Path(args.out) / "pretrain" / name / "metrics.csv"
        rows = _read(path) if name in args.methods and path.is_file() else []
        curves += [{"model": name, "step": int(r["step"]), **{k: r.get(f"pre/{k}", "") for k in PRETRAIN_LOSSES},
                    "train_s": float(r["time/train_s"])} for r in rows]  # fmt: skip
        if rows:
            runs.append({"run": f"pretrain/{name}", "steps": int(rows[-1]["step"]), "env_steps": 0,
                         "last_success": "", "best_success": "", "last_return": "",
                         "train_s": float(rows[-1]["time/train_s"])})  # fmt: skip
    return curves, runs


def collect(args) -> tuple[list[dict], list[dict]]:
    """Every evaluation of every run (runs not started yet are skipped with a note, so ``--plot-only`` can look at
    a benchmark in progress), and one row per fine-tuning run: its progress and wall seconds."""
    out, evals, runs = Path(args.out), [], []
    for task in args.tasks:
        for seed in args.seeds:
            for name in args.methods:
                path = out / task / name / f"seed{seed}" / "metrics.csv"
                rows = [r for r in _read(path) if r.get("eval/success")] if path.is_file() else []
                if not rows:
                    print(f"{task} {name} seed {seed}: no evaluation yet, left out")
                    continue
                evals += [{"task": task, "method": name, "seed": seed, "episode": int(r["step"]),
                           "env_steps": int(float(r["env_steps"])), "success": float(r["eval/success"]),
                           "return": float(r["eval/return"]), "train_s": float(r["time/train_s"])}
                          for r in rows]  # fmt: skip
                runs.append({"run": f"{task}/{name}/seed{seed}", "steps": evals[-1]["episode"],
                             "env_steps": evals[-1]["env_steps"], "last_success": evals[-1]["success"],
                             "best_success": max(float(r["eval/success"]) for r in rows),
                             "last_return": evals[-1]["return"], "train_s": evals[-1]["train_s"]})  # fmt: skip
    if not evals:
        sys.exit(f"error: no run under {out} has an evaluation yet")
    return evals, runs


def _mean(rows: list[dict], name: str, key: str) -> tuple[list[int], list[float]]:
    steps = sorted({r["env_steps"] for r in rows if r["method"] == name})
    values = [[r[key] for r in rows if r["method"] == name and r["env_steps"] == s] for s in steps]
    return steps, [sum(v) / len(v) for v in values]


def plot(rows: list[dict], path: Path) -> None:
    """Mean eval success and return over seeds vs env steps, one line per method, each seed a thin line of the
    same colour (with two or three seeds the mean hides whether one seed or all of them learned)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.2))
    axes = fig.subplots(1, 2)
    for i, name in enumerate(dict.fromkeys(r["method"] for r in rows)):
        for ax, key in zip(axes, ("success", "return"), strict=True):
            ax.plot(*_mean(rows, name, key), marker="o", color=f"C{i}", label=name)
            for seed in dict.fromkeys(r["seed"] for r in rows if r["method"] == name):
                runs = [r for r in rows if r["method"] == name and r["seed"] == seed]
                ax.plot([r["env_steps"] for r in runs], [r[key] for r in runs], color=f"C{i}", lw=0.7, alpha=0.4)
    axes[0].set(xlabel="env steps", ylabel="eval success (mean over seeds)", ylim=(-0.05, 1.05))
    axes[1].set(xlabel="env steps", ylabel="eval return (mean over seeds)")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv=None) -> None:
    args = parse_args(argv)
    walls = [] if args.plot_only else stages(args)
    rows, runs = collect(args)
    pretraining, pretrain_runs = collect_pretraining(args)
    runs = pretrain_runs + runs
    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    outputs = [(f"prelar_{args.tag}.csv", rows), (f"prelar_{args.tag}_runs.csv", runs)]
    outputs += [(f"prelar_{args.tag}_pretrain.csv", pretraining)] if pretraining else []
    outputs += [(f"prelar_{args.tag}_wall.csv", walls)] if walls else []
    for name, data in outputs:
        with open(results / name, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(data[0]))
            writer.writeheader()
            writer.writerows(data)
    plot(rows, results / f"prelar_{args.tag}.png")
    for r in runs:
        print(f"{r['run']:32s} steps {r['steps']:5d} env_steps {r['env_steps']:6d} last success {r['last_success']} "
              f"best {r['best_success']} return {r['last_return']} train_s {r['train_s']:.0f}")  # fmt: skip
    print(f"wrote {', '.join(name for name, _ in outputs)} and prelar_{args.tag}.png into {results}")


if __name__ == "__main__":
    main()
