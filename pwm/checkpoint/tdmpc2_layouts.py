"""Key layouts of TD-MPC2 / PWM world-model checkpoints, and the renaming of each to our key layout.

Official TD-MPC2 weights come in three layouts and PWM saves a fourth (docs/tdmpc2_reference.md, "Checkpoint key
layouts"; external/README.md lists every key and shape):

- ``current``: what TD-MPC2 code since late 2024 saves. The Q ensemble is a tensordict:
  ``_Qs.params.<layer>.<name>``, a no-grad alias ``_detach_Qs_params.*``, the target ``_target_Qs_params.*``,
  tensordict metadata (``__batch_size``/``__device``) and buffers ``_action_masks``, ``log_std_min/_dif``.
  Newer tensordict versions add empty ``_Qs.module.*``-style placeholders and drop the metadata.
- ``released``: the 2023 code that produced the released multitask checkpoints. The Q ensemble is a flat
  ParameterList ``_Qs.params.{0..9}`` / ``_target_Qs.params.{0..9}`` (four tensors per hidden layer).
- ``prerelease``: some single-task checkpoints, saved from plain ``nn.Sequential`` stacks whose Linear,
  LayerNorm and activation each take an index.
- ``pwm``: PWM keeps only the task embedding, encoder (``_encoder.X``, without ``.state``), dynamics and
  reward; it has no policy prior and no Q ensemble.

Reading files and strict loading are in :mod:`pwm.checkpoint.tdmpc2_load`, dims read off shapes in
:mod:`pwm.checkpoint.tdmpc2_dims`, writing official layouts in :mod:`pwm.checkpoint.tdmpc2_save`. Every error is
a :class:`CheckpointError` with a one-line message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import torch

Layout = Literal["current", "released", "prerelease", "pwm"]

# Order of the four tensors of one hidden Q layer in the 2023 flat ParameterList (docs/tdmpc2_reference.md,
# "Checkpoint key layouts").
FLAT_Q_NAMES = ("weight", "bias", "ln.weight", "ln.bias")
COMPONENTS = ("_task_emb", "_encoder", "_dynamics", "_reward", "_pi", "_Qs", "_target_Qs")
# Components a PWM checkpoint never holds; they keep the model's fresh initialisation.
PWM_FRESH = ("_pi", "_Qs", "_target_Qs")
METADATA = ("__batch_size", "__device")
# Entries that describe no parameter of ours: tensordict placeholders, the detached Q alias and buffers that
# the model rebuilds from its config (``_action_masks`` and ``log_std_*`` are checked separately).
_IGNORED_PREFIXES = ("_Qs.module.", "_detach_Qs", "_target_Qs.module.")
_BUFFERS = ("_action_masks", "log_std_min", "log_std_dif")


class CheckpointError(ValueError):
    """A checkpoint cannot be read or does not fit the model; the message is one line naming the key or path."""


def detect_layout(sd: Mapping[str, Any]) -> Layout:
    """Name the key layout of a state dict (see the module docstring); raise if it is none of the four.

    Rules, in order: ``_encoder.<digit>`` keys mean PWM; an encoder whose index 1 is a Linear and index 2 a
    LayerNorm (1-D weight) with nothing at index 0 means pre-release; ``_Qs.params.0.weight`` or any
    ``_detach_Qs_params``/``_target_Qs_params`` key means current; a flat ``_Qs.params.0`` means released.
    A TD-MPC2 encoder with no recognisable Q keys is treated as current so that strict loading names the
    missing key.
    """
    keys = list(sd)
    if any(re.match(r"_encoder\.\d+\.", k) for k in keys):
        return "pwm"
    second = sd.get("_encoder.state.2.weight")
    if "_encoder.state.1.weight" in sd and second is not None and second.dim() == 1:
        if not any(k.startswith("_encoder.state.0.") for k in keys):
            return "prerelease"
    if "_Qs.params.0.weight" in sd or any(k.startswith(("_detach_Qs_params.", "_target_Qs_params.")) for k in keys):
        return "current"
    if "_Qs.params.0" in sd:
        return "released"
    if "_encoder.state.0.weight" in sd:
        return "current"
    shown = ", ".join(keys[:5]) + (", ..." if len(keys) > 5 else "")
    raise CheckpointError(f"unrecognised checkpoint layout ({len(keys)} keys: {shown}); not a TD-MPC2/PWM world model")


def _flat_q_key(key: str, prefix: str) -> str:
    """``_Qs.params.9`` -> ``_Qs.params.2.bias``: index n is layer n // 4, tensor n % 4 of the flat list."""
    suffix = key[len(prefix) :]
    if not suffix.isdigit():
        return key
    n = int(suffix)
    return f"{prefix}{n // 4}.{FLAT_Q_NAMES[n % 4]}"


