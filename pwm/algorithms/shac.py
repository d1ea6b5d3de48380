"""SHAC: short-horizon actor-critic with gradients through a differentiable simulator (Xu et al., ICLR 2022).

One :meth:`SHAC.update` (an "epoch") rolls every env H steps with the policy, back-propagates the negative
H-step return plus a bootstrapped value through the simulator into the actor, then fits the critic ensemble to
TD(λ) targets of the same rollout. Defaults are the variant PWM benchmarks (docs/pwm_reference.md): min over 3
online critics, no target critic (``target_critic=true`` gives the original's Polyak target), observation
normalisation, and the actor loss scaled by a running std of the per-env returns.
"""

from __future__ import annotations

import copy

import torch

from pwm.algorithms.actor_critic import (
    actor_step,
    apply_lr_schedule,
    critic_targets,
    fit_critic,
    scaled_actor_loss,
)
from pwm.algorithms.base import Algorithm, EnvData
from pwm.config import SHACConfig
from pwm.envs.sim.base import BatchedEnv
from pwm.losses.returns import SegmentReturns
from pwm.models.actor_critic import build_actor_critic
from pwm.models.normalizers import RunningMeanStd, clip_normalized
from pwm.utils.precision import Precision


class SHAC(Algorithm):
    state_keys = ("actor", "critic", "actor_optim", "critic_optim", "obs_rms", "ret_rms", "target_critic", "iteration")

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        cfg: SHACConfig,
        device: torch.device | str = "cpu",
        precision: str = "fp32",
    ) -> None:
        """``precision="bf16"`` applies to the critic fit only: the actor's gradient flows through the simulator,
        whose physics must stay fp32, and the actor is tiny next to the critic fit's 8x4 minibatch steps."""
        cfg.check()
        self.precision = Precision(precision, device)
        self.cfg = cfg
        self.actor, self.critic = build_actor_critic(obs_dim, action_dim, cfg, device)
        self.target_critic = copy.deepcopy(self.critic).requires_grad_(False) if cfg.target_critic else None
        betas = tuple(cfg.betas)
        self.actor_optim = torch.optim.Adam(self.actor.parameters(), lr=cfg.actor_lr, betas=betas)
        self.critic_optim = torch.optim.Adam(self.critic.parameters(), lr=cfg.critic_lr, betas=betas)
        self.obs_rms = RunningMeanStd((obs_dim,)).to(device)
        self.ret_rms = RunningMeanStd().to(device)
        self.iteration = 0

    def normalize(self, obs: torch.Tensor, stats: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        if not self.cfg.obs_rms:
            return obs
        mean, std = stats if stats is not None else (self.obs_rms.mean, self.obs_rms.std())
        return clip_normalized((obs - mean) / std, self.cfg.obs_clip).to(obs.dtype)

    @torch.no_grad()
    def act(self, obs: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        return torch.tanh(self.actor(self.normalize(obs), deterministic))

    def _bootstrap(self, x: torch.Tensor) -> torch.Tensor:
        """Value of the (normalised) next observations: gradient to the observations, none to critic parameters."""
        critic = self.target_critic if self.target_critic is not None else self.critic
        return critic.bootstrap(x)

    def update(self, data: EnvData) -> dict[str, float]:
        """One SHAC epoch on ``data.env`` (built with ``requires_grad=True``), continuing from its current state."""
        env, cfg = data.env, self.cfg
        if not env.requires_grad:
            raise ValueError(f"SHAC needs an env with gradients through the step; {env.name} has requires_grad=False")
        apply_lr_schedule(cfg, self.iteration, [(self.actor_optim, cfg.actor_lr), (self.critic_optim, cfg.critic_lr)])
        rollout = self._rollout(env, data.on_step)
        loss = scaled_actor_loss(rollout["loss"], cfg, self.ret_rms)
        grad_norm = actor_step(self.actor, self.actor_optim, loss, cfg.actor_grad_norm, f"SHAC epoch {self.iteration}")
        env.detach()
        targets = critic_targets(cfg, rollout["rewards"], rollout["next_values"], rollout["dones"])
        value_loss = fit_critic(self.critic, self.critic_optim, rollout["inputs"], targets, cfg, self.precision)
        if self.target_critic is not None:
            with torch.no_grad():
                torch._foreach_lerp_(
                    list(self.target_critic.parameters()), list(self.critic.parameters()), 1 - cfg.target_critic_alpha
                )
        self.iteration += 1
        return {
            "actor/loss": float(loss.detach()),
            "actor/grad_norm": grad_norm,
            "actor/logstd": float(self.actor.logstd.detach().mean()),
            "critic/loss": value_loss,
            "critic/target_mean": float(targets.mean()),
            "lr/actor": self.actor_optim.param_groups[0]["lr"],
        }

    def _rollout(self, env: BatchedEnv, on_step) -> dict[str, torch.Tensor]:
        """H differentiable steps; per env, the negative discounted return of each segment plus its bootstrap."""
        cfg = self.cfg
        obs = env.detach()
        stats = (self.obs_rms.mean.clone(), self.obs_rms.std().clone())  # frozen for this rollout, as SHAC does
        returns = SegmentReturns(obs.shape[0], cfg.gamma, obs.device)
        inputs, rewards, next_values, dones = [], [], [], []
        for t in range(cfg.horizon):
            self.obs_rms.update(obs)
            x = self.normalize(obs, stats)
            action = torch.tanh(self.actor(x))
            out = env.step(action)
            if on_step is not None:
                on_step(action.detach(), out)
            value = self._bootstrap(self.normalize(out.info["obs_before_reset"], stats))
            value = torch.where(out.terminated, torch.zeros_like(value), value)
            done = out.terminated | out.truncated
            returns.add(out.reward, value, done, last=t == cfg.horizon - 1)
            inputs.append(x.detach())
            rewards.append(out.reward.detach())
            next_values.append(value.detach())
            dones.append(done.float())
            obs = out.obs
        return {
            "loss": returns.loss,
            "inputs": torch.stack(inputs),
            "rewards": torch.stack(rewards),
            "next_values": torch.stack(next_values),
            "dones": torch.stack(dones),
        }
