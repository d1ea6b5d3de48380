"""Model dims read off the tensor shapes of a TD-MPC2 / PWM checkpoint, in any key layout.

Used to build a matching :class:`~pwm.models.world_model.WorldModel` without a config and to explain shape
mismatches; the size presets and task-embedding rule are in docs/tdmpc2_reference.md ("Model-size presets").
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from pwm.checkpoint.tdmpc2_layouts import CheckpointError, convert
from pwm.config.world_model import MODEL_SIZES, size_preset, task_embedding_dim
from pwm.data.tasks import MT80, TASK_SETS


@dataclass(frozen=True)
class CheckpointDims:
    """Model dims read off a checkpoint's tensor shapes, so a matching model can be built without a config."""

    num_tasks: int
    task_dim: int
    obs_dim: int
    action_dim: int
    latent_dim: int
    enc_dim: int
    mlp_dim: int
    num_enc_layers: int
    num_q: int | None
    """``None`` when the file has no Q ensemble (PWM layout)."""
    num_bins: int
    size: int | None
    """The TD-MPC2 size preset whose dims all match, else ``None``."""
    task_set: str | None
    """``mt30``/``mt80`` when the task count and padded dims match one, else ``None``."""

    @property
    def multitask(self) -> bool:
        return self.task_dim > 0

    def single_task_candidates(self) -> list[str]:
        """Known tasks whose obs/action dims equal the checkpoint's (single-task checkpoints name no task)."""
        return [t.name for t in MT80.tasks if (t.obs_dim, t.action_dim) == (self.obs_dim, self.action_dim)]


def _require(sd: Mapping[str, torch.Tensor], key: str) -> torch.Tensor:
    if key not in sd:
        raise CheckpointError(f"cannot infer model dims: checkpoint has no {key}")
    return sd[key]


def infer_dims(sd: Mapping[str, Any]) -> CheckpointDims:
    """Read the model dims off the tensor shapes of a state dict in any layout."""
    c = convert(sd).sd
    emb = c.get("_task_emb.weight")
    num_tasks, task_dim = (emb.shape[0], emb.shape[1]) if emb is not None else (1, 0)
    enc0, dyn0 = _require(c, "_encoder.state.0.weight"), _require(c, "_dynamics.0.weight")
    latent = _require(c, "_dynamics.2.weight").shape[0]
    num_enc_layers = sum(1 for k in c if re.fullmatch(r"_encoder\.state\.\d+\.weight", k))
    q0 = c.get("_Qs.params.0.weight")
    dims = dict(
        num_tasks=num_tasks,
        task_dim=task_dim,
        obs_dim=enc0.shape[1] - task_dim,
        action_dim=dyn0.shape[1] - latent - task_dim,
        latent_dim=latent,
        enc_dim=enc0.shape[0],
        mlp_dim=dyn0.shape[0],
        num_enc_layers=num_enc_layers,
        num_q=q0.shape[0] if q0 is not None else None,
        num_bins=_require(c, "_reward.2.weight").shape[0],
    )
    task_set = _guess_task_set(num_tasks, dims["obs_dim"], dims["action_dim"])
    return CheckpointDims(**dims, size=_guess_size(dims, task_set), task_set=task_set)


def _guess_task_set(num_tasks: int, obs_dim: int, action_dim: int) -> str | None:
    for name, task_set in TASK_SETS.items():
        if (len(task_set), task_set.obs_dim, task_set.action_dim) == (num_tasks, obs_dim, action_dim):
            return name
    return None


def _guess_size(dims: dict[str, Any], task_set: str | None) -> int | None:
    """The preset whose dims (and, for a known task set, task-embedding size) all equal the checkpoint's."""
    for size in MODEL_SIZES:
        expected = size_preset(size, task_set)
        if dims["num_q"] is None:
            expected.pop("num_q")
        if task_set is not None:
            expected["task_dim"] = task_embedding_dim(task_set, size)
        if all(dims[k] == v for k, v in expected.items()):
            return size
    return None


def count_parameters(sd: Mapping[str, Any]) -> int:
    """Trainable parameter count (target Q excluded), comparable with the published model sizes."""
    c = convert(sd).sd
    return sum(v.numel() for k, v in c.items() if not k.startswith("_target_Qs."))
