"""Extract a PWM policy for one MT30/MT80 task from a frozen multitask world model (resumable).

    python scripts/train_multitask.py -cn config_mt30 alg=pwm_48M task=cartpole-swingup \
        general.data_dir=<dir of chunk_*.pt> general.checkpoint=<mt30-48M.pt>
    python scripts/train_multitask.py -cn config_mt80 -m task=walker-walk,mw-assembly seed=1,2,3 \
        hydra/launcher=slurm ...   # one job per task x seed (see scripts/mt30.bash, scripts/mt80.bash)
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import hydra
from omegaconf import DictConfig

from pwm.config import register_configs
from pwm.training.entry import check_command_line, hydra_run_dir, run_script, to_object
from pwm.training.multitask import MultitaskRun

register_configs()


@hydra.main(config_path="../cfg", config_name="config_mt30", version_base="1.3")
def main(dict_cfg: DictConfig) -> None:
    run_dir = hydra_run_dir()
    row = run_script(lambda: MultitaskRun(to_object(dict_cfg), run_dir).run(), run_dir)
    summary = ", ".join(f"{k}={v:.4g}" for k, v in row.items() if k.startswith("eval/"))
    print(f"done: {dict_cfg.task} seed {dict_cfg.seed} in {run_dir}: {summary or 'already finished'}")


if __name__ == "__main__":
    check_command_line("config_mt30")
    main()
