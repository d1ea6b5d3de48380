"""Mixed precision: ``general.precision=fp32|bf16`` and the fp32 islands inside a bf16 computation.

``bf16`` runs forward passes under ``torch.autocast`` (CPU and CUDA): matrix products take bfloat16 inputs and
accumulate in fp32, which doubles the matmul rate on CPUs with AVX512-BF16/AMX and on recent GPUs. Parameters,
gradients and optimiser state stay fp32 (autocast casts a copy of each weight), and backward passes run outside
the autocast region (their ops follow the dtypes the forward recorded).

Pieces that are numerically fragile and cheap stay fp32 through :func:`fp32` (see each call site): softmaxes
over SimNorm groups and two-hot bins, the two-hot cross-entropy, symlog/symexp, the output heads whose values
are read as numbers (rewards, values, logits), TD(λ) targets and the running normalisers. So does the latent
path, which is not cheap but is where bf16 changed learning: the world model's encoder and latent dynamics
(``WorldModel.encode``/``next``: actor gradients pass through H dynamics steps, and bf16 quantised the
observations) and the critic value that ends an actor's objective (``CriticEnsemble.bootstrap``);
``benchmarks/bf16_gradients.py`` measures what each does to the actor's gradient. bf16 keeps the heads' hidden
layers, the Q ensemble, the policy prior, the actor and the critic fit, which hold most of the FLOPs. With
``fp32`` nothing here changes a single operation.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import TypeVar

import torch

from pwm.utils.errors import ConfigError

PRECISIONS = ("fp32", "bf16")
F = TypeVar("F", bound=Callable)


class Precision:
    """The compute precision of one algorithm on one device: ``autocast()`` wraps its forward passes."""

    def __init__(self, name: str = "fp32", device: torch.device | str = "cpu") -> None:
        if name not in PRECISIONS:
            raise ConfigError(f"general.precision={name!r}; choose one of {', '.join(PRECISIONS)}")
        self.name = name
        self.device_type = torch.device(device).type

    @property
    def bf16(self) -> bool:
        return self.name == "bf16"

    def autocast(self) -> contextlib.AbstractContextManager:
        """bf16 autocast on this device, or nothing (``fp32``)."""
        if not self.bf16:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=torch.bfloat16)

    def __repr__(self) -> str:
        return f"Precision({self.name!r}, {self.device_type!r})"


def autocast_active(device_type: str) -> bool:
    return torch.is_autocast_enabled(device_type)


def to_fp32(x: torch.Tensor) -> torch.Tensor:
    """``x`` as fp32 if it is a reduced-precision float (bf16/fp16); anything else unchanged (no copy)."""
    return x.float() if x.dtype in (torch.bfloat16, torch.float16) else x


def fp32(fn: F) -> F:
    """Run ``fn`` with autocast off and its reduced-precision tensor arguments cast to fp32.

    Outside autocast (``fp32`` runs) it calls ``fn`` unchanged, so fp32 results are bit-identical to code
    without the decorator. Tensor arguments decide the device whose autocast is switched off.
    """

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        tensor = next((a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)), None)
        device_type = tensor.device.type if tensor is not None else "cpu"
        if not autocast_active(device_type) and not _has_low_precision(args, kwargs):
            return fn(*args, **kwargs)
        args = tuple(to_fp32(a) if isinstance(a, torch.Tensor) else a for a in args)
        kwargs = {k: to_fp32(v) if isinstance(v, torch.Tensor) else v for k, v in kwargs.items()}
        with torch.autocast(device_type, enabled=False):
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _has_low_precision(args: tuple, kwargs: dict) -> bool:
    return any(
        isinstance(a, torch.Tensor) and a.dtype in (torch.bfloat16, torch.float16) for a in (*args, *kwargs.values())
    )
