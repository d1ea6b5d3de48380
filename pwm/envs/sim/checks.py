"""One-line checks of what a user hands the simulators: config values, the device and seeds.

Every config dataclass of a task declares the allowed range of its numeric fields in a ``LIMITS`` class attribute
(``{"substeps": ">= 1", "dt": "> 0"}``; subclasses add to their parents'). ``check_config`` checks every field
against its type annotation (integers, finite numbers, booleans, strings, ``Literal`` choices, tuples and dicts of
numbers) and its limit, and raises a one-line ``ConfigError`` naming the env, the field, the value and what is
allowed: ``env dflex_hopper: substeps=0 must be >= 1``. A valid config comes back unchanged (the same object);
numpy scalars are turned into Python ones.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
import operator
import types
import typing
from typing import Any, Literal

import numpy as np
import torch

from pwm.utils.errors import ConfigError

SEED_MIN, SEED_MAX = -(2**63), 2**64 - 1  # what torch.Generator.manual_seed accepts
_COMPARE = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}


def as_seed(value: Any, where: str) -> int:
    """``value`` as a Python int seed (numpy integers included); anything else is a one-line ConfigError."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ConfigError(f"{where}: seed={value!r} must be an integer")
    seed = int(value)
    if not SEED_MIN <= seed <= SEED_MAX:
        raise ConfigError(f"{where}: seed={seed} must be in [-2**63, 2**64 - 1]")
    return seed


def check_device(value: Any, where: str, allowed: tuple[str, ...] | None = None) -> torch.device:
    """``value`` as a ``torch.device`` this machine has; otherwise a one-line ConfigError saying what to use.

    ``allowed``: the device types the caller supports (``None``: any torch device that works here).
    """
    try:
        device = torch.device(value)
    except (RuntimeError, TypeError, ValueError):
        raise ConfigError(f"{where}: device={value!r} is not a device; use cpu or cuda") from None
    if device.type == "meta":
        raise ConfigError(
            f"{where}: device={value!r} is not supported: the simulators need real memory; use cpu or cuda"
        )
    if allowed is not None and device.type not in allowed:
        raise ConfigError(f"{where}: device={value!r} is not supported here; use {' or '.join(allowed)}")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"{where}: device={value!r} but this machine has no CUDA device; use device=cpu")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise ConfigError(f"{where}: device={value!r} but this machine has {count} CUDA device(s); use cuda:0")
    elif device.type != "cpu":
        try:
            torch.empty(0, device=device)
        except (RuntimeError, AssertionError):
            raise ConfigError(f"{where}: device={value!r} is not available on this machine; use cpu") from None
    return device


def check_config(cfg: Any, env: str) -> Any:
    """``cfg`` with every field checked (see the module docstring); ``env`` names the task in the message."""
    where = f"env {env}"
    hints = _hints(type(cfg))
    limits = _limits(type(cfg))
    changed = {}
    for field in dataclasses.fields(cfg):
        name, value = field.name, getattr(cfg, field.name)
        if name == "device":
            check_device(value, where)
            continue
        if name == "seed":
            new = as_seed(value, where)
        else:
            new = _checked(value, hints[name], f"{where}: {name}={value!r} must be")
            if name in limits:
                _check_limit(new, limits[name], f"{where}: {name}={value!r} must be")
        if type(new) is not type(value) or new != value:
            changed[name] = new
    return dataclasses.replace(cfg, **changed) if changed else cfg


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


@functools.cache
def _limits(cls: type) -> dict[str, str]:
    limits: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        limits.update(vars(klass).get("LIMITS", {}))
    return limits


def _checked(value: Any, hint: Any, prefix: str) -> Any:
    """``value`` if it fits ``hint`` (numpy scalars made Python ones), else a ConfigError starting with ``prefix``."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _checked(value, inner[0], prefix) if len(inner) == 1 else value
    if origin is Literal:
        if isinstance(value, str) and value in args:
            return value
        raise ConfigError(f"{prefix} one of {', '.join(map(repr, args))}")
    if hint is bool:
        if isinstance(value, (bool, np.bool_)):
            return bool(value)
        raise ConfigError(f"{prefix} true or false")
    if hint is int:
        if isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_)):
            return int(value)
        raise ConfigError(f"{prefix} an integer")
    if hint is float:
        return _real(value, prefix)
    if hint is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"{prefix} a string")
    if origin is tuple:
        return _tuple(value, args, prefix)
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{prefix} a mapping")
        return {k: _checked(v, args[1], prefix) for k, v in value.items()}
    return value


def _real(value: Any, prefix: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ConfigError(f"{prefix} a finite number")
    return value if type(value) in (int, float) else float(value)


def _tuple(value: Any, args: tuple, prefix: str) -> tuple:
    if not isinstance(value, (tuple, list)):
        raise ConfigError(f"{prefix} a tuple of numbers")
    if len(args) == 2 and args[1] is Ellipsis:
        return tuple(_checked(v, args[0], prefix) for v in value)
    if len(value) != len(args):
        raise ConfigError(f"{prefix} a tuple of {len(args)} numbers")
    return tuple(_checked(v, a, prefix) for v, a in zip(value, args, strict=True))


def _check_limit(value: Any, rule: str, prefix: str) -> None:
    """``rule`` is ``"<op> <number>"``; it applies to a number, every item of a tuple and every value of a dict."""
    if value is None:
        return
    many = isinstance(value, (dict, tuple))
    items = value.values() if isinstance(value, dict) else value if many else (value,)
    op, bound = rule.split()
    if not all(_COMPARE[op](v, float(bound)) for v in items):
        raise ConfigError(f"{prefix} {rule}{' (every item)' if many else ''}")
