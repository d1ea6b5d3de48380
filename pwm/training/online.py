"""Online model-based RL on a Gymnasium MuJoCo task (PolyGRAD), through the shared loop (resumable).

One loop step is one real env step: ``prefill_steps`` uniform-random actions, then policy samples. After every
episode the normaliser is refitted; every ``env_steps_per_update`` steps after the prefill, one
``PolyGRAD.update`` (denoiser steps, then an imagined A2C step). Evaluations run ``general.eval_runs`` episodes of
the deterministic policy on a separate env reseeded per evaluation, through :func:`pwm.training.evaluate.evaluate`.
Run directory: ``metrics.csv``/``.jsonl`` (``env_steps``, ``eval/return`` ...), ``checkpoints/`` (run states: the
algorithm, the replay buffer with its open episode, the env's simulator state and generator) and
``learning_curve.png``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from pwm.algorithms.polygrad import PolyGRAD
from pwm.config import ConfigError, OnlineConfig
from pwm.data.trajectories import TrajectoryBuffer
from pwm.envs.suites.gym_mujoco import GymMujocoEnv
from pwm.training import loop
from pwm.training.dflex import plot_learning_curve
from pwm.training.evaluate import evaluate


def typed_config(cfg: DictConfig | OnlineConfig) -> OnlineConfig:
    """The run's typed config; a bad key or value is a one-line ConfigError."""
    if isinstance(cfg, OnlineConfig):
        return cfg
    if OmegaConf.select(cfg, "env.name", default=None) is None:
        raise ConfigError("env is unset: pass env=gym_<task> (e.g. env=gym_hopper)")
    try:
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(OnlineConfig), cfg))
    except Exception as err:  # omegaconf's validation errors: unknown key, wrong type, missing value
        raise ConfigError(f"config: {str(err).splitlines()[0]}") from None


class OnlineRun(loop.Runner):
    def __init__(self, cfg: DictConfig | OnlineConfig, run_dir: Path) -> None:
        c = typed_config(cfg)
        c.check()
        self.cfg, self.general, self.logger_cfg, self.run_dir = c, c.general, c.logger, Path(run_dir)
        self.alg_cfg, self.seed = c.alg, c.seed
        self.name = f"{c.env.name}-{c.alg.name}"
        self.device = loop.start_up(c.general, c.seed)
        self.env = GymMujocoEnv(c.env.name, c.seed, c.env.episode_length, c.env.id)
        self.eval_env = GymMujocoEnv(c.env.name, c.seed + 1, c.env.episode_length, c.env.id)
        if c.alg.horizon > self.env.episode_length:
            raise ConfigError(
                f"alg.horizon={c.alg.horizon} is longer than {c.env.name}'s episodes ({self.env.episode_length} steps)"
            )
        self.config = dataclasses.asdict(c)
        self.algo = PolyGRAD(self.env.obs_dim, self.env.action_dim, c.alg, self.device)
        self.buffer = TrajectoryBuffer(
            c.alg.buffer_size, self.env.obs_dim, self.env.action_dim, self.env.state_dim, c.seed
        )
        self.components = {"algo": self.algo, "replay": self.buffer, "env": self.env}
        self.rng = np.random.default_rng(c.seed)
        self.obs = self.env.reset()
        self.env_steps, self.returns, self.episode_return = 0, [], 0.0

    # ---- the loop's hooks --------------------------------------------------------------------------------------
    def train_step(self) -> dict[str, float]:
        self._env_step()
        c = self.alg_cfg
        due = self.env_steps >= c.prefill_steps and self.env_steps % c.env_steps_per_update == 0
        if not due or self.buffer.num_windows(c.horizon) == 0:
            return {}
        return self.algo.update(self.buffer)

    def _env_step(self) -> None:
        if self.env_steps < self.alg_cfg.prefill_steps:
            action = self.rng.uniform(-1.0, 1.0, self.env.action_dim).astype(np.float32)
        else:
            action = self.algo.act(torch.from_numpy(self.obs)[None], deterministic=False)[0].cpu().numpy()
        sim_state = self.env.sim_state()
        out = self.env.step(action)
        self.buffer.add_step(self.obs, action, out.reward, out.terminated, sim_state)
        self.env_steps += 1
        self.episode_return += out.reward
        self.obs = out.obs
        if out.terminated or out.truncated:
            self.buffer.end_episode(out.terminated)
            self.algo.fit_normalizer(self.buffer)
            self.returns = [*self.returns[-9:], self.episode_return]
            self.episode_return, self.obs = 0.0, self.env.reset()

    def policy(self, obs: np.ndarray) -> np.ndarray:
        return self.algo.act(torch.as_tensor(obs)[None], deterministic=True)[0].cpu().numpy()

    def evaluate(self, step: int) -> dict[str, float]:
        self.eval_env.seed(self.seed * 100_003 + step)
        return evaluate(self.policy, self.eval_env, self.general.eval_runs)

    def row_extra(self) -> dict[str, Any]:
        recent = float(np.mean(self.returns)) if self.returns else float("nan")
        return {"env_steps": self.env_steps, "train/episode_return": recent}

    def postfix(self, row: dict[str, Any]) -> dict[str, str]:
        nan = float("nan")
        return {"ret": f"{row.get('train/episode_return', nan):.1f}", "eval": f"{row.get('eval/return', nan):.1f}"}

    def checkpoint_extra(self) -> dict[str, Any]:
        return {
            "env_steps": self.env_steps, "obs": torch.from_numpy(self.obs.copy()), "returns": list(self.returns),
            "episode_return": self.episode_return, "rng": self.rng.bit_generator.state,
        }  # fmt: skip

    def restore(self, extra: dict[str, Any]) -> None:
        self.env_steps, self.obs = extra["env_steps"], extra["obs"].numpy()
        self.returns, self.episode_return = list(extra["returns"]), extra["episode_return"]
        self.rng.bit_generator.state = extra["rng"]

    def start(self, fresh: bool) -> dict[str, float]:
        info = {"env": self.cfg.env.name, "gym_id": self.env.env_id, "alg": self.alg_cfg.name, "seed": self.seed}
        (self.run_dir / "run_info.json").write_text(json.dumps(info))
        return {}

    def finish(self, last_eval: dict[str, float]) -> None:
        plot_learning_curve(self.run_dir / "metrics.csv", self.run_dir / "learning_curve.png", self.name)
