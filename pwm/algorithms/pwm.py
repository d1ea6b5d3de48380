"""PWM: policy learning from a frozen world model with first-order gradients (Georgiev et al. 2024,
arXiv:2407.02466).

One :meth:`PWM.update` = an actor step on the H-step imagined return from a batch of real start states, then
fitting the critic ensemble to TD(λ) (or one-step) targets of that same imagined rollout. The world model is
frozen: it gets no parameter gradients and is never stepped.
"""

from __future__ import annotations

import torch

from pwm.algorithms.actor_critic import actor_step, apply_lr_schedule, critic_targets, fit_critic, scaled_actor_loss
from pwm.algorithms.base import Algorithm
from pwm.config import PWMConfig
from pwm.losses.actor import imagined_actor_loss
from pwm.models.actor_critic import build_actor_critic
from pwm.models.normalizers import RunningMeanStd
from pwm.models.world_model import WorldModel
from pwm.utils.precision import Precision


class PWM(Algorithm):
    state_keys = ("actor", "critic", "actor_optim", "critic_optim", "ret_rms", "iteration")

    def __init__(
        self, world_model: WorldModel, cfg: PWMConfig, task: int | None = None, precision: str = "fp32"
    ) -> None:
        """``precision="bf16"``: the imagined rollout and the critic's forward passes under bf16 autocast."""
        cfg.check()
        self.cfg, self.wm = cfg, world_model.requires_grad_(False).eval()
        self.task = task if world_model.cfg.multitask else None
        device = next(world_model.parameters()).device
        self.precision = Precision(precision, device)
        latent, action = world_model.cfg.latent_dim, world_model.cfg.action_dim
        self.actor, self.critic = build_actor_critic(latent, action, cfg, device)
        betas = tuple(cfg.betas)
        self.actor_optim = torch.optim.Adam(self.actor.parameters(), lr=cfg.actor_lr, betas=betas, fused=True)
        self.critic_optim = torch.optim.Adam(self.critic.parameters(), lr=cfg.critic_lr, betas=betas, fused=True)
        self.ret_rms = RunningMeanStd().to(device)
        self.iteration = 0

    def _task_ids(self, batch: int, device: torch.device) -> torch.Tensor | None:
        return None if self.task is None else torch.full((batch,), self.task, dtype=torch.long, device=device)

    @torch.no_grad()
    def act(self, obs: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        """Actions in [-1, 1] for observations ``[B, O]`` (padded to the world model's obs dim)."""
        z = self.wm.encode(obs, self._task_ids(obs.shape[0], obs.device))
        return torch.tanh(self.actor(z, deterministic))

    def update(self, obs: torch.Tensor) -> dict[str, float]:
        """One PWM iteration from start observations ``obs [B, O]``."""
        cfg = self.cfg
        apply_lr_schedule(cfg, self.iteration, [(self.actor_optim, cfg.actor_lr), (self.critic_optim, cfg.critic_lr)])
        task = self._task_ids(obs.shape[0], obs.device)
        with self.precision.autocast():
            with torch.no_grad():
                z = self.wm.encode(obs, task)
            rollout = imagined_actor_loss(self.wm, self.actor, self.critic, z, task, cfg)
        loss = scaled_actor_loss(rollout.loss, cfg, self.ret_rms)
        who = f"PWM iteration {self.iteration}"
        actor_grad = actor_step(self.actor, self.actor_optim, loss, cfg.actor_grad_norm, who)
        targets = critic_targets(cfg, rollout.rewards, rollout.next_values, torch.zeros_like(rollout.rewards))
        value_loss = fit_critic(self.critic, self.critic_optim, rollout.latents, targets, cfg, self.precision)
        self.iteration += 1
        return {
            "actor/loss": float(loss.detach()),
            "actor/grad_norm": actor_grad,
            "actor/imagined_return": float(-rollout.loss.detach().mean()),
            "actor/logstd": float(self.actor.logstd.detach().mean()),
            "critic/loss": value_loss,
            "critic/target_mean": float(targets.mean()),
            "lr/actor": self.actor_optim.param_groups[0]["lr"],
        }
