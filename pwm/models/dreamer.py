"""DreamerV2's pixel world model as one module: image encoder, RSSM, image decoder, reward head(s) and what
feeds the RSSM's action slot (the raw action for DreamerV2, an action encoder for PreLAR / APV fine-tuning).

Attribute names are the checkpoint prefixes (``encoder.``, ``rssm.``, ``decoder.``), so that a pretrained
model's weights move into a fine-tuning one by name.
"""

from __future__ import annotations

import torch
from torch import nn

from pwm.config.dreamer import DreamerModelConfig
from pwm.models.dreamer_nets import ActionEncoder, ConvDecoder, ConvEncoder, mlp
from pwm.models.rssm import RSSM, RSSMState

TRANSFERRED = ("encoder", "rssm", "decoder")
"""The parts a pretrained model hands to fine-tuning."""


class DreamerWorldModel(nn.Module):
    """``action_dim``: the env's action size, or None for action-free pretraining; ``encode_actions``: feed the
    action slot through an :class:`ActionEncoder` of ``cfg.latent_action`` outputs (PreLAR / APV fine-tuning)
    instead of the raw action (DreamerV2). ``channels``: 3 per stacked frame."""

    def __init__(
        self,
        cfg: DreamerModelConfig,
        action_dim: int | None,
        encode_actions: bool,
        channels: int = 3,
        aux_reward: bool = False,
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = ConvEncoder(cfg.depth, channels)
        slot = cfg.latent_action if encode_actions or action_dim is None else action_dim
        self.rssm = RSSM(self.encoder.embed_dim, slot, cfg.deter, cfg.hidden, cfg.groups, cfg.classes)
        feat = self.rssm.feat_dim
        self.decoder = ConvDecoder(feat, cfg.depth, channels)
        self.action_encoder = ActionEncoder(action_dim, cfg.slot_units, slot) if encode_actions else None
        has_reward = action_dim is not None
        self.reward = mlp(feat, 1, cfg.units, cfg.layers) if has_reward else None
        self.aux_reward = mlp(feat, 1, cfg.units, cfg.layers) if aux_reward else None

    @property
    def slot_dim(self) -> int:
        return self.rssm.action_dim

    def slot(self, action: torch.Tensor) -> torch.Tensor:
        """What the RSSM's action slot receives for real actions."""
        return action if self.action_encoder is None else self.action_encoder(action)

    def pretrained_groups(self) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        """(RSSM + encoder parameters, the rest): the two optimiser groups of fine-tuning."""
        first = [*self.rssm.parameters(), *self.encoder.parameters()]
        ids = {id(p) for p in first}
        return first, [p for p in self.parameters() if id(p) not in ids]

    def imagine(self, start: RSSMState, policy, horizon: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Roll the prior ``horizon`` steps from ``start`` with ``policy(feat) -> (action, entropy)``; returns the
        features of states 0..H ([H+1, N, F]) and the entropies of the H actions ([H, N])."""
        state, feats, entropies = start, [start.feat()], []
        for _ in range(horizon):
            action, entropy = policy(feats[-1].detach())
            state = self.rssm.img_step(state, self.slot(action))
            feats.append(state.feat())
            entropies.append(entropy)
        return torch.stack(feats), torch.stack(entropies)
