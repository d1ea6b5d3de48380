"""Building blocks of the TD-MPC2 world model.

Module and attribute names are chosen so that ``state_dict`` keys equal the official checkpoint keys
(``<prefix>.{i}.weight``, ``<prefix>.{i}.ln.weight``, ``_Qs.params.{i}.weight`` ...); the checkpoint converters
rely on it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pwm.models.activations import ACTIVATIONS, Mish
from pwm.utils.precision import fp32

_LOW_PRECISION = (torch.bfloat16, torch.float16)
_fp32_linear = fp32(F.linear)
_fp32_baddbmm = fp32(torch.baddbmm)


class SimNorm(nn.Module):
    """Simplicial normalisation: softmax over consecutive groups of ``dim`` features.

    fp32 under bf16 autocast: the latent it produces is every head's input and the consistency loss's target,
    and the softmax over groups of 8 is cheap.
    """

    def __init__(self, dim: int = 8) -> None:
        super().__init__()
        self.dim = dim

    @fp32
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        return F.softmax(x.unflatten(-1, (-1, self.dim)), dim=-1).view(shape)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


def layer_norm(x: torch.Tensor) -> torch.Tensor:
    """LayerNorm over the last dim without affine, statistics in fp32 for any input dtype.

    For bf16 activations, fp32 unit gain and zero bias select ATen's mixed-type kernel, which keeps the mean and
    1/std (and the copies saved for backward) in fp32; without an affine it would round them to bf16.
    """
    if x.dtype not in _LOW_PRECISION:
        return F.layer_norm(x, x.shape[-1:])
    ones = torch.ones(x.shape[-1], device=x.device)
    return F.layer_norm(x, x.shape[-1:], ones, torch.zeros_like(ones))


class HeadLinear(nn.Linear):
    """A head's output Linear, computed in fp32 under bf16 autocast: its outputs are read as numbers (a scalar
    reward or value, two-hot logits, a policy's mean and log-std), where bf16 would round 300 to steps of 2 and a
    logit of 16 to steps of 0.06. It is a small share of a head's FLOPs (out_features ≤ 101 of 512-wide layers)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _fp32_linear(x, self.weight, self.bias)


class NormedLinear(nn.Linear):
    """Linear -> optional Dropout -> LayerNorm (child ``ln``) -> activation (Mish unless given)."""

    def __init__(self, in_features: int, out_features: int, dropout: float = 0.0, act: nn.Module | None = None):
        super().__init__(in_features, out_features)
        self.ln = nn.LayerNorm(out_features)
        self.act = act if act is not None else Mish()
        self.dropout = nn.Dropout(dropout) if dropout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = super().forward(x)
        if self.dropout is not None:
            x = self.dropout(x)
        return self.act(self.ln(x))


def mlp(in_dim: int, hidden: list[int], out_dim: int, act: nn.Module | None = None, dropout: float = 0.0):
    """NormedLinear(Mish) per hidden layer, then NormedLinear(act) if ``act`` is given, else a :class:`HeadLinear`.

    Dropout applies to the first layer only, as in TD-MPC2.
    """
    dims = [in_dim, *hidden]
    layers: list[nn.Module] = [
        NormedLinear(dims[i], dims[i + 1], dropout=dropout if i == 0 else 0.0) for i in range(len(hidden))
    ]
    layers.append(NormedLinear(dims[-1], out_dim, act=act) if act is not None else HeadLinear(dims[-1], out_dim))
    return nn.Sequential(*layers)


class _EnsembleLayerNorm(nn.Module):
    def __init__(self, members: int, features: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(members, features))
        self.bias = nn.Parameter(torch.zeros(members, features))


class _EnsembleLinear(nn.Module):
    """Parameters of one layer of ``members`` stacked MLPs; ``ln`` is absent on the output layer."""

    def __init__(self, members: int, in_features: int, out_features: int, normed: bool) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(members, out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(members, out_features))
        self.ln = _EnsembleLayerNorm(members, out_features) if normed else None


