"""Does bf16 learn like fp32? The README world-model run and the CartPole PWM recipe in both precisions.

    python benchmarks/bf16_learning.py --out runs --results docs/results/bf16              # runs, then tables
    python benchmarks/bf16_learning.py --out runs --results docs/results/bf16 --no-run     # tables from the runs

World model: ``scripts/train_world_model.py task=mt30 general.data_dir=data/demo world_model=1M
general.steps=150`` (the README's run; make ``data/demo`` with the README's make_dataset command), seeds 1-3, into
``<out>/bf16_wm/<precision>_s<seed>``. CartPole: ``scripts/train_dflex.py env=dflex_cartpole alg=pwm`` into
``<out>/bf16_cartpole/<precision>/<seed>`` (``--cartpole-seeds``, about 17 CPU minutes each; none by default).
Rerunning skips finished runs (they resume at their last step). Writes ``wm_loss_curves.csv`` (per step and
precision: mean and min/max over seeds of each loss), ``wm_loss_curves.png``, ``wm_final_eval.csv`` (each
run's final model evaluated on one fixed batch with fp32 and with bf16 forward passes: separates what bf16 does
to a forward pass from what it did to training) and ``cartpole_final.csv`` (per run: the last evaluation's return
and final-second reward; ``cartpole_eval_curves.csv``: every evaluation).

Precision switches (``--switch-seeds``): each seed is run to iteration ``--switch-at`` in one precision and resumed
to 500 in the other (both orders), into ``<out>/bf16_cartpole_switch/<first>_<then>/<seed>``; the LR schedule is
the 500-iteration one throughout, and a seeded CPU run repeats the uninterrupted run exactly up to the switch.
``cartpole_switch.csv`` puts each seed's four runs side by side (fp32 throughout, bf16 throughout, and the two
switches): whether the gap comes from the states bf16 training reaches before the switch or from training after.

A perturbed fp32 control (``--perturbed-seeds``): the recipe in fp32 with the actor's learning rate 1e-4 higher
(relative), far below any difference a learning rate is tuned by, into ``<out>/bf16_cartpole_perturbed/<seed>``.
Like bf16, it leaves the unperturbed fp32 run's trajectory within the first evaluations; it asks how often fp32 runs
end balanced once they do. ``cartpole_perturbed.csv``: each run's last evaluation, the mean final-second reward of
its last five and ten, and its critic loss and targets at iteration 75 and world-model losses at 300.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOSSES = ("wm/consistency_loss", "wm/reward_loss", "wm/value_loss", "wm/loss")
CARTPOLE_ITERATIONS = 500  # the recipe's run length (cfg/alg_env/pwm_dflex_cartpole.yaml)
COMMON = ["general.threads=1", "logger.progress=false", "logger.wandb=false"]
PERTURBED_ACTOR_LR = "1.0001e-3"  # the recipe's 1e-3 (cfg/alg_env/pwm_dflex_cartpole.yaml), 1e-4 higher


def run(cmd: list[str]) -> None:
    """Run one training command; a failed run ends the benchmark with a one-line error (its own output says why)."""
    done = subprocess.run(cmd)
    if done.returncode != 0:
        sys.exit(f"error: {' '.join(cmd[1:])} exited with {done.returncode}")


def run_world_models(out: Path, data_dir: str, seeds: list[int], precisions: list[str]) -> None:
    for precision in precisions:
        for seed in seeds:
            run([
                sys.executable, str(ROOT / "scripts" / "train_world_model.py"), "task=mt30",
                f"general.data_dir={data_dir}", "world_model=1M", "general.steps=150",
                f"general.run_dir={out / 'bf16_wm' / f'{precision}_s{seed}'}", f"seed={seed}",
                "logger.log_every=10", f"general.precision={precision}", *COMMON,
            ])  # fmt: skip


def cartpole_cmd(run_dir: Path, seed: int, precision: str, *extra: str) -> list[str]:
    """The CartPole PWM recipe, evaluated every 25 iterations, in ``precision``."""
    return [
        sys.executable, str(ROOT / "scripts" / "train_dflex.py"), "env=dflex_cartpole", "alg=pwm", f"seed={seed}",
        f"general.run_dir={run_dir}", "logger.log_every=25", "general.eval_every=25",
        f"general.precision={precision}", *extra, *COMMON,
    ]  # fmt: skip


def run_cartpole(out: Path, seeds: list[int], precisions: list[str]) -> None:
    for seed in seeds:
        for precision in precisions:
            run(cartpole_cmd(out / "bf16_cartpole" / precision / str(seed), seed, precision))


def run_switches(out: Path, seeds: list[int], switch_at: int) -> None:
    """Each seed to ``switch_at`` in one precision, then resumed to the end in the other (both orders)."""
    schedule = f"alg.max_iterations={CARTPOLE_ITERATIONS}"  # the full run's LR decay in both legs
    for seed in seeds:
        for first, then in (("fp32", "bf16"), ("bf16", "fp32")):
            run_dir = out / "bf16_cartpole_switch" / f"{first}_{then}" / str(seed)
            run(cartpole_cmd(run_dir, seed, first, f"general.steps={switch_at}", schedule))
            run(cartpole_cmd(run_dir, seed, then, f"general.steps={CARTPOLE_ITERATIONS}", schedule))


def run_perturbed(out: Path, seeds: list[int]) -> None:
    for seed in seeds:
        run_dir = out / "bf16_cartpole_perturbed" / str(seed)
        run(cartpole_cmd(run_dir, seed, "fp32", f"alg.actor_lr={PERTURBED_ACTOR_LR}"))


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def world_model_table(out: Path, precisions: list[str]) -> list[dict]:
    """Per (precision, step): mean, min and max over seeds of each loss."""
    table = []
    for precision in precisions:
        runs = [read_rows(p / "metrics.csv") for p in sorted((out / "bf16_wm").glob(f"{precision}_s*"))]
        steps = sorted({int(r["step"]) for rows in runs for r in rows})
        for step in steps:
            row: dict = {"precision": precision, "step": step, "seeds": 0}
            for key in LOSSES:
                values = [float(r[key]) for rows in runs for r in rows if int(r["step"]) == step and r.get(key)]
                row["seeds"] = len(values)
                row.update(
                    {f"{key}_mean": statistics.mean(values), f"{key}_min": min(values), f"{key}_max": max(values)}
                )
            table.append(row)
    return table


def plot_world_model(table: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.5))
    for ax, key in zip(axes, LOSSES[:3], strict=False):
        for precision in sorted({r["precision"] for r in table}):
            rows = [r for r in table if r["precision"] == precision]
            steps = [r["step"] for r in rows]
            ax.plot(steps, [r[f"{key}_mean"] for r in rows], label=f"{precision} (mean of {rows[0]['seeds']} seeds)")
            ax.fill_between(steps, [r[f"{key}_min"] for r in rows], [r[f"{key}_max"] for r in rows], alpha=0.25)
        ax.set_title(key)
        ax.set_xlabel("step")
        ax.set_yscale("log")
    axes[0].legend()
    fig.suptitle("README world-model run (mt30 demo data, 1M): min-max band over seeds")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def final_model_table(out: Path, data_dir: str) -> list[dict]:
    """Each world-model run's last state, its losses on one fixed batch (sampler seed 7) in fp32 and in bf16."""
    import torch

    from pwm.algorithms.tdmpc2 import discount_vector
    from pwm.checkpoint.run_state import read_run_state
    from pwm.config import TDMPC2Config, WorldModelConfig
    from pwm.data.buffer import DatasetSampler
    from pwm.data.dataset import open_dataset
    from pwm.losses.world_model import td_targets, world_model_loss
    from pwm.models.world_model import WorldModel

    table = []
    for run in sorted((out / "bf16_wm").glob("*_s*")):
        state = read_run_state(sorted((run / "checkpoints").glob("state_*.pt"))[-1])
        wm = WorldModel(WorldModelConfig(**{**state["config"]["world_model"], "task": "mt30"}))
        wm.load_state_dict(state["components"]["algo"]["model"])
        cfg = TDMPC2Config(**state["config"]["tdmpc2"])
        batch = DatasetSampler(open_dataset(data_dir, "mt30"), 256, cfg.horizon, seed=7).sample()
        discount = discount_vector(wm, cfg)[batch.task]
        for precision in ("fp32", "bf16"):
            torch.manual_seed(1)
            with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                next_z = wm.encode(batch.obs[1:], batch.task)
                td = td_targets(wm, next_z, batch.reward, batch.task, discount, 1.0)
                _, metrics, _ = world_model_loss(wm.eval(), batch, next_z, td, cfg)
            table.append({"run": run.name, "forward": precision, **{k: float(v) for k, v in metrics.items()}})
    return table


