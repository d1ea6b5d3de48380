"""External baselines: Stable-Baselines3 PPO or SAC on one single-task env, resumable, with our run files.

A Gymnasium MuJoCo task (``gym_hopper`` ...) trains on one Gymnasium env and is evaluated on our
:class:`~pwm.envs.suites.gym_mujoco.GymMujocoEnv`, episodes one after another, reseeded per evaluation exactly as
the online runner (``pwm.training.online``) evaluates PolyGRAD, so their curves compare at equal env steps.

The training env is a :class:`~pwm.envs.sim.vec_env.BatchedVecEnv` (all copies in one batched step) or, with
``num_envs=0``, the single-env Gymnasium adapter (kept to measure what batching buys). Evaluation is ours
(:func:`pwm.training.evaluate.evaluate`: the deterministic policy on a batched env of ``eval_runs`` copies, one
episode each), so a run directory holds the same ``run_info.json`` and ``metrics.csv`` (``step``, ``env_steps``,
``eval/return`` ...) as ``scripts/train_dflex.py`` writes, and the curve and table scripts read both alike.

Resume: at every evaluation the model's parameters and optimiser states (and SAC's entropy coefficient and replay
buffer) are saved as tensors next to the metrics; rerunning with the same ``out`` loads them weights-only (SB3's
own ``save``/``load`` unpickle code, which pwm never does), drops metric rows written after that save and
continues to ``steps`` env steps. A run that has reached ``steps`` does nothing.

PPO's defaults for many envs follow massively parallel on-policy training (Rudin et al. 2022, "Learning to Walk in
Minutes Using Massively Parallel Deep RL"): short rollouts per env (``n_steps``), 4 minibatches and 5 epochs per
update; the rest are SB3's defaults. SAC uses SB3's defaults with one gradient step per batched env step.
"""

from __future__ import annotations

import csv
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from pwm.checkpoint.run_state import RunStateError
from pwm.envs.sim.registry import make_dflex_env
from pwm.training.evaluate import evaluate
from pwm.utils.io import atomic_torch_save
from pwm.utils.safe_load import UnsafeFileError, safe_torch_load

STATE_FILE, METRICS_FILE = "sb3_state.pt", "metrics.csv"
_BUFFER_ARRAYS = ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")


@dataclass(frozen=True)
class Sb3Settings:
    """One SB3 baseline run; ``num_envs=0`` trains through the single-env Gymnasium adapter."""

    env: str
    algo: Literal["ppo", "sac"]
    out: str
    steps: int = 100_000
    eval_every: int = 10_000
    eval_runs: int = 12
    seed: int = 1
    num_envs: int = 64
    n_steps: int = 32
    minibatches: int = 4
    epochs: int = 5
    device: str = "cpu"
    episode_length: int | None = None  # None: the task's own

    def env_overrides(self, **more: Any) -> dict[str, Any]:
        """Env config overrides shared by the training and evaluation envs."""
        overrides = {"device": self.device, **more}
        if self.episode_length is not None:
            overrides["episode_length"] = self.episode_length
        return overrides


def is_gym_task(env: str) -> bool:
    """A Gymnasium MuJoCo task (``gym_hopper`` ...) rather than a differentiable simulator."""
    return env.startswith("gym_")


def _gym_env(settings: Sb3Settings):
    import gymnasium as gym

    from pwm.envs.suites.gym_mujoco import GymMujocoEnv, gym_id

    GymMujocoEnv(settings.env).close()  # the same one-line errors as the online runner (name, image observations)
    env = gym.make(gym_id(settings.env), max_episode_steps=settings.episode_length)
    env.reset(seed=settings.seed)
    return env


def make_eval_env(settings: Sb3Settings):
    """Our evaluation env: a batched simulator of ``eval_runs`` copies, or one Gymnasium MuJoCo env."""
    if is_gym_task(settings.env):
        from pwm.envs.suites.gym_mujoco import GymMujocoEnv

        return GymMujocoEnv(settings.env, settings.seed + 1, settings.episode_length)
    return make_dflex_env(settings.env, settings.env_overrides(num_envs=settings.eval_runs, seed=settings.seed + 1))


def make_training_env(settings: Sb3Settings):
    """The SB3 ``VecEnv`` a run trains on: one batched env, or the Gymnasium adapter when ``num_envs == 0``; a
    Gymnasium MuJoCo task is one Gymnasium env (its ``*-v5``, as the online runner's)."""
    if is_gym_task(settings.env):
        from stable_baselines3.common.vec_env import DummyVecEnv

        return DummyVecEnv([lambda: _gym_env(settings)])
    if settings.num_envs == 0:
        from stable_baselines3.common.vec_env import DummyVecEnv

        from pwm.envs.sim.gym_adapter import make_gym_env

        return DummyVecEnv([lambda: make_gym_env(settings.env, **settings.env_overrides(seed=settings.seed))])
    from pwm.envs.sim.vec_env import make_vec_env

    return make_vec_env(settings.env, **settings.env_overrides(num_envs=settings.num_envs, seed=settings.seed))


