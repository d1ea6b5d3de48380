"""Action-free world-model pretraining on video clips: PreLAR (Zhang et al., ECCV 2024) and APV-style.

``prelar_pretrain``: the latent-action net (VANet) reads each frame pair (o_{t-1}, o_t) and outputs a 64-d
Gaussian latent action z_t, reparameterised and fed into the RSSM's action slot at step t (a zero action at
t = 0). Loss = balanced KL(post || prior) + va_kl_scale * KL(q(z_t) || N(0, I)) + image NLL
+ consistency_scale * consistency (``none`` | ``sign`` | ``soft``, see :func:`pwm.losses.dreamer.consistency_loss`).

``apv_pretrain``: the same RSSM with zeros in the action slot (an action-free latent dynamics model), loss =
balanced KL + image NLL. APV itself stacks a second, action-conditional RSSM on the pretrained one; we keep one
RSSM whose action slot receives encoded actions in fine-tuning, as PreLAR does (docs/prelar.md).
"""

from __future__ import annotations

import torch

from pwm.algorithms.base import Algorithm
from pwm.algorithms.dreamerv2 import _step
from pwm.config.dreamer import DreamerAlgConfig, DreamerModelConfig
from pwm.losses.dreamer import (
    categorical_kl,
    consistency_loss,
    gaussian_kl,
    gaussian_kl_to_standard,
    image_nll,
    kl_balanced,
)
from pwm.models.dreamer import DreamerWorldModel
from pwm.models.dreamer_nets import VANet, image_to_float
from pwm.models.rssm import RSSMState


class VideoPretrain(Algorithm):
    state_keys = ("model", "vanet", "opt", "updates")

    def __init__(self, cfg: DreamerAlgConfig, model_cfg: DreamerModelConfig) -> None:
        self.cfg, self.latent = cfg, cfg.name == "prelar_pretrain"
        self.model = DreamerWorldModel(model_cfg, action_dim=None, encode_actions=False)
        self.vanet = VANet(model_cfg.depth, model_cfg.slot_units, model_cfg.latent_action) if self.latent else None
        params = [*self.model.parameters(), *(self.vanet.parameters() if self.latent else [])]
        self.opt = torch.optim.Adam(params, lr=cfg.model_lr, eps=cfg.eps)
        self.updates = 0

    def to(self, device: torch.device) -> VideoPretrain:
        self.model.to(device)
        if self.vanet is not None:
            self.vanet.to(device)
        return self

    def act(self, obs: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        raise TypeError("a pretraining model has no actor: fine-tune it (alg=prelar_finetune)")

    def latent_actions(self, image: torch.Tensor):
        """(slot inputs [B, T, 64] with zeros at t = 0, mean and std [B, T-1, 64]) of frames [B, T, 3, H, W]."""
        mean, std = self.vanet(image[:, :-1], image[:, 1:])
        z = mean + std * torch.randn_like(mean)
        return torch.cat([torch.zeros_like(z[:, :1]), z], 1), mean, std

    def losses(self, frames: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every loss term of one batch of uint8 clips [B, T, 3, H, W] (unscaled)."""
        image = image_to_float(frames)
        embed = self.model.encoder(image)
        batch, steps = embed.shape[:2]
        if self.latent:
            slot, mean, std = self.latent_actions(image)
        else:
            slot = torch.zeros(batch, steps, self.model.slot_dim, device=embed.device)
        post, prior = self.model.rssm.observe(embed, slot)
        out = {"kl": kl_balanced(post.logits, prior.logits, self.cfg.kl_balance, self.cfg.kl_free),
               "image": image_nll(self.model.decoder(post.feat()), image)}  # fmt: skip
        if self.latent:
            out["va_kl"] = gaussian_kl_to_standard(mean, std).mean()
            if self.cfg.consistency != "none":
                out["consistency"] = self.consistency(post, slot, mean, std)
        return out

    def consistency(self, post: RSSMState, slot: torch.Tensor, mean: torch.Tensor, std: torch.Tensor):
        """Swap the latent actions across the batch and compare how far the one-step prior moves (a detached
        target) with how far the action distributions are, pair by pair (PreLAR's "rank" loss)."""
        perm = torch.randperm(slot.shape[0], device=slot.device)
        prev = post.map(lambda x: x[:, :-1].reshape(-1, *x.shape[2:]))
        own = self.model.rssm.img_step(prev, slot[:, 1:].reshape(-1, slot.shape[-1]))
        swapped = self.model.rssm.img_step(prev, slot[perm, 1:].reshape(-1, slot.shape[-1]))
        d_state = categorical_kl(own.logits, swapped.logits).detach()
        d_action = gaussian_kl(mean, std, mean[perm], std[perm]).reshape(-1)
        return consistency_loss(d_state, d_action, self.cfg.consistency, self.cfg.consistency_temperature)

    def update(self, data: torch.Tensor) -> dict[str, float]:
        terms = self.losses(data)
        scales = {"kl": 1.0, "image": 1.0, "va_kl": self.cfg.va_kl_scale, "consistency": self.cfg.consistency_scale}
        loss = sum(scales[k] * v for k, v in terms.items())
        grad = _step(self.opt, loss, self.cfg.grad_clip)
        self.updates += 1
        return {**{f"pre/{k}": float(v.detach()) for k, v in terms.items()}, "pre/grad_norm": grad}
