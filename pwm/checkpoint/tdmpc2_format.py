"""Read and write TD-MPC2 world-model checkpoints in every key layout that exists in the wild.

Official TD-MPC2 weights come in three layouts (tdmpc2.md §2.2) and PWM saves a fourth (pwm.md §3.1):

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

Everything is mapped to our :class:`~pwm.models.world_model.WorldModel` key layout and loaded strictly, so a
wrong task set or model size fails at load time with the offending key and both shapes instead of producing a
silently different model. Every error is a :class:`CheckpointError` with a one-line message.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from pwm.config import MODEL_SIZES
from pwm.data.tasks import MT80, TASK_SETS
from pwm.models.world_model import WorldModel
from pwm.utils.io import atomic_torch_save

Layout = Literal["current", "released", "prerelease", "pwm"]
ExportLayout = Literal["released", "current", "pwm"]

# Order of the four tensors of one hidden Q layer in the 2023 flat ParameterList (tdmpc2.md §2.2(b)).
_FLAT_NAMES = ("weight", "bias", "ln.weight", "ln.bias")
_COMPONENTS = ("_task_emb", "_encoder", "_dynamics", "_reward", "_pi", "_Qs", "_target_Qs")
# Components a PWM checkpoint never holds; they keep the model's fresh initialisation.
_PWM_FRESH = ("_pi", "_Qs", "_target_Qs")
_METADATA = ("__batch_size", "__device")
# Entries that describe no parameter of ours: tensordict placeholders, the detached Q alias and buffers that
# the model rebuilds from its config (``_action_masks`` and ``log_std_*`` are checked separately).
_IGNORED_PREFIXES = ("_Qs.module.", "_detach_Qs", "_target_Qs.module.")
_BUFFERS = ("_action_masks", "log_std_min", "log_std_dif")


class CheckpointError(ValueError):
    """A checkpoint cannot be read or does not fit the model; the message is one line naming the key or path."""


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


# ----------------------------------------------------------------------------------------------------------
# reading


def load_state_dict_file(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint file and return its state dict (``{"model": sd}`` is unwrapped).

    ``weights_only=False`` because files from current TD-MPC2 code hold tensordict metadata (``torch.Size``,
    ``torch.device``) that the weights-only unpickler rejects; only load files you trust. Metadata entries are
    returned as stored.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path}: no such file")
    if path.is_dir():
        raise CheckpointError(f"checkpoint {path}: is a directory, expected a .pt file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # torch.load raises many types (pickle, zip, EOF, runtime) for a bad file
        raise CheckpointError(f"checkpoint {path}: torch.load cannot read it ({_one_line(err)})") from None
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
        if not isinstance(value, torch.Tensor) and not key.endswith(_METADATA):
            raise CheckpointError(f"{where}: key {key} holds a {type(value).__name__}, expected a tensor")
    if not sd:
        raise CheckpointError(f"{where}: the state dict is empty")
    return sd


# ----------------------------------------------------------------------------------------------------------
# layouts


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
    return f"{prefix}{n // 4}.{_FLAT_NAMES[n % 4]}"


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
    return key.endswith(_METADATA) or key.startswith(_IGNORED_PREFIXES) or key in _BUFFERS


@dataclass(frozen=True)
class _Converted:
    layout: Layout
    sd: dict[str, torch.Tensor]
    origin: dict[str, str]  # our key -> the file's key, for error messages
    ignored: tuple[str, ...]
    target_from_online: bool


def _convert(sd: Mapping[str, Any]) -> _Converted:
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
    return _Converted(layout, out, origin, tuple(ignored), copied)


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
    ``_action_masks``/``log_std_*`` are dropped (:func:`load_into` compares the buffers with the model's).
    A missing target Q network is filled with a copy of the online Q. The input is not modified; tensors are
    shared with it except the copied target.
    """
    return _convert(sd).sd


# ----------------------------------------------------------------------------------------------------------
# dims


