"""Discrete-regression math shared by the world model and its losses (TD-MPC2 §1.6).

Rewards and values are predicted as logits over ``num_bins`` evenly spaced bins in symlog space. All functions
take plain value tensors of any shape ``[...]`` and logits of shape ``[..., num_bins]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from pwm.utils.precision import fp32


# fp32 under bf16 autocast: log1p/expm1 of values up to e^10 need more than bf16's 8 mantissa bits, and
# these functions are element-wise and cheap.
@fp32
def symlog(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * torch.log1p(x.abs())


@fp32
def symexp(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * torch.expm1(x.abs())


@dataclass(frozen=True)
class BinSupport:
    """Bin layout of the two-hot encoding: ``num_bins`` centres from ``vmin`` to ``vmax`` (symlog space)."""

    num_bins: int = 101
    vmin: float = -10.0
    vmax: float = 10.0

    @property
    def bin_size(self) -> float:
        return (self.vmax - self.vmin) / (self.num_bins - 1)

    def centres(self, like: torch.Tensor) -> torch.Tensor:
        return torch.linspace(self.vmin, self.vmax, self.num_bins, device=like.device, dtype=like.dtype)

    def _lower_bin(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Index of the bin below symlog(x) and the fraction of the way to the next bin."""
        pos = (symlog(x).clamp(self.vmin, self.vmax) - self.vmin) / self.bin_size
        idx = pos.floor().nan_to_num(0.0)  # a NaN target keeps a valid index; its NaN weight makes the loss NaN
        return idx.long(), pos - idx


@fp32
def two_hot(x: torch.Tensor, support: BinSupport) -> torch.Tensor:
    """Encode values as a two-hot distribution over the bins: ``[...] -> [..., num_bins]``."""
    idx, frac = support._lower_bin(x)
    out = x.new_zeros(*x.shape, support.num_bins)
    out.scatter_(-1, idx.unsqueeze(-1), (1 - frac).unsqueeze(-1))
    out.scatter_add_(-1, ((idx + 1) % support.num_bins).unsqueeze(-1), frac.unsqueeze(-1))
    return out


@fp32  # softmax over 101 bins and the expectation: bf16 logits would be coarse to ±0.06 at |logit| 16
def two_hot_inv(logits: torch.Tensor, support: BinSupport, space: str = "symexp") -> torch.Tensor:
    """Decode logits to values: the softmax-weighted bin centre, mapped back with symexp.

    ``space="symlog"`` skips the symexp, as PWM's reference does for its actor objective (docs/pwm_reference.md,
    "Q3: reward decoded in symlog space").
    """
    value = F.softmax(logits, dim=-1) @ support.centres(logits)
    return symexp(value) if space == "symexp" else value


@fp32  # log-softmax and the cross-entropy: the loss of every reward/value head, cheap next to the GEMMs
def soft_ce(logits: torch.Tensor, target: torch.Tensor, support: BinSupport) -> torch.Tensor:
    """Cross-entropy between logits ``[..., num_bins]`` and the two-hot encoding of ``target [...]``.

    Equal to ``-(two_hot(target) * log_softmax(logits)).sum(-1)``; gathers the two non-zero bins instead of
    materialising the dense target, which matters on the update's hot path.
    """
    log_probs = F.log_softmax(logits, dim=-1)
    idx, frac = support._lower_bin(target)
    lower = log_probs.gather(-1, idx.unsqueeze(-1)).squeeze(-1)
    upper = log_probs.gather(-1, ((idx + 1) % support.num_bins).unsqueeze(-1)).squeeze(-1)
    return -((1 - frac) * lower + frac * upper)
