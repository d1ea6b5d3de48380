"""DreamerV2 on pixels (Hafner et al., 2021): a world-model update on replayed sequences, then an actor-critic
update on latent trajectories imagined from every posterior state, with the actor's gradient taken through the
imagined dynamics (``actor_grad=dynamics``) and only the actor stepped by it.

The same class fine-tunes PreLAR / APV models (``cfg.finetune``): the pretrained RSSM and encoder form their own
optimiser group whose learning rate is 0 for the first ``warmup_updates`` updates, an auxiliary head learns the
plain reward, and the main reward head learns the reward plus APV's kNN video bonus (:mod:`pwm.models.novelty`).
"""

from __future__ import annotations

import copy
from contextlib import contextmanager

import torch
from torch import nn
from torch.nn import functional as F

from pwm.algorithms.base import Algorithm
from pwm.config.dreamer import DreamerAlgConfig, DreamerModelConfig
from pwm.data.pixel_replay import PixelBatch
from pwm.losses.dreamer import image_nll, kl_balanced, lambda_return
from pwm.models.dreamer import DreamerWorldModel
from pwm.models.dreamer_nets import Actor, image_to_float, mlp
from pwm.models.novelty import KNNVideoBonus


@contextmanager
def frozen(*modules: nn.Module):
    """Parameters of ``modules`` take no gradient inside (activations still carry it through them)."""
    params = [p for m in modules for p in m.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)


def _step(opt: torch.optim.Optimizer, loss: torch.Tensor, clip: float) -> float:
    opt.zero_grad(set_to_none=True)
    loss.backward()
    params = [p for g in opt.param_groups for p in g["params"]]
    norm = nn.utils.clip_grad_norm_(params, clip)
    if not torch.isfinite(loss):
        raise FloatingPointError(f"non-finite loss {loss.item()}")
    opt.step()
    return float(norm)


