"""The networks around DreamerV2's RSSM: the conv image encoder and decoder, MLP heads, the actor, PreLAR's
latent-action net (VANet) and the action encoder that replaces it for fine-tuning.

Images are [..., 3, 64, 64] floats in [-0.5, 0.5]. The encoder is DreamerV2's four stride-2 4x4 convolutions
(depth d, 2d, 4d, 8d; embedding 32d); PreLAR's released code uses a residual encoder instead (its embedding is
3072 wide), which we do not reproduce (docs/prelar.md).
"""

from __future__ import annotations

import itertools

import torch
from torch import nn
from torch.nn import functional as F


def mlp(inp: int, out: int, units: int, layers: int) -> nn.Sequential:
    """``layers`` ELU hidden layers of ``units``, then a linear output (DreamerV2's head shape)."""
    mods: list[nn.Module] = []
    for i in range(layers):
        mods += [nn.Linear(inp if i == 0 else units, units), nn.ELU()]
    mods.append(nn.Linear(units if layers else inp, out))
    return nn.Sequential(*mods)


def image_to_float(frames: torch.Tensor) -> torch.Tensor:
    """uint8 [..., 3, H, W] -> float in [-0.5, 0.5] (DreamerV2's scaling)."""
    return frames.float() / 255.0 - 0.5


class ConvEncoder(nn.Module):
    """64x64x(3*stack) -> embedding of 32*depth (four 4x4 stride-2 convolutions, ELU)."""

    def __init__(self, depth: int, channels: int = 3) -> None:
        super().__init__()
        widths = [channels, depth, 2 * depth, 4 * depth, 8 * depth]
        self.convs = nn.ModuleList(nn.Conv2d(a, b, 4, 2) for a, b in itertools.pairwise(widths))
        self.embed_dim = 32 * depth

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        lead = image.shape[:-3]
        x = image.reshape(-1, *image.shape[-3:])
        for conv in self.convs:
            x = F.elu(conv(x))
        return x.reshape(*lead, -1)


class ConvDecoder(nn.Module):
    """Features -> the mean of a unit-variance Normal over the 64x64 image (1 -> 5 -> 13 -> 30 -> 64 pixels)."""

    def __init__(self, feat: int, depth: int, channels: int = 3) -> None:
        super().__init__()
        self.depth = depth
        self.linear = nn.Linear(feat, 32 * depth)
        spec = [(32 * depth, 4 * depth, 5), (4 * depth, 2 * depth, 5), (2 * depth, depth, 6), (depth, channels, 6)]
        self.deconvs = nn.ModuleList(nn.ConvTranspose2d(a, b, k, 2) for a, b, k in spec)

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        lead = feat.shape[:-1]
        x = self.linear(feat).reshape(-1, 32 * self.depth, 1, 1)
        for i, deconv in enumerate(self.deconvs):
            x = deconv(x)
            if i < len(self.deconvs) - 1:
                x = F.elu(x)
        return x.reshape(*lead, *x.shape[1:])


class Actor(nn.Module):
    """DreamerV2's continuous actor: mean tanh(mu), std 2*sigmoid(s/2) + min_std; a reparameterised sample clipped
    to [-1, 1] with straight-through gradients (our stand-in for the truncated Normal)."""

    def __init__(self, feat: int, action_dim: int, units: int, layers: int, min_std: float = 0.1) -> None:
        super().__init__()
        self.net = mlp(feat, 2 * action_dim, units, layers)
        self.min_std = min_std

    def forward(self, feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, std = self.net(feat).chunk(2, -1)
        return torch.tanh(mean), 2 * torch.sigmoid(std / 2) + self.min_std

    def sample(self, feat: torch.Tensor, deterministic: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """(action, entropy per sample); the entropy is the untruncated Normal's."""
        mean, std = self(feat)
        entropy = torch.distributions.Normal(mean, std).entropy().sum(-1)
        if deterministic:
            return mean, entropy
        raw = mean + std * torch.randn_like(mean)
        return raw + (raw.clamp(-1, 1) - raw).detach(), entropy


class VANet(nn.Module):
    """PreLAR's latent-action net: conv encoder of the channel-stacked pair (o_{t-1}, o_t), then an MLP to the
    mean and std of a Gaussian latent action (std = 2*sigmoid(s/2), as in the released code)."""

    def __init__(self, depth: int, units: int, latent: int) -> None:
        super().__init__()
        self.encoder = ConvEncoder(depth, channels=6)
        self.head = mlp(self.encoder.embed_dim, 2 * latent, units, 1)

    def forward(self, prev: torch.Tensor, cur: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, std = self.head(self.encoder(torch.cat([prev, cur], -3))).chunk(2, -1)
        return mean, 2 * torch.sigmoid(std / 2)


class ActionEncoder(nn.Module):
    """Real action -> the 64-d action slot the pretrained RSSM was trained on (PreLAR's deterministic encoder)."""

    def __init__(self, action_dim: int, units: int, latent: int) -> None:
        super().__init__()
        self.net = mlp(action_dim, latent, units, 1)

    def forward(self, action: torch.Tensor) -> torch.Tensor:
        return self.net(action)
