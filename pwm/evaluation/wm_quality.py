"""How well a multitask world model predicts each task's data: reward and latent errors over an open-loop
H-step rollout of recorded actions, and the error of the predicted discounted H-step return that PWM's actor
maximises.

PWM's policies are only as good as the model's first-order picture of the return (Georgiev et al. 2024): when the
predicted H-step return of recorded action sequences is off by a large fraction of its size, the gradient a policy
follows points away from what the real task rewards, and planning (which only ranks sequences) may fare better.
Errors are measured separately on a task's early episodes (the random and early-learning part of the replay buffer)
and its late ones (the competent part), since a policy worth having lives where the late data are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from pwm.data.buffer import DatasetSampler
from pwm.data.dataset import OfflineDataset
from pwm.models.world_model import WorldModel


@dataclass(frozen=True)
class ModelErrors:
    """Errors of one task's windows, averaged over windows (rewards per agent step, returns discounted over H)."""

    task: str
    part: str
    windows: int
    reward_mae_first: float
    """|r̂ - r| at the first step (latent encoded from a real observation)."""
    reward_mae_rollout: float
    """|r̂ - r| over the H open-loop steps."""
    reward_mean: float
    """Mean |r| of the same steps, the scale the errors compare to."""
    return_rel_error: float
    """mean |Σγ^t r̂_t - Σγ^t r_t| / mean |Σγ^t r_t| (what PWM's actor objective sees, without the bootstrap)."""
    return_rel_error_constant: float
    """The same for a constant predictor (the windows' mean reward at every step): the floor a model must beat."""
    latent_mse_first: float
    """MSE between the predicted latent after one step and the encoding of the real next observation."""
    latent_mse_last: float
    """The same after H steps."""


def split_episodes(dataset: OfflineDataset, task_id: int, late_fraction: float = 0.25) -> dict[str, np.ndarray]:
    """A task's episodes in buffer order: ``early`` (first half), ``late`` (last ``late_fraction``), ``all``."""
    eps = dataset.episodes(task_id)
    n = len(eps)
    return {"early": eps[: max(1, n // 2)], "late": eps[n - max(1, round(n * late_fraction)) :], "all": eps}


@torch.no_grad()
def model_errors(
    model: WorldModel, dataset: OfflineDataset, task: str, task_id: int, horizon: int, gamma: float,
    windows: int = 256, seed: int = 0,
) -> list[ModelErrors]:  # fmt: skip
    """Errors of ``model`` on ``windows`` random windows of each part of the task's episodes."""
    model.eval()
    out = []
    for part, episodes in split_episodes(dataset, task_id).items():
        sampler = DatasetSampler(dataset, windows, horizon, seed=seed, episodes=episodes)
        batch = sampler.sample()
        out.append(_errors(model, batch.obs, batch.action, batch.reward, task, task_id, part, gamma))
    return out


def _errors(model, obs, action, reward, task: str, task_id: int, part: str, gamma: float) -> ModelErrors:
    horizon = action.shape[0]
    targets = model.encode(obs[1:], task_id)  # [H, B, L]
    z = model.encode(obs[0], task_id)
    predicted_r, latent_err = [], []
    for t in range(horizon):
        predicted_r.append(model.decode(model.reward(z, action[t], task_id)).reshape(-1))
        z = model.next(z, action[t], task_id)
        latent_err.append(((z - targets[t]) ** 2).mean().item())
    r_hat = torch.stack(predicted_r)  # [H, B]
    discount = gamma ** torch.arange(horizon, dtype=torch.float32)[:, None]
    ret_hat, ret = (discount * r_hat).sum(0), (discount * reward).sum(0)
    scale = ret.abs().mean().clamp(min=1e-6)
    ret_const = (discount * reward.mean()).sum()
    return ModelErrors(
        task=task, part=part, windows=int(obs.shape[1]),
        reward_mae_first=float((r_hat[0] - reward[0]).abs().mean()),
        reward_mae_rollout=float((r_hat - reward).abs().mean()),
        reward_mean=float(reward.abs().mean()),
        return_rel_error=float((ret_hat - ret).abs().mean() / scale),
        return_rel_error_constant=float((ret_const - ret).abs().mean() / scale),
        latent_mse_first=latent_err[0], latent_mse_last=latent_err[-1],
    )  # fmt: skip


# ----------------------------------------------------------------------------------- along the policy's own visits


class RecordingEnv:
    """Wraps an evaluation env and keeps every episode's observations, actions and rewards, so the model can be
    checked where a policy actually goes (which the data may not cover)."""

    def __init__(self, env) -> None:
        self.env, self.episodes = env, []

    def reset(self) -> np.ndarray:
        obs = self.env.reset()
        self.episodes.append({"obs": [obs], "action": [], "reward": []})
        return obs

    def step(self, action: np.ndarray):
        out = self.env.step(action)
        episode = self.episodes[-1]
        episode["obs"].append(out.obs)
        episode["action"].append(np.asarray(action, dtype=np.float32))
        episode["reward"].append(float(out.reward))
        return out

    def __getattr__(self, name: str):
        return getattr(self.env, name)


def _symlog(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * torch.log1p(x.abs())


@torch.no_grad()
def policy_errors(
    model: WorldModel, critic, episodes: list[dict], task_id: int, horizon: int, gamma: float, reward_space: str,
    stride: int = 8, tail: int = 300,
) -> dict[str, float]:  # fmt: skip
    """Model errors on windows of recorded real episodes (every ``stride`` steps), and the critic's error: V(z_t)
    against the real discounted return-to-go in the critic's reward space (symlog rewards for PWM's reference
    setting), for starts with at least ``tail`` steps left (γ^300 ≈ 0.05 of the truncated rest is ignored)."""
    model.eval()
    obs_w, act_w, rew_w, values, targets = [], [], [], [], []
    for e in episodes:
        obs = torch.as_tensor(np.stack(e["obs"]), dtype=torch.float32)
        action = torch.as_tensor(np.stack(e["action"]), dtype=torch.float32)
        reward = torch.as_tensor(e["reward"], dtype=torch.float32)
        for s in range(0, len(reward) - horizon + 1, stride):
            obs_w.append(obs[s : s + horizon + 1])
            act_w.append(action[s : s + horizon])
            rew_w.append(reward[s : s + horizon])
        space = _symlog(reward) if reward_space == "symlog" else reward
        for s in range(0, len(reward) - tail + 1, stride):
            rest = space[s:]
            targets.append(float((gamma ** torch.arange(len(rest), dtype=torch.float32) * rest).sum()))
            values.append(float(critic.min(model.encode(obs[s : s + 1], task_id)).reshape(-1)[0]))
    errors = _errors(model, torch.stack(obs_w, 1), torch.stack(act_w, 1), torch.stack(rew_w, 1), "", task_id, "", gamma)
    out = {k: v for k, v in errors.__dict__.items() if isinstance(v, float)}
    if values:
        v, t = np.array(values), np.array(targets)
        out.update(value_mean=float(v.mean()), value_target_mean=float(t.mean()),
                   value_rel_error=float(np.abs(v - t).mean() / max(np.abs(t).mean(), 1e-6)))  # fmt: skip
    return out
