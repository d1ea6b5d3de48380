"""Samplers of ``SequenceBatch`` windows: H+1 consecutive rows of one episode, uniform over all valid windows.

Both samplers store episodes in the dataset's row convention (row k holds obs_k and the action / reward of the
transition into obs_k; row 0's action / reward are filler), so a window starting at row s reads obs rows s..s+H
and action / reward rows s+1..s+H, and never reads a filler. An episode of T transitions has T+1 rows and
T+1-H valid windows; windows never cross an episode boundary, and episodes shorter than H+1 rows are never sampled.

- ``DatasetSampler``: an ``OfflineDataset`` (memory-mapped, fixed episode length); only the sampled rows are read.
- ``ReplayBuffer``: online data added episode by episode (variable length), capacity in transitions, oldest
  whole episodes evicted first.

Why not torchrl (the reference uses ``ReplayBuffer(LazyTensorStorage, SliceSampler)``): the only torchrl that
pip resolves next to torch 2.13 (0.14.1) pins ``tensordict<0.15`` and would downgrade the installed 0.15.3, and
its storages copy the data into one tensor in RAM, which is what the memory-mapped dataset avoids. Window
sampling over a row store is a few lines of index arithmetic, and a flat ``np.take`` per key gathers a batch
(micro-benchmark on warm mapped data, B=256, H=16: ~0.7M windows/s, against ~0.06M for torch advanced indexing
of the same mapping; the whole ``DatasetSampler`` does ~0.3M windows/s, see ``benchmarks/data_loading.py``).

Randomness comes only from a ``torch.Generator``: the same seed gives identical batches, and ``state_dict()`` /
``load_state_dict()`` carry the generator so a resumed run continues the same stream of batches (the online
buffer's *contents* are not part of the state dict).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from pwm.data.batch import SequenceBatch
from pwm.data.dataset import DatasetError, OfflineDataset


class _WindowSampler:
    """Batch size, horizon, device and the seeded generator shared by both samplers."""

    def __init__(self, batch_size: int, horizon: int, seed: int, device: str | torch.device) -> None:
        if batch_size < 1 or horizon < 1:
            raise ValueError(f"batch_size and horizon must be >= 1, found {batch_size} and {horizon}")
        self.batch_size = batch_size
        self.horizon = horizon
        self.device = torch.device(device)
        self.generator = torch.Generator().manual_seed(seed)

    def _draw(self, num_windows: int) -> np.ndarray:
        """``batch_size`` window ids, uniform in [0, num_windows)."""
        return torch.randint(num_windows, (self.batch_size,), generator=self.generator).numpy()

    def _batch(self, obs: np.ndarray, action: np.ndarray, reward: np.ndarray, **extra: Any) -> SequenceBatch:
        batch = SequenceBatch(torch.from_numpy(obs), torch.from_numpy(action), torch.from_numpy(reward), **extra)
        return batch if self.device.type == "cpu" else batch.to(self.device)

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state(), "batch_size": self.batch_size, "horizon": self.horizon}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "generator" not in state:
            raise KeyError(f"sampler state_dict has no 'generator' key (found: {', '.join(state)})")
        self.generator.set_state(state["generator"])


class DatasetSampler(_WindowSampler):
    """Windows from an offline dataset, optionally restricted to one task or to a given set of episodes."""

    def __init__(
        self,
        dataset: OfflineDataset,
        batch_size: int,
        horizon: int,
        *,
        seed: int = 0,
        task: int | str | None = None,
        episodes: np.ndarray | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        super().__init__(batch_size, horizon, seed, device)
        if task is not None and episodes is not None:
            raise ValueError("give either task or episodes, not both")
        self.dataset = dataset
        self.episodes = np.asarray(episodes, dtype=np.int64) if episodes is not None else dataset.episodes(task)
        self._per_episode = dataset.episode_length - horizon  # valid window starts per episode
        if self._per_episode < 1:
            raise DatasetError(
                f"horizon {horizon} needs episodes of >= {horizon + 1} rows; the data has {dataset.episode_length}"
            )
        if self.episodes.size == 0:
            raise DatasetError(f"no episodes to sample (task={task!r}): the dataset holds none of this task")

    @property
    def num_windows(self) -> int:
        return int(self.episodes.size) * self._per_episode

    def sample(self) -> SequenceBatch:
        window = self._draw(self.num_windows)
        episodes = self.episodes[window // self._per_episode]
        starts = window % self._per_episode
        obs, action, reward = self.dataset.gather(episodes, starts, self.horizon)
        tasks = self.dataset.task_of_episode
        task = None if tasks is None else torch.from_numpy(tasks[episodes].astype(np.int64))
        return self._batch(obs, action, reward, task=task)


@dataclass(frozen=True)
class _Episode:
    start: int  # first storage row
    rows: int  # transitions + 1
    task: int | None


class ReplayBuffer(_WindowSampler):
    """Online episodes in a ring of rows; holds at most ``capacity`` transitions, evicting oldest episodes first.

    Each episode is stored contiguously (it never wraps), so the ring has ``capacity + max_episode_length + 1``
    rows; an episode that does not fit before the end starts again at row 0, and the rows it skips are freed by
    evicting the (oldest) episodes there. Batches always carry ``terminated``; they carry ``task`` when episodes
    were added with one.
    """

    def __init__(
        self,
        capacity: int,
        batch_size: int,
        horizon: int,
        *,
        max_episode_length: int = 1000,
        seed: int = 0,
        device: str | torch.device = "cpu",
    ) -> None:
        super().__init__(batch_size, horizon, seed, device)
        self.capacity = capacity
        self.max_episode_length = max_episode_length
        self._size = capacity + max_episode_length + 1
        self._storage: dict[str, np.ndarray] = {}
        self._episodes: deque[_Episode] = deque()
        self._head = 0
        self._transitions = 0
        self._index: tuple[np.ndarray, ...] | None = None  # starts, cumulative windows, windows, tasks per episode

    def __len__(self) -> int:
        """Stored transitions."""
        return self._transitions

    @property
    def num_episodes(self) -> int:
        return len(self._episodes)

    def add_episode(
        self,
        obs: torch.Tensor | np.ndarray,
        action: torch.Tensor | np.ndarray,
        reward: torch.Tensor | np.ndarray,
        terminated: torch.Tensor | np.ndarray | bool | None = None,
        task: int | None = None,
    ) -> None:
        """Add one episode: obs ``[T+1, O]``, action ``[T, A]``, reward ``[T]``, terminated ``[T]`` or a bool for
        the last step (None: not terminated, e.g. a time limit)."""
        obs, action, reward = _as_numpy(obs), _as_numpy(action), _as_numpy(reward).reshape(-1)
        steps = _check_episode(obs, action, reward, self.capacity, self.max_episode_length)
        done = _terminated_column(terminated, steps)
        if self._episodes and (task is None) != (self._episodes[0].task is None):
            raise ValueError(
                f"task={task!r} but the buffer's episodes were added {'without' if task is None else 'with'}"
                " a task; give a task for all episodes or for none"
            )
        if not self._storage:
            self._allocate(obs.shape[1], action.shape[1])
        self._check_dims(obs, action)
        start = self._make_room(steps + 1)
        rows = slice(start, start + steps + 1)
        self._storage["obs"][rows] = obs
        self._storage["action"][rows] = np.concatenate([np.zeros_like(action[:1]), action])
        self._storage["reward"][rows] = np.concatenate([[np.nan], reward])
        self._storage["terminated"][rows] = np.concatenate([[0.0], done])
        self._episodes.append(_Episode(start, steps + 1, task))
        self._head = start + steps + 1
        self._transitions += steps
        self._index = None

    def export_episodes(self) -> list[dict[str, Any]]:
        """The stored episodes, oldest first, as tensors ``add_episode`` takes (for run states, read weights-only)."""
        out = []
        for e in self._episodes:
            rows = slice(e.start, e.start + e.rows)
            arrays = {k: v[rows] if k == "obs" else v[rows][1:] for k, v in self._storage.items()}
            out.append({**{k: torch.from_numpy(v.copy()) for k, v in arrays.items()}, "task": e.task})
        return out

    def state_dict(self, with_episodes: bool = False) -> dict[str, Any]:
        state = super().state_dict()
        if with_episodes:
            state["episodes"] = self.export_episodes()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the sampling RNG and, when the state holds them, the episodes (replacing the current ones)."""
        super().load_state_dict(state)
        if "episodes" in state:
            self._storage, self._episodes, self._head, self._transitions, self._index = {}, deque(), 0, 0, None
            for e in state["episodes"]:
                self.add_episode(e["obs"], e["action"], e["reward"], e["terminated"], e["task"])

    def _allocate(self, obs_dim: int, action_dim: int) -> None:
        n = self._size
        self._storage = {
            "obs": np.zeros((n, obs_dim), np.float32),
            "action": np.zeros((n, action_dim), np.float32),
            "reward": np.zeros(n, np.float32),
            "terminated": np.zeros(n, np.float32),
        }

    def _check_dims(self, obs: np.ndarray, action: np.ndarray) -> None:
        expected = (self._storage["obs"].shape[1], self._storage["action"].shape[1])
        if (obs.shape[1], action.shape[1]) != expected:
            raise ValueError(
                f"episode has obs/action dims {obs.shape[1]}/{action.shape[1]}, buffer holds "
                f"{expected[0]}/{expected[1]}"
            )

    def _make_room(self, rows: int) -> int:
        """Evict oldest episodes until ``rows`` fit at the head and the transition budget holds; return the start."""
        start = self._head if self._head + rows <= self._size else 0
        claimed = min(self._size, rows + (self._size - self._head if start == 0 else 0))
        while self._episodes:
            oldest = self._episodes[0]
            overlaps = (oldest.start - self._head) % self._size < claimed
            if not overlaps and self._transitions + rows - 1 <= self.capacity:
                break
            self._episodes.popleft()
            self._transitions -= oldest.rows - 1
        return start

    def _window_index(self) -> tuple[np.ndarray, ...]:
        if self._index is None:
            eps = list(self._episodes)
            starts = np.array([e.start for e in eps], dtype=np.int64)
            windows = np.maximum(np.array([e.rows for e in eps], dtype=np.int64) - self.horizon, 0)
            tasks = np.array([-1 if e.task is None else e.task for e in eps], dtype=np.int64)
            self._index = (starts, np.cumsum(windows), windows, tasks)
        return self._index

    @property
    def num_windows(self) -> int:
        cumulative = self._window_index()[1]
        return int(cumulative[-1]) if cumulative.size else 0

    def sample(self) -> SequenceBatch:
        starts, cumulative, windows, tasks = self._window_index()
        if self.num_windows == 0:
            raise ValueError(f"no episode with >= {self.horizon + 1} rows to sample windows of horizon {self.horizon}")
        window = self._draw(self.num_windows)
        ep = np.searchsorted(cumulative, window, side="right")  # episode whose window range holds each id
        offset = window - (cumulative[ep] - windows[ep])
        rows = (starts[ep] + offset)[None, :] + np.arange(self.horizon + 1)[:, None]
        s = self._storage
        obs = np.take(s["obs"], rows, axis=0)
        action, reward = np.take(s["action"], rows[1:], axis=0), np.take(s["reward"], rows[1:])
        terminated = torch.from_numpy(np.take(s["terminated"], rows[1:]))
        task = None if self._episodes[0].task is None else torch.from_numpy(tasks[ep])
        return self._batch(obs, action, reward, task=task, terminated=terminated)