def make_model(settings: Sb3Settings, venv) -> Any:
    """A fresh SB3 PPO or SAC on ``venv``. PPO's rollout is ``n_steps`` per env, ``n_steps x num_envs`` env steps
    (the adapter counts as one env), split into ``minibatches`` for each of ``epochs`` passes."""
    from stable_baselines3 import PPO, SAC

    if settings.algo == "sac":
        return SAC("MlpPolicy", venv, seed=settings.seed, device="cpu", verbose=0)
    rollout = settings.n_steps * max(settings.num_envs, 1)
    return PPO(
        "MlpPolicy", venv, n_steps=settings.n_steps, batch_size=max(rollout // settings.minibatches, 2),
        n_epochs=settings.epochs, seed=settings.seed, device="cpu", verbose=0,
    )  # fmt: skip


class Sb3Run:
    """A resumable SB3 run writing our run files (see the module docstring)."""

    def __init__(self, settings: Sb3Settings) -> None:
        self.settings = settings
        self.out = Path(settings.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.venv = make_training_env(settings)
        self.eval_env = make_eval_env(settings)
        self.model = self._load_or_create()
        self.rows = self._read_rows(self.model.num_timesteps)
        self.start = time.perf_counter() - (float(self.rows[-1]["time"]) if self.rows else 0.0)

    def _load_or_create(self) -> Any:
        path = self.out / STATE_FILE
        model = make_model(self.settings, self.venv)
        if not path.is_file():
            info = {"env": self.settings.env, "alg": self.settings.algo, "seed": self.settings.seed}
            (self.out / "run_info.json").write_text(json.dumps({**info, "sb3": asdict(self.settings)}))
            return model
        try:
            state = safe_torch_load(path, what="SB3 run state", map_location="cpu")
        except UnsafeFileError as err:
            raise RunStateError(str(err)) from None
        restore_agent(model, state)
        return model

    def _read_rows(self, upto: int) -> list[dict[str, Any]]:
        path = self.out / METRICS_FILE
        if not path.is_file() or not (self.out / STATE_FILE).is_file():
            return []
        with open(path, newline="") as f:
            return [r for r in csv.DictReader(f) if int(r["env_steps"]) <= upto]

    def run(self) -> dict[str, float]:
        """Train to ``steps`` env steps, evaluating every ``eval_every``; the last evaluation's row (empty when the
        run had already finished)."""
        from stable_baselines3.common.callbacks import BaseCallback

        run, every = self, self.settings.eval_every

        class EvalEvery(BaseCallback):
            def _on_step(self) -> bool:
                if self.num_timesteps // every > run.last_eval_steps // every:
                    run.evaluate_and_save(self.num_timesteps)
                return True

        if not self.rows:
            self.evaluate_and_save(0)
        remaining = self.settings.steps - self.model.num_timesteps
        if remaining <= 0:
            return {}
        self.model.learn(total_timesteps=remaining, callback=EvalEvery(), reset_num_timesteps=False)
        if self.last_eval_steps != self.model.num_timesteps:
            self.evaluate_and_save(self.model.num_timesteps)
        return self.rows[-1]

    @property
    def last_eval_steps(self) -> int:
        return int(self.rows[-1]["env_steps"]) if self.rows else -1

    def evaluate_and_save(self, steps: int) -> None:
        """Evaluate the deterministic policy, append a metric row, then save the model (the row first: a run killed
        in between resumes from the previous model and drops the row)."""
        seed = self.settings.seed * 100_003 + steps
        if is_gym_task(self.settings.env):  # episodes one after another, reseeded per evaluation (as the runner)
            self.eval_env.seed(seed)
            result = evaluate(self.single_policy, self.eval_env, self.settings.eval_runs)
        else:
            result = evaluate(self.policy, self.eval_env, self.eval_env.num_envs, seed=seed)
        row = {"step": steps, "env_steps": steps, "time": round(time.perf_counter() - self.start, 1)}
        self.rows.append({**row, **{f"eval/{k}": v for k, v in result.items()}})
        _write_rows(self.out / METRICS_FILE, self.rows)
        atomic_torch_save(agent_state(self.model), self.out / STATE_FILE)

    def policy(self, obs: torch.Tensor) -> torch.Tensor:
        action, _ = self.model.predict(obs.cpu().numpy(), deterministic=True)
        return torch.as_tensor(np.asarray(action, dtype=np.float32), device=obs.device)

    def single_policy(self, obs: np.ndarray) -> np.ndarray:
        action, _ = self.model.predict(obs[None], deterministic=True)
        return np.asarray(action[0], dtype=np.float32)


def agent_state(model) -> dict[str, Any]:
    """An SB3 agent as tensors and numbers only (a weights-only file): parameters, step count and, for SAC, the
    entropy coefficient and the replay buffer, so that training continues exactly."""
    state = {"params": model.get_parameters(), "num_timesteps": model.num_timesteps}
    if getattr(model, "log_ent_coef", None) is not None:  # SAC's learned entropy coefficient
        state["log_ent_coef"] = model.log_ent_coef.detach().clone()
    if getattr(model, "replay_buffer", None) is not None:  # off-policy agents
        state["buffer"] = buffer_state(model.replay_buffer)
    return state


def restore_agent(model, state: dict[str, Any]) -> None:
    """Put back what :func:`agent_state` saved."""
    model.set_parameters(state["params"], exact_match=True)
    model.num_timesteps = state["num_timesteps"]
    if "log_ent_coef" in state:
        model.log_ent_coef.data.copy_(state["log_ent_coef"])
    if "buffer" in state:
        restore_buffer(model.replay_buffer, state["buffer"])


def buffer_state(buffer) -> dict[str, Any]:
    """SAC's replay buffer as tensors (the filled part only) and its write position."""
    size = buffer.buffer_size if buffer.full else buffer.pos
    arrays = {k: torch.from_numpy(getattr(buffer, k)[:size].copy()) for k in _BUFFER_ARRAYS}
    return {**arrays, "pos": buffer.pos, "full": buffer.full}


def restore_buffer(buffer, state: dict[str, Any]) -> None:
    for key in _BUFFER_ARRAYS:
        values = state[key].numpy()
        getattr(buffer, key)[: len(values)] = values
    buffer.pos, buffer.full = state["pos"], state["full"]


def _write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    os.replace(tmp, path)
