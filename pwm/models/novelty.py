"""APV's video-based intrinsic bonus (Seo et al., 2022, "Reinforcement Learning with Action-Free Pre-Training
from Videos"): how far a short window of image embeddings is from its k nearest neighbours among recent ones.

Each window of ``window`` consecutive encoder embeddings is averaged, projected to ``dim`` entries by a fixed
random matrix and pushed into a FIFO queue of ``queue_size``; the bonus of a window is its mean distance to its
``k`` nearest queue entries (the queue includes the batch itself), divided by a running mean of its magnitude
(momentum 0.99). The projection, queue and normaliser are state, so a resumed run continues them exactly.
"""

from __future__ import annotations

import torch
from torch import nn


class KNNVideoBonus(nn.Module):
    def __init__(self, embed_dim: int, k: int, queue_size: int, window: int = 5, dim: int = 128, seed: int = 0):
        super().__init__()
        self.k, self.window, self.queue_size = k, window, queue_size
        gen = torch.Generator().manual_seed(seed)
        self.register_buffer("projection", torch.randn(embed_dim, dim, generator=gen) / dim)
        self.register_buffer("queue", torch.zeros(queue_size, dim))
        self.register_buffer("filled", torch.zeros((), dtype=torch.long))
        self.register_buffer("cursor", torch.zeros((), dtype=torch.long))
        self.register_buffer("mag", torch.ones(()))

    def _push(self, feats: torch.Tensor) -> None:
        feats = feats[-self.queue_size :]
        index = (self.cursor + torch.arange(len(feats), device=feats.device)) % self.queue_size
        self.queue[index] = feats
        self.cursor.copy_((self.cursor + len(feats)) % self.queue_size)
        self.filled.copy_(torch.clamp(self.filled + len(feats), max=self.queue_size))

    @torch.no_grad()
    def forward(self, embed: torch.Tensor) -> torch.Tensor:
        """Bonus [B, T - window + 1] for embeddings [B, T, E] (updates the queue and the normaliser)."""
        windows = embed.unfold(1, self.window, 1).mean(-1) @ self.projection
        batch, steps, dim = windows.shape
        flat = windows.reshape(batch * steps, dim)
        self._push(flat)
        queue = self.queue[: int(self.filled)]
        dist = torch.cdist(flat, queue)
        bonus = dist.topk(min(self.k, len(queue)), largest=False).values.mean(-1)
        self.mag.mul_(0.99).add_(0.01 * bonus.abs().mean())
        return (bonus / (self.mag + 1e-8)).reshape(batch, steps)
