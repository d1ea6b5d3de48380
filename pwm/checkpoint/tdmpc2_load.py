"""Read TD-MPC2 / PWM checkpoint files and load them strictly into our world model.

Everything is mapped to our :class:`~pwm.models.world_model.WorldModel` key layout
(:mod:`pwm.checkpoint.tdmpc2_layouts`) and loaded strictly, so a wrong task set or model size fails at load time
with the offending key and both shapes instead of producing a silently different model. Every error is a
:class:`~pwm.checkpoint.tdmpc2_layouts.CheckpointError` with a one-line message.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from pwm.checkpoint.tdmpc2_dims import CheckpointDims, infer_dims
from pwm.checkpoint.tdmpc2_layouts import (
    COMPONENTS,
    METADATA,
    PWM_FRESH,
    CheckpointError,
    Converted,
    Layout,
    convert,
)
from pwm.models.world_model import WorldModel
from pwm.utils.safe_load import CHECKPOINT, UnsafeFileError, safe_torch_load


@dataclass(frozen=True)
class LoadReport:
    """What :func:`load_into` did, for logs: which components came from the file and which stayed fresh."""

    source: str
    layout: Layout
    loaded: tuple[str, ...]
    fresh: tuple[str, ...]
    target_from_online: bool
    """True when the file had no target Q network and the target was set to the online Q (tdmpc2 issue #11)."""
    ignored: tuple[str, ...]
    """File entries that map to no parameter (metadata, placeholders, the detached Q alias, buffers)."""

    def summary(self) -> str:
        fresh = ", ".join(self.fresh) or "none"
        note = "; target Q copied from online Q" if self.target_from_online else ""
        return f"{self.source}: {self.layout} layout; loaded {', '.join(self.loaded)}; fresh: {fresh}{note}"


def load_state_dict_file(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint file and return its state dict (``{"model": sd}`` is unwrapped).

    Read weights-only (:mod:`pwm.utils.safe_load`): the tensordict metadata that files from current TD-MPC2 code
    hold (``torch.Size``, ``torch.device``) is in torch's built-in set; a file that needs any other type is
    refused unless ``PWM_TRUST_FILES=1``. Metadata entries are returned as stored.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path}: no such file")
    if path.is_dir():
        raise CheckpointError(f"checkpoint {path}: is a directory, expected a .pt file")
    try:
        obj = safe_torch_load(path, what="world-model checkpoint", allow=CHECKPOINT, map_location="cpu")
    except UnsafeFileError as err:
        raise CheckpointError(f"checkpoint {err}") from None
    except Exception as err:  # torch.load raises many types (pickle, zip, EOF, runtime) for a bad file
        raise CheckpointError(f"checkpoint {path}: torch.load cannot read it ({_one_line(err)})") from None
    if isinstance(obj, Mapping) and "format_version" in obj and "components" in obj:
        raise CheckpointError(
            f"{path} is a pwm run state (checkpoints/state_*.pt), not a world-model checkpoint; its world model is "
            "under components.algo (model for TD-MPC2 runs, world_model for single-task PWM); train_world_model.py "
            "also writes it as a checkpoint, models/<step>.pt"
        )
    return _unwrap(obj, f"checkpoint {path}")


def _one_line(err: BaseException, limit: int = 160) -> str:
    text = " ".join(str(err).split()) or "no message"
    text = text if len(text) <= limit else text[: limit - 3] + "..."
    return f"{type(err).__name__}: {text}"


def _unwrap(obj: Any, where: str) -> dict[str, Any]:
    """Accept ``{"model": sd}`` or a bare ``sd`` and check that it is a state dict of tensors."""
    if isinstance(obj, Mapping) and "model" in obj:
        obj = obj["model"]
        where = f"{where} ['model']"
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{where}: holds a {type(obj).__name__}, expected a state dict or {{'model': sd}}")
    sd = dict(obj)
    for key, value in sd.items():
        if not isinstance(key, str):
            raise CheckpointError(f"{where}: key {key!r} is not a string, so this is not a state dict")
        if not isinstance(value, torch.Tensor) and not key.endswith(METADATA):
            raise CheckpointError(f"{where}: key {key} holds a {type(value).__name__}, expected a tensor")
    if not sd:
        raise CheckpointError(f"{where}: the state dict is empty")
    return sd


def load_into(model: WorldModel, path_or_sd: str | os.PathLike | Mapping[str, Any]) -> LoadReport:
    """Load a checkpoint in any layout into ``model``, strictly.

    Every model parameter must come from the file with its exact shape, and every file parameter must exist
    in the model; the first violation raises :class:`CheckpointError` naming the key and both shapes. The only
    exception is the PWM layout, which has no policy prior or Q ensemble: those keep the model's current
    (fresh) values and the report lists them as ``fresh``. Non-finite values, and action masks or log-std
    bounds that disagree with the model's config, also raise.
    """
    if isinstance(path_or_sd, Mapping):
        source, raw = "<state dict>", _unwrap(path_or_sd, "state dict")
    else:
        source, raw = str(path_or_sd), load_state_dict_file(path_or_sd)
    conv = convert(raw)
    own = model.state_dict()
    fresh = PWM_FRESH if conv.layout == "pwm" else ()
    _check_keys_and_shapes(conv, own, fresh, raw)
    _check_finite(conv)
    _check_buffers(raw, model)
    full = {k: own[k] for k in own if k.split(".")[0] in fresh and k not in conv.sd}
    model.load_state_dict({**conv.sd, **full}, strict=True)
    present = {k.split(".")[0] for k in conv.sd}
    loaded = tuple(c for c in COMPONENTS if c in present)
    left = tuple(c for c in COMPONENTS if c in fresh and c not in present and hasattr(model, c))
    return LoadReport(source, conv.layout, loaded, left, conv.target_from_online, conv.ignored)


def _named(conv: Converted, key: str) -> str:
    src = conv.origin.get(key, key)
    return key if src == key else f"{src} (ours: {key})"


def _shape(t: torch.Tensor | torch.Size) -> str:
    return str(list(t.shape if isinstance(t, torch.Tensor) else t))


def _check_keys_and_shapes(
    conv: Converted, own: Mapping[str, torch.Tensor], fresh: tuple[str, ...], raw: Mapping[str, Any]
) -> None:
    for key, value in own.items():
        if key not in conv.sd:
            if key.split(".")[0] in fresh:
                continue
            raise CheckpointError(
                f"checkpoint ({conv.layout} layout) is missing key {key} (expected shape {_shape(value)})"
            )
        found = conv.sd[key]
        if found.shape != value.shape:
            hint = _mismatch_hint(raw, own)
            raise CheckpointError(
                f"checkpoint key {_named(conv, key)}: expected shape {_shape(value)}, found {_shape(found)}{hint}"
            )
    for key, value in conv.sd.items():
        if key not in own:
            hint = " (episodic TD-MPC2 models are not supported)" if key.startswith("_termination.") else ""
            raise CheckpointError(
                f"checkpoint key {_named(conv, key)} (shape {_shape(value)}) is not a parameter of the model{hint}"
            )


def _mismatch_hint(raw: Mapping[str, Any], own: Mapping[str, torch.Tensor]) -> str:
    """Say which dims differ, e.g. the task set or model size, so the fix is obvious from one line."""
    try:
        theirs, ours = infer_dims(raw), infer_dims(own)
    except CheckpointError:
        return ""
    if theirs.num_tasks != ours.num_tasks or theirs.task_set != ours.task_set:
        name, mine = _model_kind(theirs), _model_kind(ours)
        if name != mine:
            return f" (is this {_article(name)} {name} checkpoint loaded into {_article(mine)} {mine} model?)"
    if theirs.size != ours.size and theirs.size is not None:
        mine = f"size {ours.size}" if ours.size is not None else "a custom size"
        return f" (the checkpoint looks like size {theirs.size}, the model is {mine})"
    fields = ("obs_dim", "action_dim", "task_dim", "latent_dim", "enc_dim", "mlp_dim", "num_enc_layers", "num_q")
    diff = [f"{f} {getattr(theirs, f)} vs {getattr(ours, f)}" for f in fields if getattr(theirs, f) != getattr(ours, f)]
    return f" (checkpoint vs model: {', '.join(diff)})" if diff else ""


def _model_kind(dims: CheckpointDims) -> str:
    if not dims.multitask:
        return "single-task"
    return dims.task_set or f"{dims.num_tasks}-task"


def _article(word: str) -> str:
    return "an" if word.startswith(("mt", "a", "e", "i", "o", "u", "8")) else "a"


def _check_finite(conv: Converted) -> None:
    for key, value in conv.sd.items():
        if value.is_meta:
            raise CheckpointError(f"checkpoint key {_named(conv, key)}: holds no data (a meta tensor)")
        if value.is_floating_point() and not torch.isfinite(value).all():
            bad = int((~torch.isfinite(value)).sum())
            raise CheckpointError(f"checkpoint key {_named(conv, key)}: {bad} non-finite values (NaN or inf)")


def _check_buffers(raw: Mapping[str, Any], model: WorldModel) -> None:
    """Stored action masks and log-std bounds must equal the ones the model derives from its config."""
    masks = raw.get("_action_masks")
    if masks is not None and model.cfg.multitask:
        own = model._action_masks
        if masks.shape != own.shape:
            raise CheckpointError(f"checkpoint key _action_masks: expected shape {_shape(own)}, found {_shape(masks)}")
        rows = (masks.to(own) != own).any(-1).nonzero().flatten().tolist()
        if rows:
            raise CheckpointError(
                f"checkpoint key _action_masks: rows {rows[:5]} differ from the model's task action dims"
            )
    cfg = model.cfg
    for key, expected in (("log_std_min", cfg.log_std_min), ("log_std_dif", cfg.log_std_max - cfg.log_std_min)):
        value = raw.get(key)
        if value is not None and abs(float(value) - expected) > 1e-6:
            raise CheckpointError(
                f"checkpoint key {key}: {float(value)} but the model config gives {expected} "
                "(set world_model.log_std_min/log_std_max to match)"
            )
