"""Open-loop world-model error against the simulator (PolyGRAD's error study, arXiv 2312.08533).

For each start, the simulator is restored to the recorded MuJoCo state (qpos, qvel) and the model's actions are
replayed open loop; the error at step k is the MSE between the model's observation k and the simulator's,
averaged over observation dimensions and starts, in unnormalised observation space. A simulator that diverges
(the robot falls and the episode would terminate) is still stepped: the comparison is of dynamics, not returns.
"""

from __future__ import annotations

import numpy as np

from pwm.envs.suites.gym_mujoco import GymMujocoEnv


def simulate_open_loop(env: GymMujocoEnv, sim_states: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """The simulator's observations ``[B, h, O]`` from each start state ``sim_states [B, S]``: step 0 is the start's
    observation, step k follows actions 0..k-1 of ``actions [B, h, A]``."""
    b, h = actions.shape[:2]
    out = np.zeros((b, h, env.obs_dim), dtype=np.float64)
    for i in range(b):
        out[i, 0] = env.set_sim_state(sim_states[i])
        for k in range(1, h):
            out[i, k] = env.step(actions[i, k - 1]).obs
    return out


def open_loop_mse(env: GymMujocoEnv, sim_states: np.ndarray, actions: np.ndarray,
                  predicted_obs: np.ndarray) -> np.ndarray:  # fmt: skip
    """MSE per step ``[h]`` between ``predicted_obs [B, h, O]`` and the simulator's replay of ``actions`` (entry 0
    compares the start, which every model is conditioned on)."""
    real = simulate_open_loop(env, sim_states, actions)
    return ((np.asarray(predicted_obs, np.float64) - real) ** 2).mean(axis=(0, 2))
