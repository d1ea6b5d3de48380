"""Episodes of a batched env: recorded step by step, handed to a replay buffer, saved as pretraining data.

File format (``alg.save_data=true`` writes it, ``general.pretrain=<file>`` reads it): one ``torch.save``'d dict

- ``obs`` float32 ``[E, T+1, O]``: row 0 is the start observation, row k the observation after action k;
- ``action`` float32 ``[E, T+1, A]`` and ``reward`` float32 ``[E, T+1]``: row k holds the action that led to
  observation k and its reward (TD-MPC2's layout; row 0 is NaN);
- ``terminated`` bool ``[E]``, ``length`` int64 ``[E]`` (steps; rows past ``length`` are NaN padding);
- ``env`` (task name), ``format`` = ``"pwm-episodes-v1"``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pwm.utils.io import atomic_torch_save
from pwm.utils.safe_load import EPISODES, UnsafeFileError, safe_torch_load

FORMAT = "pwm-episodes-v1"


class EpisodeFileError(ValueError):
    """An episodes file is missing, of another format, or does not fit the env."""


@dataclass
class Episode:
    obs: np.ndarray  # [T+1, O]
    action: np.ndarray  # [T, A]
    reward: np.ndarray  # [T]
    terminated: bool

    @property
    def length(self) -> int:
        return self.reward.shape[0]


class EpisodeRecorder:
    """Follows every env of a ``BatchedEnv`` and collects its finished episodes.

    ``keep_data=False`` only tracks returns and lengths (cheap); with it, whole episodes are kept until
    ``pop_finished`` hands them out.
    """

    def __init__(self, start_obs: torch.Tensor, keep_data: bool, window: int = 100) -> None:
        self.keep_data = keep_data
        n = start_obs.shape[0]
        self._returns = torch.zeros(n, dtype=torch.float64)
        self._lengths = torch.zeros(n, dtype=torch.long)
        self._steps: list[list[tuple[np.ndarray, ...]]] = [[] for _ in range(n)]
        self._start = list(start_obs.detach().cpu().numpy()) if keep_data else []
        self.recent_returns: deque[float] = deque(maxlen=window)
        self.recent_lengths: deque[int] = deque(maxlen=window)
        self.finished: list[Episode] = []
        self.episodes_done = 0

    def record(self, action: torch.Tensor, out) -> None:
        """Add one env step (the ``EnvStep`` that ``action`` produced)."""
        reward = out.reward.detach().cpu()
        self._returns += reward.double()
        self._lengths += 1
        done = (out.terminated | out.truncated).cpu()
        if self.keep_data:
            obs = out.info["obs_before_reset"].detach().cpu().numpy()
            act, rew = action.detach().cpu().numpy(), reward.numpy()
            for i in range(len(self._steps)):
                self._steps[i].append((obs[i], act[i], rew[i]))
        for i in done.nonzero().flatten().tolist():
            self._finish(i, bool(out.terminated[i]), out.obs[i])

    def _finish(self, i: int, terminated: bool, reset_obs: torch.Tensor) -> None:
        self.recent_returns.append(float(self._returns[i]))
        self.recent_lengths.append(int(self._lengths[i]))
        self.episodes_done += 1
        self._returns[i], self._lengths[i] = 0.0, 0
        if self.keep_data:
            steps = self._steps[i]
            obs = np.stack([self._start[i], *(s[0] for s in steps)])
            action = np.stack([s[1] for s in steps])
            reward = np.array([s[2] for s in steps], dtype=np.float32)
            self.finished.append(Episode(obs.astype(np.float32), action.astype(np.float32), reward, terminated))
            self._steps[i] = []
            self._start[i] = reset_obs.detach().cpu().numpy()

    def state_dict(self) -> dict:
        """Episodes in progress and the recent-return window, so a resumed run records them whole.

        Tensors and plain values only (a run state loads weights-only): the numpy rows are stored as tensors and
        turned back into the same numpy values by ``load_state_dict``.
        """
        return {
            "returns": self._returns.clone(), "lengths": self._lengths.clone(),
            "steps": [_steps_to_tensors(steps) for steps in self._steps],
            "start": [torch.from_numpy(np.array(s)) for s in self._start],
            "recent_returns": list(self.recent_returns), "recent_lengths": list(self.recent_lengths),
            "episodes_done": self.episodes_done, "finished": [_episode_to_dict(e) for e in self.finished],
        }  # fmt: skip

    def load_state_dict(self, state: dict) -> None:
        self._returns, self._lengths = state["returns"].clone(), state["lengths"].clone()
        self._steps = [_steps_from_tensors(steps) for steps in state["steps"]]
        self._start = [s.numpy() if isinstance(s, torch.Tensor) else s for s in state["start"]]
        self.recent_returns.clear()
        self.recent_returns.extend(state["recent_returns"])
        self.recent_lengths.clear()
        self.recent_lengths.extend(state["recent_lengths"])
        self.episodes_done = state["episodes_done"]
        self.finished = [_episode_from_dict(e) for e in state["finished"]]

    def pop_finished(self) -> list[Episode]:
        out, self.finished = self.finished, []
        return out

    def mean_return(self) -> float:
        return float(np.mean(self.recent_returns)) if self.recent_returns else float("nan")

    def mean_length(self) -> float:
        return float(np.mean(self.recent_lengths)) if self.recent_lengths else float("nan")


def _steps_to_tensors(steps: list[tuple[np.ndarray, ...]]) -> dict[str, torch.Tensor]:
    """One env's steps in progress, ``[(obs, action, reward), ...]``, as three stacked tensors."""
    if not steps:
        return {}
    return {k: torch.from_numpy(np.stack([s[j] for s in steps])) for j, k in enumerate(("obs", "action", "reward"))}


