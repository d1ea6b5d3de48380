"""The double pendulum of PWM's gradient-ESNR experiment, its offline data and the TD-MPC2 world models on it.

The reference trained its world models on a double-pendulum dataset whose provenance is not published
(docs/pedagogy.md); we generate our own: batched episodes of the torch DoublePendulum with the fork's geometry
(``elbow_offset=0``), half from the upright start the experiment uses and half from dflex's randomised start,
driven by smoothed random torques at amplitudes spread log-uniformly over [0.005, 1] so that the near-zero
actions of a freshly initialised policy are covered as well as large swings. Rewards are rescaled as in the
reference, r' = r / 21554.2305 + 1. Trained models are cached and reused.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import torch

from pwm.algorithms.tdmpc2 import TDMPC2
from pwm.config import TDMPC2Config, WorldModelConfig
from pwm.data.buffer import ReplayBuffer
from pwm.envs.sim.base import BatchedEnv
from pwm.envs.sim.registry import make_dflex_env
from pwm.models.world_model import WorldModel
from pwm.utils.io import atomic_torch_save

REWARD_SCALE = 21554.2305
"""The reference divides the pendulum's reward by this and adds 1 ("to be comparable with tdmpc")."""


def scaled_reward(reward: torch.Tensor) -> torch.Tensor:
    return reward / REWARD_SCALE + 1.0


def make_pendulum(
    num_envs: int, stochastic_init: bool = False, seed: int = 0, grad: bool = False, episode_length: int = 240
) -> BatchedEnv:
    """The fork's double pendulum: both poles about one pivot, no early termination, upright unless randomised."""
    overrides = dict(
        num_envs=num_envs,
        elbow_offset=0.0,
        stochastic_init=stochastic_init,
        early_termination=False,
        seed=seed,
        episode_length=episode_length,
    )
    return make_dflex_env("dflex_doublependulum", overrides, requires_grad=grad)


@dataclass(frozen=True)
class DataConfig:
    episodes: int = 256
    episode_length: int = 240
    min_amplitude: float = 0.005
    max_amplitude: float = 1.0
    smoothing: float = 0.9
    """Actions follow a_t = clip(amplitude * u_t), u_t = smoothing * u_{t-1} + sqrt(1 - smoothing²) * ε_t."""
    seed: int = 0


def collect_episodes(cfg: DataConfig) -> list[dict[str, torch.Tensor]]:
    """``cfg.episodes`` episodes (obs ``[T+1, 6]``, action ``[T, 1]``, reward ``[T]``), half from upright."""
    gen = torch.Generator().manual_seed(cfg.seed)
    out = []
    for half, randomised in enumerate((False, True)):
        n = cfg.episodes // 2 + (cfg.episodes % 2 if half else 0)
        env = make_pendulum(n, stochastic_init=randomised, seed=cfg.seed + half, episode_length=cfg.episode_length + 1)
        log_lo, log_hi = math.log(cfg.min_amplitude), math.log(cfg.max_amplitude)
        amplitude = torch.exp(log_lo + (log_hi - log_lo) * torch.rand(n, 1, generator=gen))
        obs, actions, rewards = [env.reset()], [], []
        u = torch.randn(n, 1, generator=gen)
        for _ in range(cfg.episode_length):
            a = (amplitude * u).clamp(-1, 1)
            step = env.step(a)
            obs.append(step.obs)
            actions.append(a)
            rewards.append(scaled_reward(step.reward))
            u = cfg.smoothing * u + math.sqrt(1 - cfg.smoothing**2) * torch.randn(n, 1, generator=gen)
        obs_t, act_t, rew_t = torch.stack(obs, 1), torch.stack(actions, 1), torch.stack(rewards, 1)
        out += [{"obs": obs_t[i], "action": act_t[i], "reward": rew_t[i]} for i in range(n)]
    return out


@dataclass(frozen=True)
class TrainConfig:
    """World-model training for the ESNR experiment: a TD-MPC2 world model smaller than the 1M preset (so that
    both models train on 2 CPU cores in well under an hour), PWM's rho and a fixed discount."""

    horizon: int = 16
    steps: int = 3000
    batch_size: int = 128
    latent_dim: int = 64
    mlp_dim: int = 128
    enc_dim: int = 128
    lr: float = 3e-4
    rho: float = 0.99
    discount: float = 0.99
    seed: int = 0


def model_config(cfg: TrainConfig) -> WorldModelConfig:
    return WorldModelConfig(
        size=None,
        obs_dim=6,
        action_dim=1,
        latent_dim=cfg.latent_dim,
        mlp_dim=cfg.mlp_dim,
        enc_dim=cfg.enc_dim,
        num_enc_layers=2,
        num_q=2,
    )


def train_world_model(
    episodes: list[dict[str, torch.Tensor]], cfg: TrainConfig, log_every: int = 0, log=None
) -> tuple[WorldModel, list[dict[str, float]]]:
    """Train a single-task TD-MPC2 world model on ``episodes``; returns it (eval mode) and its metric rows."""
    torch.manual_seed(cfg.seed)
    model = WorldModel(model_config(cfg))
    alg_cfg = TDMPC2Config(batch_size=cfg.batch_size, horizon=cfg.horizon, rho=cfg.rho, lr=cfg.lr)
    alg = TDMPC2(model, dataclasses.replace(alg_cfg, discount=cfg.discount))
    length = max(len(e["action"]) for e in episodes)
    buffer = ReplayBuffer(len(episodes) * length, cfg.batch_size, cfg.horizon, max_episode_length=length, seed=cfg.seed)
    for e in episodes:
        buffer.add_episode(e["obs"], e["action"], e["reward"])
    rows = []
    for step in range(1, cfg.steps + 1):
        metrics = alg.update(buffer.sample())
        if log_every and (step % log_every == 0 or step == cfg.steps):
            rows.append({"step": step, **metrics})
            if log is not None:
                log(rows[-1])
    return model.eval(), rows


def cache_path(cache_dir: str | Path, cfg: TrainConfig, data: DataConfig) -> Path:
    dims = f"l{cfg.latent_dim}_m{cfg.mlp_dim}_e{cfg.enc_dim}"
    name = f"wm_h{cfg.horizon}_{dims}_steps{cfg.steps}_bs{cfg.batch_size}_seed{cfg.seed}"
    return Path(cache_dir) / f"{name}_ep{data.episodes}_dseed{data.seed}.pt"


def load_or_train(
    cache_dir: str | Path, cfg: TrainConfig, data: DataConfig, episodes=None, log_every: int = 0, log=None
) -> tuple[WorldModel, bool]:
    """The cached model for (``cfg``, ``data``) if there is one, else a freshly trained one, saved to the cache.

    Returns the model and whether it came from the cache. ``episodes`` (a callable or a list) is only used
    when training.
    """
    path = cache_path(cache_dir, cfg, data)
    if path.exists():
        saved = torch.load(path, weights_only=True)
        model = WorldModel(model_config(cfg))
        model.load_state_dict(saved["state_dict"])
        return model.eval(), True
    if episodes is None:
        episodes = collect_episodes(data)
    elif callable(episodes):
        episodes = episodes()
    model, rows = train_world_model(episodes, cfg, log_every, log)
    payload = {"state_dict": model.state_dict(), "train": dataclasses.asdict(cfg), "data": dataclasses.asdict(data)}
    payload["metrics"] = {k: [r[k] for r in rows] for k in (rows[0] if rows else {})}
    atomic_torch_save(payload, path)
    return model, False
