"""Mish, x * tanh(softplus(x)), the default activation of every network here, with CPU kernels per dtype, and
the table of hidden activations the actor-critic configs choose from.

ATen's fused Mish is slow on CPU in both dtypes (9.8 ms forward and 21-25 ms forward+backward for a bf16
[3, 2048, 400] tensor on one thread, where a bf16 multiply takes 0.4 ms). Mish sits on every update's hot
path, so fp32 and bf16 activations get their own one-exp formulations. CUDA keeps ATen's kernel.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

_EXP_CLAMP = 20.0  # tanh(softplus(20)) = 1 - 8e-18: above it the formulas below are exact, and exp cannot overflow


class _MishCPU(torch.autograd.Function):
    """fp32 Mish with one exp: tanh(softplus(x)) = 1 - 2 / (e^x (e^x + 2) + 2); backward uses
    d tanh(softplus(x)) / dx = (1 - t^2) sigmoid(x). Overflow-safe (e^x = inf gives t = 1)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        e = torch.exp(x)
        t = 1 - 2 / (e * (e + 2) + 2)
        ctx.save_for_backward(x, t)
        return x * t

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        x, t = ctx.saved_tensors
        return grad * torch.addcmul(t, x * torch.sigmoid(x), 1 - t * t)


class _MishBF16(torch.autograd.Function):
    """Mish of bf16 activations, computed in fp32 in a few cheap passes and rounded to bf16 once.

    With e = e^x, n = e (e + 2) and d = n + 2: tanh(softplus(x)) = n / d, and the derivative is
    n / d + 4 x e (e + 1) / d^2; no step cancels (the fp32 kernel's 1 - 2/(≈2) would, in bf16, give 0 for
    x < -5). The forward also computes that derivative (only when a gradient is needed) and saves it in fp32, so
    the backward is one multiply. Outputs and gradients equal ATen's to the bit on every bf16 value in
    (-30, 100) on our build (``tests/test_precision.py``), at ~1.6x its speed (13 vs 21 ms forward+backward for a
    [3, 2048, 400] tensor on one thread; a whole bf16 PWM iteration at one thread: 3.87 -> 3.4 CPU s).
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        e = xf.clamp(max=_EXP_CLAMP).exp_()
        n = (e + 2).mul_(e)
        d = n + 2
        t = n.div_(d)
        if ctx.needs_input_grad[0]:
            ctx.save_for_backward(torch.addcdiv(t, (e + 1).mul_(e).mul_(xf), d.square_(), value=4))
        return xf.mul_(t).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (slope,) = ctx.saved_tensors
        return (grad * slope).to(grad.dtype)


def mish(x: torch.Tensor) -> torch.Tensor:
    """Mish: ATen's kernel on CUDA and for fp16, else the CPU kernel for the dtype (bf16, or fp32/float64)."""
    if x.is_cuda or x.dtype == torch.float16:
        return F.mish(x)
    return _MishBF16.apply(x) if x.dtype == torch.bfloat16 else _MishCPU.apply(x)


class Mish(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return mish(x)


ACTIVATIONS = {"mish": mish, "elu": F.elu}
"""Hidden activations of the actor-critic MLPs (``alg.activation``): Mish (PWM) or ELU (SHAC's original networks)."""


class Activation(nn.Module):
    """One of :data:`ACTIVATIONS` as a module, by name."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.fn = ACTIVATIONS[name]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)

    def extra_repr(self) -> str:
        return self.name