def _steps_from_tensors(saved: dict | list) -> list[tuple[np.ndarray, ...]]:
    if isinstance(saved, list):  # a run state written before steps were stored as tensors
        return saved
    if not saved:
        return []
    obs, action, reward = saved["obs"].numpy(), saved["action"].numpy(), saved["reward"].numpy()
    return [(obs[k], action[k], reward[k]) for k in range(reward.shape[0])]


def _episode_to_dict(e: Episode) -> dict:
    return {"obs": torch.from_numpy(e.obs), "action": torch.from_numpy(e.action),
            "reward": torch.from_numpy(e.reward), "terminated": bool(e.terminated)}  # fmt: skip


def _episode_from_dict(e: Episode | dict) -> Episode:
    if isinstance(e, Episode):
        return e
    return Episode(e["obs"].numpy(), e["action"].numpy(), e["reward"].numpy(), e["terminated"])


def save_episodes(path: str | Path, episodes: list[Episode], env_name: str) -> None:
    """Write ``episodes`` in the file format above (atomically)."""
    if not episodes:
        raise ValueError("no finished episodes to save")
    longest = max(e.length for e in episodes)
    n, obs_dim, act_dim = len(episodes), episodes[0].obs.shape[1], episodes[0].action.shape[1]
    obs = torch.full((n, longest + 1, obs_dim), float("nan"))
    action = torch.full((n, longest + 1, act_dim), float("nan"))
    reward = torch.full((n, longest + 1), float("nan"))
    for k, e in enumerate(episodes):
        obs[k, : e.length + 1] = torch.from_numpy(e.obs)
        action[k, 1 : e.length + 1] = torch.from_numpy(e.action)
        reward[k, 1 : e.length + 1] = torch.from_numpy(e.reward)
    payload = {
        "format": FORMAT,
        "env": env_name,
        "obs": obs,
        "action": action,
        "reward": reward,
        "terminated": torch.tensor([e.terminated for e in episodes]),
        "length": torch.tensor([e.length for e in episodes]),
    }
    atomic_torch_save(payload, Path(path))


def load_episodes(path: str | Path, obs_dim: int, action_dim: int) -> list[Episode]:
    """Read an episodes file, checking its format and dims against the env; errors are one line."""
    path = Path(path)
    if not path.is_file():
        raise EpisodeFileError(f"no episodes file at {path}")
    try:
        data = safe_torch_load(path, what="episodes file", allow=EPISODES, map_location="cpu")
    except UnsafeFileError as err:
        raise EpisodeFileError(str(err)) from None
    except Exception as err:
        raise EpisodeFileError(f"{path} is not readable ({type(err).__name__}: {err})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise EpisodeFileError(f"{path} is not a pwm episodes file (format {FORMAT!r} expected)")
    obs, action, reward = data["obs"], data["action"], data["reward"]
    if obs.shape[-1] != obs_dim or action.shape[-1] != action_dim:
        raise EpisodeFileError(
            f"{path} holds obs {obs.shape[-1]} / action {action.shape[-1]} dims ({data.get('env')}); "
            f"the env has {obs_dim} / {action_dim}"
        )
    episodes = []
    for k, length in enumerate(data["length"].tolist()):
        episodes.append(
            Episode(
                obs[k, : length + 1].numpy(),
                action[k, 1 : length + 1].numpy(),
                reward[k, 1 : length + 1].numpy(),
                bool(data["terminated"][k]),
            )
        )
    return episodes
