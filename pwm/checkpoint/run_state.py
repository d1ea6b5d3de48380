"""Our own run-state checkpoints: everything needed to resume a run exactly.

A run state holds the state dicts of named components (model, optimisers, normalisers, sampler), the step,
every RNG state, the config that produced it and library versions. Files are written atomically (temporary
file in the same directory, fsync, rename): a process killed mid-write leaves at most a ``*.tmp`` file, which is
never loaded. A state with NaN/inf values is refused before it can replace a good one.
"""

from __future__ import annotations

import platform
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import torch

import pwm
from pwm.utils.io import atomic_torch_save
from pwm.utils.safe_load import BEST_POLICY, RUN_STATE, UnsafeFileError, safe_torch_load
from pwm.utils.seeding import capture_rng, restore_rng

FORMAT_VERSION = 1
_STATE_FILE = re.compile(r"^state_(\d{9})\.pt$")


class RunStateError(ValueError):
    """A run state is missing, corrupt, non-finite or from a different config; the message is one line."""


class Stateful(Protocol):
    def state_dict(self) -> dict: ...
    def load_state_dict(self, state: dict) -> Any: ...


def flatten(config: Mapping, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def _first_non_finite(obj: Any, path: str = "") -> str | None:
    if isinstance(obj, torch.Tensor):
        return path if obj.is_floating_point() and not torch.isfinite(obj).all() else None
    if isinstance(obj, Mapping):
        items = obj.items()
    elif isinstance(obj, list | tuple):
        items = enumerate(obj)
    else:
        return None
    for key, value in items:
        bad = _first_non_finite(value, f"{path}.{key}" if path else str(key))
        if bad is not None:
            return bad
    return None


def save_run_state(
    path: str | Path, components: Mapping[str, Stateful], step: int, config: Mapping, extra: dict | None = None
) -> None:
    """Write a run state atomically; raise RunStateError (writing nothing) if any value is NaN/inf."""
    path = Path(path)
    states = {name: c.state_dict() for name, c in components.items()}
    bad = _first_non_finite(states)
    if bad is not None:
        raise RunStateError(f"refusing to write {path}: {bad} holds NaN/inf values (the last good state is kept)")
    payload = {
        "format_version": FORMAT_VERSION,
        "step": int(step),
        "components": states,
        "rng": capture_rng(),
        "config": dict(config),
        "extra": extra or {},
        "versions": {"pwm": str(pwm.__version__), "torch": str(torch.__version__), "python": platform.python_version()},
    }
    atomic_torch_save(payload, path)


def read_run_state(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise RunStateError(f"no run state at {path}")
    payload = _load(path, "run state", RUN_STATE)
    if not isinstance(payload, dict) or payload.get("format_version") != FORMAT_VERSION:
        raise RunStateError(f"{path} is not a pwm run state (format_version {FORMAT_VERSION} expected)")
    return payload


def _load(path: Path, what: str, allow) -> Any:
    """Weights-only load; a refused type or an unreadable file is a one-line RunStateError."""
    try:
        return safe_torch_load(path, what=what, allow=allow, map_location="cpu")
    except UnsafeFileError as err:
        raise RunStateError(str(err)) from None
    except Exception as err:  # a truncated or foreign file: torch raises many types
        raise RunStateError(f"{path} is not a readable {what} ({_one_line(err)})") from None


def read_best_policy(path: str | Path) -> dict:
    """A ``best_policy.pt`` (``{"algo": state, "iteration", "eval", "config"}``, written by the dflex runner)."""
    path = Path(path)
    payload = _load(path, "best-policy file", BEST_POLICY)
    if not isinstance(payload, dict):
        raise RunStateError(f"{path} holds a {type(payload).__name__}, expected a best-policy dict")
    return payload


def _one_line(err: BaseException, limit: int = 200) -> str:
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text[: limit - 3] + '...' if len(text) > limit else text}"


def check_config(payload: dict, config: Mapping, path: Path, ignore: tuple[str, ...] = ()) -> None:
    """Refuse a state written under another config; keys equal to or under an ``ignore`` entry may differ."""
    saved, current = flatten(payload["config"]), flatten(config)

    def ignored(key: str) -> bool:
        return any(key == i or key.startswith(f"{i}.") for i in ignore)

    for key in sorted(set(saved) | set(current)):
        if ignored(key):
            continue
        if saved.get(key, "<absent>") != current.get(key, "<absent>"):
            raise RunStateError(
                f"{path} was written with {key}={saved.get(key, '<absent>')!r} but this run has "
                f"{key}={current.get(key, '<absent>')!r}; use a new run directory or the same config"
            )


def load_run_state(
    path: str | Path, components: Mapping[str, Stateful], config: Mapping, ignore: tuple[str, ...] = ()
) -> tuple[int, dict]:
    """Restore components and RNG states from ``path``; return ``(step, extra)``."""
    path = Path(path)
    payload = read_run_state(path)
    check_config(payload, config, path, ignore)
    missing = set(components) - set(payload["components"])
    if missing:
        raise RunStateError(f"{path} has no state for component {sorted(missing)[0]!r}")
    for name, component in components.items():
        component.load_state_dict(payload["components"][name])
    restore_rng(payload["rng"])
    return payload["step"], payload["extra"]


class CheckpointDir:
    """Periodic run states ``state_<step>.pt`` in one directory, keeping the newest ``keep`` of them."""

    def __init__(self, directory: str | Path, keep: int = 3) -> None:
        self.directory = Path(directory)
        self.keep = keep

    def paths(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return sorted(p for p in self.directory.iterdir() if _STATE_FILE.match(p.name))

    def latest(self) -> Path | None:
        paths = self.paths()
        return paths[-1] if paths else None

    def save(self, components: Mapping[str, Stateful], step: int, config: Mapping, extra: dict | None = None) -> Path:
        path = self.directory / f"state_{step:09d}.pt"
        save_run_state(path, components, step, config, extra)
        for old in self.paths()[: -self.keep]:
            old.unlink(missing_ok=True)
        return path
