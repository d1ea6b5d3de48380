"""Learning evidence on the robots: {PWM, SHAC, PPO} x {Hopper, Ant} x seeds at one env-step budget, then PWM's
table (PPO-normalised max-IQM, 95% CIs) and the curves figure from the run files.

Every run is a subprocess of ``scripts/train_dflex.py`` (PWM, SHAC) or ``benchmarks/sb3_baseline.py`` (PPO on the
batched SB3 VecEnv) writing into ``<out>/<task>/<alg>/<seed>``. Both resume when rerun, so rerunning this command
after an interruption continues each unfinished run; a run that finished (marker ``benchmark_done.json`` holding
its step count) is skipped. Per seed, SHAC runs first with ``alg.save_data=true`` and PWM pretrains its world model
on that run's ``episodes.pt`` (PWM's recipe on the robots); PWM's budget does not count the SHAC data it pretrains on.
Every PWM/SHAC run gets ``scale=cpu`` (``cfg/alg_env/<alg>_<env>_cpu.yaml``: PWM's world model 8x smaller, 10k
pretraining steps) unless ``--paper`` (the paper's sizes and pretraining steps: Hopper 50k, Ant 100k).

The budget is in env steps: PWM and SHAC get ``ceil(env_steps / (alg.horizon x num_envs))`` iterations, PPO gets
the env steps themselves. ``--paper`` keeps the reference's iteration counts and env counts instead (PWM 15000,
SHAC 2000, num_envs from ``cfg/env``; for a GPU) and gives PPO as many env steps as PWM gets. Evaluation: the
deterministic policy on ``--eval-runs`` episodes, ``--evals`` times per run.

    nice -n 10 python benchmarks/dflex_learning.py --out runs/dflex_learning            # CPU: 1M env steps a run
    python benchmarks/dflex_learning.py --out runs/paper --paper --device cuda
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import subprocess
import sys
from pathlib import Path

from hydra import compose, initialize_config_dir

from pwm.config import register_configs

ROOT = Path(__file__).resolve().parents[1]
MARKER = "benchmark_done.json"
ALGS = ("shac", "pwm", "ppo")  # this order: PWM pretrains on SHAC's data


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="folder of runs (and of the table and figure)")
    p.add_argument("--tasks", nargs="+", default=["hopper", "ant"], help="dflex tasks, without the dflex_ prefix")
    p.add_argument("--algs", nargs="+", choices=ALGS, default=list(ALGS))
    p.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    p.add_argument("--env-steps", type=int, default=1_000_000, help="env steps per run")
    p.add_argument("--paper", action="store_true", help="the reference's iteration and env counts (GPU budgets)")
    p.add_argument(
        "--pretrain-steps",
        type=int,
        default=None,
        help="PWM world-model steps on SHAC's data (default: the config's; 0: none)",
    )
    p.add_argument("--evals", type=int, default=20, help="evaluations per run")
    p.add_argument("--eval-runs", type=int, default=12, help="episodes per evaluation (general.eval_runs)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--hydra-args", default="", help="Hydra overrides for every PWM/SHAC run (env.config.* too)")
    p.add_argument("--shac-args", default="", help="Hydra overrides for SHAC runs")
    p.add_argument(
        "--shac-preset",
        default="shac_original",
        choices=("shac_original", "shac"),
        help="SHAC config: the original SHAC behind the published SHAC curves, or PWM's repository variant",
    )
    p.add_argument("--pwm-args", default="", help="Hydra overrides for PWM runs")
    p.add_argument("--ppo-args", default="", help="extra benchmarks/sb3_baseline.py flags for PPO runs")
    p.add_argument("--reps", type=int, default=2000, help="bootstrap resamples for the table and figure")
    p.add_argument("--dry-run", action="store_true", help="print each run's command and step count, run nothing")
    return p.parse_args(argv)


def _compose(env: str, alg: str, overrides: list[str]):
    register_configs()
    with initialize_config_dir(config_dir=str(ROOT / "cfg"), version_base="1.3"):
        return compose(config_name="config_dflex", overrides=[f"env={env}", f"alg={alg}", *overrides])


def preset(args: argparse.Namespace, alg: str) -> str:
    """The ``alg=`` config group entry a benchmark algorithm runs with."""
    return args.shac_preset if alg == "shac" else alg


def hydra_overrides(args: argparse.Namespace, alg: str) -> list[str]:
    scale = [] if args.paper else ["scale=cpu"]
    return [*scale, *shlex.split(args.hydra_args), *shlex.split(getattr(args, f"{alg}_args"))]


def budget(args: argparse.Namespace, env: str, alg: str) -> tuple[int, int]:
    """(iterations or env steps the run is given, env steps between evaluations) for one task and algorithm."""
    if alg == "ppo":
        steps = budget(args, env, "pwm")[0] * _steps_per_iteration(env, "pwm", args) if args.paper else args.env_steps
        return steps, max(1, steps // args.evals)
    cfg = _compose(env, preset(args, alg), hydra_overrides(args, alg))
    per_iteration = _steps_per_iteration(env, alg, args)
    steps = int(cfg.general.steps) if args.paper else math.ceil(args.env_steps / per_iteration)
    return steps, max(1, steps // args.evals)


def _steps_per_iteration(env: str, alg: str, args: argparse.Namespace) -> int:
    cfg = _compose(env, preset(args, alg), hydra_overrides(args, alg))
    return int(cfg.alg.horizon) * int(cfg.env.config.num_envs)


def command(args: argparse.Namespace, env: str, alg: str, seed: int, run_dir: Path) -> tuple[list[str], int]:
    """The command line of one run and the step count its marker records."""
    steps, every = budget(args, env, alg)
    if alg == "ppo":
        cfg = _compose(env, "shac", shlex.split(args.hydra_args))  # PPO trains on the same env settings
        return [
            sys.executable, str(ROOT / "benchmarks" / "sb3_baseline.py"), "--env", env, "--algo", "ppo",
            "--steps", str(steps), "--eval-every", str(every), "--eval-runs", str(args.eval_runs),
            "--seed", str(seed), "--num-envs", str(cfg.env.config.num_envs),
            "--episode-length", str(cfg.env.config.episode_length), "--device", args.device,
            "--threads", str(args.threads), "--out", str(run_dir), *shlex.split(args.ppo_args),
        ], steps  # fmt: skip
    reference = int(_compose(env, preset(args, alg), hydra_overrides(args, alg)).general.steps)
    cmd = [
        sys.executable, str(ROOT / "scripts" / "train_dflex.py"), f"env={env}", f"alg={preset(args, alg)}",
        f"seed={seed}", f"alg.max_iterations={reference}",  # the reference's LR schedule, however short the run
        f"general.run_dir={run_dir}", f"general.steps={steps}", f"general.eval_every={every}",
        f"general.eval_runs={args.eval_runs}", f"general.device={args.device}", f"general.threads={args.threads}",
        "logger.wandb=false", "logger.progress=false", *hydra_overrides(args, alg),
    ]  # fmt: skip
    pretrain = args.pretrain_steps != 0 and "pwm" in args.algs
    if alg == "shac" and pretrain:
        cmd.append("alg.save_data=true")
    if alg == "pwm" and pretrain:
        cmd.append(f"general.pretrain={run_dir.parent.parent / 'shac' / str(seed) / 'episodes.pt'}")
        if args.pretrain_steps is not None:
            cmd.append(f"general.pretrain_steps={args.pretrain_steps}")
    return cmd, steps


def run_one(args: argparse.Namespace, env: str, alg: str, seed: int) -> None:
    """Run (or resume) one run unless its marker says it finished with the same step count."""
    run_dir = Path(args.out).resolve() / env / alg / str(seed)
    cmd, steps = command(args, env, alg, seed, run_dir)
    marker = run_dir / MARKER
    if marker.is_file() and json.loads(marker.read_text()).get("steps") == steps:
        print(f"skip {env} {alg} seed {seed}: finished", flush=True)
        return
    print(f"run {env} {alg} seed {seed} ({steps} {'env steps' if alg == 'ppo' else 'iterations'}): "
          f"{shlex.join(cmd)}", flush=True)  # fmt: skip
    if args.dry_run:
        return
    subprocess.run(cmd, check=True, cwd=ROOT)
    marker.write_text(json.dumps({"steps": steps, "command": cmd}))


def main(argv=None) -> int:
    args = parse_args(argv)
    if "pwm" in args.algs and args.pretrain_steps != 0 and "shac" not in args.algs:
        print("error: PWM pretrains on SHAC's data: add shac to --algs or pass --pretrain-steps 0", file=sys.stderr)
        return 1
    for task in args.tasks:
        for seed in args.seeds:
            for alg in (a for a in ALGS if a in args.algs):
                run_one(args, f"dflex_{task}", alg, seed)
    if args.dry_run:
        return 0
    plot = [sys.executable, str(ROOT / "scripts" / "plot_dflex.py"), args.out, "--reps", str(args.reps)]
    return subprocess.run([*plot, "--out", str(Path(args.out) / "curves.png")], cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main())
