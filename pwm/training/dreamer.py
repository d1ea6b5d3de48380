"""Runners of ``scripts/train_dreamer.py``: video pretraining (PreLAR / APV) and online pixel RL (DreamerV2, and
PreLAR / APV fine-tuning), both on the one loop (``pwm.training.loop``).

Online runs take one loop step per *episode*: the episode is collected with the current policy (random actions
until ``alg.prefill`` env steps), and an update is done every ``alg.train_every`` agent steps once the replay
holds an episode (``alg.initial_updates`` at once the first time). Every episode resets its env with a seed
derived from the run's seed and the episode index, so a run state at an episode boundary (replay, algorithm,
counters, RNG streams) resumes exactly.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig

from pwm.algorithms.dreamerv2 import DreamerV2
from pwm.algorithms.prelar import VideoPretrain
from pwm.checkpoint.pretrained import load_pretrained, save_pretrained
from pwm.config.dreamer import PRETRAIN_ALGS, DreamerConfig
from pwm.data.pixel_replay import PixelReplay
from pwm.data.videos import VideoClips
from pwm.envs.suites.pixels import episode_success, make_pixel_env
from pwm.models.dreamer import TRANSFERRED
from pwm.training import loop
from pwm.training.entry import to_object


def typed(cfg: DictConfig | DreamerConfig) -> DreamerConfig:
    c = cfg if isinstance(cfg, DreamerConfig) else to_object(cfg)
    c.check()
    return c


class _Base(loop.Runner):
    def __init__(self, cfg: DreamerConfig, run_dir: Path) -> None:
        self.cfg, self.general, self.logger_cfg, self.run_dir = cfg, cfg.general, cfg.logger, Path(run_dir)
        self.name = f"{cfg.env.task}-{cfg.alg.name}"
        self.device = loop.start_up(cfg.general, cfg.seed)
        self.config = dataclasses.asdict(cfg)


class PretrainRun(_Base):
    """One step = one update on a batch of clips; ``pretrained.pt`` is written with every run state."""

    def __init__(self, cfg: DreamerConfig, run_dir: Path) -> None:
        super().__init__(cfg, run_dir)
        self.clips = VideoClips(cfg.general.video_dir, cfg.alg.seq_len, seed=cfg.seed)
        self.algo = VideoPretrain(cfg.alg, cfg.model).to(self.device)
        self.components = {"algo": self.algo, "clips": self.clips}

    def train_step(self) -> dict[str, float]:
        return self.algo.update(self.clips.sample(self.cfg.alg.batch).to(self.device))

    def after_save(self, step: int) -> None:
        save_pretrained(self.algo.model, TRANSFERRED, self.run_dir / "pretrained.pt", self.config)


class OnlineRun(_Base):
    """DreamerV2 (``alg=dreamerv2``) or fine-tuning a pretrained model (``alg=prelar_finetune|apv_finetune``)."""

    def __init__(self, cfg: DreamerConfig, run_dir: Path) -> None:
        super().__init__(cfg, run_dir)
        e = cfg.env
        make = dict(size=e.size, camera=e.camera, action_repeat=e.action_repeat, frame_stack=e.frame_stack,
                    episode_length=e.episode_length)  # fmt: skip
        self.env = make_pixel_env(e.task, cfg.seed, **make)
        self._make_eval_env = lambda: make_pixel_env(e.task, cfg.seed + 1, **make)
        self.eval_env = None  # built at the first evaluation
        self.algo = DreamerV2(cfg.alg, cfg.model, self.env.action_dim, channels=3 * e.frame_stack)
        self.carried = 0
        if cfg.alg.finetune:
            self.carried = load_pretrained(self.algo.model, cfg.alg.pretrained, TRANSFERRED)
        self.algo.to(self.device)
        capacity = 1_000_000
        self.replay = PixelReplay(capacity, cfg.alg.seq_len, seed=cfg.seed)
        self.components = {"algo": self.algo, "replay": self.replay}
        self.env_steps, self.agent_steps, self.episodes, self.prefilled = 0, 0, 0, False

    def _obs(self, frame: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(frame).to(self.device)[None]

    def _action(self, obs: np.ndarray) -> np.ndarray:
        if self.env_steps < self.cfg.alg.prefill:
            return (torch.rand(self.env.action_dim) * 2 - 1).numpy()
        return self.algo.act(self._obs(obs), deterministic=False)[0].cpu().numpy()

    def _maybe_update(self, metrics: list[dict[str, float]]) -> None:
        a = self.cfg.alg
        if not self.replay.episodes or self.env_steps < a.prefill:
            return
        count = 0 if self.prefilled else a.initial_updates
        self.prefilled = True
        count += int(self.agent_steps % a.train_every == 0)
        for _ in range(count):
            metrics.append(self.algo.update(self.replay.sample(a.batch, self.device)))

    def train_step(self) -> dict[str, float]:
        seed = self.cfg.seed * 1_000_003 + self.episodes
        self.episodes += 1
        obs = self.env.reset(seed)
        self.algo.reset_policy()
        frames, actions, rewards, successes, metrics = [obs], [np.zeros(self.env.action_dim)], [0.0], [], []
        done = False
        while not done:
            action = self._action(obs)
            result = self.env.step(action)
            obs, done = result.obs, result.truncated or result.terminated
            frames.append(obs), actions.append(action), rewards.append(result.reward)
            successes.append(result.info["success"])
            self.agent_steps += 1
            self.env_steps += self.cfg.env.action_repeat
            self._maybe_update(metrics)
        self.replay.add(torch.from_numpy(np.stack(frames)), torch.tensor(np.stack(actions)), torch.tensor(rewards))
        out = {k: float(np.mean([m[k] for m in metrics])) for k in (metrics[0] if metrics else {})}
        return {**out, "train/return": float(sum(rewards)), "train/success": episode_success(successes),
                "train/updates": float(len(metrics))}  # fmt: skip

    def evaluate(self, step: int) -> dict[str, float]:
        returns, wins = [], []
        self.eval_env = self.eval_env or self._make_eval_env()
        for j in range(self.general.eval_runs):
            obs, done, total, successes = self.eval_env.reset(10**6 + j), False, 0.0, []
            self.algo.reset_policy()
            while not done:
                result = self.eval_env.step(self.algo.act(self._obs(obs))[0].cpu().numpy())
                obs, done = result.obs, result.truncated or result.terminated
                total += result.reward
                successes.append(result.info["success"])
            returns.append(total)
            wins.append(episode_success(successes))
        self.algo.reset_policy()
        return {"return": float(np.mean(returns)), "success": float(np.mean(wins))}

    def row_extra(self) -> dict[str, Any]:
        return {"env_steps": self.env_steps, "carried_tensors": self.carried}

    def checkpoint_extra(self) -> dict[str, Any]:
        return {"env_steps": self.env_steps, "agent_steps": self.agent_steps, "episodes": self.episodes,
                "prefilled": self.prefilled}  # fmt: skip

    def restore(self, extra: dict[str, Any]) -> None:
        self.env_steps, self.agent_steps = extra["env_steps"], extra["agent_steps"]
        self.episodes, self.prefilled = extra["episodes"], extra["prefilled"]

    def run(self) -> dict[str, Any]:
        """The loop, then the envs' GL contexts freed whether it ended well or not (left to interpreter exit,
        EGL teardown prints tracebacks)."""
        try:
            return super().run()
        finally:
            for env in (self.env, self.eval_env):
                if env is not None:
                    env.close()


def make_runner(cfg: DictConfig | DreamerConfig, run_dir: str | Path) -> loop.Runner:
    c = typed(cfg)
    return (PretrainRun if c.alg.name in PRETRAIN_ALGS else OnlineRun)(c, Path(run_dir))
