"""The pretrained world model a PreLAR / APV pretraining run hands to fine-tuning: ``pretrained.pt`` holding
``{"format": "pwm-dreamer-pretrained", "version": 1, "config": {...}, "weights": {"encoder.*", "rssm.*",
"decoder.*": tensors}}``. Loading is weights-only and checks every tensor's name and shape against the
fine-tuning model, so a checkpoint of another size is a one-line error naming the first mismatch."""

from __future__ import annotations

import pickle
from pathlib import Path

from torch import nn

from pwm.checkpoint.tdmpc2_layouts import CheckpointError
from pwm.utils.io import atomic_torch_save
from pwm.utils.safe_load import UnsafeFileError, safe_torch_load

FORMAT = "pwm-dreamer-pretrained"
FILE = "pretrained.pt"


def save_pretrained(model: nn.Module, parts: tuple[str, ...], path: str | Path, config: dict) -> Path:
    weights = {f"{p}.{k}": v.detach().cpu() for p in parts for k, v in getattr(model, p).state_dict().items()}
    return atomic_torch_save({"format": FORMAT, "version": 1, "config": config, "weights": weights}, path)


def resolve(path: str | Path) -> Path:
    """A run directory -> its ``pretrained.pt``; a file as it is."""
    path = Path(path)
    return path / FILE if path.is_dir() else path


def read_pretrained(path: str | Path) -> dict:
    path = resolve(path)
    if not path.is_file():
        raise CheckpointError(f"pretrained model {path} does not exist (a prelar/apv_pretrain run writes it)")
    try:
        data = safe_torch_load(path, what="pretrained model", map_location="cpu")
    except (UnsafeFileError, pickle.UnpicklingError, RuntimeError, EOFError) as err:
        raise CheckpointError(f"{path}: not a readable pretrained model ({str(err).splitlines()[0]})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a {FORMAT} file")
    return data


def load_pretrained(model: nn.Module, path: str | Path, parts: tuple[str, ...]) -> int:
    """Copy the pretrained ``parts`` into ``model``; returns how many tensors were carried over. Every tensor of
    those parts must be present with the same shape."""
    weights = read_pretrained(path)["weights"]
    carried = 0
    for part in parts:
        target = getattr(model, part).state_dict()
        for key, value in target.items():
            name = f"{part}.{key}"
            if name not in weights:
                raise CheckpointError(f"{resolve(path)}: no tensor {name}; it was pretrained with other parts")
            if weights[name].shape != value.shape:
                raise CheckpointError(
                    f"{resolve(path)}: {name} has shape {tuple(weights[name].shape)}, the fine-tuning model "
                    f"needs {tuple(value.shape)}: pretrain and fine-tune with the same preset and model sizes"
                )
        getattr(model, part).load_state_dict({k: weights[f"{part}.{k}"] for k in target})
        carried += len(target)
    return carried