def _as_numpy(x: torch.Tensor | np.ndarray) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float32)


def _check_episode(obs: np.ndarray, action: np.ndarray, reward: np.ndarray, capacity: int, max_len: int) -> int:
    if obs.ndim != 2 or action.ndim != 2:
        raise ValueError(
            f"expected obs [T+1, O] and action [T, A], found shapes {list(obs.shape)} and {list(action.shape)}"
        )
    steps = action.shape[0]
    if obs.shape[0] != steps + 1 or reward.shape[0] != steps:
        raise ValueError(
            f"episode of {steps} actions needs {steps + 1} obs and {steps} rewards, found "
            f"{obs.shape[0]} and {reward.shape[0]}"
        )
    if not 1 <= steps <= min(capacity, max_len):
        raise ValueError(
            f"episode has {steps} transitions, expected 1..{min(capacity, max_len)} "
            f"(capacity {capacity}, max_episode_length {max_len})"
        )
    return steps


def _terminated_column(terminated: torch.Tensor | np.ndarray | bool | None, steps: int) -> np.ndarray:
    done = np.zeros(steps, np.float32)
    if terminated is None or isinstance(terminated, bool):
        done[-1] = float(bool(terminated))
        return done
    column = _as_numpy(terminated).reshape(-1)
    if column.shape[0] != steps:
        raise ValueError(f"terminated has {column.shape[0]} entries, expected {steps} (one per transition)")
    return column
