"""The offline dataset reader: official chunk layout round trip, memmap cache lifecycle, one-line layout errors."""

from __future__ import annotations

import mmap
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
from tensordict import TensorDict

from pwm.data.dataset import CACHE_DIRNAME, MARKER, DatasetError, Layout, cache_path, convert, open_dataset
from pwm.data.tasks import get_task_set


def official_chunk(tasks: list[int], rows: int = 501, obs_dim: int = 24, seed: int = 0) -> TensorDict:
    """Episodes in TD-MPC2's layout: row 0 has a NaN reward and garbage action, task constant per episode."""
    g = torch.Generator().manual_seed(seed)
    n = len(tasks)
    td = TensorDict(
        {
            "obs": torch.randn(n, rows, obs_dim, generator=g),
            "action": torch.rand(n, rows, 6, generator=g) * 2 - 1,
            "reward": torch.rand(n, rows, generator=g),
            "task": torch.tensor(tasks, dtype=torch.int32)[:, None].expand(n, rows).clone(),
        },
        batch_size=[n, rows],
    )
    td["reward"][:, 0] = float("nan")
    td["action"][:, 0] = 1e30
    return td


def save(obj: object, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(obj, path)
    return path


def test_official_chunks_round_trip_in_natural_order(tmp_path):
    a, b = official_chunk([0, 3, 3], seed=1), official_chunk([7, 29], seed=2)
    save(b, tmp_path / "chunk_10.pt")
    save(a, tmp_path / "chunk_2.pt")  # natural order: chunk_2 before chunk_10
    ds = open_dataset(tmp_path, "mt30")
    assert (ds.num_episodes, ds.episode_length, ds.obs_dim, ds.action_dim) == (5, 501, 24, 6)
    assert ds.num_transitions == 5 * 500
    np.testing.assert_array_equal(ds.task_of_episode, [0, 3, 3, 7, 29])
    for chunk, src in zip(ds.chunks, (a, b), strict=True):
        for key in ("obs", "action", "reward"):
            np.testing.assert_array_equal(getattr(chunk, key), src[key].numpy())
        assert isinstance(chunk.obs.base, mmap.mmap) and not chunk.obs.flags.writeable


@pytest.mark.parametrize("access", ["normal", "random"])
def test_access_hint_reads_the_same_data(tmp_path, access):
    src = official_chunk([9, 8])
    save(src, tmp_path / "chunk_0.pt")
    ds = open_dataset(tmp_path, "mt30", access=access)
    np.testing.assert_array_equal(ds.chunks[0].obs, src["obs"].numpy())


def test_single_task_selection_returns_exactly_that_tasks_episodes(tmp_path):
    save(official_chunk([7, 1, 7]), tmp_path / "chunk_0.pt")
    save(official_chunk([1, 7]), tmp_path / "chunk_1.pt")
    ds = open_dataset(tmp_path, "mt30")
    np.testing.assert_array_equal(ds.episodes("pendulum-swingup"), [0, 2, 4])
    np.testing.assert_array_equal(ds.episodes(1), [1, 3])
    assert ds.episodes(0).size == 0
    np.testing.assert_array_equal(ds.episodes(), np.arange(5))
    with pytest.raises(KeyError, match="unknown task 'nope'"):
        ds.episodes("nope")
    with pytest.raises(DatasetError, match=r"task id 30 out of range \[0, 30\) for mt30"):
        ds.episodes(30)


def test_pwm_single_task_file(tmp_path):
    n, rows = 3, 17
    data = {"obs": torch.randn(n, rows, 5), "action": torch.randn(n, rows, 2), "reward": torch.randn(n, rows, 1)}
    path = save(data, tmp_path / "ant.pt")
    ds = open_dataset(path)
    assert (ds.num_episodes, ds.episode_length, ds.obs_dim, ds.action_dim) == (3, 17, 5, 2)
    assert ds.task_of_episode is None
    np.testing.assert_array_equal(ds.chunks[0].reward, data["reward"][..., 0].numpy())
    assert (tmp_path / CACHE_DIRNAME).is_dir()
    with pytest.raises(DatasetError, match="has no 'task' key"):
        ds.episodes(0)


def test_cache_is_created_once_and_reused(tmp_path, monkeypatch):
    src = official_chunk([4, 5])
    save(src, tmp_path / "data" / "chunk_0.pt")
    cache_root = tmp_path / "cache"
    open_dataset(tmp_path / "data", "mt30", cache_dir=cache_root)
    (cache_dir,) = [p for p in cache_root.iterdir()]
    assert (cache_dir / MARKER).exists()
    marker_mtime = (cache_dir / MARKER).stat().st_mtime_ns

    def no_load(*args, **kwargs):
        raise AssertionError("a complete cache must be reused, not re-converted")

    monkeypatch.setattr(torch, "load", no_load)
    ds = open_dataset(tmp_path / "data", "mt30", cache_dir=cache_root)
    np.testing.assert_array_equal(ds.chunks[0].obs, src["obs"].numpy())
    assert (cache_dir / MARKER).stat().st_mtime_ns == marker_mtime
    assert not (tmp_path / "data" / CACHE_DIRNAME).exists()


def test_interrupted_cache_is_rebuilt(tmp_path):
    src = official_chunk([2, 2])
    path = save(src, tmp_path / "chunk_0.pt")
    open_dataset(path, "mt30")
    (cache_dir,) = list((tmp_path / CACHE_DIRNAME).iterdir())
    (cache_dir / MARKER).unlink()  # as if killed before the marker: the data files cannot be trusted
    obs = np.load(cache_dir / "obs.npy", mmap_mode="r+")
    obs[:] = 0.0
    obs.flush()
    del obs
    abandoned = cache_dir.with_name(f"{cache_dir.name}.partial-{socket.gethostname()}-999999999")  # dead process
    abandoned.mkdir()
    ds = open_dataset(path, "mt30")
    assert (cache_dir / MARKER).exists() and not abandoned.exists()
    np.testing.assert_array_equal(ds.chunks[0].obs, src["obs"].numpy())


def test_edited_source_gets_a_fresh_cache(tmp_path):
    path = save(official_chunk([1]), tmp_path / "chunk_0.pt")
    open_dataset(path, "mt30")
    save(official_chunk([1, 2], seed=5), path)
    ds = open_dataset(path, "mt30")
    np.testing.assert_array_equal(ds.task_of_episode, [1, 2])


def test_episode_length_override(tmp_path):
    path = save(official_chunk([0], rows=21), tmp_path / "chunk_0.pt")
    assert open_dataset(path, "mt30", episode_length=21).episode_length == 21
    with pytest.raises(DatasetError, match="expected 501 for mt30"):
        open_dataset(path, "mt30")


def _malformed(kind: str) -> object:
    td = official_chunk([0, 1])
    if kind == "wrong_T":
        return td[:, :500]
    if kind == "missing_key":
        del td["reward"]
        return td
    if kind == "wrong_dtype":
        td["obs"] = td["obs"].double()
        return td
    if kind == "obs_dim":
        return official_chunk([0, 1], obs_dim=30)
    if kind == "task_range":
        td["task"][1] = 30
        return td
    if kind == "task_changes":
        td["task"][1, 250:] = 2
        return td
    if kind == "nan_obs":
        td["obs"][1, 7, 3] = float("nan")
        return td
    if kind == "not_tensordict":
        return [td["obs"], td["action"]]
    if kind == "plain_tensor":
        return td["obs"]
    raise AssertionError(kind)


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("wrong_T", "chunk_0.pt: key 'obs' has episode length 500, expected 501 for mt30"),
        ("missing_key", "chunk_0.pt: missing key 'reward' (found keys: "),
        ("wrong_dtype", "chunk_0.pt: key 'obs' has dtype torch.float64, expected torch.float32"),
        ("obs_dim", "chunk_0.pt: key 'obs' has obs dim 30, expected 24 (padded obs dim of mt30)"),
        ("task_range", "chunk_0.pt: key 'task' has id 30 in episode 1, expected ids in [0, 30) for mt30"),
        ("task_changes", "chunk_0.pt: key 'task' changes within episode 1 (1 then 2), expected one task per episode"),
        ("nan_obs", "chunk_0.pt: key 'obs' has a non-finite value in episode 1 row 7"),
        ("not_tensordict", "chunk_0.pt: expected a TensorDict or dict of tensors, found list"),
        ("plain_tensor", "chunk_0.pt: expected a TensorDict or dict of tensors, found Tensor"),
    ],
)
def test_malformed_chunks_give_one_line_errors(tmp_path, kind, message):
    save(_malformed(kind), tmp_path / "chunk_0.pt")
    with pytest.raises(DatasetError) as info:
        open_dataset(tmp_path, "mt30")
    text = str(info.value)
    assert message in text and "\n" not in text
    assert str(tmp_path) in text  # names the file
    assert not any((tmp_path / CACHE_DIRNAME).glob("*/" + MARKER))  # nothing half-valid is left as complete


