"""Extract a PWM policy for one MT30/MT80 task from a frozen multitask world model (resumable).

    python scripts/train_multitask.py -cn config_mt30 alg=pwm_48M task=cartpole-swingup \
        general.data_dir=<dir of chunk_*.pt> general.checkpoint=<mt30-48M.pt>
    python scripts/train_multitask.py -cn config_mt80 -m task=walker-walk,mw-assembly seed=1,2,3 \
        hydra/launcher=slurm ...   # one job per task x seed (see scripts/mt30.bash, scripts/mt80.bash)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from pwm.checkpoint.run_state import RunStateError
from pwm.checkpoint.tdmpc2_layouts import CheckpointError
from pwm.config import ConfigError, MultitaskConfig, register_configs
from pwm.data.dataset import DatasetError
from pwm.training.multitask import MultitaskRun
from pwm.utils.perf import tune_cpu_allocator

register_configs()


@hydra.main(config_path="../cfg", config_name="config_mt30", version_base="1.3")
def main(dict_cfg: DictConfig) -> None:
    cfg: MultitaskConfig = OmegaConf.to_object(dict_cfg)
    run_dir = Path(cfg.general.run_dir) if cfg.general.run_dir else Path(HydraConfig.get().runtime.output_dir)
    tune_cpu_allocator()
    try:
        metrics = MultitaskRun(cfg, run_dir).run()
    except (ConfigError, DatasetError, CheckpointError, RunStateError, KeyError, ImportError) as err:
        message = f"error: {err.args[0] if err.args else err}"
        if HydraConfig.get().mode == RunMode.MULTIRUN:  # let the sweep's other jobs run; Hydra reports this one
            raise RuntimeError(message) from None
        sys.exit(message)
    summary = (
        ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()) or "already finished (resumed at the last iteration)"
    )
    print(f"done: {cfg.task} seed {cfg.seed}: {summary}")


if __name__ == "__main__":
    main()
