"""Train a TD-MPC2 world model offline on a dataset in the official layout (resumable, multi-GPU via torchrun).

    python scripts/train_world_model.py task=mt30 data_dir=data/mt30 world_model=48M steps=100000
    torchrun --nproc_per_node=4 scripts/train_world_model.py task=mt80 data_dir=... world_model=317M

Rerunning with the same ``run_dir=`` continues from its newest checkpoint.
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from pwm.checkpoint.run_state import RunStateError
from pwm.checkpoint.tdmpc2_layouts import CheckpointError
from pwm.config import ConfigError, TrainWorldModelConfig, register_configs
from pwm.data.dataset import DatasetError
from pwm.training.world_model import TrainingError, train_world_model
from pwm.utils.perf import tune_cpu_allocator

register_configs()


@hydra.main(config_path="../cfg", config_name="train_world_model", version_base="1.3")
def main(dict_cfg: DictConfig) -> None:
    cfg: TrainWorldModelConfig = OmegaConf.to_object(dict_cfg)
    run_dir = Path(cfg.run_dir) if cfg.run_dir else Path(HydraConfig.get().runtime.output_dir)
    tune_cpu_allocator()
    try:
        metrics = train_world_model(cfg, run_dir)
    except (ConfigError, DatasetError, CheckpointError, RunStateError, TrainingError, KeyError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        sys.exit(f"error: {message}")
    if metrics:
        summary = ", ".join(f"{k}={v:.4g}" for k, v in metrics.items() if k.startswith("wm/") and "loss" in k)
        print(f"done: step {metrics['step']} in {run_dir}: {summary}")


if __name__ == "__main__":
    main()