def _sequential_key(suffix: str, offset: int) -> str | None:
    """Pre-release ``nn.Sequential`` position -> our NormedLinear key suffix (``"4.weight"`` -> ``"1.weight"``).

    Each layer takes three positions (Linear, LayerNorm, activation) starting at ``offset``; position
    ``offset + 3i`` is layer i's Linear and ``offset + 3i + 1`` its LayerNorm. ``None`` if it is neither.
    """
    match = re.fullmatch(r"(\d+)\.(weight|bias)", suffix)
    if match is None:
        return None
    layer, slot = divmod(int(match.group(1)) - offset, 3)
    if layer < 0 or slot == 2:  # an activation has no parameters
        return None
    return f"{layer}.{'ln.' if slot == 1 else ''}{match.group(2)}"


# (file prefix, our prefix, offset of the first Linear) for the pre-release Sequential stacks.
_PRERELEASE_STACKS = (
    ("_encoder.state.", "_encoder.state.", 1),
    ("_dynamics.0.", "_dynamics.", 0),
    ("_reward.", "_reward.", 0),
    ("_pi.", "_pi.", 0),
)


def _prerelease_key(key: str) -> str:
    """Unmappable keys are returned unchanged, so that the strict check names them."""
    if re.fullmatch(r"_dynamics\.1\.(weight|bias)", key):  # the final LayerNorm sits outside the nested stack
        return "_dynamics.2.ln." + key[len("_dynamics.1.") :]
    for prefix, ours, offset in _PRERELEASE_STACKS:
        if key.startswith(prefix):
            suffix = _sequential_key(key[len(prefix) :], offset)
            return key if suffix is None else ours + suffix
    return _released_key(key)


def _released_key(key: str) -> str:
    for prefix in ("_Qs.params.", "_target_Qs.params."):
        if key.startswith(prefix):
            return _flat_q_key(key, prefix)
    return key


def _current_key(key: str) -> str:
    if key.startswith("_target_Qs_params."):
        return "_target_Qs.params." + key[len("_target_Qs_params.") :]
    return key


def _pwm_key(key: str) -> str:
    if re.match(r"_encoder\.\d+\.", key):
        return "_encoder.state." + key[len("_encoder.") :]
    return key


_RENAME = {"current": _current_key, "released": _released_key, "prerelease": _prerelease_key, "pwm": _pwm_key}


def _is_ignored(key: str) -> bool:
    return key.endswith(METADATA) or key.startswith(_IGNORED_PREFIXES) or key in _BUFFERS


@dataclass(frozen=True)
class Converted:
    layout: Layout
    sd: dict[str, torch.Tensor]
    origin: dict[str, str]  # our key -> the file's key, for error messages
    ignored: tuple[str, ...]
    target_from_online: bool


def convert(sd: Mapping[str, Any]) -> Converted:
    layout = detect_layout(sd)
    rename = _RENAME[layout]
    out: dict[str, torch.Tensor] = {}
    origin: dict[str, str] = {}
    ignored = []
    for key, value in sd.items():
        if _is_ignored(key):
            ignored.append(key)
            continue
        new = rename(key)
        if new in out:
            raise CheckpointError(f"checkpoint keys {origin[new]} and {key} both map to {new}")
        out[new], origin[new] = value, key
    copied = _fill_missing_target(out, origin)
    return Converted(layout, out, origin, tuple(ignored), copied)


def _fill_missing_target(sd: dict[str, torch.Tensor], origin: dict[str, str]) -> bool:
    """Some published files lack the target Q network (tdmpc2 issue #11); TD-MPC2 then starts it at the online Q."""
    online = [k for k in sd if k.startswith("_Qs.params.")]
    if not online or any(k.startswith("_target_Qs.params.") for k in sd):
        return False
    for key in online:
        target = "_target_Qs." + key[len("_Qs.") :]
        sd[target], origin[target] = sd[key].clone(), origin[key]
    return True


def to_canonical(sd: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    """Map a state dict in any of the four layouts to our :class:`WorldModel` key layout.

    Metadata, tensordict placeholders, ``_detach_Qs_params`` (an alias of the online Q) and the buffers
    ``_action_masks``/``log_std_*`` are dropped (:func:`~pwm.checkpoint.tdmpc2_load.load_into` compares the
    buffers with the model's). A missing target Q network is filled with a copy of the online Q. The input is
    not modified; tensors are shared with it except the copied target.
    """
    return convert(sd).sd
