"""Train PWM or SHAC on one differentiable-simulator task (resumable; CPU or CUDA).

    python scripts/train_dflex.py env=dflex_cartpole alg=shac
    python scripts/train_dflex.py env=dflex_ant alg=pwm general.device=cuda
    python scripts/train_dflex.py env=dflex_hopper alg=shac alg.save_data=true        # make pretraining data
    python scripts/train_dflex.py env=dflex_hopper alg=pwm general.pretrain=<run>/episodes.pt \
        general.pretrain_steps=50000
    python scripts/train_dflex.py -m env=dflex_cartpole alg=pwm,shac seed=1,2,3 hydra/launcher=slurm   # a sweep
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from pwm.config import register_configs
from pwm.training.dflex import DflexRun
from pwm.training.entry import check_command_line, hydra_run_dir, run_script

register_configs()


@hydra.main(config_path="../cfg", config_name="config_dflex", version_base="1.3")
def main(cfg: DictConfig) -> None:
    run_dir = hydra_run_dir()
    row = run_script(lambda: DflexRun(cfg, run_dir).run(), run_dir)
    summary = ", ".join(f"{k}={v:.4g}" for k, v in row.items() if k.startswith("eval/"))
    print(f"done: {cfg.env.name} {cfg.alg.name} seed {cfg.seed} in {run_dir}: {summary or 'already finished'}")


if __name__ == "__main__":
    check_command_line("config_dflex")
    main()