class EnsembleMLP(nn.Module):
    """``members`` MLPs with identical shapes evaluated with batched matmuls.

    Hidden layers are Linear -> LayerNorm -> Mish (TD-MPC2's Q functions), or Linear -> Mish -> LayerNorm with
    ``act_first=True`` (PWM's critics); ``activation="elu"`` swaps Mish for ELU. Parameters are stacked along a
    leading member axis (``params.{layer}.weight [K, out, in]``), which is the official checkpoint layout of
    TD-MPC2's Q ensemble. ``members`` selects a subset so that min/avg targets evaluate only the members they use.
    """

    def __init__(
        self,
        members: int,
        in_dim: int,
        hidden: list[int],
        out_dim: int,
        dropout: float = 0.0,
        act_first: bool = False,
        activation: str = "mish",
    ) -> None:
        super().__init__()
        dims = [in_dim, *hidden, out_dim]
        self.act = ACTIVATIONS[activation]
        self.num_members = members
        self.dropout = dropout
        self.act_first = act_first
        self.params = nn.ModuleList(
            _EnsembleLinear(members, dims[i], dims[i + 1], normed=i < len(hidden)) for i in range(len(dims) - 1)
        )

    def forward(self, x: torch.Tensor, members: torch.Tensor | None = None, detach: bool = False) -> torch.Tensor:
        """``x [..., in] -> [K, ..., out]`` for the selected members (all by default).

        ``detach=True`` uses parameter values without recording gradients for them (the policy-prior update
        must move the policy only).
        """
        lead = x.shape[:-1]
        h = x.reshape(-1, x.shape[-1])
        affine = None  # act_first: the previous LayerNorm's (gain, bias), folded into this layer's weights
        last = len(self.params) - 1
        for i, layer in enumerate(self.params):
            w, b, ln = self._layer_params(layer, members, detach)
            if affine is not None:
                w, b = w * affine[0].unsqueeze(1), b + (w @ affine[1].unsqueeze(-1)).squeeze(-1)
            if i == 0:
                h = self._first_layer(h, w, b)
            elif i == last:  # the output head in fp32 (see HeadLinear)
                h = _fp32_baddbmm(b.unsqueeze(1), h, w.transpose(1, 2))
            else:
                h = torch.baddbmm(b.unsqueeze(1), h, w.transpose(1, 2))
            if ln is None:
                continue
            if self.act_first:  # Linear -> Mish -> LayerNorm; its affine moves into the next layer
                h, affine = layer_norm(self.act(h)), ln
            else:  # the affine in the activations' dtype, so that bf16 activations stay bf16
                gain, bias = ln[0].to(h.dtype).unsqueeze(1), ln[1].to(h.dtype).unsqueeze(1)
                h = self.act(torch.addcmul(bias, layer_norm(h), gain))
        return h.view(h.shape[0], *lead, h.shape[-1])

    @staticmethod
    def _layer_params(layer: _EnsembleLinear, members: torch.Tensor | None, detach: bool):
        tensors = [layer.weight, layer.bias]
        if layer.ln is not None:
            tensors += [layer.ln.weight, layer.ln.bias]
        if members is not None:
            tensors = [t[members] for t in tensors]
        if detach:
            tensors = [t.detach() for t in tensors]
        return tensors[0], tensors[1], (tensors[2:] if layer.ln is not None else None)

    def _first_layer(self, h: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Shared input: one GEMM for all members, then dropout, returned member-major ``[K, N, out]``.

        Dropout scales the weights by 1/(1-p) (cheap: weights are small) and zeroes positions drawn as
        geometric gaps, an exact Bernoulli(p) process that costs ~p·N random numbers instead of N.
        """
        k, out = w.shape[0], w.shape[1]
        p = self.dropout if self.training else 0.0
        if p:
            w, b = w / (1 - p), b / (1 - p)
        y = torch.addmm(b.reshape(-1), h, w.reshape(k * out, -1).T)
        if p:
            y.view(-1).index_fill_(0, bernoulli_positions(y.numel(), p, y.device), 0.0)
        return y.view(-1, k, out).transpose(0, 1).contiguous()


def bernoulli_positions(n: int, p: float, device: torch.device) -> torch.Tensor:
    """Indices in ``[0, n)`` each included independently with probability ``p`` (cumulative geometric gaps)."""
    mean = n * p
    draws = int(mean + 8 * mean**0.5 + 16)
    while True:
        pos = torch.empty(draws, device=device).geometric_(p).cumsum_(0).long() - 1
        if pos[-1] >= n:  # the gaps covered the whole range, so no position was missed
            return pos[pos < n]
        draws *= 2


QEnsemble = EnsembleMLP  # TD-MPC2's name for its Q functions


def init_weights(module: nn.Module) -> None:
    """TD-MPC2 init: truncated-normal(0.02) Linear weights, zero biases, U(-0.02, 0.02) embeddings."""
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        nn.init.zeros_(module.bias)
    elif isinstance(module, _EnsembleLinear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.uniform_(module.weight, -0.02, 0.02)
