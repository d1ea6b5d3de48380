"""Does bf16 fit CartPole's world model like fp32? Offline fits on one PWM run's replay buffer.

    python benchmarks/bf16_wm_fit.py runs/bf16_cartpole/fp32/7 --steps 2000 --seeds 1 2 3

Loads a dflex PWM run state (``alg.wm_loss=tdmpc2``; a run directory means its last one), takes its replay
buffer, and for each seed trains a fresh world model (the run's sizes and settings, TD-MPC2's losses,
``alg.wm_batch_size`` × ``alg.wm_horizon`` windows) for ``--steps`` updates in each variant, on the same batches in
every variant. Each fitted model is then scored on ``--eval-batches`` fixed batches (their own sampler seed) with an
fp32 forward pass, so the table compares what training in each precision learned, not how a forward pass rounds.
The variants: ``fp32``, ``bf16`` (``general.precision=bf16`` as the trainer runs it) and ``bf16, reward fp32`` (the
reward head held in fp32 as well), which tests whether the reward head's bf16 matmuls are what bf16 changes.
Prints one row per variant and seed and the mean per variant; ``--csv`` writes the rows.
"""

from __future__ import annotations

import argparse
import csv
import statistics
from pathlib import Path

import torch
from omegaconf import OmegaConf

from pwm.algorithms.pwm_single_task import SingleTaskPWM
from pwm.checkpoint.run_state import RunStateError, read_run_state
from pwm.config import ConfigError, PWMConfig
from pwm.data.buffer import ReplayBuffer
from pwm.losses.world_model import td_targets, world_model_loss
from pwm.training.dflex import typed_config
from pwm.utils.precision import fp32

VARIANTS = ("fp32", "bf16", "bf16, reward fp32")
LOSSES = ("reward_loss", "consistency_loss", "value_loss")


def load_run(path: Path) -> tuple[PWMConfig, dict, int]:
    """The run's PWM config (parsed as a resume would), its replay buffer's state and its episode length."""
    if path.is_dir():
        states = sorted((path / "checkpoints").glob("state_*.pt"))
        if not states:
            raise SystemExit(f"error: {path} has no run states in checkpoints/")
        path = states[-1]
    print(f"run state: {path}")
    try:
        state = read_run_state(path)
        cfg = typed_config(OmegaConf.create(state["config"]))
    except (RunStateError, ConfigError) as err:
        raise SystemExit(f"error: {err}") from None
    if cfg.alg.name != "pwm" or cfg.alg.wm_loss != "tdmpc2":
        raise SystemExit(f"error: {path} is not a PWM run with alg.wm_loss=tdmpc2; this compares TD-MPC2 fits")
    return cfg.alg, state["components"]["replay"], cfg.env.config["episode_length"]


def make_buffer(cfg: PWMConfig, replay: dict, episode_length: int, seed: int) -> ReplayBuffer:
    buffer = ReplayBuffer(cfg.buffer_size, cfg.wm_batch_size, cfg.wm_horizon, max_episode_length=episode_length)
    buffer.load_state_dict(replay)
    buffer.generator.manual_seed(seed)  # the same batches in every variant of one seed
    return buffer


def fit(cfg: PWMConfig, buffer: ReplayBuffer, variant: str, seed: int, steps: int) -> SingleTaskPWM:
    batch = buffer.sample()
    torch.manual_seed(seed)
    algo = SingleTaskPWM(batch.obs.shape[-1], batch.action.shape[-1], cfg, precision=variant.split(",")[0])
    if variant == "bf16, reward fp32":
        algo.wm._reward.forward = fp32(algo.wm._reward.forward)
    buffer.generator.manual_seed(seed)
    for _ in range(steps):
        algo.wm_trainer.update(buffer.sample())
    return algo


@torch.no_grad()
def score(algo: SingleTaskPWM, batches: list) -> dict[str, float]:
    """Mean fp32 losses over the fixed batches, with the trainer's own TD-MPC2 settings and discount."""
    wm, trainer = algo.wm.eval(), algo.wm_trainer
    totals = dict.fromkeys(LOSSES, 0.0)
    for batch in batches:
        torch.manual_seed(0)  # the two Q members td_targets draws
        next_z = wm.encode(batch.obs[1:])
        td = td_targets(wm, next_z, batch.reward, None, trainer.discount[0], 1.0 - batch.terminated)
        _, metrics, _ = world_model_loss(wm, batch, next_z, td, trainer.cfg)
        for key in LOSSES:
            totals[key] += float(metrics[key]) / len(batches)
    return totals


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", type=Path, help="a dflex PWM run state, or a run directory (its last state)")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--eval-batches", type=int, default=20)
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--csv", type=Path)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    cfg, replay, episode_length = load_run(args.run)
    held_out = make_buffer(cfg, replay, episode_length, seed=12345)
    batches = [held_out.sample() for _ in range(args.eval_batches)]
    rows = []
    for seed in args.seeds:
        for variant in args.variants:
            algo = fit(cfg, make_buffer(cfg, replay, episode_length, seed), variant, seed, args.steps)
            rows.append({"variant": variant, "seed": seed, **score(algo, batches)})
            print("  ".join(f"{k}={v:.5g}" if isinstance(v, float) else f"{k}={v}" for k, v in rows[-1].items()))
    for variant in args.variants:
        mine = [r for r in rows if r["variant"] == variant]
        means = "  ".join(f"{k}={statistics.mean(r[k] for r in mine):.5g}" for k in LOSSES)
        print(f"mean {variant}: {means}")
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)


if __name__ == "__main__":
    main()
