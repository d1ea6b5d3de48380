"""Offline world-model training loop: sample windows, update, log, checkpoint, resume.

The loop is resumable: rerunning with the same run directory restores the model, optimisers, value scale,
sampler stream and RNG states from the newest run state and continues, so an interrupted run reproduces the
losses of an uninterrupted one (CPU, fixed seed).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import torch
from tqdm import tqdm

from pwm.algorithms.tdmpc2 import TDMPC2, NonFiniteLossError
from pwm.checkpoint.run_state import CheckpointDir, load_run_state
from pwm.checkpoint.tdmpc2_save import save_official
from pwm.config import ConfigError, TrainWorldModelConfig, WorldModelConfig, resolve_world_model
from pwm.data.batch import SequenceBatch
from pwm.data.buffer import DatasetSampler
from pwm.data.dataset import OfflineDataset, open_dataset
from pwm.data.tasks import TASK_SETS, get_task
from pwm.models.world_model import WorldModel
from pwm.utils import distributed
from pwm.utils.device import resolve_device
from pwm.utils.logging import MetricLogger
from pwm.utils.seeding import seed_everything

# Keys that may change between an interrupted run and its resumption.
RESUME_IGNORES = ("steps", "run_dir", "data_dir", "logger", "device", "threads", "checkpoint_every")


class TrainingError(RuntimeError):
    """Training cannot go on (non-finite loss, unusable data); the message is one line."""


def dataset_task_set(task: str) -> str:
    """The multitask layout the data of ``task`` is stored in: its own set, or MT30/MT80 for a single task."""
    if task in TASK_SETS:
        return task
    get_task(task)  # validates the name
    return "mt30" if task in TASK_SETS["mt30"].names else "mt80"


def build_world_model_config(cfg: TrainWorldModelConfig) -> WorldModelConfig:
    return resolve_world_model(dataclasses.replace(cfg.world_model, task=cfg.task))


class SingleTaskView:
    """Slices a multitask batch down to one task's own obs/action dims and drops the task ids."""

    def __init__(self, sampler: DatasetSampler, obs_dim: int, action_dim: int) -> None:
        self.sampler, self.obs_dim, self.action_dim = sampler, obs_dim, action_dim

    def sample(self) -> SequenceBatch:
        b = self.sampler.sample()
        return SequenceBatch(b.obs[..., : self.obs_dim], b.action[..., : self.action_dim], b.reward, None)

    def state_dict(self) -> dict:
        return self.sampler.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.sampler.load_state_dict(state)


def make_sampler(cfg: TrainWorldModelConfig, wm: WorldModelConfig, dataset: OfflineDataset, seed: int, device):
    if wm.multitask:
        return DatasetSampler(dataset, cfg.tdmpc2.batch_size, cfg.tdmpc2.horizon, seed=seed, device=device)
    sampler = DatasetSampler(
        dataset, cfg.tdmpc2.batch_size, cfg.tdmpc2.horizon, seed=seed, task=cfg.task, device=device
    )
    return SingleTaskView(sampler, wm.obs_dim, wm.action_dim)


def train_world_model(cfg: TrainWorldModelConfig, run_dir: str | Path) -> dict[str, float]:
    """Train (or resume) a world model; return the last logged metrics."""
    cfg.check()
    run_dir = Path(run_dir)
    dist_info = distributed.init_distributed("cuda" if torch.cuda.is_available() and cfg.device != "cpu" else None)
    device = resolve_device(cfg.device, dist_info.local_rank)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    seed_everything(cfg.seed)
    wm_cfg = build_world_model_config(cfg)
    dataset = open_dataset(cfg.data_dir, dataset_task_set(cfg.task), cache_dir=None)
    if dataset.obs_dim != (wm_cfg.obs_dim if wm_cfg.multitask else dataset.obs_dim):
        raise ConfigError(f"data_dir={cfg.data_dir} has obs dim {dataset.obs_dim}, the model expects {wm_cfg.obs_dim}")
    model = WorldModel(wm_cfg).to(device)
    algo = TDMPC2(model, cfg.tdmpc2)
    sampler = make_sampler(cfg, wm_cfg, dataset, cfg.seed + 1000 * dist_info.rank, device)
    if dist_info.enabled:
        distributed.broadcast_module(model)
        algo.grad_sync = distributed.average_gradients
    components = {"algo": algo, "sampler": sampler}
    config = dataclasses.asdict(cfg)
    checkpoints = CheckpointDir(run_dir / "checkpoints", keep=cfg.keep_checkpoints)
    step = 0
    latest = checkpoints.latest()
    if latest is not None:
        step, extra = load_run_state(latest, components, config, ignore=RESUME_IGNORES)
        rank_states = extra.get("rank_samplers", {})
        if dist_info.enabled and dist_info.rank in rank_states:  # each rank continues its own sampler stream
            sampler.load_state_dict(rank_states[dist_info.rank])
    logger = MetricLogger(run_dir, cfg.logger, config, name=run_dir.name) if dist_info.is_main else None
    try:
        return _loop(cfg, algo, sampler, components, config, checkpoints, logger, step, dist_info, run_dir)
    finally:
        if logger is not None:
            logger.close()
        distributed.cleanup()


def _loop(cfg, algo, sampler, components, config, checkpoints, logger, step, dist_info, run_dir) -> dict:
    last: dict = {}
    bar = tqdm(total=cfg.steps, initial=step, disable=not (cfg.logger.progress and dist_info.is_main), unit="upd")
    start, start_step = time.perf_counter(), step
    while step < cfg.steps:
        try:
            metrics = algo.update(sampler.sample())
        except NonFiniteLossError as err:
            raise TrainingError(
                f"step {step}: {err}; the last checkpoint in {checkpoints.directory} is intact"
            ) from None
        if dist_info.enabled:
            distributed.average_tensor_(algo.scale.value)
        step += 1
        bar.update(1)
        if logger is not None:
            logger.record(metrics)
        if step % cfg.logger.log_every == 0 or step == cfg.steps:
            rate = (step - start_step) / (time.perf_counter() - start)
            if logger is not None:
                last = logger.dump(step, {"time/updates_per_s": rate})
                bar.set_postfix(
                    consistency=f"{last['wm/consistency_loss']:.4f}", reward=f"{last['wm/reward_loss']:.3f}"
                )
        if step % cfg.checkpoint_every == 0 or step == cfg.steps:
            _save(algo, components, step, config, checkpoints, dist_info, run_dir, sampler)
    bar.close()
    return last


def _save(algo, components, step, config, checkpoints, dist_info, run_dir, sampler) -> None:
    extra = {}
    if dist_info.enabled:
        states = [None] * dist_info.world_size
        torch.distributed.all_gather_object(states, sampler.state_dict())
        extra["rank_samplers"] = dict(enumerate(states))
    if dist_info.is_main:
        checkpoints.save(components, step, config, extra)
        save_official(algo.model, run_dir / "models" / f"{step}.pt", layout="released")