def cartpole_table(out: Path) -> list[dict]:
    table = []
    for run in sorted((out / "bf16_cartpole").glob("*/*")):
        rows = (
            [r for r in read_rows(run / "metrics.csv") if r.get("eval/return")]
            if (run / "metrics.csv").is_file()
            else []
        )
        if rows:
            last, best = rows[-1], max(rows, key=lambda r: float(r["eval/return"]))
            table.append({
                "precision": run.parent.name, "seed": run.name, "step": last["step"], "env_steps": last["env_steps"],
                "eval_return": last["eval/return"], "eval_final_reward": last["eval/final_reward"],
                "best_eval_return": best["eval/return"], "train_s": last["time/train_s"],
            })  # fmt: skip
    return table


def cartpole_curves(out: Path) -> list[dict]:
    """Every evaluation of every CartPole run: return and final-second reward against iterations."""
    rows = []
    for run in sorted((out / "bf16_cartpole").glob("*/*")):
        for r in read_rows(run / "metrics.csv") if (run / "metrics.csv").is_file() else []:
            if r.get("eval/return"):
                rows.append({"precision": run.parent.name, "seed": run.name, "step": r["step"],
                             "eval_return": r["eval/return"], "eval_final_reward": r["eval/final_reward"]})  # fmt: skip
    return rows


