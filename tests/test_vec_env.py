"""The SB3 VecEnv over one batched env (pwm.envs.sim.vec_env) and resumable SB3 runs (pwm.training.sb3_run)."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import stable_baselines3  # noqa: F401  (the baselines extra, installed by .[dev])
import torch

from pwm.envs.sim.registry import make_dflex_env
from pwm.envs.sim.vec_env import BatchedVecEnv, check_vec_env, make_vec_env
from pwm.training.sb3_run import Sb3Run, Sb3Settings


@pytest.mark.parametrize("name", ["dflex_cartpole", "dflex_hopper"])
def test_passes_sb3_checks_with_resets_inside(name):
    venv = make_vec_env(name, num_envs=5, episode_length=7)
    check_vec_env(venv, steps=16)  # two time limits pass inside the 16 steps


def test_auto_reset_hands_sb3_the_observation_before_the_reset():
    venv = make_vec_env("dflex_cartpole", num_envs=3, episode_length=4)
    twin = make_dflex_env("dflex_cartpole", {"num_envs": 3, "episode_length": 4})
    venv.seed(11)
    np.testing.assert_array_equal(venv.reset(), twin.reset(seed=11).numpy())
    actions = np.full((3, 1), 0.5, dtype=np.float32)
    for t in range(4):
        obs, rewards, dones, infos = venv.step(actions)
        out = twin.step(torch.as_tensor(actions))
        np.testing.assert_array_equal(obs, out.obs.numpy())
        np.testing.assert_array_equal(rewards, out.reward.numpy())
        assert dones.tolist() == [t == 3] * 3
    assert all(info["TimeLimit.truncated"] is True for info in infos)
    np.testing.assert_array_equal(infos[1]["terminal_observation"], out.info["obs_before_reset"][1].numpy())
    assert not np.array_equal(infos[1]["terminal_observation"], obs[1])  # the new episode's start differs


class _NanEnv(BatchedVecEnv):
    def step_wait(self):
        obs, rewards, dones, infos = super().step_wait()
        rewards[0] = np.nan
        return obs, rewards, dones, infos


def test_check_catches_nan_rewards_and_wrong_shapes():
    with pytest.raises(ValueError, match=r"^check_vec_env: found nan in rewards\.$"):
        check_vec_env(_NanEnv(make_dflex_env("dflex_cartpole", {"num_envs": 2})), steps=2)
    venv = make_vec_env("dflex_cartpole", num_envs=2)
    venv.step_wait = lambda: (np.zeros((2, 4), np.float32), np.zeros(2, np.float32), np.zeros(2, bool), [{}, {}])
    with pytest.raises(ValueError, match="check_vec_env: step: obs"):
        check_vec_env(venv, steps=1)


def _rows(path):
    with open(path / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("algo", ["ppo", "sac"])
def test_sb3_run_writes_our_metrics_and_resumes(tmp_path, algo):
    torch.set_num_threads(1)
    base = dict(env="dflex_cartpole", algo=algo, out=str(tmp_path), eval_every=64, eval_runs=2, num_envs=4,
                n_steps=8, episode_length=16)  # fmt: skip
    Sb3Run(Sb3Settings(**base, steps=128)).run()
    rows = _rows(tmp_path)
    assert [int(r["env_steps"]) for r in rows] == [0, 64, 128]
    assert {"eval/return", "eval/length", "eval/final_reward"} <= set(rows[0])
    assert float(rows[-1]["eval/length"]) == 16
    more = Sb3Run(Sb3Settings(**base, steps=256))
    assert more.model.num_timesteps == 128
    more.run()
    assert [int(r["env_steps"]) for r in _rows(tmp_path)] == [0, 64, 128, 192, 256]
    assert _rows(tmp_path)[:3] == rows
    assert Sb3Run(Sb3Settings(**base, steps=256)).run() == {}  # finished: nothing to do
