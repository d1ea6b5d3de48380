"""Writing TD-MPC2's official dataset chunks: episodes -> padded rows -> one ``chunk_<i>.pt`` TensorDict.

The layout (read back by :mod:`pwm.data.dataset`): batch size [N, T]; ``obs`` float32 [N, T, O_pad] zero-padded to
the task set's obs dim, ``action`` float32 [N, T, A_pad] zero-padded, ``reward`` float32 [N, T] and ``task`` int32
[N, T] (the task's id in the set). Row k >= 1 holds obs_k with the action and reward of the transition into obs_k;
row 0 holds obs_0 with filler (action zeros, reward NaN). mt30 stores one episode per row (T = 501); mt80 stores
DMControl episodes as 100-transition pieces (T = 101) whose consecutive pieces share their boundary observation.
Both ``scripts/make_dataset.py`` (random policies) and ``scripts/collect_mt_data.py`` (learning agents) write
through here, so every reader and runner takes their data alike.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from tensordict import TensorDict

from pwm.data.tasks import TaskSet

MT80_PIECE = 100  # transitions per mt80 row


def episode_rows(
    obs: np.ndarray, action: np.ndarray, reward: np.ndarray, piece: int, task_set: TaskSet, task_id: int
) -> dict[str, np.ndarray]:
    """One episode (obs [L+1, O], action [L, A], reward [L]) -> rows of ``piece`` transitions ([P, piece+1, ...]),
    padded to the set's dims, row 0 filler, ``task`` filled with ``task_id``."""
    steps = action.shape[0]
    if steps % piece:
        raise ValueError(f"an episode of {steps} steps does not split into pieces of {piece}")
    if obs.shape[0] != steps + 1 or reward.shape[0] != steps:
        got = f"{obs.shape[0]}, {steps}, {reward.shape[0]}"
        raise ValueError(f"an episode needs obs [L+1], action [L] and reward [L] rows; got {got}")
    if obs.shape[1] > task_set.obs_dim or action.shape[1] > task_set.action_dim:
        raise ValueError(
            f"obs/action dims {obs.shape[1]}/{action.shape[1]} exceed {task_set.name}'s padded dims "
            f"{task_set.obs_dim}/{task_set.action_dim}"
        )
    rows = piece + 1
    obs_p = np.zeros((steps + 1, task_set.obs_dim), np.float32)
    obs_p[:, : obs.shape[1]] = obs
    act_p = np.zeros((steps + 1, task_set.action_dim), np.float32)  # row 0 stays zero (filler)
    act_p[1:, : action.shape[1]] = action
    rew_p = np.concatenate([[np.nan], reward]).astype(np.float32)  # row 0 is NaN (filler)
    starts = range(0, steps, piece)
    out = {
        "obs": np.stack([obs_p[s : s + rows] for s in starts]),
        "action": np.stack([act_p[s : s + rows] for s in starts]),
        "reward": np.stack([rew_p[s : s + rows] for s in starts]),
    }
    out["action"][:, 0] = 0.0  # a piece's row 0 is filler too, even where it is another piece's last row
    out["reward"][:, 0] = np.nan
    out["task"] = np.full(out["reward"].shape, task_id, np.int32)
    return out


def write_chunk(rows: list[dict[str, np.ndarray]], path: Path) -> None:
    """Concatenate row blocks and save atomically (temp file + rename), so a killed run never leaves a truncated
    chunk that the reader would pick up."""
    data = {k: torch.from_numpy(np.concatenate([r[k] for r in rows])) for k in rows[0]}
    td = TensorDict(data, batch_size=list(data["reward"].shape))
    path = Path(path)
    tmp = path.with_suffix(".pt.tmp")
    torch.save(td, tmp)
    os.replace(tmp, path)
    print(f"wrote {path}: {td.shape[0]} rows of length {td.shape[1]}", flush=True)
