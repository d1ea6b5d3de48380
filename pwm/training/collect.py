"""Multi-task data with the official data's character: one SB3 SAC agent learns each task on real DMControl, and
its whole replay buffer, in training order, becomes that task's episodes in TD-MPC2's chunk layout.

The official MT30/MT80 data are the full replay buffers of single-task TD-MPC2 agents, from random to expert
behaviour (Hansen et al. 2024); random-policy data (``scripts/make_dataset.py``) have none of the competent part,
so a policy extracted from a model of them cannot show anything. Here SAC (Haarnoja et al. 2018, SB3's defaults)
starts with ``random_steps`` uniform-random actions (TD-MPC2's seeding phase) and then learns; its buffer holds
every transition, so each episode of ``episode_length`` agent steps becomes one dataset row.

Layout of ``out``: ``chunk_<task id>.pt`` per finished task (:mod:`pwm.data.chunks`), ``manifest.json`` (per task:
id, steps, the training episodes' returns, a uniform-random policy's and the final agent's evaluation returns),
and ``agents/<task>/sac_state.pt``: the agent's run state (weights, optimisers, entropy coefficient, replay buffer,
step), written atomically every ``save_every`` steps at an episode boundary. Rerunning resumes an interrupted task
from its last run state and skips finished ones (those in the manifest).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pwm.data.chunks import MT80_PIECE, episode_rows, write_chunk
from pwm.data.tasks import DMC_EPISODE_LENGTH, get_task_set
from pwm.training.evaluate import evaluate
from pwm.training.sb3_run import agent_state, restore_agent
from pwm.utils.errors import ConfigError
from pwm.utils.io import atomic_torch_save
from pwm.utils.run_lock import RunDirLock
from pwm.utils.safe_load import UnsafeFileError, safe_torch_load

MANIFEST, STATE_FILE, FORMAT = "manifest.json", "sac_state.pt", "pwm-mt-collect-v1"
MINI_MT = ("cartpole-swingup", "reacher-easy", "finger-spin", "walker-stand", "cup-catch")
"""Default task set: five MT30 tasks from easy (cartpole, finger-spin: dense rewards, SAC learns them in tens of
thousands of steps) to harder (cup-catch: sparse; walker-stand: 6 actuators)."""


@dataclass
class CollectSettings:
    """What one collection writes; the keys in ``MUST_MATCH`` are recorded and a rerun must repeat them."""

    out: str
    tasks: list[str] = field(default_factory=lambda: list(MINI_MT))
    task_set: str = "mt30"
    steps: int = 50_000
    """Agent steps (transitions) per task; a multiple of ``episode_length``."""
    random_steps: int = 2_500
    """Uniform-random actions before SAC starts learning (SB3 ``learning_starts``)."""
    episode_length: int = DMC_EPISODE_LENGTH
    save_every: int = 5_000
    """Agent steps between run states; a multiple of ``episode_length`` so that a resumed run starts a new episode."""
    eval_episodes: int = 10
    seed: int = 1
    batch_size: int = 256
    gradient_steps: int = 1
    """SAC gradient steps per agent step (SB3 default 1)."""

    MUST_MATCH = ("task_set", "steps", "random_steps", "episode_length", "seed", "batch_size", "gradient_steps")

    def check(self) -> list[int]:
        """Task ids of ``tasks``; a one-line ConfigError for anything the run could not honour."""
        ts = get_task_set(self.task_set)
        ids = []
        for name in self.tasks:
            if name.startswith("mw-"):
                raise ConfigError(f"task {name!r} is a Meta-World task; collection covers DMControl tasks")
            try:
                ids.append(ts.index(name))
            except KeyError as err:
                raise ConfigError(err.args[0]) from None
        if len(set(ids)) != len(ids):
            raise ConfigError(f"--tasks lists a task twice: {' '.join(self.tasks)}")
        length = self.episode_length
        piece = length if self.task_set == "mt30" else MT80_PIECE
        for name in ("steps", "save_every", "episode_length", "eval_episodes", "batch_size", "gradient_steps"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.steps % length or self.save_every % length or length % piece or length > DMC_EPISODE_LENGTH:
            raise ConfigError(
                f"--steps {self.steps} and --save-every {self.save_every} must be multiples of --episode-length "
                f"{length} (<= {DMC_EPISODE_LENGTH}; a multiple of {MT80_PIECE} for mt80)"
            )
        if not 0 <= self.random_steps <= self.steps:
            raise ConfigError(f"--random-steps {self.random_steps} must lie in [0, --steps {self.steps}]")
        return ids


# ------------------------------------------------------------------------------------------------------ manifest


def read_manifest(out: Path) -> dict[str, Any]:
    path = out / MANIFEST
    if not path.is_file():
        return {"format": FORMAT, "tasks": {}}
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path}: not valid JSON ({err.msg} at line {err.lineno})") from None
    if manifest.get("format") != FORMAT:
        raise ConfigError(f"{path}: format {manifest.get('format')!r}, expected {FORMAT!r}")
    return manifest


def write_manifest(out: Path, manifest: dict[str, Any]) -> None:
    tmp = out / f"{MANIFEST}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(manifest, indent=1) + "\n")
    os.replace(tmp, out / MANIFEST)


def check_same_settings(manifest: dict[str, Any], settings: CollectSettings, path: Path) -> None:
    """A rerun must collect with the settings the manifest records (another setting needs another ``out``)."""
    recorded = manifest.get("settings")
    if recorded is None:
        return
    for key in CollectSettings.MUST_MATCH:
        if recorded.get(key) != getattr(settings, key):
            raise ConfigError(
                f"{path / MANIFEST} was collected with {key}={recorded.get(key)}, this run asks for "
                f"{getattr(settings, key)}; use the same value or another --out"
            )


# ---------------------------------------------------------------------------------------------------------- agent


def make_agent(settings: CollectSettings, task: str, seed: int):
    """A fresh SB3 SAC on the task's own dims, with a buffer that holds every step (nothing is overwritten)."""
    from stable_baselines3 import SAC
    from stable_baselines3.common.vec_env import DummyVecEnv

    from pwm.envs.suites.gym_env import SuiteGymEnv
    from pwm.envs.suites.registry import make_env

    venv = DummyVecEnv([lambda: SuiteGymEnv(make_env(task, seed=seed, episode_length=settings.episode_length))])
    return SAC(
        "MlpPolicy", venv, buffer_size=settings.steps, learning_starts=settings.random_steps,
        batch_size=settings.batch_size, gradient_steps=settings.gradient_steps, seed=seed, device="cpu", verbose=0,
    )  # fmt: skip


