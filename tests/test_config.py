from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf

from pwm.config import TrainWorldModelConfig, register_configs, resolve_world_model

CFG_DIR = str(Path(__file__).resolve().parents[1] / "cfg")


def compose_train(overrides: list[str]) -> TrainWorldModelConfig:
    register_configs()
    with initialize_config_dir(config_dir=CFG_DIR, version_base="1.3"):
        cfg = compose("train_world_model", overrides=["general.data_dir=/tmp/x", *overrides])
    return OmegaConf.to_object(cfg)


@pytest.mark.parametrize(
    ("size", "task", "latent", "task_dim"),
    [("1M", "mt80", 128, 96), ("5M", "mt30", 512, 64), ("19M", "mt30", 512, 64), ("19M", "mt80", 768, 96),
     ("48M", "mt30", 768, 64), ("317M", "mt30", 1376, 96)],
)  # fmt: skip
def test_size_presets_compose_and_resolve(size, task, latent, task_dim):
    cfg = compose_train([f"world_model={size}", f"task={task}"])
    assert isinstance(cfg, TrainWorldModelConfig)
    wm = resolve_world_model(cfg.world_model)
    assert (wm.task, wm.latent_dim, wm.task_dim) == (task, latent, task_dim)
    assert cfg.tdmpc2.horizon == 16 and cfg.tdmpc2.rho == 0.99


def test_reference_defaults_preset():
    cfg = compose_train(["tdmpc2=default"])
    assert (cfg.tdmpc2.horizon, cfg.tdmpc2.rho) == (3, 0.5)


def test_typo_fails_at_compose_naming_the_key():
    with pytest.raises(ConfigCompositionException, match=r"latnt_dim"):
        compose_train(["world_model.latnt_dim=3"])


def test_wrong_type_fails_at_compose_naming_the_key():
    with pytest.raises(ConfigCompositionException, match=r"steps"):
        compose_train(["general.steps=many"])
