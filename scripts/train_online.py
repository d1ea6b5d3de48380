"""Online model-based RL (PolyGRAD) on a Gymnasium MuJoCo task, resumable (rerun with the same general.run_dir).

python scripts/train_online.py env=gym_hopper alg=polygrad_cpu general.steps=100000
python scripts/train_online.py env=gym_halfcheetah alg=polygrad general.device=cuda     # the paper's sizes
python scripts/train_online.py env=gym_hopper alg=polygrad_cpu alg.denoiser=transformer alg.denoiser_width=128
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from pwm.config import register_configs
from pwm.training.entry import check_command_line, hydra_run_dir, run_script
from pwm.training.online import OnlineRun

register_configs()


@hydra.main(config_path="../cfg", config_name="config_online", version_base="1.3")
def main(cfg: DictConfig) -> None:
    run_dir = hydra_run_dir()
    row = run_script(lambda: OnlineRun(cfg, run_dir).run(), run_dir)
    summary = ", ".join(f"{k}={v:.4g}" for k, v in (row or {}).items() if k.startswith("eval/"))
    print(f"done: {cfg.env.name} {cfg.alg.name} seed {cfg.seed} in {run_dir}: {summary or 'already finished'}")


if __name__ == "__main__":
    check_command_line("config_online")
    main()