class DreamerV2(Algorithm):
    state_keys = ("model", "actor", "critic", "slow_critic", "model_opt", "actor_opt", "critic_opt", "bonus",
                  "updates")  # fmt: skip

    def __init__(self, cfg: DreamerAlgConfig, model_cfg: DreamerModelConfig, action_dim: int, channels: int = 3):
        self.cfg = cfg
        ft = cfg.finetune
        self.model = DreamerWorldModel(model_cfg, action_dim, encode_actions=ft, channels=channels,
                                       aux_reward=ft and cfg.aux_reward_scale > 0)  # fmt: skip
        feat = self.model.rssm.feat_dim
        self.actor = Actor(feat, action_dim, model_cfg.units, model_cfg.layers)
        self.critic = mlp(feat, 1, model_cfg.units, model_cfg.layers)
        self.slow_critic = copy.deepcopy(self.critic).requires_grad_(False)
        pretrained, rest = self.model.pretrained_groups()
        groups = [{"params": pretrained}, {"params": rest}] if ft else [{"params": [*pretrained, *rest]}]
        self.model_opt = torch.optim.Adam(groups, lr=cfg.model_lr, eps=cfg.eps)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=cfg.actor_lr, eps=cfg.eps)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=cfg.critic_lr, eps=cfg.eps)
        use_bonus = ft and cfg.bonus_beta > 0
        self.bonus = KNNVideoBonus(self.model.encoder.embed_dim, cfg.bonus_k, cfg.bonus_queue, cfg.bonus_window)
        self.bonus = self.bonus if use_bonus else None
        self.updates = 0
        self._policy_state = None

    def to(self, device: torch.device) -> DreamerV2:
        for m in (self.model, self.actor, self.critic, self.slow_critic, self.bonus):
            if m is not None:
                m.to(device)
        return self

    # acting -------------------------------------------------------------------------------------------------
    def reset_policy(self) -> None:
        """Forget the filtered latent state: call at every episode start."""
        self._policy_state = None

    @torch.no_grad()
    def act(self, obs: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        """Actions [B, A] for uint8 images [B, C, H, W], filtering the latent state across calls."""
        embed = self.model.encoder(image_to_float(obs))
        if self._policy_state is None:
            state = self.model.rssm.initial(obs.shape[0], obs.device)
            prev_action = torch.zeros(obs.shape[0], self.actor.net[-1].out_features // 2, device=obs.device)
        else:
            state, prev_action = self._policy_state
        state, _ = self.model.rssm.obs_step(state, self.model.slot(prev_action), embed)
        action, _ = self.actor.sample(state.feat(), deterministic)
        self._policy_state = (state, action)
        return action

    # training -----------------------------------------------------------------------------------------------
    def update(self, data: PixelBatch) -> dict[str, float]:
        post, metrics = self._model_update(data)
        metrics.update(self._behaviour_update(post))
        self.updates += 1
        if self.updates % self.cfg.slow_critic_every == 0:
            self.slow_critic.load_state_dict(self.critic.state_dict())
        return metrics

    def _reward_targets(self, embed: torch.Tensor, reward: torch.Tensor) -> tuple[torch.Tensor, dict]:
        if self.bonus is None:
            return reward, {}
        bonus = self.bonus(embed.detach())
        steps = bonus.shape[1]
        return reward[:, :steps] + self.cfg.bonus_beta * bonus, {"wm/bonus": bonus.mean().item()}

    def _model_update(self, data: PixelBatch):
        cfg, m = self.cfg, self.model
        if cfg.finetune:  # PreLAR's warm-up: the pretrained RSSM + encoder wait until the new parts have adapted
            self.model_opt.param_groups[0]["lr"] = 0.0 if self.updates < cfg.warmup_updates else cfg.model_lr
        image = image_to_float(data.obs)
        embed = m.encoder(image)
        post, prior = m.rssm.observe(embed, m.slot(data.action))
        feat = post.feat()
        kl = kl_balanced(post.logits, prior.logits, cfg.kl_balance, cfg.kl_free)
        img = image_nll(m.decoder(feat), image)
        target, metrics = self._reward_targets(embed, data.reward)
        pred = m.reward(feat).squeeze(-1)[:, : target.shape[1]]
        reward = 0.5 * F.mse_loss(pred, target)  # unit-variance Normal NLL
        loss = kl + img + cfg.reward_scale * reward
        if m.aux_reward is not None:
            aux = 0.5 * F.mse_loss(m.aux_reward(feat).squeeze(-1), data.reward)
            loss = loss + cfg.aux_reward_scale * aux
            metrics["wm/aux_reward_loss"] = aux.item()
        grad = _step(self.model_opt, loss, cfg.grad_clip)
        metrics.update({"wm/kl": kl.item(), "wm/image_loss": img.item(), "wm/reward_loss": reward.item(),
                        "wm/grad_norm": grad})  # fmt: skip
        return post.detach(), metrics

    def actor_loss(self, start) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(actor loss, imagined features [H+1, N, F], lambda targets [H, N]); gradients reach only the actor's
        parameters (the world model and critics are frozen, their activations still pass the gradient)."""
        cfg, m = self.cfg, self.model
        with frozen(m, self.slow_critic):
            feats, entropy = m.imagine(start, lambda f: self.actor.sample(f), cfg.horizon)
            reward = m.reward(feats[1:]).squeeze(-1)
            value = self.slow_critic(feats).squeeze(-1)
        target = lambda_return(reward, value, cfg.gamma, cfg.lam)
        weight = torch.cumprod(torch.full_like(target, cfg.gamma), 0) / cfg.gamma
        loss = -(weight * (target + cfg.entropy * entropy)).mean()
        return loss, feats, target

    def _behaviour_update(self, post) -> dict[str, float]:
        cfg = self.cfg
        start = post.map(lambda x: x.reshape(-1, *x.shape[2:]))
        actor_loss, feats, target = self.actor_loss(start)
        actor_grad = _step(self.actor_opt, actor_loss, cfg.grad_clip)
        weight = torch.cumprod(torch.full_like(target, cfg.gamma), 0) / cfg.gamma
        value = self.critic(feats[:-1].detach()).squeeze(-1)
        critic_loss = 0.5 * (weight * (value - target.detach()).pow(2)).mean()
        critic_grad = _step(self.critic_opt, critic_loss, cfg.grad_clip)
        return {"ac/actor_loss": actor_loss.item(), "ac/critic_loss": critic_loss.item(),
                "ac/target": target.mean().item(), "ac/actor_grad": actor_grad,
                "ac/critic_grad": critic_grad}  # fmt: skip
