"""SHAC: short-horizon actor-critic with gradients through a differentiable simulator (Xu et al., ICLR 2022).

One :meth:`SHAC.update` (an "epoch") rolls every env H steps with the policy, back-propagates the negative
H-step return plus a bootstrapped value through the simulator into the actor, then fits the critic ensemble to
TD(λ) targets of the same rollout. Defaults are the variant PWM benchmarks (envs_and_peers.md A.5): min over 3
online critics, no target critic (``target_critic=true`` gives the original's Polyak target), observation
normalisation, and the actor loss scaled by a running std of the per-env returns.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch

from pwm.algorithms.common import actor_step, fit_critic, set_linear_lr
from pwm.config import SHACConfig
from pwm.envs.sim.base import BatchedEnv, EnvStep
from pwm.losses.returns import one_step_targets, td_lambda_targets
from pwm.models.actor_critic import CriticEnsemble, StochasticActor
from pwm.models.normalizers import RunningMeanStd

StepHook = Callable[[torch.Tensor, EnvStep], None]


class SHAC:
    def __init__(self, obs_dim: int, action_dim: int, cfg: SHACConfig, device: torch.device | str = "cpu") -> None:
        cfg.check()
        self.cfg = cfg
        self.actor = StochasticActor(obs_dim, action_dim, cfg.actor_hidden, cfg.init_logstd, cfg.min_logstd)
        self.critic = CriticEnsemble(obs_dim, cfg.critic_hidden, cfg.num_critics)
        self.actor.to(device)
        self.critic.to(device)
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
        return ((obs - mean) / std).to(obs.dtype)

    @torch.no_grad()
    def act(self, obs: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        return torch.tanh(self.actor(self.normalize(obs), deterministic))

    def _bootstrap(self, x: torch.Tensor) -> torch.Tensor:
        """Value of the (normalised) next observations: gradient to the observations, none to critic parameters."""
        critic = self.target_critic if self.target_critic is not None else self.critic
        return critic.min(x, detach=True)

    def update(self, env: BatchedEnv, on_step: StepHook | None = None) -> dict[str, float]:
        """One SHAC epoch on ``env`` (which must have ``requires_grad=True``), continuing from its current state."""
        if not env.requires_grad:
            raise ValueError(f"SHAC needs an env with gradients through the step; {env.name} has requires_grad=False")
        cfg = self.cfg
        if cfg.lr_schedule == "linear":
            optims = [(self.actor_optim, cfg.actor_lr), (self.critic_optim, cfg.critic_lr)]
            set_linear_lr(optims, self.iteration, cfg.max_iterations, cfg.lr_min)
        rollout = self._rollout(env, on_step)
        loss_per_env = rollout["loss"]
        if cfg.ret_rms:
            self.ret_rms.update(loss_per_env)
            loss = (loss_per_env / self.ret_rms.std().to(loss_per_env.dtype)).mean()
        else:
            loss = loss_per_env.sum() / (cfg.horizon * loss_per_env.shape[0])
        grad_norm = actor_step(self.actor, self.actor_optim, loss, cfg.actor_grad_norm, f"SHAC epoch {self.iteration}")
        env.detach()
        targets = self._targets(rollout)
        value_loss = fit_critic(
            self.critic, self.critic_optim, rollout["inputs"], targets,
            cfg.critic_iterations, cfg.critic_batches, cfg.critic_grad_norm,
        )  # fmt: skip
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

    def _rollout(self, env: BatchedEnv, on_step: StepHook | None) -> dict[str, torch.Tensor]:
        """H differentiable steps; per env, the negative discounted return of each segment plus its bootstrap."""
        cfg, gamma = self.cfg, self.cfg.gamma
        obs = env.detach()
        stats = (self.obs_rms.mean.clone(), self.obs_rms.std().clone())  # frozen for this rollout, as SHAC does
        n = obs.shape[0]
        loss = torch.zeros(n, device=obs.device)
        ret = torch.zeros(n, device=obs.device)
        discount = torch.ones(n, device=obs.device)
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
            ret = ret + discount * out.reward
            segment = ret + gamma * discount * value
            done = out.terminated | out.truncated
            end = torch.ones_like(done) if t == cfg.horizon - 1 else done
            loss = loss - torch.where(end, segment, torch.zeros_like(segment))
            ret = torch.where(done, torch.zeros_like(ret), ret)
            discount = torch.where(done, torch.ones_like(discount), gamma * discount)
            inputs.append(x.detach())
            rewards.append(out.reward.detach())
            next_values.append(value.detach())
            dones.append(done.float())
            obs = out.obs
        return {
            "loss": loss,
            "inputs": torch.stack(inputs),
            "rewards": torch.stack(rewards),
            "next_values": torch.stack(next_values),
            "dones": torch.stack(dones),
        }

    def _targets(self, rollout: dict[str, torch.Tensor]) -> torch.Tensor:
        r, v = rollout["rewards"], rollout["next_values"]
        if self.cfg.critic_targets == "one_step":
            return one_step_targets(r, v, self.cfg.gamma)
        return td_lambda_targets(r, v, rollout["dones"], self.cfg.gamma, self.cfg.lam)

    def state_dict(self) -> dict:
        state = {
            "actor": self.actor.state_dict(),
            "critic": self.critic.state_dict(),
            "actor_optim": self.actor_optim.state_dict(),
            "critic_optim": self.critic_optim.state_dict(),
            "obs_rms": self.obs_rms.state_dict(),
            "ret_rms": self.ret_rms.state_dict(),
            "iteration": self.iteration,
        }
        if self.target_critic is not None:
            state["target_critic"] = self.target_critic.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        self.actor.load_state_dict(state["actor"])
        self.critic.load_state_dict(state["critic"])
        self.actor_optim.load_state_dict(state["actor_optim"])
        self.critic_optim.load_state_dict(state["critic_optim"])
        self.obs_rms.load_state_dict(state["obs_rms"])
        self.ret_rms.load_state_dict(state["ret_rms"])
        if self.target_critic is not None:
            self.target_critic.load_state_dict(state["target_critic"])
        self.iteration = state["iteration"]
