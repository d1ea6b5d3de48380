"""The TD-MPC2 world model's config and the rules that derive its dims (size presets, task-set padding).

``None`` fields are derived by :func:`resolve_world_model`, which returns a new config and never mutates its input.
The size presets here are the one place model sizes are written; ``cfg/world_model/<N>M.yaml`` only names them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from pwm.config.checks import check_fields
from pwm.data.tasks import TASK_SETS, get_task
from pwm.utils.errors import ConfigError

# TD-MPC2 model-size presets (docs/tdmpc2_reference.md, "Model-size presets"): size -> dims.
MODEL_SIZES: dict[int, dict[str, int]] = {
    1: dict(enc_dim=256, mlp_dim=384, latent_dim=128, num_enc_layers=2, num_q=2),
    5: dict(enc_dim=256, mlp_dim=512, latent_dim=512, num_enc_layers=2, num_q=5),
    19: dict(enc_dim=1024, mlp_dim=1024, latent_dim=768, num_enc_layers=3, num_q=5),
    48: dict(enc_dim=1792, mlp_dim=1792, latent_dim=768, num_enc_layers=4, num_q=5),
    317: dict(enc_dim=4096, mlp_dim=4096, latent_dim=1376, num_enc_layers=5, num_q=8),
}


@dataclass
class WorldModelConfig:
    """TD-MPC2 world model. ``None`` means "derived": from ``size`` and ``task`` by :func:`resolve_world_model`."""

    size: int | None = 5
    """Model-size preset in millions of parameters: 1, 5, 19, 48 or 317. ``None`` needs every dim set."""
    task: str | None = None
    """``mt30``/``mt80`` (multitask), a single task name (e.g. ``walker-walk``), or ``None`` with obs/action dims."""
    obs_dim: int | None = None
    """Observation dim (padded, for multitask)."""
    action_dim: int | None = None
    """Action dim (padded, for multitask)."""
    latent_dim: int | None = None
    enc_dim: int | None = None
    mlp_dim: int | None = None
    num_enc_layers: int | None = None
    num_q: int | None = None
    task_dim: int | None = None
    """Task-embedding size: 96 for mt80 and sizes 1/317, else 64; 0 for single-task."""
    num_tasks: int = 1
    """Rows of the task embedding; derived from ``task``."""
    action_dims: list[int] = field(default_factory=list)
    """Per-task active action dims (action masks); derived from ``task``."""
    num_bins: int = 101
    """Two-hot bins of the reward and Q heads; 1 makes them scalar (PWM's single-task world model)."""
    vmin: float = -10.0
    vmax: float = 10.0
    simnorm_dim: int = 8
    dropout: float = 0.01
    """Dropout of the Q ensemble's first layer."""
    log_std_min: float = -10.0
    log_std_max: float = 2.0

    @property
    def multitask(self) -> bool:
        return self.task_dim is not None and self.task_dim > 0


_DERIVED_DIMS = ("latent_dim", "enc_dim", "mlp_dim", "num_enc_layers", "num_q")


def size_preset(size: int, task: str | None) -> dict[str, int]:
    """The dims of preset ``size`` for ``task``: :data:`MODEL_SIZES`, except that the released mt30-19M model
    has latent 512."""
    preset = dict(MODEL_SIZES[size])
    if task == "mt30" and size == 19:
        preset["latent_dim"] = 512
    return preset


def task_embedding_dim(task_set: str, size: int | None) -> int:
    """TD-MPC2's task-embedding size: 96 for mt80 and for sizes 1 and 317, else 64."""
    return 96 if task_set == "mt80" or size in (1, 317) else 64


def resolve_world_model(cfg: WorldModelConfig) -> WorldModelConfig:
    """Return a copy of ``cfg`` with every derived field filled in and checked; raise ConfigError if it can't."""
    updates: dict = {}
    task_set = TASK_SETS.get(cfg.task) if cfg.task else None
    if cfg.size is not None:
        if cfg.size not in MODEL_SIZES:
            raise ConfigError(f"world_model.size={cfg.size} is not a preset; choose one of {sorted(MODEL_SIZES)}")
        preset = size_preset(cfg.size, cfg.task)
        updates.update({k: v for k, v in preset.items() if getattr(cfg, k) is None})
    if task_set is not None:
        updates.setdefault("obs_dim", cfg.obs_dim or task_set.obs_dim)
        updates.setdefault("action_dim", cfg.action_dim or task_set.action_dim)
        updates["num_tasks"] = len(task_set)
        updates["action_dims"] = list(cfg.action_dims) or task_set.action_dims
        if cfg.task_dim is None:
            updates["task_dim"] = task_embedding_dim(cfg.task, cfg.size)
    else:
        if cfg.task is not None:
            try:
                spec = get_task(cfg.task)
            except KeyError as err:
                raise ConfigError(f"world_model.task: {err.args[0]}") from None
            updates.setdefault("obs_dim", cfg.obs_dim or spec.obs_dim)
            updates.setdefault("action_dim", cfg.action_dim or spec.action_dim)
        if cfg.task_dim is None:
            updates["task_dim"] = 0
    out = dataclasses.replace(cfg, **updates)
    _check_world_model(out)
    return out


def _check_world_model(cfg: WorldModelConfig) -> None:
    for name in ("obs_dim", "action_dim", *_DERIVED_DIMS, "task_dim"):
        value = getattr(cfg, name)
        if value is None:
            raise ConfigError(f"world_model.{name} is unset: give it, or a size preset / task that derives it")
        if value < (0 if name == "task_dim" else 1):
            raise ConfigError(f"world_model.{name}={value} must be positive")
    if cfg.latent_dim % cfg.simnorm_dim:
        raise ConfigError(
            f"world_model.latent_dim={cfg.latent_dim} must be a multiple of simnorm_dim={cfg.simnorm_dim}"
        )
    check_fields(cfg, "world_model.", {"simnorm_dim": "at_least_1", "dropout": "fraction", "num_tasks": "at_least_1"})
    if cfg.vmin >= cfg.vmax or cfg.log_std_min >= cfg.log_std_max:
        raise ConfigError(
            f"world_model: vmin={cfg.vmin} must be < vmax={cfg.vmax} and "
            f"log_std_min={cfg.log_std_min} < log_std_max={cfg.log_std_max}"
        )
    if cfg.num_bins < 1:
        raise ConfigError(
            f"world_model.num_bins={cfg.num_bins} must be >= 2 (two-hot regression) or 1 (a scalar, MSE-trained head)"
        )
    if cfg.multitask and len(cfg.action_dims) != cfg.num_tasks:
        raise ConfigError(f"world_model.action_dims has {len(cfg.action_dims)} entries but num_tasks={cfg.num_tasks}")
    if any(not 0 < a <= cfg.action_dim for a in cfg.action_dims):
        raise ConfigError(f"world_model.action_dims={cfg.action_dims} must lie in 1..action_dim={cfg.action_dim}")
