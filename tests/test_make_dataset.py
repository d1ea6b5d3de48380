"""scripts/make_dataset.py: real DMControl rollouts written in the official layout and read back by the reader."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from pwm.data.dataset import open_dataset

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "make_dataset.py"


@pytest.fixture(scope="module")
def make_dataset():
    spec = importlib.util.spec_from_file_location("make_dataset", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def check_rows(ds, env_obs_dims: dict[int, int], env_action_dims: dict[int, int]) -> None:
    for chunk in ds.chunks:
        assert np.isnan(chunk.reward[:, 0]).all() and (chunk.action[:, 0] == 0).all()  # row 0 filler
        rewards = chunk.reward[:, 1:]
        assert np.isfinite(rewards).all() and rewards.min() >= 0 and rewards.max() <= 2  # 2 steps of [0, 1]
        assert np.isfinite(chunk.obs).all() and np.isfinite(chunk.action).all()
        assert np.abs(chunk.action).max() <= 1
        for i, task in enumerate(chunk.task):
            assert (chunk.obs[i, :, env_obs_dims[task] :] == 0).all()  # zero padding
            assert (chunk.action[i, :, env_action_dims[task] :] == 0).all()
            assert chunk.obs[i, :, : env_obs_dims[task]].std() > 0


def test_mt30_full_episodes(make_dataset, tmp_path):
    out = tmp_path / "mt30"
    argv = ["--tasks", "pendulum-swingup", "cartpole-swingup", "--episodes-per-task", "1"]
    assert make_dataset([*argv, "--episodes-per-chunk", "1", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.glob("*.pt")) == ["chunk_0.pt", "chunk_1.pt"]
    ds = open_dataset(out, "mt30")
    assert (ds.num_episodes, ds.episode_length, ds.obs_dim, ds.action_dim) == (2, 501, 24, 6)
    np.testing.assert_array_equal(ds.task_of_episode, [7, 10])
    check_rows(ds, {7: 3, 10: 5}, {7: 1, 10: 1})


def test_mt80_pieces_share_boundary_observations(make_dataset, tmp_path):
    out = tmp_path / "mt80"
    argv = ["--tasks", "pendulum-swingup", "--task-set", "mt80", "--episode-length", "200", "--seed", "3"]
    assert make_dataset([*argv, "--episodes-per-task", "2", "--out", str(out)]) == 0
    ds = open_dataset(out, "mt80")
    assert (ds.num_episodes, ds.episode_length, ds.obs_dim) == (4, 101, 39)  # 2 episodes x 2 pieces
    np.testing.assert_array_equal(ds.task_of_episode, [7, 7, 7, 7])
    obs = ds.chunks[0].obs
    np.testing.assert_array_equal(obs[0, -1], obs[1, 0])  # piece 1 starts at the obs piece 0 ended on
    np.testing.assert_array_equal(obs[2, -1], obs[3, 0])
    assert not np.array_equal(obs[1, -1], obs[2, 0])  # a new episode starts from a reset
    check_rows(ds, {7: 3}, {7: 1})


def test_same_seed_same_data(make_dataset, tmp_path):
    argv = ["--tasks", "cartpole-swingup", "--episodes-per-task", "2", "--episode-length", "20", "--seed", "5"]
    for name in ("a", "b"):
        assert make_dataset([*argv, "--out", str(tmp_path / name)]) == 0
    assert make_dataset([*argv, "--out", str(tmp_path / "b")]) == 2  # refuses to mix with existing chunks
    assert make_dataset([*argv, "--out", str(tmp_path / "b"), "--overwrite"]) == 0
    a, b = (open_dataset(tmp_path / n, "mt30", episode_length=21).chunks[0] for n in ("a", "b"))
    np.testing.assert_array_equal(a.obs, b.obs)
    np.testing.assert_array_equal(a.action, b.action)
    assert not np.array_equal(a.obs[0], a.obs[1])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--tasks", "mw-reach", "--task-set", "mt80"], "is a Meta-World task"),
        (["--tasks", "pendulum-swingup", "--task-set", "mt80", "--episode-length", "150"], "multiple of 100"),
        (["--tasks", "walker-jump"], "unknown task 'walker-jump' for mt30"),
    ],
)
def test_rejected_arguments(make_dataset, tmp_path, capsys, argv, message):
    assert make_dataset([*argv, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not any(tmp_path.glob("*.pt"))


def test_custom_task_is_recorded(make_dataset, tmp_path):
    """TD-MPC2's custom tasks (mt30 ids 19-29) are real environments too."""
    make_dataset(["--tasks", "cup-spin", "--episodes-per-task", "1", "--episode-length", "20", "--out", str(tmp_path)])
    chunk = open_dataset(tmp_path, "mt30", episode_length=21).chunks[0]
    assert chunk.task.tolist() == [28] and chunk.obs.shape == (1, 21, 24)
    assert (chunk.obs[0, :, 8:] == 0).all() and chunk.obs[0, :, :8].std() > 0