def _require(sd: Mapping[str, torch.Tensor], key: str) -> torch.Tensor:
    if key not in sd:
        raise CheckpointError(f"cannot infer model dims: checkpoint has no {key}")
    return sd[key]


def infer_dims(sd: Mapping[str, Any]) -> CheckpointDims:
    """Read the model dims off the tensor shapes of a state dict in any layout."""
    c = _convert(sd).sd
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
    for size, preset in MODEL_SIZES.items():
        expected = dict(preset)
        if task_set == "mt30" and size == 19:
            expected["latent_dim"] = 512  # the released mt30-19M model (config.resolve_world_model)
        if dims["num_q"] is None:
            expected.pop("num_q")
        if task_set is not None:
            expected["task_dim"] = 96 if task_set == "mt80" or size in (1, 317) else 64
        if all(dims[k] == v for k, v in expected.items()):
            return size
    return None


def count_parameters(sd: Mapping[str, Any]) -> int:
    """Trainable parameter count (target Q excluded), comparable with the published model sizes."""
    c = _convert(sd).sd
    return sum(v.numel() for k, v in c.items() if not k.startswith("_target_Qs."))


# ----------------------------------------------------------------------------------------------------------
# loading


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
    conv = _convert(raw)
    own = model.state_dict()
    fresh = _PWM_FRESH if conv.layout == "pwm" else ()
    _check_keys_and_shapes(conv, own, fresh, raw)
    _check_finite(conv)
    _check_buffers(raw, model)
    full = {k: own[k] for k in own if k.split(".")[0] in fresh and k not in conv.sd}
    model.load_state_dict({**conv.sd, **full}, strict=True)
    present = {k.split(".")[0] for k in conv.sd}
    loaded = tuple(c for c in _COMPONENTS if c in present)
    left = tuple(c for c in _COMPONENTS if c in fresh and c not in present and hasattr(model, c))
    return LoadReport(source, conv.layout, loaded, left, conv.target_from_online, conv.ignored)


def _named(conv: _Converted, key: str) -> str:
    src = conv.origin.get(key, key)
    return key if src == key else f"{src} (ours: {key})"


def _shape(t: torch.Tensor | torch.Size) -> str:
    return str(list(t.shape if isinstance(t, torch.Tensor) else t))


def _check_keys_and_shapes(
    conv: _Converted, own: Mapping[str, torch.Tensor], fresh: tuple[str, ...], raw: Mapping[str, Any]
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


def _check_finite(conv: _Converted) -> None:
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


# ----------------------------------------------------------------------------------------------------------
# writing


def export_state_dict(model: WorldModel, layout: ExportLayout = "released") -> dict[str, Any]:
    """Our model's weights in an official layout, so that TD-MPC2 or PWM code can load them.

    ``released``: the 2023 layout; current TD-MPC2 converts it on load and fills its own buffers and tensordict
    metadata, so it is the safest choice for official code. ``current``: layout (a) with the
    ``_detach_Qs_params`` alias and the ``_action_masks``/``log_std_*`` buffers but without the tensordict
    ``__batch_size``/``__device`` entries: TD-MPC2's loader skips conversion for this layout, so with a
    tensordict version that emits those entries they must first be copied in from a fresh model's
    ``state_dict()``, as its own converter does. ``pwm``: layout (d), without policy prior and Q ensemble.
    Tensors share storage with the model (as ``state_dict()`` does).
    """
    sd = model.state_dict()
    if layout == "released":
        return {_to_flat_q(k): v for k, v in sd.items()}
    if layout == "current":
        return _to_current(model, sd)
    if layout == "pwm":
        return {_to_pwm(k): v for k, v in sd.items() if k.split(".")[0] not in _PWM_FRESH}
    raise ValueError(f"layout={layout!r}: choose one of released, current, pwm")


def _to_flat_q(key: str) -> str:
    match = re.fullmatch(r"(_Qs|_target_Qs)\.params\.(\d+)\.(.+)", key)
    if match is None:
        return key
    prefix, layer, name = match.groups()
    return f"{prefix}.params.{4 * int(layer) + _FLAT_NAMES.index(name)}"


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
