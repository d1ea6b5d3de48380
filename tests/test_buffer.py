"""Window samplers: episode boundaries, row alignment, seeding, resume, FIFO eviction."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from tensordict import TensorDict

from pwm.data.buffer import DatasetSampler, ReplayBuffer
from pwm.data.dataset import open_dataset

ROWS = 21  # rows per episode in the small offline datasets (20 transitions)


def encoded_chunk(first_episode: int, tasks: list[int]) -> TensorDict:
    """obs[e, r] = (e, r, ...), action[e, r] = (e, r, ...), reward[e, r] = 1000 e + r: windows can be decoded."""
    n = len(tasks)
    ep = torch.arange(first_episode, first_episode + n, dtype=torch.float32)[:, None].expand(n, ROWS)
    row = torch.arange(ROWS, dtype=torch.float32)[None, :].expand(n, ROWS)
    obs = torch.zeros(n, ROWS, 24)
    obs[..., 0], obs[..., 1] = ep, row
    action = torch.zeros(n, ROWS, 6)
    action[..., 0], action[..., 1] = ep, row
    reward = 1000 * ep + row
    reward[:, 0] = float("nan")  # row 0 is filler and must never be sampled
    task = torch.tensor(tasks, dtype=torch.int32)[:, None].expand(n, ROWS).clone()
    return TensorDict({"obs": obs, "action": action, "reward": reward, "task": task}, batch_size=[n, ROWS])


@pytest.fixture
def dataset(tmp_path):
    torch.save(encoded_chunk(0, [3, 5, 3]), tmp_path / "chunk_0.pt")
    torch.save(encoded_chunk(3, [5, 3]), tmp_path / "chunk_1.pt")
    return open_dataset(tmp_path, "mt30", episode_length=ROWS)


def check_windows(batch, horizon: int, tasks: list[int] | None = None) -> list[tuple[int, int]]:
    """Every window is H+1 consecutive rows of one episode with action/reward from rows s+1..s+H."""
    assert batch.obs.shape[0] == horizon + 1 and batch.action.shape[0] == horizon
    ep, start = batch.obs[0, :, 0].long(), batch.obs[0, :, 1].long()
    t = torch.arange(horizon + 1)[:, None]
    assert torch.equal(batch.obs[:, :, 0], ep[None].expand(horizon + 1, -1).float())  # never crosses episodes
    assert torch.equal(batch.obs[:, :, 1], (start[None] + t).float())
    assert torch.equal(batch.action[:, :, 0], ep[None].expand(horizon, -1).float())
    assert torch.equal(batch.action[:, :, 1], (start[None] + t[1:]).float())  # action taken at obs_{s+t}
    assert torch.equal(batch.reward, (1000 * ep[None] + start[None] + t[1:]).float())
    assert torch.isfinite(batch.reward).all()
    if tasks is not None:
        assert torch.equal(batch.task, torch.tensor(tasks)[ep])
    return list(zip(ep.tolist(), start.tolist(), strict=True))


def test_offline_windows_match_hand_indexed_data_and_cover_all_windows_uniformly(dataset):
    horizon = 4
    sampler = DatasetSampler(dataset, batch_size=512, horizon=horizon, seed=0)
    assert sampler.num_windows == 5 * (ROWS - horizon)
    counts: Counter = Counter()
    for _ in range(20):
        batch = sampler.sample()
        assert batch.task.dtype == torch.int64 and batch.terminated is None
        counts.update(check_windows(batch, horizon, tasks=[3, 5, 3, 5, 3]))
    assert set(counts) == {(e, s) for e in range(5) for s in range(ROWS - horizon)}
    expected = 20 * 512 / sampler.num_windows
    assert max(abs(c - expected) for c in counts.values()) < 5 * expected**0.5  # uniform over valid windows


def test_offline_task_selection(dataset):
    sampler = DatasetSampler(dataset, batch_size=256, horizon=3, seed=1, task=5)
    episodes = {e for e, _ in check_windows(sampler.sample(), 3, tasks=[3, 5, 3, 5, 3])}
    assert episodes == {1, 3}
    sampler = DatasetSampler(dataset, batch_size=64, horizon=3, episodes=np.array([4]))
    assert {e for e, _ in check_windows(sampler.sample(), 3)} == {4}
    with pytest.raises(ValueError, match="needs episodes of >= 22 rows"):
        DatasetSampler(dataset, batch_size=8, horizon=21)
    with pytest.raises(ValueError, match="no episodes to sample"):
        DatasetSampler(dataset, batch_size=8, horizon=2, task=0)


def assert_same(a, b) -> None:
    for x, y in zip(a, b, strict=True):
        assert (x is None and y is None) or torch.equal(x, y)


def test_same_seed_same_batches_and_state_dict_resume(dataset):
    a, b = (DatasetSampler(dataset, 32, 5, seed=7) for _ in range(2))
    for _ in range(3):
        assert_same(a.sample(), b.sample())
    assert not torch.equal(
        DatasetSampler(dataset, 32, 5, seed=8).sample().obs, DatasetSampler(dataset, 32, 5, seed=7).sample().obs
    )
    state = a.state_dict()
    expected = [a.sample() for _ in range(3)]
    resumed = DatasetSampler(dataset, 32, 5, seed=123)
    resumed.load_state_dict(state)
    for batch in expected:
        assert_same(resumed.sample(), batch)


def encoded_episode(episode: int, steps: int, obs_dim: int = 3) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    row = torch.arange(steps + 1, dtype=torch.float32)
    obs = torch.stack([torch.full_like(row, episode), row, torch.zeros_like(row)], dim=1)[:, :obs_dim]
    action = torch.stack([torch.full_like(row[1:], episode), row[1:]], dim=1)
    reward = 1000 * episode + row[1:]
    return obs, action, reward


def test_online_windows_never_cross_episodes_and_align(tmp_path):
    buf = ReplayBuffer(capacity=200, batch_size=256, horizon=4, max_episode_length=50, seed=0)
    lengths = {0: 10, 1: 3, 2: 25, 3: 4}  # episode 1 (4 rows) is too short for H=4 and never sampled
    for ep, steps in lengths.items():
        buf.add_episode(*encoded_episode(ep, steps), terminated=(ep == 2))
    assert len(buf) == sum(lengths.values()) and buf.num_episodes == 4
    counts: Counter = Counter()
    for _ in range(10):
        batch = buf.sample()
        windows = check_windows(batch, 4)
        counts.update(windows)
        ep, start = batch.obs[0, :, 0].long(), batch.obs[0, :, 1].long()
        last = (ep == 2)[None] & (start[None] + torch.arange(1, 5)[:, None] == 25)
        assert torch.equal(batch.terminated, last.float())  # terminated on episode 2's final transition only
        assert batch.task is None
    valid = {(e, s) for e, steps in lengths.items() for s in range(steps + 1 - 4)}
    assert set(counts) == valid


def test_online_fifo_eviction_of_whole_episodes():
    rng = np.random.default_rng(0)
    capacity, horizon = 100, 2
    buf = ReplayBuffer(capacity=capacity, batch_size=128, horizon=horizon, max_episode_length=40, seed=3)
    added: list[int] = []
    for ep in range(60):
        steps = int(rng.integers(2, 41))
        buf.add_episode(*encoded_episode(ep, steps))
        added.append(steps)
        live = list(range(ep + 1 - buf.num_episodes, ep + 1))  # must be the newest episodes, in order
        assert len(buf) == sum(added[e] for e in live) <= capacity
        if sum(added) > capacity:  # the ring's wrap-around may evict beyond the budget, but not much
            assert len(buf) >= capacity - 2 * 40
        sampled = {e for e, _ in check_windows(buf.sample(), horizon)}
        assert sampled <= set(live)
    buf.add_episode(*encoded_episode(60, 40))
    buf.add_episode(*encoded_episode(61, 40))
    buf.add_episode(*encoded_episode(62, 15))
    assert buf.num_episodes == 3 and len(buf) == 95  # 40 + 40 + 15: episode 59 and older are gone
    assert {e for e, _ in check_windows(buf.sample(), horizon)} == {60, 61, 62}


def test_online_task_terminated_and_errors():
    buf = ReplayBuffer(capacity=50, batch_size=16, horizon=2, max_episode_length=20, seed=0)
    with pytest.raises(ValueError, match="no episode with >= 3 rows"):
        buf.sample()
    obs, action, reward = encoded_episode(0, 5)
    buf.add_episode(obs, action, reward, terminated=torch.tensor([0, 0, 1, 0, 0.0]), task=4)
    batch = buf.sample()
    assert torch.equal(batch.task, torch.full((16,), 4))
    start = batch.obs[0, :, 1].long()
    assert torch.equal(batch.terminated, (start[None] + torch.arange(1, 3)[:, None] == 3).float())
    with pytest.raises(ValueError, match="without a task"):
        buf.add_episode(obs, action, reward)
    with pytest.raises(ValueError, match="needs 6 obs and 5 rewards, found 5 and 5"):
        buf.add_episode(obs[:5], action, reward, task=4)
    with pytest.raises(ValueError, match=r"has 25 transitions, expected 1\.\.20"):
        buf.add_episode(*encoded_episode(1, 25), task=4)
    with pytest.raises(ValueError, match="obs/action dims 2/2, buffer holds 3/2"):
        buf.add_episode(obs[:, :2], action, reward, task=4)


def test_online_seed_and_resume():
    def filled(seed: int) -> ReplayBuffer:
        buf = ReplayBuffer(capacity=100, batch_size=8, horizon=3, max_episode_length=30, seed=seed)
        for ep, steps in enumerate([12, 30, 7]):
            buf.add_episode(*encoded_episode(ep, steps))
        return buf

    a, b = filled(1), filled(1)
    assert_same(a.sample(), b.sample())
    state = a.state_dict()
    expected = a.sample()
    c = filled(99)
    c.load_state_dict(state)
    assert_same(c.sample(), expected)
    with pytest.raises(KeyError, match="no 'generator' key"):
        c.load_state_dict({})
