"""DreamerV2's recurrent state-space model (Hafner et al., 2021, "Mastering Atari with Discrete World Models").

State = (deter, stoch): ``deter`` is a GRU state (LayerNorm GRU cell), ``stoch`` is ``groups`` one-hot categorical
variables of ``classes`` classes each (32x32 in the paper), sampled with straight-through gradients. The prior
predicts ``stoch`` from ``deter`` alone; the posterior also sees the image embedding. Every transition takes an
``action_dim`` input (the *action slot*): a real action (DreamerV2), zeros (action-free pretraining), a latent
action inferred from two frames (PreLAR pretraining) or an encoded real action (PreLAR / APV fine-tuning), so
one set of weights carries across those phases.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass
class RSSMState:
    """A batch of latent states; ``logits`` are those ``stoch`` was drawn from ([..., groups, classes])."""

    deter: torch.Tensor
    stoch: torch.Tensor
    logits: torch.Tensor

    def feat(self) -> torch.Tensor:
        """The features every head reads: [deter, flattened stoch]."""
        return torch.cat([self.deter, self.stoch.flatten(-2)], -1)

    def detach(self) -> RSSMState:
        return RSSMState(self.deter.detach(), self.stoch.detach(), self.logits.detach())

    def map(self, fn) -> RSSMState:
        return RSSMState(fn(self.deter), fn(self.stoch), fn(self.logits))


def stack_states(states: list[RSSMState], dim: int) -> RSSMState:
    return RSSMState(*(torch.stack([getattr(s, k) for s in states], dim) for k in ("deter", "stoch", "logits")))


class LayerNormGRUCell(nn.Module):
    """DreamerV2's GRU cell: one linear layer for all gates, LayerNorm on its output, update gate biased by -1
    (so the state is mostly kept at initialisation)."""

    def __init__(self, inp: int, size: int) -> None:
        super().__init__()
        self.linear = nn.Linear(inp + size, 3 * size, bias=False)
        self.norm = nn.LayerNorm(3 * size)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        reset, cand, update = self.norm(self.linear(torch.cat([x, h], -1))).chunk(3, -1)
        reset = torch.sigmoid(reset)
        cand = torch.tanh(reset * cand)
        update = torch.sigmoid(update - 1)
        return update * cand + (1 - update) * h


def straight_through_onehot(logits: torch.Tensor) -> torch.Tensor:
    """A one-hot sample per group whose gradient is that of the probabilities (straight-through).

    Sampled by inverting the CDF (the index is the count of cumulative probabilities below a uniform draw), which
    on CPU is ~10x faster than ``torch.multinomial`` over thousands of 16-class rows and draws the same law.
    """
    probs = F.softmax(logits, -1)
    uniform = torch.rand(*probs.shape[:-1], 1, device=probs.device, dtype=probs.dtype)
    index = (probs.detach().cumsum(-1) < uniform).sum(-1).clamp_max(probs.shape[-1] - 1)
    onehot = F.one_hot(index, probs.shape[-1]).to(probs.dtype)
    return onehot + probs - probs.detach()


class RSSM(nn.Module):
    """Prior ``img_step`` and posterior ``obs_step``; ``observe`` rolls both over a sequence, ``imagine_step`` is
    the prior alone (what the actor-critic rolls out)."""

    def __init__(self, embed: int, action_dim: int, deter: int, hidden: int, groups: int, classes: int) -> None:
        super().__init__()
        self.deter_dim, self.groups, self.classes, self.action_dim = deter, groups, classes, action_dim
        stoch = groups * classes
        self.img_in = nn.Linear(stoch + action_dim, hidden)
        self.gru = LayerNormGRUCell(hidden, deter)
        self.img_out = nn.Linear(deter, hidden)
        self.img_logits = nn.Linear(hidden, stoch)
        self.obs_out = nn.Linear(deter + embed, hidden)
        self.obs_logits = nn.Linear(hidden, stoch)

    @property
    def feat_dim(self) -> int:
        return self.deter_dim + self.groups * self.classes

    def initial(self, batch: int, device: torch.device) -> RSSMState:
        zeros = torch.zeros(batch, self.groups, self.classes, device=device)
        return RSSMState(torch.zeros(batch, self.deter_dim, device=device), zeros, zeros)

    def _stoch(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = logits.reshape(*logits.shape[:-1], self.groups, self.classes)
        return straight_through_onehot(logits), logits

    def img_step(self, prev: RSSMState, action: torch.Tensor) -> RSSMState:
        """Prior: the next state from the previous one and the action slot's input."""
        x = F.elu(self.img_in(torch.cat([prev.stoch.flatten(-2), action], -1)))
        deter = self.gru(x, prev.deter)
        stoch, logits = self._stoch(self.img_logits(F.elu(self.img_out(deter))))
        return RSSMState(deter, stoch, logits)

    def obs_step(self, prev: RSSMState, action: torch.Tensor, embed: torch.Tensor) -> tuple[RSSMState, RSSMState]:
        """(posterior, prior) of one step; the posterior shares the prior's ``deter``."""
        prior = self.img_step(prev, action)
        stoch, logits = self._stoch(self.obs_logits(F.elu(self.obs_out(torch.cat([prior.deter, embed], -1)))))
        return RSSMState(prior.deter, stoch, logits), prior

    def observe(
        self, embed: torch.Tensor, action: torch.Tensor, start: RSSMState | None = None
    ) -> tuple[RSSMState, RSSMState]:
        """Posteriors and priors over [B, T] sequences; ``action[:, t]`` is the input that leads *into* step t."""
        batch, steps = embed.shape[:2]
        state = self.initial(batch, embed.device) if start is None else start
        posts, priors = [], []
        for t in range(steps):
            state, prior = self.obs_step(state, action[:, t], embed[:, t])
            posts.append(state)
            priors.append(prior)
        return stack_states(posts, 1), stack_states(priors, 1)
