"""DreamerV2 on pixels and PreLAR / APV pretraining + fine-tuning (resumable; docs/prelar.md).

python scripts/train_dreamer.py alg=dreamerv2 preset=cpu env.task=mw-drawer-open general.steps=20
python scripts/train_dreamer.py alg=prelar_pretrain general.video_dir=data/videos general.steps=2000
python scripts/train_dreamer.py alg=prelar_finetune alg.pretrained=<pretraining run dir>
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from pwm.config import register_configs
from pwm.training.entry import check_command_line, hydra_run_dir, run_script

register_configs()


@hydra.main(config_path="../cfg", config_name="config_dreamer", version_base="1.3")
def main(cfg: DictConfig) -> None:
    from pwm.training.dreamer import make_runner

    run_dir = hydra_run_dir()
    row = run_script(lambda: make_runner(cfg, run_dir).run(), run_dir)
    summary = ", ".join(f"{k}={v:.4g}" for k, v in (row or {}).items() if k.startswith("eval/"))
    print(f"done: {cfg.env.task} {cfg.alg.name} seed {cfg.seed} in {run_dir}: {summary or 'no evaluation'}")


if __name__ == "__main__":
    check_command_line("config_dreamer")
    main()
