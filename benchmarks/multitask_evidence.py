"""PWM's multitask claim on a laptop: one multi-task world model, then per task x seed PWM policy extraction vs
TD-MPC2's MPPI planning with the same model vs PWM+MPPI, in the paper's table form.

Stages, each a subprocess of a repository script that resumes on its own, and each skipped when finished:

1. ``scripts/collect_mt_data.py``: SB3 SAC learns each task on real DMControl; its replay buffer becomes the data
   (``<out>/data``: official chunk layout, MT30 ids, ``manifest.json`` with random and final-agent returns).
2. ``scripts/train_world_model.py``: one multi-task TD-MPC2 world model on all of it with PWM's recipe
   (``tdmpc2=pwm``: H=16, rho=0.99) in ``<out>/world_model``; done when ``models/<steps>.pt`` exists.
3. ``scripts/train_multitask.py`` per task x seed in ``<out>/policies/<task>/seed<seed>``: PWM from the frozen
   model, and at the last step ``eval.planning=true eval.prior=both``: MPPI with PWM's actor/critic (``pwm+mppi``)
   and with the model's own policy prior and Q (``tdmpc2-mppi``, the TD-MPC2 baseline), all in one ``results.csv``.
   A run is done when its marker ``benchmark_done.json`` records its step count.
4. ``scripts/aggregate_results.py --normalise-by <manifest>``: scores normalised by the data-collecting agent's
   final return; mean / median / IQM with 95% stratified-bootstrap CIs, the per-task table, CSVs and a figure in
   ``<out>/results`` (or ``--results``).
5. World-model quality per task (``pwm.evaluation.wm_quality``): on the data (early / late / all episodes) into
   ``<results>/wm_quality.csv``, and along each final PWM policy's own evaluation episodes (reward, latent and
   critic-value errors; ``eval.model_errors=true``) into ``<results>/policy_model_errors.csv``.

Killing this script at any point and rerunning the same command continues where it stopped.

    nice -n 10 python benchmarks/multitask_evidence.py --out runs/mini_mt --jobs 4     # the default mini-MT run

CPU cost of the defaults (one core each, measured per step here): collection 5 x 50k SAC steps (~60 steps/s,
~70 min); world model 10k updates of batch 128 x H 16 on the small model (~0.15 s, ~25 min); PWM 15 runs x 500
iterations (~0.4 s, ~50 min); planning evaluation 15 runs x 2 planners x 5 episodes x 500 steps of TD-MPC2's MPPI
(~0.085 s a step, ~110 min): about 4 CPU hours in all, of which the policy stage spreads over ``--jobs``.
    python benchmarks/multitask_evidence.py --out runs/mini_mt --dry-run               # print the commands only
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pwm.training.collect import MINI_MT

ROOT = Path(__file__).resolve().parents[1]
MARKER = "benchmark_done.json"
SMALL_WM = "size=null latent_dim=64 enc_dim=128 mlp_dim=128 num_enc_layers=2 num_q=2"
"""A CPU-sized TD-MPC2 model (~0.3M parameters; the 1M preset's update costs ~3x more on one core)."""


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="folder of the whole run (data, world model, policies, results)")
    p.add_argument("--results", help="where the table, CSVs and figure go (default: <out>/results)")
    p.add_argument("--tasks", nargs="+", default=list(MINI_MT), help="MT30 tasks (default: the mini-MT set)")
    p.add_argument(
        "--policy-tasks", nargs="+", help="tasks to extract policies for (default: --tasks; the model sees all)"
    )
    p.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    p.add_argument("--collect-steps", type=int, default=50_000, help="SAC agent steps per task")
    p.add_argument("--random-steps", type=int, default=2_500, help="uniform-random steps before SAC learns")
    p.add_argument("--collect-args", default="", help="extra scripts/collect_mt_data.py flags")
    p.add_argument("--wm-steps", type=int, default=10_000, help="world-model gradient steps")
    p.add_argument("--wm-size", type=int, default=1, help="TD-MPC2 size preset (cfg/world_model/<N>M.yaml)")
    p.add_argument("--wm-dims", default=SMALL_WM, help="dims over the preset ('' keeps the preset's)")
    p.add_argument("--wm-args", default="tdmpc2.batch_size=128", help="extra train_world_model.py overrides")
    p.add_argument("--pwm-steps", type=int, default=500, help="PWM iterations per task x seed")
    p.add_argument("--evals", type=int, default=5, help="PWM evaluations per run (plus the one at step 0)")
    p.add_argument("--eval-runs", type=int, default=5, help="episodes per evaluation (PWM and each planner)")
    p.add_argument(
        "--pwm-args", default="alg.batch_size=128 alg.critic_iterations=4", help="extra train_multitask.py overrides"
    )
    p.add_argument("--threads", type=int, default=1, help="torch threads per run")
    p.add_argument("--jobs", type=int, default=1, help="policy runs at once (each resumes on its own)")
    p.add_argument("--reps", type=int, default=2000, help="bootstrap resamples")
    p.add_argument("--dry-run", action="store_true", help="print each stage's command, run nothing")
    return p.parse_args(argv)


