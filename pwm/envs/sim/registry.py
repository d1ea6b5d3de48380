"""The registry of single-task differentiable environments (dflex's seven tasks) and their constructor.

Tasks are named as in the configs (``dflex_ant`` ...). Classes are imported on first use, so building a torch-only
task never imports warp or newton.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Mapping
from typing import Any

from pwm.envs.sim.base import BatchedEnv
from pwm.envs.sim.checks import check_config
from pwm.utils.errors import ConfigError

# name -> (module, env class, config class)
TASKS: dict[str, tuple[str, str, str]] = {
    "dflex_cartpole": ("pwm.envs.sim.planar", "CartPoleSwingUpEnv", "CartPoleConfig"),
    "dflex_doublependulum": ("pwm.envs.sim.planar", "DoublePendulumEnv", "DoublePendulumConfig"),
    "dflex_hopper": ("pwm.envs.sim.hopper", "HopperEnv", "HopperConfig"),
    "dflex_ant": ("pwm.envs.sim.ant", "AntEnv", "AntConfig"),
    "dflex_humanoid": ("pwm.envs.sim.humanoid", "HumanoidEnv", "HumanoidConfig"),
    "dflex_anymal": ("pwm.envs.sim.anymal", "AnymalEnv", "AnymalConfig"),
    "dflex_snu_humanoid": ("pwm.envs.sim.snu_humanoid", "SNUHumanoidEnv", "SNUHumanoidConfig"),
}


def task_classes(name: str) -> tuple[type[BatchedEnv], type]:
    """The env class and config dataclass of task ``name``; an unknown name lists the valid ones."""
    if name not in TASKS:
        raise ConfigError(f"unknown env {name!r}; valid envs: {', '.join(sorted(TASKS))}")
    module, env_cls, cfg_cls = TASKS[name]
    mod = importlib.import_module(module)
    return getattr(mod, env_cls), getattr(mod, cfg_cls)


def make_env_config(name: str, overrides: Mapping[str, Any] | None = None) -> Any:
    """Task ``name``'s config dataclass with ``overrides`` applied and checked (``pwm.envs.sim.checks``); an unknown
    key or a bad value is a one-line ConfigError."""
    _, cfg_cls = task_classes(name)
    fields = {f.name for f in dataclasses.fields(cfg_cls)}
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ConfigError(f"env {name}: unknown setting(s) {', '.join(unknown)}; valid: {', '.join(sorted(fields))}")
    for key, value in overrides.items():
        if isinstance(value, list):
            overrides[key] = tuple(value)
    return check_config(cfg_cls(**overrides), name)


def make_dflex_env(name: str, overrides: Mapping[str, Any] | None = None, requires_grad: bool = False) -> BatchedEnv:
    """Build task ``name`` (e.g. ``dflex_ant``) with config ``overrides`` (num_envs, device, seed, ...)."""
    env_cls, _ = task_classes(name)
    return env_cls(make_env_config(name, overrides), requires_grad=requires_grad)


def asset_path(name: str) -> str:
    """Path of the MJCF task ``name``'s robot is built from (its declared ``ASSET``); the planar tasks have none."""
    env_cls, _ = task_classes(name)
    if not hasattr(env_cls, "asset_path"):
        raise ValueError(f"{name} is not built from an asset file")
    return env_cls.asset_path()
