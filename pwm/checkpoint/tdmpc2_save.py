"""Write our world model's weights in an official TD-MPC2 / PWM key layout.

The layouts are described in :mod:`pwm.checkpoint.tdmpc2_layouts` and external/README.md.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import torch

from pwm.checkpoint.tdmpc2_layouts import FLAT_Q_NAMES, PWM_FRESH
from pwm.models.world_model import WorldModel
from pwm.utils.io import atomic_torch_save

ExportLayout = Literal["released", "current", "pwm"]


def export_state_dict(model: WorldModel, layout: ExportLayout = "released") -> dict[str, Any]:
    """Our model's weights in an official layout, so that TD-MPC2 or PWM code can load them.

    ``released``: the 2023 layout; current TD-MPC2 converts it on load and fills its own buffers and tensordict
    metadata, so it is the safest choice for official code. ``current``: the current layout with the
    ``_detach_Qs_params`` alias and the ``_action_masks``/``log_std_*`` buffers but without the tensordict
    ``__batch_size``/``__device`` entries: TD-MPC2's loader skips conversion for this layout, so with a
    tensordict version that emits those entries they must first be copied in from a fresh model's
    ``state_dict()``, as its own converter does. ``pwm``: the PWM layout, without policy prior and Q ensemble.
    Tensors share storage with the model (as ``state_dict()`` does).
    """
    sd = model.state_dict()
    if layout == "released":
        return {_to_flat_q(k): v for k, v in sd.items()}
    if layout == "current":
        return _to_current(model, sd)
    if layout == "pwm":
        return {_to_pwm(k): v for k, v in sd.items() if k.split(".")[0] not in PWM_FRESH}
    raise ValueError(f"layout={layout!r}: choose one of released, current, pwm")


def _to_flat_q(key: str) -> str:
    match = re.fullmatch(r"(_Qs|_target_Qs)\.params\.(\d+)\.(.+)", key)
    if match is None:
        return key
    prefix, layer, name = match.groups()
    return f"{prefix}.params.{4 * int(layer) + FLAT_Q_NAMES.index(name)}"


def _to_pwm(key: str) -> str:
    return "_encoder." + key[len("_encoder.state.") :] if key.startswith("_encoder.state.") else key


def _to_current(model: WorldModel, sd: dict[str, torch.Tensor]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if model.cfg.multitask:
        out["_action_masks"] = model._action_masks.detach()
    # TD-MPC2 registers these from integer yaml values, hence int64 when the bounds are whole numbers.
    low, high = model.cfg.log_std_min, model.cfg.log_std_max
    out["log_std_min"] = torch.tensor(int(low) if float(low).is_integer() else low)
    out["log_std_dif"] = torch.tensor(int(high - low) if float(high - low).is_integer() else high - low)
    for key, value in sd.items():
        if key.startswith("_target_Qs.params."):
            out["_target_Qs_params." + key[len("_target_Qs.params.") :]] = value
            continue
        out[key] = value
        if key.startswith("_Qs.params."):
            out["_detach_Qs_params." + key[len("_Qs.params.") :]] = value
    return out


def save_official(model: WorldModel, path: str | os.PathLike, layout: ExportLayout = "released") -> Path:
    """Write ``{"model": export_state_dict(model, layout)}`` atomically, the file format of ``agent.save``.

    A crash leaves either the old file or the new one, never a truncated checkpoint (``atomic_torch_save``).
    """
    return atomic_torch_save({"model": export_state_dict(model, layout)}, path)