def _dims(args: argparse.Namespace, prefix: str) -> list[str]:
    return [f"{prefix}{kv}" for kv in shlex.split(args.wm_dims)]


def _run(args: argparse.Namespace, cmd: list[str]) -> None:
    print(f"run: {shlex.join(cmd)}", flush=True)
    if not args.dry_run:
        subprocess.run(cmd, check=True, cwd=ROOT)


def data_dir(args: argparse.Namespace) -> Path:
    return Path(args.out).resolve() / "data"


def collect(args: argparse.Namespace) -> None:
    manifest = data_dir(args) / "manifest.json"
    if manifest.is_file() and set(args.tasks) <= set(json.loads(manifest.read_text())["tasks"]):
        print("skip collection: every task is in the manifest", flush=True)
        return
    _run(args, [
        sys.executable, str(ROOT / "scripts" / "collect_mt_data.py"), "--out", str(data_dir(args)),
        "--tasks", *args.tasks, "--steps", str(args.collect_steps), "--random-steps", str(args.random_steps),
        *shlex.split(args.collect_args),
    ])  # fmt: skip


def world_model(args: argparse.Namespace) -> Path:
    """Train (or resume) the world model; the path of its final export."""
    run_dir = Path(args.out).resolve() / "world_model"
    final = run_dir / "models" / f"{args.wm_steps}.pt"
    if final.is_file():
        print(f"skip world model: {final} exists", flush=True)
        return final
    _run(args, [
        sys.executable, str(ROOT / "scripts" / "train_world_model.py"), "task=mt30", "tdmpc2=pwm",
        f"world_model={args.wm_size}M", *_dims(args, "world_model."), f"general.data_dir={data_dir(args)}",
        f"general.run_dir={run_dir}", f"general.steps={args.wm_steps}", f"general.threads={args.threads}",
        f"general.save_every={max(1, args.wm_steps // 10)}", "logger.wandb=false", "logger.progress=false",
        *shlex.split(args.wm_args),
    ])  # fmt: skip
    return final


