"""Offline world-model training: sample windows of the dataset, one TD-MPC2 update per step (multi-GPU under
torchrun), and an official-layout export of the model with every run state. The loop is ``pwm.training.loop``."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from pwm.algorithms.tdmpc2 import TDMPC2
from pwm.checkpoint.tdmpc2_save import save_official
from pwm.config import ConfigError, TrainWorldModelConfig, WorldModelConfig
from pwm.data.batch import SequenceBatch
from pwm.data.buffer import DatasetSampler
from pwm.data.dataset import OfflineDataset, open_dataset
from pwm.data.tasks import TASK_SETS, get_task
from pwm.models.world_model import WorldModel
from pwm.training import loop
from pwm.utils import distributed


def dataset_task_set(task: str) -> str:
    """The multitask layout the data of ``task`` is stored in: its own set, or MT30/MT80 for a single task."""
    if task in TASK_SETS:
        return task
    get_task(task)  # validates the name
    return "mt30" if task in TASK_SETS["mt30"].names else "mt80"


def build_world_model_config(cfg: TrainWorldModelConfig) -> WorldModelConfig:
    """The run's model config with its task (set); :class:`WorldModel` derives the remaining dims from it."""
    return dataclasses.replace(cfg.world_model, task=cfg.task)


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


class WorldModelRun(loop.Runner):
    """TD-MPC2 world-model training on an offline dataset; each rank of a data-parallel run samples its own stream."""

    def __init__(self, cfg: TrainWorldModelConfig, run_dir: Path) -> None:
        cfg.check()
        self.cfg, self.general, self.logger_cfg, self.run_dir = cfg, cfg.general, cfg.logger, Path(run_dir)
        use_cuda = torch.cuda.is_available() and cfg.general.device != "cpu"
        self.dist = distributed.init_distributed("cuda" if use_cuda else None)
        self.is_main, self.name = self.dist.is_main, self.run_dir.name
        self.save_on_time_clock = not self.dist.enabled  # every rank must take part in a save
        device = loop.start_up(cfg.general, cfg.seed, self.dist.local_rank)
        model = WorldModel(build_world_model_config(cfg)).to(device)
        wm_cfg = model.cfg
        data_dir = cfg.general.data_dir
        dataset = open_dataset(data_dir, dataset_task_set(cfg.task), cache_dir=cfg.general.cache_dir)
        if dataset.obs_dim != (wm_cfg.obs_dim if wm_cfg.multitask else dataset.obs_dim):
            raise ConfigError(
                f"general.data_dir={data_dir} has obs dim {dataset.obs_dim}, the model expects {wm_cfg.obs_dim}"
            )
        self.algo = TDMPC2(model, cfg.tdmpc2, cfg.general.precision)
        self.sampler = make_sampler(cfg, wm_cfg, dataset, cfg.seed + 1000 * self.dist.rank, device)
        if self.dist.enabled:
            distributed.broadcast_module(self.algo.model)
            self.algo.grad_sync = distributed.average_gradients
        self.components = {"algo": self.algo, "sampler": self.sampler}
        self.config = dataclasses.asdict(cfg)

    def train_step(self) -> dict[str, float]:
        metrics = self.algo.update(self.sampler.sample())
        if self.dist.enabled:
            distributed.average_tensor_(self.algo.scale.value)
        return metrics

    def postfix(self, row: dict[str, Any]) -> dict[str, str]:
        return {"consistency": f"{row.get('wm/consistency_loss', float('nan')):.4f}",
                "reward": f"{row.get('wm/reward_loss', float('nan')):.3f}"}  # fmt: skip

    def checkpoint_extra(self) -> dict[str, Any]:
        if not self.dist.enabled:
            return {}
        states = [None] * self.dist.world_size  # collective: every rank takes part
        torch.distributed.all_gather_object(states, self.sampler.state_dict())
        return {"rank_samplers": dict(enumerate(states))}

    def restore(self, extra: dict[str, Any]) -> None:
        rank_states = extra.get("rank_samplers", {})
        if self.dist.enabled and self.dist.rank in rank_states:  # each rank continues its own sampler stream
            self.sampler.load_state_dict(rank_states[self.dist.rank])

    def after_save(self, step: int) -> None:
        """Export the model in the official layout and keep the newest ``general.keep_checkpoints`` exports."""
        models = self.run_dir / "models"
        save_official(self.algo.model, models / f"{step}.pt", layout="released")
        exports = sorted((p for p in models.glob("*.pt") if p.stem.isdigit()), key=lambda p: int(p.stem))
        for old in exports[: -self.general.keep_checkpoints]:
            old.unlink(missing_ok=True)

    def partial_write_dirs(self) -> list[Path]:
        return [self.run_dir / "models"]


def train_world_model(cfg: TrainWorldModelConfig, run_dir: str | Path) -> dict[str, Any]:
    """Train (or resume) a world model; return the last metric row."""
    try:
        return loop.run(WorldModelRun(cfg, Path(run_dir)))
    finally:
        distributed.cleanup()