def save_agent(model, path: Path) -> None:
    atomic_torch_save(agent_state(model), path)


def load_agent(model, path: Path) -> None:
    """Restore a run state saved by :func:`save_agent`, weights-only."""
    try:
        state = safe_torch_load(path, what="SAC run state", map_location="cpu")
    except UnsafeFileError as err:
        raise ConfigError(str(err)) from None
    restore_agent(model, state)


def train_agent(settings: CollectSettings, task: str, seed: int, work: Path):
    """Train (or resume) the task's agent to ``settings.steps``, saving a run state every ``save_every`` steps.

    Training runs in segments ending on episode boundaries: the env has just finished an episode when a state is
    saved, so a resumed run (whose env starts with a reset) continues with whole episodes.
    """
    model = make_agent(settings, task, seed)
    state = work / STATE_FILE
    if state.is_file():
        load_agent(model, state)
        print(f"{task}: resumed at step {model.num_timesteps}", flush=True)
    while model.num_timesteps < settings.steps:
        segment = min(settings.save_every, settings.steps - model.num_timesteps)
        model.learn(total_timesteps=segment, reset_num_timesteps=False)
        save_agent(model, state)
        print(f"{task}: step {model.num_timesteps}/{settings.steps}", flush=True)
    return model


def buffer_episodes(buffer, steps: int, length: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The buffer's first ``steps`` transitions as episodes (obs [L+1, O], action [L, A], reward [L]).

    Within an episode each stored next observation is the next step's observation; a mismatch means the buffer is
    not whole episodes in order (which the chunk rows assume), so it is an error rather than silent garbage.
    """
    obs, nxt = buffer.observations[:steps, 0], buffer.next_observations[:steps, 0]
    action, reward = buffer.actions[:steps, 0], buffer.rewards[:steps, 0]
    episodes = []
    for start in range(0, steps, length):
        end = start + length
        if not np.array_equal(nxt[start : end - 1], obs[start + 1 : end]):
            raise RuntimeError(f"replay buffer steps {start}..{end} are not one episode in order")
        episode_obs = np.concatenate([obs[start:end], nxt[end - 1 : end]])
        episodes.append((episode_obs.astype(np.float32), action[start:end].astype(np.float32), reward[start:end]))
    return episodes


# ----------------------------------------------------------------------------------------------------- collection


def evaluate_returns(task: str, policy, settings: CollectSettings, seed: int) -> dict[str, float]:
    from pwm.envs.suites.registry import make_env

    env = make_env(task, seed=seed, episode_length=settings.episode_length)
    try:
        result = evaluate(policy, env, settings.eval_episodes)
    finally:
        env.close()
    return {"return": result["return"], "return_std": result["return_std"]}


def collect_task(settings: CollectSettings, task: str, task_id: int, out: Path) -> dict[str, Any]:
    """Train, write ``chunk_<task id>.pt`` and evaluate; the task's manifest entry."""
    seed = int(np.random.SeedSequence([settings.seed, task_id]).generate_state(1)[0] % 2**31)
    model = train_agent(settings, task, seed, out / "agents" / task)
    task_set = get_task_set(settings.task_set)
    piece = settings.episode_length if settings.task_set == "mt30" else MT80_PIECE
    episodes = buffer_episodes(model.replay_buffer, settings.steps, settings.episode_length)
    rows = [episode_rows(o, a, r, piece, task_set, task_id) for o, a, r in episodes]
    write_chunk(rows, out / f"chunk_{task_id}.pt")
    rng = np.random.default_rng(seed)
    dim = model.action_space.shape[0]
    random = evaluate_returns(task, lambda _: rng.uniform(-1, 1, dim).astype(np.float32), settings, seed + 1)
    final = evaluate_returns(task, lambda obs: model.predict(obs, deterministic=True)[0], settings, seed + 1)
    entry = {
        "task_id": task_id, "steps": settings.steps, "episodes": len(episodes), "seed": seed,
        "random_return": random["return"], "final_return": final["return"], "final_return_std": final["return_std"],
        "train_episode_returns": [round(float(r.sum()), 2) for _, _, r in episodes],
    }  # fmt: skip
    print(f"{task} (id {task_id}): random {random['return']:.1f}, final agent {final['return']:.1f}", flush=True)
    return entry


def collect(settings: CollectSettings) -> dict[str, Any]:
    """Collect every task of ``settings`` not yet in the manifest; the manifest."""
    ids = settings.check()
    out = Path(settings.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    with RunDirLock(out):
        manifest = read_manifest(out)
        check_same_settings(manifest, settings, out)
        manifest["settings"] = {k: getattr(settings, k) for k in CollectSettings.MUST_MATCH}
        for task, task_id in zip(settings.tasks, ids, strict=True):
            if task in manifest["tasks"] and (out / f"chunk_{task_id}.pt").is_file():
                print(f"skip {task}: finished", flush=True)
                continue
            manifest["tasks"][task] = collect_task(settings, task, task_id, out)
            write_manifest(out, manifest)
        write_manifest(out, manifest)
    return manifest