def finished_run_rows(run_dir: Path) -> list[dict[str, str]]:
    """A CartPole run's metric rows if it reached the recipe's last iteration, else none (unfinished or absent)."""
    path = run_dir / "metrics.csv"
    rows = read_rows(path) if path.is_file() else []
    done = rows and any(int(r["step"]) >= CARTPOLE_ITERATIONS and r.get("eval/return") for r in rows)
    return rows if done else []


def switch_table(out: Path, switch_at: int) -> list[dict]:
    """Per seed with switch runs: the last evaluation and the mean final-second reward of the evaluations after
    ``switch_at``, for fp32 and bf16 throughout and for both switches."""
    table = []
    arms = {"fp32": out / "bf16_cartpole" / "fp32", "bf16": out / "bf16_cartpole" / "bf16"}
    arms.update({p.name: p for p in sorted((out / "bf16_cartpole_switch").glob("*_*"))})
    for seed in sorted({p.name for p in (out / "bf16_cartpole_switch").glob("*/*")}, key=int):
        for arm, root in arms.items():
            rows = finished_run_rows(root / seed)
            evals = [r for r in rows if r.get("eval/return")]
            if not evals:
                continue
            after = [float(r["eval/final_reward"]) for r in evals if int(r["step"]) > switch_at]
            table.append({
                "seed": seed, "precision": arm.replace("_", " then "), "eval_return": evals[-1]["eval/return"],
                "eval_final_reward": evals[-1]["eval/final_reward"],
                f"mean_final_reward_after_{switch_at}": statistics.mean(after),
            })  # fmt: skip
    return table


def perturbed_table(out: Path) -> list[dict]:
    """Per finished perturbed fp32 run: the last evaluation, the mean final-second reward of the last five and ten
    evaluations, and the early metrics the bf16 analysis compared (critic at iteration 75, world model at 300)."""
    table = []
    for run_dir in sorted((out / "bf16_cartpole_perturbed").glob("*"), key=lambda p: int(p.name)):
        rows = finished_run_rows(run_dir)
        evals = [r for r in rows if r.get("eval/return")]
        if not evals:
            continue
        at = {int(r["step"]): r for r in rows}
        table.append({
            "actor_lr": PERTURBED_ACTOR_LR, "seed": run_dir.name, "eval_return": evals[-1]["eval/return"],
            "eval_final_reward": evals[-1]["eval/final_reward"],
            "mean_final_reward_last5": statistics.mean(float(r["eval/final_reward"]) for r in evals[-5:]),
            "mean_final_reward_last10": statistics.mean(float(r["eval/final_reward"]) for r in evals[-10:]),
            "critic_loss_75": at.get(75, {}).get("critic/loss", ""),  # empty where a run logged other steps
            "critic_target_mean_75": at.get(75, {}).get("critic/target_mean", ""),
            "wm_reward_loss_300": at.get(300, {}).get("wm/reward_loss", ""),
            "wm_consistency_loss_300": at.get(300, {}).get("wm/consistency_loss", ""),
        })  # fmt: skip
    return table


