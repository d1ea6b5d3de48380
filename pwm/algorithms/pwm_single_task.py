"""PWM on one task with a real (non-differentiated) simulator: PWM's dflex setting (docs/pwm_reference.md).

Each :meth:`SingleTaskPWM.update` imagines H steps from the envs' current observations through the world model
while the real envs take the same actions in lock-step (no simulator gradients). The actor's gradient comes only
from the world model's dynamics, its reward head and the critics. Where a real env finishes, its imagined segment
ends there (value 0 on termination), and the imagined latent restarts from the encoded real reset state.
Finished real episodes fill a replay buffer on which the world model keeps training.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar

import torch

from pwm.algorithms.actor_critic import (
    actor_step,
    apply_lr_schedule,
    clip_grads_finite,
    critic_targets,
    fit_critic,
    scaled_actor_loss,
)  # fmt: skip
from pwm.algorithms.base import Algorithm, EnvData, StepHook
from pwm.algorithms.tdmpc2 import TDMPC2
from pwm.config import ConfigError, PWMConfig, TDMPC2Config
from pwm.data.buffer import ReplayBuffer
from pwm.data.episodes import Episode
from pwm.envs.sim.base import BatchedEnv
from pwm.losses.returns import SegmentReturns
from pwm.losses.world_model import scalar_world_model_loss
from pwm.models.actor_critic import build_actor_critic
from pwm.models.normalizers import RunningMeanStd, clip_normalized
from pwm.models.world_model import WorldModel
from pwm.utils.precision import Precision


class SingleTaskPWM(Algorithm):
    state_keys = (
        "world_model", "actor", "critic", "actor_optim", "critic_optim", "wm_optim", "wm_trainer",
        "obs_rms", "rew_rms", "ret_rms", "iteration", "wm_bootstrapped",
    )  # fmt: skip
    state_aliases: ClassVar[dict[str, str]] = {"world_model": "wm"}

    def __init__(
        self, obs_dim: int, action_dim: int, cfg: PWMConfig, device: torch.device | str = "cpu", num_envs: int = 0,
        precision: str = "fp32",
    ) -> None:  # fmt: skip
        """``num_envs``: the training envs, whose H-step rollouts the critic is fitted on (0: not checked).
        ``precision="bf16"``: world-model, actor and critic forward passes under bf16 autocast; the simulator's
        step stays fp32."""
        cfg.check()
        self.precision = Precision(precision, device)
        if num_envs and (cfg.horizon * num_envs) % cfg.critic_batches:
            pairs = cfg.horizon * num_envs
            raise ConfigError(f"alg.critic_batches={cfg.critic_batches} must divide horizon*num_envs={pairs}")
        self.cfg = cfg
        bins = 1 if cfg.wm_loss == "pwm" else cfg.world_model.num_bins
        wm_cfg = dataclasses.replace(cfg.world_model, obs_dim=obs_dim, action_dim=action_dim, task_dim=0, num_bins=bins)
        self.wm = WorldModel(wm_cfg).to(device)
        self.reward_space = "symexp"  # only read by two-hot heads (wm_loss=tdmpc2): rewards on their true scale
        self.wm_trainer = None
        if cfg.wm_loss == "tdmpc2":
            tdmpc2 = TDMPC2Config(
                batch_size=cfg.wm_batch_size, horizon=cfg.wm_horizon, rho=0.99, lr=cfg.wm_lr, discount=cfg.gamma
            )
            self.wm_trainer = TDMPC2(self.wm, tdmpc2, precision)
        trained = (self.wm._encoder, self.wm._dynamics, self.wm._reward)  # PWM trains no Q or policy prior
        self.wm_params = [p for module in trained for p in module.parameters()]
        latent = self.wm.cfg.latent_dim
        self.actor, self.critic = build_actor_critic(latent, action_dim, cfg, device)
        betas = tuple(cfg.betas)
        self.actor_optim = torch.optim.Adam(self.actor.parameters(), lr=cfg.actor_lr, betas=betas)
        self.critic_optim = torch.optim.Adam(self.critic.parameters(), lr=cfg.critic_lr, betas=betas)
        self.wm_optim = torch.optim.Adam(self.wm_params, lr=cfg.wm_lr)
        self.obs_rms = RunningMeanStd((obs_dim,)).to(device)
        self.rew_rms = RunningMeanStd().to(device)
        self.ret_rms = RunningMeanStd().to(device)
        self.iteration = 0
        self.wm_bootstrapped = False
        self.progress: Callable[[int, str], Any] | None = None
        """Set by a runner: ``progress(total, description)`` -> a bar with ``update``/``close``, shown for long
        world-model phases (the first iteration's ``wm_bootstrap_iterations`` and pretraining)."""

    # ---- acting ------------------------------------------------------------------------------------------------
    def normalize(self, obs: torch.Tensor) -> torch.Tensor:
        if not self.cfg.obs_rms:
            return obs
        return clip_normalized((obs - self.obs_rms.mean) / self.obs_rms.std(), self.cfg.obs_clip).to(obs.dtype)

    @torch.no_grad()
    def act(self, obs: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        return torch.tanh(self.actor(self.wm.encode(self.normalize(obs)), deterministic))

    @torch.no_grad()
    def collect(self, env: BatchedEnv, steps: int, on_step: StepHook | None = None) -> None:
        """Step the real envs with the current stochastic policy only (warm-up while the buffer is empty)."""
        for _ in range(steps):
            action = self.act(env.obs, deterministic=False)
            out = env.step(action)
            if on_step is not None:
                on_step(action, out)

    # ---- one iteration -----------------------------------------------------------------------------------------
    def update(self, data: EnvData) -> dict[str, float]:
        """Actor step on the imagined return, critic fit, then world-model training on ``data.buffer``."""
        cfg = self.cfg
        optims = [(self.actor_optim, cfg.actor_lr), (self.critic_optim, cfg.critic_lr), (self.wm_optim, cfg.wm_lr)]
        apply_lr_schedule(cfg, self.iteration, optims)
        self.wm.requires_grad_(False)
        with self.precision.autocast():
            rollout = self._imagine(data.env, data.on_step)
        self.wm.requires_grad_(True)
        loss = scaled_actor_loss(rollout["loss"], cfg, self.ret_rms)
        who = f"PWM iteration {self.iteration}"
        grad_norm = actor_step(self.actor, self.actor_optim, loss, cfg.actor_grad_norm, who)
        targets = critic_targets(cfg, rollout["rewards"], rollout["next_values"], rollout["dones"])
        value_loss = fit_critic(self.critic, self.critic_optim, rollout["latents"], targets, cfg, self.precision)
        steps = cfg.wm_iterations if self.wm_bootstrapped else cfg.wm_bootstrap_iterations
        wm_metrics = self.train_world_model(data.buffer, steps)
        self.wm_bootstrapped = True
        self.iteration += 1
        return {
            "actor/loss": float(loss.detach()),
            "actor/grad_norm": grad_norm,
            "actor/imagined_return": float(-rollout["loss"].detach().mean()),
            "actor/logstd": float(self.actor.logstd.detach().mean()),
            "critic/loss": value_loss,
            "critic/target_mean": float(targets.mean()),
            "lr/actor": self.actor_optim.param_groups[0]["lr"],
            **wm_metrics,
        }

    def _imagine(self, env: BatchedEnv, on_step: StepHook | None) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        with torch.no_grad():
            z = self.wm.encode(self.normalize(env.obs))
        returns = SegmentReturns(z.shape[0], cfg.gamma, z.device)
        latents, rewards, next_values, dones = [], [], [], []
        for t in range(cfg.horizon):
            latents.append(z.detach())
            action = torch.tanh(self.actor(z.detach() if cfg.detach_actor_input else z))
            reward = self.wm.decode(self.wm.reward(z, action), self.reward_space).nan_to_num(0.0)
            z = self.wm.next(z, action)
            with torch.no_grad(), torch.autocast(z.device.type, enabled=False):  # the simulator's physics in fp32
                out = env.step(action.detach())
            if on_step is not None:
                on_step(action.detach(), out)
            value = self.critic.bootstrap(z)
            value = torch.where(out.terminated, torch.zeros_like(value), value)
            last = t == cfg.horizon - 1
            done = out.terminated | out.truncated
            extra = cfg.gamma if last and cfg.terminal_bootstrap == "gamma_h_plus_1" else 1.0
            returns.add(reward, value, done, last, extra)
            rewards.append(reward.detach())
            next_values.append(value.detach())
            dones.append(done.float())
            if done.any() and not last:  # a finished env's imagined latent restarts from its real reset state
                with torch.no_grad():
                    fresh = self.wm.encode(self.normalize(out.obs))
                z = torch.where(done[:, None], fresh, z)
        return {
            "loss": returns.loss,
            "latents": torch.stack(latents),
            "rewards": torch.stack(rewards),
            "next_values": torch.stack(next_values),
            "dones": torch.stack(dones),
        }

    # ---- world model -------------------------------------------------------------------------------------------
    def add_episodes(self, buffer: ReplayBuffer, episodes: list[Episode]) -> None:
        """Store finished real episodes; their observations and rewards update the running normalisers."""
        for e in episodes:
            buffer.add_episode(e.obs, e.action, e.reward, terminated=e.terminated)
            device = self.obs_rms.mean.device
            self.obs_rms.update(torch.as_tensor(e.obs, device=device))
            self.rew_rms.update(torch.as_tensor(e.reward, device=device))

    def train_world_model(self, buffer: ReplayBuffer, steps: int) -> dict[str, float]:
        """``steps`` gradient steps on replay windows; rewards scaled by the running std (clamped to ±rew_clamp)."""
        if buffer.num_windows == 0 or steps == 0:
            return {}
        totals: dict[str, float] = {}
        bar = self.progress(steps, "world model") if self.progress is not None and steps >= 100 else None
        for _ in range(steps):
            if bar is not None:
                bar.update(1)
            batch = buffer.sample()
            if self.wm_trainer is not None:  # TD-MPC2's losses on raw rewards (two-hot in symlog space)
                metrics = self.wm_trainer.update(batch._replace(obs=self.normalize(batch.obs)))
                for key, value in metrics.items():
                    totals[key] = totals.get(key, 0.0) + value / steps
                continue
            obs = self.normalize(batch.obs)
            reward = batch.reward
            if self.cfg.rew_rms:
                clamp = self.cfg.rew_clamp
                reward = (reward / self.rew_rms.std().to(reward.dtype)).clamp(-clamp, clamp)
            c = self.cfg
            with self.precision.autocast():
                loss, metrics = scalar_world_model_loss(
                    self.wm, obs, batch.action, reward, c.gamma, c.wm_consistency_coef
                )
            self.wm_optim.zero_grad(set_to_none=True)
            loss.backward()
            grad = clip_grads_finite(self.wm_params, self.cfg.wm_grad_norm)
            self.wm_optim.step()
            for key, value in {**metrics, "grad_norm": grad}.items():
                totals[f"wm/{key}"] = totals.get(f"wm/{key}", 0.0) + float(value.detach()) / steps
        if bar is not None:
            bar.close()
        return totals
