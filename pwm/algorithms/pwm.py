"""PWM: policy learning from a frozen world model with first-order gradients (Georgiev et al. 2024,
arXiv:2407.02466).

One :meth:`PWM.update` = an actor step on the H-step imagined return from a batch of real start states, then
fitting the critic ensemble to TD(λ) (or one-step) targets of that same imagined rollout. The world model is
frozen: it gets no parameter gradients and is never stepped.
"""

from __future__ import annotations

import torch
from torch import nn

from pwm.algorithms.common import fit_critic, set_linear_lr
from pwm.config import PWMConfig
from pwm.losses.actor import imagined_actor_loss
from pwm.losses.returns import one_step_targets, td_lambda_targets
from pwm.models.actor_critic import CriticEnsemble, StochasticActor
from pwm.models.normalizers import RunningMeanStd
from pwm.models.world_model import WorldModel


class PWM:
    def __init__(self, world_model: WorldModel, cfg: PWMConfig, task: int | None = None) -> None:
        cfg.check()
        self.cfg, self.wm = cfg, world_model.requires_grad_(False).eval()
        self.task = task if world_model.cfg.multitask else None
        device = next(world_model.parameters()).device
        latent, action = world_model.cfg.latent_dim, world_model.cfg.action_dim
        self.actor = StochasticActor(latent, action, cfg.actor_hidden, cfg.init_logstd, cfg.min_logstd).to(device)
        self.critic = CriticEnsemble(latent, cfg.critic_hidden, cfg.num_critics).to(device)
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
        self._set_learning_rates()
        task = self._task_ids(obs.shape[0], obs.device)
        with torch.no_grad():
            z = self.wm.encode(obs, task)
        rollout = imagined_actor_loss(self.wm, self.actor, self.critic, z, task, self.cfg)
        actor_loss, actor_grad = self._actor_step(rollout.loss)
        targets = self._targets(rollout.rewards, rollout.next_values)
        value_loss = self._fit_critic(rollout.latents, targets)
        self.iteration += 1
        return {
            "actor/loss": actor_loss,
            "actor/grad_norm": actor_grad,
            "actor/imagined_return": float(-rollout.loss.detach().mean()),
            "actor/logstd": float(self.actor.logstd.detach().mean()),
            "critic/loss": value_loss,
            "critic/target_mean": float(targets.mean()),
            "lr/actor": self.actor_optim.param_groups[0]["lr"],
        }

    def _actor_step(self, per_sample: torch.Tensor) -> tuple[float, float]:
        if self.cfg.ret_rms:
            self.ret_rms.update(per_sample)
            loss = (per_sample / self.ret_rms.std().to(per_sample.dtype)).mean()
        else:
            loss = per_sample.mean() / self.cfg.horizon
        self.actor_optim.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = nn.utils.clip_grad_norm_(self.actor.parameters(), self.cfg.actor_grad_norm)
        if not torch.isfinite(grad_norm):
            raise FloatingPointError(f"PWM iteration {self.iteration}: actor gradient norm is {grad_norm.item()}")
        self.actor_optim.step()
        return float(loss.detach()), float(grad_norm)

    def _targets(self, rewards: torch.Tensor, next_values: torch.Tensor) -> torch.Tensor:
        if self.cfg.critic_targets == "one_step":
            return one_step_targets(rewards, next_values, self.cfg.gamma)
        return td_lambda_targets(rewards, next_values, torch.zeros_like(rewards), self.cfg.gamma, self.cfg.lam)

    def _fit_critic(self, latents: torch.Tensor, targets: torch.Tensor) -> float:
        c = self.cfg
        return fit_critic(
            self.critic, self.critic_optim, latents, targets, c.critic_iterations, c.critic_batches, c.critic_grad_norm
        )

    def _set_learning_rates(self) -> None:
        if self.cfg.lr_schedule == "linear":
            optims = [(self.actor_optim, self.cfg.actor_lr), (self.critic_optim, self.cfg.critic_lr)]
            set_linear_lr(optims, self.iteration, self.cfg.max_iterations, self.cfg.lr_min)

    def state_dict(self) -> dict:
        return {
            "actor": self.actor.state_dict(),
            "critic": self.critic.state_dict(),
            "actor_optim": self.actor_optim.state_dict(),
            "critic_optim": self.critic_optim.state_dict(),
            "ret_rms": self.ret_rms.state_dict(),
            "iteration": self.iteration,
        }

    def load_state_dict(self, state: dict) -> None:
        self.actor.load_state_dict(state["actor"])
        self.critic.load_state_dict(state["critic"])
        self.actor_optim.load_state_dict(state["actor_optim"])
        self.critic_optim.load_state_dict(state["critic_optim"])
        self.ret_rms.load_state_dict(state["ret_rms"])
        self.iteration = state["iteration"]
