"""Train PWM or SHAC on one differentiable-simulator task (resumable; CPU or CUDA).

    python scripts/train_dflex.py env=dflex_cartpole alg=shac
    python scripts/train_dflex.py env=dflex_ant alg=pwm general.device=cuda
    python scripts/train_dflex.py env=dflex_hopper alg=shac alg.save_data=true        # make pretraining data
    python scripts/train_dflex.py env=dflex_hopper alg=pwm general.pretrain=<run>/episodes.pt \
        general.pretrain_steps=50000
    python scripts/train_dflex.py -m env=dflex_cartpole alg=pwm,shac seed=1,2,3 hydra/launcher=slurm   # a sweep
"""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from pwm.checkpoint.run_state import RunStateError
from pwm.config import ConfigError, register_configs
from pwm.data.episodes import EpisodeFileError
from pwm.training.dflex import DflexRun
from pwm.utils.perf import tune_cpu_allocator

register_configs()


@hydra.main(config_path="../cfg", config_name="config_dflex", version_base="1.3")
def main(cfg: DictConfig) -> None:
    run_dir = Path(cfg.general.run_dir) if cfg.general.run_dir else Path(HydraConfig.get().runtime.output_dir)
    tune_cpu_allocator()
    try:
        result = DflexRun(cfg, run_dir, HydraConfig.get().overrides.task).run()
    except (ConfigError, RunStateError, EpisodeFileError, ImportError) as err:
        message = f"error: {err.args[0] if err.args else err}"
        if HydraConfig.get().mode == RunMode.MULTIRUN:
            raise RuntimeError(message) from None
        sys.exit(message)
    summary = ", ".join(f"{k}={v:.4g}" for k, v in result.items()) or "already finished"
    print(f"done: {cfg.env.name} {cfg.alg.name} seed {cfg.seed}: eval {summary}")


if __name__ == "__main__":
    main()
