"""PolyGRAD's two trajectory denoisers (arXiv 2312.08533): both map a noisy trajectory ``x_t [B, h, D]``, the
scaled actions ``[B, h, A]`` and the diffusion step ``t [B]`` to a prediction of the clean trajectory ``[B, h, D]``.

- :class:`ResidualMLPDenoiser` (SynthER's network, Lu et al. 2023): the whole trajectory flattened into one vector,
  so every step sees every other; sizes grow with the horizon.
- :class:`TransformerDenoiser` (a nanoGPT-style stack): one token per time step with causal attention, so step k is
  predicted from steps <= k only; its size does not depend on the horizon.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class FourierTimeEmbedding(nn.Module):
    """Random (frozen) Fourier features of t, then Linear-SiLU-Linear (SynthER's time embedding)."""

    def __init__(self, dim: int, freqs: int = 16) -> None:
        super().__init__()
        self.register_buffer("weights", torch.randn(freqs))
        self.mlp = nn.Sequential(nn.Linear(2 * freqs + 1, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        t = t.float()[:, None]
        angles = 2 * math.pi * t * self.weights[None]
        return self.mlp(torch.cat([t, angles.sin(), angles.cos()], dim=-1))


class ResidualMLPDenoiser(nn.Module):
    """Flatten [x, a] over the trajectory, add the time embedding, then ``blocks`` pre-norm residual blocks
    ``x + Linear(ReLU(LayerNorm(x)))`` of width ``width``, a final LayerNorm-ReLU and a linear head."""

    def __init__(self, horizon: int, x_dim: int, action_dim: int, width: int = 1024, blocks: int = 6) -> None:
        super().__init__()
        self.horizon, self.x_dim = horizon, x_dim
        d_in = horizon * (x_dim + action_dim)
        embed = max(d_in, 128)
        self.proj = nn.Linear(d_in, embed)
        self.time = FourierTimeEmbedding(embed)
        self.inp = nn.Linear(embed, width)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(width), nn.ReLU(), nn.Linear(width, width)) for _ in range(blocks)
        )
        self.head = nn.Sequential(nn.LayerNorm(width), nn.ReLU(), nn.Linear(width, horizon * x_dim))

    def forward(self, x: torch.Tensor, actions: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        h = self.proj(torch.cat([x, actions], dim=-1).reshape(b, -1)) + self.time(t)
        h = self.inp(h)
        for block in self.blocks:
            h = h + block(h)
        return self.head(h).view(b, self.horizon, self.x_dim)


def sinusoidal(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Transformer-style sinusoidal embedding of the diffusion step."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000) * torch.arange(half, device=t.device) / max(half - 1, 1))
    angles = t.float()[:, None] * freqs[None]
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


class CausalBlock(nn.Module):
    """Pre-norm causal self-attention and a GELU MLP (x4), both residual, no dropout."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.out = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        att = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.out(att.transpose(1, 2).reshape(b, n, d))
        return x + self.mlp(self.ln2(x))


class TransformerDenoiser(nn.Module):
    """Token k = Linear([x_k, a_k]) + learned position + MLP(sinusoidal(t)); causal blocks; a linear head to x_k
    (no final LayerNorm, as the reference)."""

    def __init__(self, horizon: int, x_dim: int, action_dim: int, dim: int = 312, blocks: int = 6,
                 heads: int = 4) -> None:  # fmt: skip
        super().__init__()
        if dim % heads:
            raise ValueError(f"transformer width {dim} is not divisible by its {heads} heads")
        self.dim = dim
        self.token = nn.Linear(x_dim + action_dim, dim)
        self.position = nn.Parameter(torch.zeros(1, horizon, dim))
        self.time = nn.Sequential(nn.Linear(dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.blocks = nn.ModuleList(CausalBlock(dim, heads) for _ in range(blocks))
        self.head = nn.Linear(dim, x_dim)
        self._init_gpt(blocks)

    def _init_gpt(self, blocks: int) -> None:
        """GPT-2's init: N(0, 0.02) weights, zero biases, residual output projections scaled by 1/sqrt(2 blocks)."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)
        nn.init.normal_(self.position, std=0.02)
        for block in self.blocks:
            for proj in (block.out, block.mlp[2]):
                nn.init.normal_(proj.weight, std=0.02 / math.sqrt(2 * blocks))

    def forward(self, x: torch.Tensor, actions: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        h = self.token(torch.cat([x, actions], dim=-1)) + self.position[:, : x.shape[1]]
        h = h + self.time(sinusoidal(t, self.dim))[:, None]
        for block in self.blocks:
            h = block(h)
        return self.head(h)


def make_denoiser(kind: str, horizon: int, x_dim: int, action_dim: int, width: int, blocks: int,
                  heads: int = 4) -> nn.Module:  # fmt: skip
    """``mlp`` or ``transformer`` with ``width`` (MLP hidden size or transformer embedding) and ``blocks``."""
    if kind == "mlp":
        return ResidualMLPDenoiser(horizon, x_dim, action_dim, width, blocks)
    if kind == "transformer":
        return TransformerDenoiser(horizon, x_dim, action_dim, width, blocks, heads)
    raise ValueError(f"denoiser {kind!r}; choose mlp or transformer")
