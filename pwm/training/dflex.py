"""Single-task training on the differentiable simulators: PWM or SHAC on one dflex task (resumable).

``DflexRun`` builds the training env (with simulator gradients for SHAC only), a separate evaluation env, the
algorithm and its replay buffer, then alternates algorithm iterations with deterministic evaluations. Outputs
in the run directory: ``metrics.csv``/``.jsonl`` (one row per log interval with ``env_steps``), run states in
``checkpoints/`` (resume), ``best_policy.pt`` (best evaluation so far), ``learning_curve.png`` and, for SHAC with
``alg.save_data``, ``episodes.pt`` (pretraining data for PWM).
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from pwm.checkpoint.run_state import CheckpointDir, RunStateError, load_run_state, read_run_state
from pwm.config import ConfigError, DflexGeneralConfig, LoggerConfig, PWMConfig, SHACConfig
from pwm.data.buffer import ReplayBuffer
from pwm.data.episodes import EpisodeRecorder, load_episodes, save_episodes
from pwm.envs.sim.base import BatchedEnv
from pwm.envs.sim.registry import make_dflex_env
from pwm.utils.device import resolve_device
from pwm.utils.io import atomic_torch_save
from pwm.utils.logging import MetricLogger
from pwm.utils.seeding import seed_everything

ALGORITHMS = {"pwm": PWMConfig, "shac": SHACConfig}
RESUME_IGNORES = (
    "general.run_dir", "general.device", "general.threads", "general.eval_freq", "general.eval_runs",
    "general.save_interval", "general.keep_checkpoints", "general.video", "logger", "alg.max_iterations",
    "env.shac.max_iterations", "env.pwm.max_iterations",
)  # fmt: skip


def build_alg_config(alg: Any, env: Any, explicit: Sequence[str] = ()) -> tuple[PWMConfig | SHACConfig, int | None]:
    """Typed algorithm config: the alg node, overlaid with the env config's per-task block for that algorithm,
    then with the ``explicit`` alg keys again (those the user set on the command line, e.g. ``horizon`` or
    ``world_model.latent_dim``), so that ``alg.<key>=`` beats the task's default as a user expects.

    Returns it with the block's ``num_envs`` (``None`` if the block has none), which sets the training envs.
    """
    name = alg.get("name") if alg is not None else None
    if name not in ALGORITHMS:
        raise ConfigError(f"alg.name={name!r}; train_dflex runs alg=pwm or alg=shac")
    block = OmegaConf.to_container(env.get(name) or OmegaConf.create({}), resolve=True)
    num_envs = block.pop("num_envs", None)
    try:
        merged = OmegaConf.merge(OmegaConf.structured(ALGORITHMS[name]), alg, block)
        for key in explicit:
            OmegaConf.update(merged, key, OmegaConf.select(alg, key), merge=False)
    except Exception as err:  # omegaconf's validation errors: unknown key or wrong type
        raise ConfigError(f"alg: {str(err).splitlines()[0]}") from None
    return OmegaConf.to_object(merged), num_envs


def explicit_alg_keys(overrides: Sequence[str]) -> list[str]:
    """The ``alg.`` keys among Hydra command-line overrides (``alg.horizon=32`` -> ``horizon``); ``alg=pwm`` and
    ``env.pwm.*`` are not among them."""
    keys = []
    for item in overrides:
        key = item.split("=", 1)[0].lstrip("+~")
        if key.startswith("alg."):
            keys.append(key.removeprefix("alg."))
    return keys


@torch.no_grad()
def evaluate_policy(env: BatchedEnv, policy, seed: int, tail: int = 60) -> dict[str, float]:
    """One episode per env with the deterministic ``policy`` (obs -> action).

    Returns the mean return and length, and ``final_reward``: the mean reward over each episode's last ``tail``
    steps (1 s at 60 Hz), which tells a policy that ends in the goal state (a balanced pole) from one that
    only passes through it.
    """
    obs = env.reset(seed=seed)
    rewards, alive = [], []
    running = torch.ones(env.num_envs, dtype=torch.bool, device=env.device)
    while running.any():
        out = env.step(policy(obs))
        rewards.append(out.reward.double())
        alive.append(running.clone())
        running &= ~(out.terminated | out.truncated)
        obs = out.obs
    reward, mask = torch.stack(rewards), torch.stack(alive)
    reward = torch.where(mask, reward, torch.zeros_like(reward))
    lengths = mask.sum(0)
    returns = reward.sum(0)
    steps = torch.arange(reward.shape[0], device=reward.device)[:, None]
    in_tail = mask & (steps >= lengths - tail)
    final = (reward * in_tail).sum(0) / in_tail.sum(0).clamp(min=1)
    return {
        "return": float(returns.mean()),
        "return_std": float(returns.std()) if env.num_envs > 1 else 0.0,
        "length": float(lengths.double().mean()),
        "final_reward": float(final.mean()),
    }


class DflexRun:
    def __init__(self, cfg: DictConfig, run_dir: Path, cli_overrides: Sequence[str] = ()) -> None:
        """``cli_overrides``: the command line's Hydra overrides; its ``alg.*`` ones beat the env's per-task block."""
        self.run_dir = run_dir
        self.general: DflexGeneralConfig = OmegaConf.to_object(OmegaConf.merge(DflexGeneralConfig, cfg.general))
        self.logger_cfg: LoggerConfig = OmegaConf.to_object(OmegaConf.merge(LoggerConfig, cfg.logger))
        if cfg.env is None or "name" not in cfg.env:
            raise ConfigError("env is unset: pass env=dflex_<task> (e.g. env=dflex_cartpole)")
        self.alg_cfg, num_envs = build_alg_config(cfg.alg, cfg.env, explicit_alg_keys(cli_overrides))
        self.alg_cfg.check()
        self.is_pwm = self.alg_cfg.name == "pwm"
        self.seed, self.env_name = cfg.seed, cfg.env.name
        self.device = resolve_device(self.general.device)
        if self.general.threads:
            torch.set_num_threads(self.general.threads)
        seed_everything(self.seed)
        overrides = dict(OmegaConf.to_container(cfg.env.get("config") or {}, resolve=True))
        overrides.update(device=str(self.device), seed=self.seed)
        if num_envs is not None:
            overrides["num_envs"] = num_envs
        self.env = make_dflex_env(self.env_name, overrides, requires_grad=not self.is_pwm)
        eval_overrides = {**overrides, "num_envs": self.general.eval_runs, "seed": self.seed + 1}
        self.eval_env = make_dflex_env(self.env_name, eval_overrides)
        # What checkpoints store. The env's per-task block is folded into "alg" (the effective values, command-line
        # alg.* included), so DflexRun(OmegaConf.create(config), run_dir) rebuilds this same run (eval, resume).
        env_node = OmegaConf.to_container(cfg.env, resolve=True)
        if self.alg_cfg.name in env_node:
            env_node[self.alg_cfg.name] = {} if num_envs is None else {"num_envs": num_envs}
        self.config = {
            "seed": self.seed, "env": env_node, "alg": dataclasses.asdict(self.alg_cfg),
            "general": dataclasses.asdict(self.general), "logger": dataclasses.asdict(self.logger_cfg),
        }  # fmt: skip
        self.algo, self.buffer = self._build_algorithm()
        self.checkpoints = CheckpointDir(run_dir / "checkpoints", keep=self.general.keep_checkpoints)
        keep_data = self.is_pwm or getattr(self.alg_cfg, "save_data", False)
        self.recorder = EpisodeRecorder(self.env.reset(seed=self.seed), keep_data=keep_data)
        self.components = {"algo": self.algo, "env": self.env, "recorder": self.recorder}
        if self.buffer is not None:
            self.components["replay"] = _WithEpisodes(self.buffer)
        self.env_steps, self.best_return, self.total_time = 0, float("-inf"), 0.0

    def _build_algorithm(self):
        obs_dim, action_dim = self.env.obs_dim, self.env.action_dim
        if not self.is_pwm:
            from pwm.algorithms.shac import SHAC

            return SHAC(obs_dim, action_dim, self.alg_cfg, self.device), None
        from pwm.algorithms.pwm_single_task import SingleTaskPWM

        self.alg_cfg.batch_size = self.env.num_envs
        algo = SingleTaskPWM(obs_dim, action_dim, self.alg_cfg, self.device)
        c = self.alg_cfg
        buffer = ReplayBuffer(
            c.buffer_size, c.wm_batch_size, c.wm_horizon,
            max_episode_length=self.env.episode_length, seed=self.seed, device=self.device,
        )  # fmt: skip
        return algo, buffer

    # ---- policy, evaluation, saving ----------------------------------------------------------------------------
    def policy(self, obs: torch.Tensor) -> torch.Tensor:
        return self.algo.act(obs, deterministic=True)

    def evaluate(self, iteration: int) -> dict[str, float]:
        metrics = evaluate_policy(self.eval_env, self.policy, seed=self.seed * 100_003 + iteration)
        if metrics["return"] > self.best_return:
            self.best_return = metrics["return"]
            payload = {"algo": self.algo.state_dict(), "iteration": iteration, "eval": metrics, "config": self.config}
            atomic_torch_save(payload, self.run_dir / "best_policy.pt")
        return metrics

    def save(self, iteration: int) -> None:
        extra = {"env_steps": self.env_steps, "best_return": self.best_return, "total_time": self.total_time}
        try:
            self.checkpoints.save(self.components, iteration, self.config, extra=extra)
        except RunStateError as err:  # NaN state: keep the last good one, stop loudly
            raise RuntimeError(str(err)) from None

    def _resume(self) -> int:
        latest = self.checkpoints.latest()
        if latest is None:
            return 0
        step, extra = load_run_state(latest, self.components, self.config, ignore=RESUME_IGNORES)
        self.env_steps, self.best_return = extra["env_steps"], extra["best_return"]
        self.total_time = extra["total_time"]
        return step

    def _start_from_checkpoint(self) -> None:
        """``general.checkpoint``: a run state (``checkpoints/state_*.pt``) or a ``best_policy.pt``."""
        path = Path(self.general.checkpoint)
        if not path.is_file():
            raise ConfigError(f"general.checkpoint={path} does not exist")
        try:
            payload = read_run_state(path) if path.name.startswith("state_") else torch.load(path, weights_only=False)
        except Exception as err:  # a truncated or foreign file: torch.load raises many types
            raise ConfigError(f"general.checkpoint={path} is not readable ({type(err).__name__})") from None
        state = payload["components"]["algo"] if "components" in payload else payload.get("algo")
        if state is None:
            raise ConfigError(f"general.checkpoint={path} holds no algorithm state")
        try:
            self.algo.load_state_dict(state)
        except (RuntimeError, KeyError) as err:
            first = str(err).splitlines()[0]
            raise ConfigError(f"general.checkpoint={path} does not fit this alg/env: {first}") from None
        if hasattr(self.algo, "iteration"):
            self.algo.iteration = 0

    def _pretrain(self) -> dict[str, float]:
        episodes = load_episodes(self.general.pretrain, self.env.obs_dim, self.env.action_dim)
        self.algo.add_episodes(self.buffer, episodes)
        if self.general.pretrain_steps <= 0:
            return {}
        metrics = self.algo.train_world_model(self.buffer, self.general.pretrain_steps)
        self.algo.wm_bootstrapped = True
        return metrics

    # ---- the loop ----------------------------------------------------------------------------------------------
    def run(self) -> dict[str, float]:
        start_iteration = self._resume()
        fresh = start_iteration == 0
        if fresh and self.general.checkpoint:
            self._start_from_checkpoint()
        logger = MetricLogger(self.run_dir, self.logger_cfg, self.config, name=f"{self.env_name}-{self.alg_cfg.name}")
        logger.truncate_after(start_iteration)
        (self.run_dir / "run_info.json").write_text(
            json.dumps({"env": self.env_name, "alg": self.alg_cfg.name, "seed": self.seed})
        )
        recorder = self.recorder
        last_eval: dict[str, float] = {}
        try:
            if self.is_pwm:
                if self.general.pretrain and (fresh or self.buffer.num_episodes == 0):
                    logger.record({f"pretrain/{k}": v for k, v in self._pretrain().items()})
                self._warm_up(recorder)
            last_eval = self._loop(start_iteration, recorder, logger)
        finally:
            logger.close()
        if self.general.video and last_eval:
            from pwm.envs.sim.render import write_policy_strip

            name = f"{self.env_name}_{self.alg_cfg.max_iterations}.png"
            write_policy_strip(self.eval_env, self.policy, self.run_dir / "videos" / name, seed=self.seed)
        if not self.is_pwm and self.alg_cfg.save_data and recorder.finished:
            save_episodes(self.run_dir / "episodes.pt", recorder.finished, self.env_name)
        plot_learning_curve(self.run_dir / "metrics.csv", self.run_dir / "learning_curve.png", self.env_name)
        return last_eval

    def _warm_up(self, recorder: EpisodeRecorder) -> None:
        """Step the real envs with the initial policy until the buffer holds a window to train the model on."""
        while self.buffer.num_windows == 0:
            self.algo.collect(self.env, self.alg_cfg.horizon, recorder.record)
            self.env_steps += self.alg_cfg.horizon * self.env.num_envs
            self.algo.add_episodes(self.buffer, recorder.pop_finished())

    def _iterate(self, recorder: EpisodeRecorder) -> dict[str, float]:
        if self.is_pwm:
            metrics = self.algo.update(self.env, self.buffer, recorder.record)
            self.algo.add_episodes(self.buffer, recorder.pop_finished())
        else:
            metrics = self.algo.update(self.env, recorder.record)  # save_data: episodes stay in recorder.finished
        self.env_steps += self.alg_cfg.horizon * self.env.num_envs
        return metrics

    def _loop(self, iteration: int, recorder: EpisodeRecorder, logger: MetricLogger) -> dict[str, float]:
        g, total = self.general, self.alg_cfg.max_iterations
        bar = tqdm(total=total, initial=iteration, disable=not self.logger_cfg.progress, unit="it")
        last_eval: dict[str, float] = {}
        while iteration < total:
            start = time.perf_counter()
            metrics = self._iterate(recorder)
            elapsed = time.perf_counter() - start
            self.total_time += elapsed
            iteration += 1
            fps = self.alg_cfg.horizon * self.env.num_envs / elapsed
            logger.record({**metrics, "train/fps": fps})
            bar.update(1)
            evaluate_now = iteration % g.eval_freq == 0 or iteration == total
            if evaluate_now:
                last_eval = self.evaluate(iteration)
            train_return = recorder.mean_return()
            bar.set_postfix(ret=f"{train_return:.1f}", eval=f"{last_eval.get('return', float('nan')):.1f}",
                            sps=f"{fps:.0f}")  # fmt: skip
            if evaluate_now or iteration % self.logger_cfg.log_every == 0:
                extra = {
                    "env_steps": self.env_steps,
                    "time": round(self.total_time, 2),
                    "train/episode_return": train_return,
                    "train/episode_length": recorder.mean_length(),
                }
                if evaluate_now:
                    extra.update({f"eval/{k}": v for k, v in last_eval.items()})
                logger.dump(iteration, extra)
            if iteration % g.save_interval == 0 or iteration == total:
                self.save(iteration)
        bar.close()
        return last_eval


class _WithEpisodes:
    """A replay buffer whose run-state entry holds its episodes, so a resumed PWM run samples the same data."""

    def __init__(self, buffer: ReplayBuffer) -> None:
        self.buffer = buffer

    def state_dict(self) -> dict:
        return self.buffer.state_dict(with_episodes=True)

    def load_state_dict(self, state: dict) -> None:
        self.buffer.load_state_dict(state)


def plot_learning_curve(metrics_csv: Path, out: Path, title: str) -> None:
    """Training (stochastic) and evaluation (deterministic) returns against env steps."""
    import csv

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not metrics_csv.is_file():
        return
    with open(metrics_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    fig, ax = plt.subplots(figsize=(6, 4))
    for key, label in (("train/episode_return", "train (stochastic)"), ("eval/return", "eval (deterministic)")):
        points = [(float(r["env_steps"]), float(r[key])) for r in rows if r.get(key) not in (None, "", "nan")]
        if points:
            ax.plot(*zip(*points, strict=True), marker="o" if "eval" in key else None, label=label)
    ax.set_xlabel("env steps")
    ax.set_ylabel("episode return")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