def test_other_layout_errors(tmp_path):
    with pytest.raises(DatasetError, match="no such file or directory"):
        open_dataset(tmp_path / "missing", "mt30")
    with pytest.raises(DatasetError, match=r"no \*\.pt files found"):
        open_dataset(tmp_path, "mt30")
    (tmp_path / "chunk_0.pt").write_text("not a torch file")
    with pytest.raises(DatasetError, match=r"chunk_0\.pt: torch\.load failed"):
        open_dataset(tmp_path, "mt30")
    path = save(official_chunk([0]), tmp_path / "chunk_0.pt")
    with pytest.raises(DatasetError, match=r"has key 'task' .*task_set='mt30'"):
        open_dataset(path)
    save(official_chunk([0], obs_dim=39), tmp_path / "b" / "chunk_0.pt")
    save(official_chunk([0], obs_dim=24), tmp_path / "b" / "chunk_1.pt")
    with pytest.raises(DatasetError, match="obs dim 24, expected 39"):
        open_dataset(tmp_path / "b", "mt80", episode_length=501)


def test_legacy_non_zip_file_is_read_without_mmap(tmp_path):
    src = official_chunk([6])
    torch.save(src, tmp_path / "chunk_0.pt", _use_new_zipfile_serialization=False)
    ds = open_dataset(tmp_path, "mt30")
    np.testing.assert_array_equal(ds.chunks[0].action, src["action"].numpy())


def test_conversion_racing_a_finished_one_keeps_the_complete_cache(tmp_path):
    src = official_chunk([3])
    path = save(src, tmp_path / "chunk_0.pt")
    open_dataset(path, "mt30")
    layout = Layout(get_task_set("mt30"))
    cache = cache_path(path, layout, tmp_path / CACHE_DIRNAME)
    convert(path, layout, cache)  # as a second DDP rank that started converting before the first one finished
    assert (cache / MARKER).exists() and len(list((tmp_path / CACHE_DIRNAME).iterdir())) == 1
    np.testing.assert_array_equal(open_dataset(path, "mt30").chunks[0].obs, src["obs"].numpy())
