"""Replay of pixel episodes for DreamerV2: whole episodes kept as uint8 frames, sequences sampled uniformly.

Step t of an episode holds the frame o_t, the action a_t that led *into* it (zero at t = 0) and the reward r_t
received on that transition (zero at t = 0): DreamerV2's alignment, where the action slot at t drives the prior
of step t. The sampler has its own seeded generator; it and the episodes are the state a resumed run restores.
"""

from __future__ import annotations

from typing import NamedTuple

import torch


class PixelBatch(NamedTuple):
    obs: torch.Tensor  # [B, L, C, H, W] uint8
    action: torch.Tensor  # [B, L, A]
    reward: torch.Tensor  # [B, L]


class PixelReplay:
    def __init__(self, capacity: int, seq_len: int, seed: int) -> None:
        self.capacity, self.seq_len = capacity, seq_len
        self.episodes: list[dict[str, torch.Tensor]] = []
        self.gen = torch.Generator().manual_seed(seed)

    @property
    def steps(self) -> int:
        return sum(len(e["reward"]) for e in self.episodes)

    def add(self, obs: torch.Tensor, action: torch.Tensor, reward: torch.Tensor) -> None:
        """One finished episode: ``obs`` [T+1, C, H, W] uint8, ``action`` [T+1, A], ``reward`` [T+1]."""
        if not (len(obs) == len(action) == len(reward)) or len(obs) < self.seq_len:
            raise ValueError(f"episode of {len(obs)} frames is shorter than alg.seq_len={self.seq_len}")
        self.episodes.append({"obs": obs, "action": action.float(), "reward": reward.float()})
        while self.steps > self.capacity and len(self.episodes) > 1:
            self.episodes.pop(0)

    def sample(self, batch: int, device: torch.device | str = "cpu") -> PixelBatch:
        picks = torch.randint(len(self.episodes), (batch,), generator=self.gen).tolist()
        out: dict[str, list[torch.Tensor]] = {"obs": [], "action": [], "reward": []}
        for i in picks:
            ep = self.episodes[i]
            start = int(torch.randint(len(ep["reward"]) - self.seq_len + 1, (1,), generator=self.gen))
            for key in out:
                out[key].append(ep[key][start : start + self.seq_len])
        return PixelBatch(*(torch.stack(out[k]).to(device) for k in ("obs", "action", "reward")))

    def state_dict(self) -> dict:
        return {"episodes": self.episodes, "gen": self.gen.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.episodes = list(state["episodes"])
        self.gen.set_state(state["gen"])
