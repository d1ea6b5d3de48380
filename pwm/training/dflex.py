"""Single-task training on the differentiable simulators: PWM or SHAC on one dflex task (resumable).

``DflexRun`` builds the training env (with simulator gradients for SHAC only), a separate evaluation env, the
algorithm and its replay buffer; the loop (``pwm.training.loop``) alternates algorithm iterations with
deterministic evaluations. Outputs in the run directory: ``metrics.csv``/``.jsonl`` (one row per log interval with
``env_steps``), run states in ``checkpoints/`` (resume), ``best_policy.pt`` (best evaluation so far),
``learning_curve.png`` and, for SHAC with ``alg.save_data``, ``episodes.pt`` (pretraining data for PWM).
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from pwm.algorithms.base import EnvData
from pwm.checkpoint.run_state import RunStateError, read_best_policy, read_run_state
from pwm.config import ConfigError, DflexConfig, PWMConfig, SHACConfig
from pwm.data.buffer import ReplayBuffer
from pwm.data.episodes import EpisodeRecorder, load_episodes, save_episodes
from pwm.envs.sim.registry import make_dflex_env
from pwm.training import loop
from pwm.training.evaluate import evaluate
from pwm.utils.io import atomic_torch_save

ALGORITHMS = {"pwm": PWMConfig, "shac": SHACConfig}


def typed_config(cfg: DictConfig) -> DflexConfig:
    """The run's typed config from Hydra's composed one or from a run state's saved dict (``alg.name`` picks the
    algorithm's schema); a bad key or value is a one-line ConfigError."""
    name = OmegaConf.select(cfg, "alg.name")
    if name not in ALGORITHMS:
        raise ConfigError(f"alg.name={name!r}; train_dflex runs alg=pwm or alg=shac")
    if OmegaConf.select(cfg, "env.name", default=None) is None:
        raise ConfigError("env is unset: pass env=dflex_<task> (e.g. env=dflex_cartpole)")
    schema_cls = ALGORITHMS[name]
    fields = {f.name for f in dataclasses.fields(schema_cls)}
    unknown = sorted(set(cfg.alg.keys()) - fields)
    if unknown:  # Hydra's +alg.<key>= forces a key into the typed node; refuse it here
        raise ConfigError(f"alg.{unknown[0]} is not a setting of {schema_cls.__name__}")
    try:
        schema = OmegaConf.structured(DflexConfig)
        schema.alg = OmegaConf.structured(schema_cls)
        return OmegaConf.to_object(OmegaConf.merge(schema, cfg))
    except Exception as err:  # omegaconf's validation errors: unknown key, wrong type, missing value
        raise ConfigError(f"config: {str(err).splitlines()[0]}") from None


