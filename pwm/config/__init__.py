"""Structured config schemas, registered in Hydra's ConfigStore, and the rules that derive model dims.

YAML files in ``cfg/`` extend these schemas, so a misspelt key or a wrong type fails when Hydra composes the
config. ``world_model`` holds the model and its size presets, ``algorithms`` the algorithms' hyperparameters and
``runs`` the run-level settings every entry script shares (:class:`RunConfig`) and the top-level schemas.
"""

from __future__ import annotations

from pwm.config.algorithms import ActorCriticConfig, MPPIConfig, PWMConfig, SHACConfig, TDMPC2Config
from pwm.config.dreamer import DreamerAlgConfig, DreamerConfig
from pwm.config.polygrad import GymEnvConfig, OnlineConfig, OnlineRunConfig, PolyGRADConfig
from pwm.config.runs import (
    DflexConfig,
    DflexEnvConfig,
    DflexRunConfig,
    EvalConfig,
    LoggerConfig,
    MultitaskConfig,
    MultitaskRunConfig,
    RunConfig,
    TrainWorldModelConfig,
    WorldModelRunConfig,
)  # fmt: skip
from pwm.config.world_model import MODEL_SIZES, WorldModelConfig, resolve_world_model
from pwm.utils.errors import ConfigError

__all__ = [
    "MODEL_SIZES", "ActorCriticConfig", "ConfigError", "DflexConfig", "DflexEnvConfig", "DflexRunConfig",
    "DreamerAlgConfig", "DreamerConfig", "EvalConfig", "GymEnvConfig", "LoggerConfig", "MPPIConfig",
    "MultitaskConfig", "MultitaskRunConfig", "OnlineConfig", "OnlineRunConfig", "PWMConfig", "PolyGRADConfig",
    "RunConfig", "SHACConfig", "TDMPC2Config", "TrainWorldModelConfig", "WorldModelConfig", "WorldModelRunConfig",
    "register_configs", "resolve_world_model",
]  # fmt: skip


def register_configs() -> None:
    """Register the schemas with Hydra's ConfigStore (YAML files in cfg/ extend them by name)."""
    from hydra.core.config_store import ConfigStore
    from omegaconf import OmegaConf

    # ${or_default:${general.run_dir},runs/...}: Hydra writes its own files into the run directory the user chose
    OmegaConf.register_new_resolver("or_default", lambda value, default: default if value in (None, "") else value,
                                    replace=True)  # fmt: skip
    cs = ConfigStore.instance()
    cs.store(name="base_train_world_model", node=TrainWorldModelConfig)
    cs.store(group="world_model", name="base_world_model", node=WorldModelConfig)
    cs.store(group="tdmpc2", name="base_tdmpc2", node=TDMPC2Config)
    cs.store(name="base_multitask", node=MultitaskConfig)
    cs.store(group="alg", name="base_pwm", node=PWMConfig)
    cs.store(group="alg", name="base_shac", node=SHACConfig)
    cs.store(name="base_dflex", node=DflexConfig)
    cs.store(name="base_dreamer", node=DreamerConfig)
    cs.store(group="alg", name="base_dreamer_alg", node=DreamerAlgConfig)
    cs.store(group="alg", name="base_polygrad", node=PolyGRADConfig)
    cs.store(name="base_online", node=OnlineConfig)
