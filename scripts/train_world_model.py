"""Train a TD-MPC2 world model offline on a dataset in the official layout (resumable, multi-GPU via torchrun).

    python scripts/train_world_model.py task=mt30 general.data_dir=data/mt30 world_model=48M general.steps=100000
    torchrun --nproc_per_node=4 scripts/train_world_model.py task=mt80 general.data_dir=... world_model=317M

Rerunning with the same ``general.run_dir=`` continues from its newest checkpoint.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from pwm.config import register_configs
from pwm.training.entry import check_command_line, hydra_run_dir, run_script, to_object
from pwm.training.world_model import train_world_model

register_configs()


@hydra.main(config_path="../cfg", config_name="train_world_model", version_base="1.3")
def main(dict_cfg: DictConfig) -> None:
    run_dir = hydra_run_dir()
    row = run_script(lambda: train_world_model(to_object(dict_cfg), run_dir), run_dir)
    summary = ", ".join(f"{k}={v:.4g}" for k, v in row.items() if k.startswith("wm/") and "loss" in k)
    print(f"done: step {dict_cfg.general.steps} in {run_dir}: {summary or 'already finished'}")


if __name__ == "__main__":
    check_command_line("train_world_model")
    main()