class DflexRun(loop.Runner):
    def __init__(self, cfg: DictConfig | DflexConfig, run_dir: Path) -> None:
        c = cfg if isinstance(cfg, DflexConfig) else typed_config(cfg)
        c.alg.check()
        c.general.check()
        c.logger.check()
        self.cfg, self.general, self.logger_cfg, self.run_dir = c, c.general, c.logger, Path(run_dir)
        self.alg_cfg, self.seed, self.env_name = c.alg, c.seed, c.env.name
        self.is_pwm = c.alg.name == "pwm"
        self.name = f"{self.env_name}-{c.alg.name}"
        self.device = loop.start_up(c.general, c.seed)
        settings = {**c.env.config, "device": str(self.device), "seed": self.seed}
        self.env = make_dflex_env(self.env_name, settings, requires_grad=not self.is_pwm)
        eval_settings = {**settings, "num_envs": c.general.eval_runs, "seed": self.seed + 1}
        self.eval_env = make_dflex_env(self.env_name, eval_settings)
        self.config = dataclasses.asdict(c)  # every effective value: eval and resume rebuild this same run
        self.algo, self.buffer = self._build_algorithm()
        keep_data = self.is_pwm or getattr(self.alg_cfg, "save_data", False)
        self.recorder = EpisodeRecorder(self.env.reset(seed=self.seed), keep_data=keep_data)
        self.components = {"algo": self.algo, "env": self.env, "recorder": self.recorder}
        if self.buffer is not None:
            self.components["replay"] = _WithEpisodes(self.buffer)
        self.env_steps, self.best_return = 0, float("-inf")

    def _build_algorithm(self):
        obs_dim, action_dim = self.env.obs_dim, self.env.action_dim
        if not self.is_pwm:
            from pwm.algorithms.shac import SHAC

            return SHAC(obs_dim, action_dim, self.alg_cfg, self.device, self.general.precision), None
        from pwm.algorithms.pwm_single_task import SingleTaskPWM

        c = self.alg_cfg
        if c.wm_horizon >= self.env.episode_length:
            raise ConfigError(
                f"alg.wm_horizon={c.wm_horizon} must be shorter than {self.env_name}'s episodes "
                f"({self.env.episode_length} steps): the world model trains on windows inside one episode"
            )
        algo = SingleTaskPWM(
            obs_dim, action_dim, c, self.device, num_envs=self.env.num_envs, precision=self.general.precision
        )
        if self.logger_cfg.progress:
            algo.progress = lambda total, desc: tqdm(total=total, desc=desc, leave=False, smoothing=0)
        buffer = ReplayBuffer(
            c.buffer_size, c.wm_batch_size, c.wm_horizon,
            max_episode_length=self.env.episode_length, seed=self.seed, device=self.device,
        )  # fmt: skip
        return algo, buffer

    # ---- the loop's hooks --------------------------------------------------------------------------------------
    def train_step(self) -> dict[str, float]:
        start = time.perf_counter()
        metrics = self.algo.update(EnvData(self.env, self.recorder.record, self.buffer))
        if self.is_pwm:
            self.algo.add_episodes(self.buffer, self.recorder.pop_finished())
        # SHAC with save_data: episodes stay in recorder.finished until the end
        steps = self.alg_cfg.horizon * self.env.num_envs
        self.env_steps += steps
        return {**metrics, "train/fps": steps / (time.perf_counter() - start)}

    def policy(self, obs: torch.Tensor) -> torch.Tensor:
        return self.algo.act(obs, deterministic=True)

    def evaluate(self, step: int) -> dict[str, float]:
        metrics = evaluate(self.policy, self.eval_env, self.general.eval_runs, seed=self.seed * 100_003 + step)
        if metrics["return"] > self.best_return:
            self.best_return = metrics["return"]
            payload = {"algo": self.algo.state_dict(), "iteration": step, "eval": metrics, "config": self.config}
            atomic_torch_save(payload, self.run_dir / "best_policy.pt")
        return metrics

    def row_extra(self) -> dict[str, Any]:
        return {
            "env_steps": self.env_steps,
            "train/episode_return": self.recorder.mean_return(),
            "train/episode_length": self.recorder.mean_length(),
        }

    def postfix(self, row: dict[str, Any]) -> dict[str, str]:
        nan = float("nan")
        return {"ret": f"{row.get('train/episode_return', nan):.1f}", "eval": f"{row.get('eval/return', nan):.1f}"}

    def checkpoint_extra(self) -> dict[str, Any]:
        return {"env_steps": self.env_steps, "best_return": self.best_return}

    def restore(self, extra: dict[str, Any]) -> None:
        self.env_steps, self.best_return = extra["env_steps"], extra["best_return"]

    def start(self, fresh: bool) -> dict[str, float]:
        if fresh and self.general.checkpoint:
            self._start_from_checkpoint()
        (self.run_dir / "run_info.json").write_text(
            json.dumps({"env": self.env_name, "alg": self.alg_cfg.name, "seed": self.seed})
        )
        metrics: dict[str, float] = {}
        if self.is_pwm:
            if self.general.pretrain and (fresh or self.buffer.num_episodes == 0):
                metrics = {f"pretrain/{k}": v for k, v in self._pretrain().items()}
            self._warm_up()
        return metrics

    def finish(self, last_eval: dict[str, float]) -> None:
        if self.general.video and last_eval:
            from pwm.envs.sim.render import write_policy_strip

            name = f"{self.env_name}_{self.general.steps}.png"
            write_policy_strip(self.eval_env, self.policy, self.run_dir / "videos" / name, seed=self.seed)
        if not self.is_pwm and self.alg_cfg.save_data and self.recorder.finished:
            save_episodes(self.run_dir / "episodes.pt", self.recorder.finished, self.env_name)
        plot_learning_curve(self.run_dir / "metrics.csv", self.run_dir / "learning_curve.png", self.env_name)

    # ---- PWM's starts ------------------------------------------------------------------------------------------
    def _start_from_checkpoint(self) -> None:
        """``general.checkpoint``: a run state (``checkpoints/state_*.pt``) or a ``best_policy.pt``."""
        path = Path(self.general.checkpoint)
        if not path.is_file():
            raise ConfigError(f"general.checkpoint={path} does not exist")
        try:
            payload = read_run_state(path) if path.name.startswith("state_") else read_best_policy(path)
        except RunStateError as err:  # one line naming the file (and a refused type)
            raise ConfigError(f"general.checkpoint={err}") from None
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

    def _warm_up(self) -> None:
        """Step the real envs with the initial policy until the buffer holds a window to train the model on."""
        while self.buffer.num_windows == 0:
            self.algo.collect(self.env, self.alg_cfg.horizon, self.recorder.record)
            self.env_steps += self.alg_cfg.horizon * self.env.num_envs
            self.algo.add_episodes(self.buffer, self.recorder.pop_finished())


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
