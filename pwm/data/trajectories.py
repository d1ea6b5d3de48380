"""PolyGRAD's replay data: whole real episodes, sampled as fixed-length trajectory windows.

A window of ``h`` steps gives ``x [h, O + 2]`` (per step: observation, reward, terminal) and the actions ``[h, A]``.
A window may run past the end of an episode that *terminated* (the agent must learn what follows a fall): the
missing steps repeat the last observation and action with reward 0 and terminal 1 (PolyGRAD's padding). Episodes
cut by the time limit only give windows that fit inside them, since nothing is known after the cut.

Each step also keeps the simulator state (MuJoCo qpos and qvel) it was taken from, so that the world-model error
study can restore the simulator at any start. Everything, the unfinished episode and the sampling generator
included, is in ``state_dict``, so a resumed run samples the same windows.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import torch

FIELDS = ("obs", "actions", "rewards", "terminals", "sim_states")


class TrajectoryBuffer:
    def __init__(self, capacity: int, obs_dim: int, action_dim: int, state_dim: int, seed: int) -> None:
        self.capacity, self.dims = capacity, {"obs": obs_dim, "actions": action_dim, "sim_states": state_dim}
        self.episodes: list[dict[str, np.ndarray]] = []
        self.terminated: list[bool] = []
        self.open: dict[str, list] = {k: [] for k in FIELDS}
        self.generator = torch.Generator().manual_seed(seed)
        self._flat_cache: tuple[dict[str, np.ndarray], np.ndarray, np.ndarray] | None = None

    @property
    def num_steps(self) -> int:
        return sum(len(e["rewards"]) for e in self.episodes)

    def add_step(self, obs: np.ndarray, action: np.ndarray, reward: float, terminal: bool,
                 sim_state: np.ndarray) -> None:  # fmt: skip
        """One real step: the observation acted on, the action, its reward and whether it ended the episode."""
        for key, value in zip(FIELDS, (obs, action, reward, float(terminal), sim_state), strict=True):
            self.open[key].append(np.asarray(value, dtype=np.float64 if key == "sim_states" else np.float32))

    def end_episode(self, terminated: bool) -> None:
        """Close the open episode (``terminated``: ended by the task, not by the time limit)."""
        if not self.open["rewards"]:
            return
        self.episodes.append({k: np.stack(v) for k, v in self.open.items()})
        self.terminated.append(bool(terminated))
        self.open = {k: [] for k in FIELDS}
        self._flat_cache = None
        while self.num_steps > self.capacity and len(self.episodes) > 1:
            self.episodes.pop(0)
            self.terminated.pop(0)

    def _window_counts(self, horizon: int) -> np.ndarray:
        lengths = np.array([len(e["rewards"]) for e in self.episodes], dtype=np.int64)
        fit = np.maximum(lengths - horizon + 1, 0)
        return np.where(np.array(self.terminated, dtype=bool), lengths, fit)

    def num_windows(self, horizon: int) -> int:
        return int(self._window_counts(horizon).sum()) if self.episodes else 0

    def _draw(self, batch: int, horizon: int) -> list[tuple[int, int]]:
        counts = self._window_counts(horizon)
        total = int(counts.sum())
        if total == 0:
            raise ValueError(f"the replay buffer holds no window of {horizon} steps yet")
        ids = torch.randint(total, (batch,), generator=self.generator).numpy()
        ends = np.cumsum(counts)
        episode = np.searchsorted(ends, ids, side="right")
        return [(int(e), int(i - (ends[e] - counts[e]))) for e, i in zip(episode, ids, strict=True)]

    def window(self, episode: int, start: int, horizon: int) -> dict[str, np.ndarray]:
        """Steps ``start .. start+horizon-1`` of one stored episode, padded past a terminal."""
        ep = self.episodes[episode]
        idx = np.minimum(np.arange(start, start + horizon), len(ep["rewards"]) - 1)
        out = {k: ep[k][idx] for k in FIELDS}
        past = np.arange(start, start + horizon) >= len(ep["rewards"])
        out["rewards"] = np.where(past, 0.0, out["rewards"]).astype(np.float32)
        out["terminals"] = np.where(past, 1.0, out["terminals"]).astype(np.float32)
        return out

    def sample(self, batch: int, horizon: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``x [B, h, O + 2]`` and ``actions [B, h, A]`` (unnormalised) of uniformly drawn windows (the same values
        as stacking :meth:`window` of each draw, gathered from the flat arrays in one indexing per field)."""
        draws = np.array(self._draw(batch, horizon), dtype=np.int64).reshape(-1, 2)  # first: its error if empty
        flat, offsets, lengths = self._flat()
        episode, start = draws[:, 0], draws[:, 1]
        steps = start[:, None] + np.arange(horizon)
        last = lengths[episode][:, None] - 1
        idx = offsets[episode][:, None] + np.minimum(steps, last)
        past = steps > last
        rewards = np.where(past, 0.0, flat["rewards"][idx]).astype(np.float32)
        terminals = np.where(past, 1.0, flat["terminals"][idx]).astype(np.float32)
        x = np.concatenate([flat["obs"][idx], rewards[..., None], terminals[..., None]], -1)
        return torch.from_numpy(x), torch.from_numpy(flat["actions"][idx])

    def sample_starts(self, batch: int, horizon: int) -> torch.Tensor:
        """Start observations ``[B, O]`` for imagination: the first states of random windows."""
        draws = np.array(self._draw(batch, horizon), dtype=np.int64).reshape(-1, 2)
        flat, offsets, _ = self._flat()
        return torch.from_numpy(flat["obs"][offsets[draws[:, 0]] + draws[:, 1]])

    def all_steps(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Every stored step as ``x [N, O + 2]`` and ``actions [N, A]`` (what the normaliser is fitted on)."""
        flat = self._flat()[0]
        x = np.concatenate([flat["obs"], flat["rewards"][:, None], flat["terminals"][:, None]], 1)
        return torch.from_numpy(x), torch.from_numpy(flat["actions"].copy())  # not a view of the cache

    def _flat(self) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        """The stored episodes' training fields concatenated, with each episode's offset and length; rebuilt only
        after the episodes change (sampling then costs one gather per field instead of a loop over windows)."""
        if self._flat_cache is None:
            lengths = np.array([len(e["rewards"]) for e in self.episodes], dtype=np.int64)
            offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
            keys = ("obs", "actions", "rewards", "terminals")
            self._flat_cache = ({k: np.concatenate([e[k] for e in self.episodes]) for k in keys}, offsets, lengths)
        return self._flat_cache

    def state_dict(self) -> dict[str, Any]:
        def stack(episodes: list[dict[str, np.ndarray]], key: str) -> torch.Tensor:
            dim = self.dims.get(key)
            empty = np.zeros((0, dim) if dim else (0,), dtype=np.float64 if key == "sim_states" else np.float32)
            return torch.from_numpy(np.concatenate([e[key] for e in episodes]) if episodes else empty)

        opened = [{k: np.stack(v) for k, v in self.open.items()}] if self.open["rewards"] else []
        return {
            "episodes": {k: stack(self.episodes, k) for k in FIELDS},
            "lengths": torch.tensor([len(e["rewards"]) for e in self.episodes], dtype=torch.long),
            "terminated": torch.tensor(self.terminated, dtype=torch.bool),
            "open": {k: stack(opened, k) for k in FIELDS},
            "generator": self.generator.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        bounds = np.concatenate([[0], np.cumsum(state["lengths"].numpy())])
        data = {k: v.numpy() for k, v in state["episodes"].items()}
        self.episodes = [{k: data[k][a:b].copy() for k in FIELDS} for a, b in itertools.pairwise(bounds)]
        self.terminated = [bool(v) for v in state["terminated"]]
        self.open = {k: list(v.numpy()) for k, v in state["open"].items()}
        self.generator.set_state(state["generator"])
        self._flat_cache = None