def policy(args: argparse.Namespace, checkpoint: Path, task: str, seed: int) -> None:
    run_dir = Path(args.out).resolve() / "policies" / task / f"seed{seed}"
    marker = run_dir / MARKER
    if marker.is_file() and json.loads(marker.read_text()).get("steps") == args.pwm_steps:
        print(f"skip {task} seed {seed}: finished", flush=True)
        return
    every = max(1, args.pwm_steps // args.evals)
    cmd = [
        sys.executable, str(ROOT / "scripts" / "train_multitask.py"), "-cn", "config_mt30", f"alg=pwm_{args.wm_size}M",
        *_dims(args, "alg.world_model."), f"task={task}", f"seed={seed}", f"general.data_dir={data_dir(args)}",
        f"general.checkpoint={checkpoint}", f"general.run_dir={run_dir}", f"general.steps={args.pwm_steps}",
        f"general.eval_every={every}", f"general.save_every={every}", f"general.eval_runs={args.eval_runs}",
        f"general.threads={args.threads}", "eval.planning=true", "eval.prior=both", "eval.model_errors=true",
        "logger.wandb=false",
        "logger.progress=false", *shlex.split(args.pwm_args),
    ]  # fmt: skip
    _run(args, cmd)
    if not args.dry_run:
        marker.write_text(json.dumps({"steps": args.pwm_steps, "command": cmd}))


def policy_tasks(args: argparse.Namespace) -> list[str]:
    tasks = args.policy_tasks or args.tasks
    if not set(tasks) <= set(args.tasks):
        raise SystemExit(f"error: --policy-tasks {' '.join(sorted(set(tasks) - set(args.tasks)))} not in --tasks")
    return tasks


def results_dir(args: argparse.Namespace) -> Path:
    return Path(args.results).resolve() if args.results else Path(args.out).resolve() / "results"


def aggregate(args: argparse.Namespace) -> None:
    out = results_dir(args)
    _run(args, [
        sys.executable, str(ROOT / "scripts" / "aggregate_results.py"), str(Path(args.out).resolve() / "policies"),
        "--normalise-by", str(data_dir(args) / "manifest.json"), "--per-task", "--csv", str(out),
        "--plot", str(out / "multitask_evidence.png"), "--reps", str(args.reps),
    ])  # fmt: skip


def model_quality(args: argparse.Namespace, checkpoint: Path) -> None:
    """World-model errors per task and data part, printed and written to ``<results>/wm_quality.csv``."""
    import dataclasses

    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from pwm.checkpoint.tdmpc2_load import load_into
    from pwm.config import register_configs
    from pwm.data.dataset import open_dataset
    from pwm.data.tasks import MT30
    from pwm.evaluation.mt_tables import write_csv
    from pwm.evaluation.wm_quality import model_errors
    from pwm.models.world_model import WorldModel

    register_configs()
    with initialize_config_dir(config_dir=str(ROOT / "cfg"), version_base="1.3"):
        cfg = compose("train_world_model", overrides=[f"world_model={args.wm_size}M", *_dims(args, "world_model.")])
    model = WorldModel(OmegaConf.to_object(cfg.world_model))
    load_into(model, checkpoint)
    dataset = open_dataset(data_dir(args), "mt30")
    rows = []
    for task in args.tasks:
        for e in model_errors(model, dataset, task, MT30.index(task), horizon=16, gamma=0.99):
            rows.append({k: round(v, 5) if isinstance(v, float) else v for k, v in dataclasses.asdict(e).items()})
            print(", ".join(f"{k}={v}" for k, v in rows[-1].items()), flush=True)
    print(f"wrote {write_csv(results_dir(args) / 'wm_quality.csv', rows)}", flush=True)
    policy_rows = []
    for task in policy_tasks(args):
        for seed in args.seeds:
            path = Path(args.out).resolve() / "policies" / task / f"seed{seed}" / "model_errors.json"
            if path.is_file():
                values = json.loads(path.read_text())
                policy_rows.append({"task": task, "seed": seed, **{k: round(v, 5) for k, v in values.items()}})
    if policy_rows:
        print(f"wrote {write_csv(results_dir(args) / 'policy_model_errors.csv', policy_rows)}", flush=True)


def main(argv=None) -> int:
    args = parse_args(argv)
    tasks = policy_tasks(args)
    collect(args)
    checkpoint = world_model(args)
    runs = [(task, seed) for seed in args.seeds for task in tasks]  # seed-major: a stopped run has whole seeds
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:  # threads only wait for subprocesses
        for done in [pool.submit(policy, args, checkpoint, task, seed) for task, seed in runs]:
            done.result()
    aggregate(args)
    if not args.dry_run:
        model_quality(args, checkpoint)
    return 0


if __name__ == "__main__":
    sys.exit(main())