def write_csv(rows: list[dict], path: Path) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("runs"))
    p.add_argument("--results", type=Path, default=Path("docs/results/bf16"))
    p.add_argument("--data-dir", default="data/demo")
    p.add_argument("--seeds", type=int, nargs="*", default=[1, 2, 3], help="world-model seeds (none: no world models)")
    p.add_argument("--cartpole-seeds", type=int, nargs="*", default=[])
    p.add_argument("--precision", nargs="+", default=["fp32", "bf16"])
    p.add_argument("--switch-seeds", type=int, nargs="*", default=[], help="CartPole seeds to run with switches")
    p.add_argument("--switch-at", type=int, default=300, help="the iteration at which the precision switches")
    p.add_argument("--perturbed-seeds", type=int, nargs="*", default=[], help="CartPole seeds of the fp32 control")
    p.add_argument("--no-run", action="store_true", help="only tabulate existing runs")
    args = p.parse_args()
    if not 0 < args.switch_at < CARTPOLE_ITERATIONS:
        p.error(f"--switch-at {args.switch_at}: the switch must fall inside the run (1..{CARTPOLE_ITERATIONS - 1})")
    if not args.no_run:
        run_world_models(args.out, args.data_dir, args.seeds, args.precision)
        run_cartpole(args.out, args.cartpole_seeds, args.precision)
        run_switches(args.out, args.switch_seeds, args.switch_at)
        run_perturbed(args.out, args.perturbed_seeds)
    args.results.mkdir(parents=True, exist_ok=True)
    if (args.out / "bf16_wm").is_dir():
        world_model_tables(args)
    cartpole_tables(args)


def world_model_tables(args: argparse.Namespace) -> None:
    table = world_model_table(args.out, args.precision)
    write_csv(table, args.results / "wm_loss_curves.csv")
    plot_world_model(table, args.results / "wm_loss_curves.png")
    for precision in args.precision:
        last = [r for r in table if r["precision"] == precision][-1]
        spread = {k: f"{last[f'{k}_mean']:.4f} [{last[f'{k}_min']:.4f}, {last[f'{k}_max']:.4f}]" for k in LOSSES}
        print(f"world model {precision}, step {last['step']} ({last['seeds']} seeds), mean [min, max]: {spread}")
    final = final_model_table(args.out, args.data_dir)
    write_csv(final, args.results / "wm_final_eval.csv")
    for row in final:
        print(
            f"final model {row['run']}, {row['forward']} forward: "
            + ", ".join(f"{k}={row[k]:.5f}" for k in ("consistency_loss", "reward_loss", "value_loss"))
        )


def cartpole_tables(args: argparse.Namespace) -> None:
    cartpole = cartpole_table(args.out) if (args.out / "bf16_cartpole").is_dir() else []
    if cartpole:
        write_csv(cartpole, args.results / "cartpole_final.csv")
        write_csv(cartpole_curves(args.out), args.results / "cartpole_eval_curves.csv")
        for row in cartpole:
            print(f"cartpole {row}")
    switches = switch_table(args.out, args.switch_at) if (args.out / "bf16_cartpole_switch").is_dir() else []
    if switches:
        write_csv(switches, args.results / "cartpole_switch.csv")
        for row in switches:
            print(f"cartpole switch {row}")
    perturbed = perturbed_table(args.out) if (args.out / "bf16_cartpole_perturbed").is_dir() else []
    if perturbed:
        write_csv(perturbed, args.results / "cartpole_perturbed.csv")
        for row in perturbed:
            print(f"cartpole perturbed fp32 {row}")


if __name__ == "__main__":
    main()
