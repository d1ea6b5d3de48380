"""Offline datasets: TD-MPC2's mt30 / mt80 chunks and PWM's single-task files, memory-mapped.

Both layouts hold one episode per row of tensors shaped ``[episodes, T, ...]``: ``obs`` float32 ``[N, T, O]``,
``action`` float32 ``[N, T, A]``, ``reward`` float32 ``[N, T]``, and for TD-MPC2 chunks ``task`` int32 ``[N, T]``
(constant per episode; the task id in the mt30 / mt80 list). Row k >= 1 stores obs_k with the action and reward of
the transition *into* obs_k; row 0 stores obs_0 with a filler action / reward that may be NaN or garbage and is
never read. TD-MPC2 chunks have T = 501 (mt30) or 101 (mt80), obs zero-padded to 24 / 39 and actions to 6.

Why a converted cache rather than reading the pickles directly: a pickled TensorDict opened with
``torch.load(mmap=True)`` is lazy (measured here: a 128 MB chunk opens in 2 ms without raising RSS), so the
conversion itself streams in ~64 MB blocks of episodes. But reading the pickle on every run would mean
unpickling on every run, tying training to tensordict's pickle format, accepting
whatever memory layout the writer left (a view of a larger storage, or a legacy non-zip file that only loads
fully into RAM), and re-scanning the ``[N, T]`` task column to find each episode's task. So each source file is
validated once and copied into ``<cache>/<name>-<key>/`` as plain ``.npy`` files (obs, action, reward, and the
per-episode task as ``[N]`` int32) which every later run maps read-only (``map_npy``, ``mmap`` + ``np.ndarray``):
contiguous, paged in on demand and evictable, so a dataset larger than RAM trains (the reference loads mt80 into
~128 GB of RAM). A ``COMPLETE`` marker is written last and the directory is renamed into place, so an interrupted
conversion is detected and redone. The key hashes the file's name, size, mtime and the expected layout, so an
edited source gets a fresh cache. The price is a second copy on disk; point ``cache_dir`` at another disk if
needed. Converting unpickles the source weights-only (:mod:`pwm.utils.safe_load`), allowing the TensorDict types
and nothing else, so a crafted chunk cannot run code (``PWM_TRUST_FILES=1`` lifts this for files you trust).
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import re
import shutil
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from pwm.data.tasks import TaskSet, get_task_set
from pwm.utils.safe_load import UnsafeFileError, dataset_chunk_types, safe_torch_load

CACHE_VERSION = 1
CACHE_DIRNAME = ".pwm_cache"
MARKER = "COMPLETE"
_BLOCK_BYTES = 64 * 2**20
_FLOAT_KEYS = ("obs", "action", "reward")
Access = Literal["auto", "normal", "random"]


class DatasetError(ValueError):
    """A dataset file or directory does not have the expected layout; the message is one line."""


@dataclass(frozen=True)
class Layout:
    """What a file must look like: TD-MPC2 multitask (``task_set`` set) or PWM single-task (``task_set`` None)."""

    task_set: TaskSet | None = None
    episode_length: int | None = None  # rows per episode (transitions + 1); None: the task set's, or any

    @property
    def rows(self) -> int | None:
        if self.episode_length is not None:
            return self.episode_length
        return None if self.task_set is None else self.task_set.dataset_episode_length

    @property
    def keys(self) -> tuple[str, ...]:
        return (*_FLOAT_KEYS, "task") if self.task_set is not None else _FLOAT_KEYS

    def describe(self) -> str:
        if self.episode_length is not None:
            return "(episode_length given)"
        return f"for {self.task_set.name}" if self.task_set is not None else "(as key 'obs')"


@dataclass(frozen=True)
class Chunk:
    """One converted source file, opened read-only."""

    source: Path
    cache: Path
    obs: np.ndarray  # [N, T, O] float32, memory-mapped
    action: np.ndarray  # [N, T, A] float32, memory-mapped
    reward: np.ndarray  # [N, T] float32, memory-mapped
    task: np.ndarray | None  # [N] int32 (in RAM: 4 bytes per episode), None for single-task files

    @property
    def num_episodes(self) -> int:
        return self.obs.shape[0]


class OfflineDataset:
    """Episodes of one or more converted files, addressed by a global episode index (files in order)."""

    def __init__(self, chunks: list[Chunk], task_set: TaskSet | None) -> None:
        if not chunks:
            raise DatasetError("dataset has no files")
        self.chunks = chunks
        self.task_set = task_set
        counts = np.array([c.num_episodes for c in chunks], dtype=np.int64)
        self._offsets = np.concatenate([[0], np.cumsum(counts)])
        self.task_of_episode = None if chunks[0].task is None else np.concatenate([c.task for c in chunks])
        # Flat [rows, dim] views: a window is a run of consecutive rows, so one np.take gathers a whole batch.
        self._flat = [
            (c.obs.reshape(-1, c.obs.shape[2]), c.action.reshape(-1, c.action.shape[2]), c.reward.reshape(-1))
            for c in chunks
        ]

    @property
    def num_episodes(self) -> int:
        return int(self._offsets[-1])

    @property
    def episode_length(self) -> int:
        """Rows per episode (transitions + 1)."""
        return self.chunks[0].obs.shape[1]

    @property
    def obs_dim(self) -> int:
        return self.chunks[0].obs.shape[2]

    @property
    def action_dim(self) -> int:
        return self.chunks[0].action.shape[2]

    @property
    def num_transitions(self) -> int:
        return self.num_episodes * (self.episode_length - 1)

    def episodes(self, task: int | str | None = None) -> np.ndarray:
        """Global indices of all episodes, or of one task's (no data is copied: only the task index is read)."""
        if task is None:
            return np.arange(self.num_episodes)
        if self.task_of_episode is None or self.task_set is None:
            raise DatasetError(f"cannot select task {task!r}: dataset from {self.chunks[0].source} has no 'task' key")
        task_id = self.task_set.index(task) if isinstance(task, str) else int(task)
        if not 0 <= task_id < len(self.task_set):
            raise DatasetError(f"task id {task_id} out of range [0, {len(self.task_set)}) for {self.task_set.name}")
        return np.flatnonzero(self.task_of_episode == task_id)

    def gather(
        self, episodes: np.ndarray, starts: np.ndarray, horizon: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Time-major windows: obs rows s..s+H ``[H+1, B, O]``, action / reward rows s+1..s+H ``[H, B, ...]``."""
        chunk_ids = np.searchsorted(self._offsets, episodes, side="right") - 1
        local_rows = (episodes - self._offsets[chunk_ids]) * self.episode_length + starts
        rows = local_rows[None, :] + np.arange(horizon + 1)[:, None]
        if len(self.chunks) == 1:
            return _take(self._flat[0], rows)
        batch = len(episodes)
        obs = np.empty((horizon + 1, batch, self.obs_dim), np.float32)
        action = np.empty((horizon, batch, self.action_dim), np.float32)
        reward = np.empty((horizon, batch), np.float32)
        for c in np.unique(chunk_ids):
            cols = np.flatnonzero(chunk_ids == c)
            obs[:, cols], action[:, cols], reward[:, cols] = _take(self._flat[c], rows[:, cols])
        return obs, action, reward


def _take(flat: tuple[np.ndarray, np.ndarray, np.ndarray], rows: np.ndarray) -> tuple[np.ndarray, ...]:
    obs, action, reward = flat
    return np.take(obs, rows, axis=0), np.take(action, rows[1:], axis=0), np.take(reward, rows[1:])


# ---------------------------------------------------------------------------------------------------------- open


def open_dataset(
    path: str | os.PathLike,
    task_set: str | TaskSet | None = None,
    *,
    episode_length: int | None = None,
    cache_dir: str | os.PathLike | None = None,
    access: Access = "auto",
) -> OfflineDataset:
    """Open a directory of ``*.pt`` files (natural order: chunk_2 before chunk_10) or a single file.

    ``task_set`` ("mt30" / "mt80") selects TD-MPC2's multitask layout; None selects PWM's single-task layout.
    ``episode_length`` (rows per episode) overrides the task set's 501 / 101, for small generated datasets.
    Each file is converted once into ``cache_dir`` (default: ``.pwm_cache`` next to the data, or a user cache
    when the data directory is read-only); older copies of a file's cache are removed when a new one is made.
    ``access`` is the paging hint for the mappings: "normal" keeps the kernel's read-around (each page fault reads
    ~128 KB, which warms a dataset that fits in RAM at disk bandwidth); "random" reads only the faulting page, which
    is what a dataset larger than RAM wants (a window touches ~3 pages, so read-around would waste ~30x the I/O and
    evict useful pages); "auto" picks "random" when the cache is larger than half the machine's RAM.
    """
    ts = get_task_set(task_set) if isinstance(task_set, str) else task_set
    layout = Layout(ts, episode_length)
    files = list_files(path)
    cache_root = Path(cache_dir) if cache_dir is not None else _default_cache_root(Path(path))
    caches = [prepare_cache(f, layout, cache_root) for f in files]
    random_access = access == "random" or (access == "auto" and _cache_bytes(caches) > _ram_bytes() / 2)
    chunks = [_load_cache(f, c, ts is not None, random_access) for f, c in zip(files, caches, strict=True)]
    _check_consistent(chunks)
    return OfflineDataset(chunks, ts)


def _cache_bytes(caches: list[Path]) -> int:
    return sum(f.stat().st_size for c in caches for f in c.glob("*.npy"))


def _ram_bytes() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def list_files(path: str | os.PathLike) -> list[Path]:
    p = Path(path)
    if p.is_file():
        return [p]
    if not p.is_dir():
        raise DatasetError(f"{p}: no such file or directory")
    files = sorted(p.glob("*.pt"), key=_natural_key)
    if not files:
        raise DatasetError(f"{p}: no *.pt files found")
    return files


def _natural_key(p: Path) -> list[int | str]:
    return [int(s) if s.isdigit() else s for s in re.split(r"(\d+)", p.name)]


def _default_cache_root(path: Path) -> Path:
    """``.pwm_cache`` next to the data; for read-only data, ``$XDG_CACHE_HOME/pwm/datasets/<path hash>``."""
    directory = path if path.is_dir() else path.parent
    if _writable(directory):
        return directory / CACHE_DIRNAME
    user = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return user / "pwm" / "datasets" / hashlib.sha1(str(directory.resolve()).encode()).hexdigest()[:12]


def _writable(directory: Path) -> bool:
    return os.access(directory, os.W_OK | os.X_OK)


def _check_consistent(chunks: list[Chunk]) -> None:
    first = chunks[0]
    for c in chunks[1:]:
        for key in _FLOAT_KEYS:
            a, b = getattr(first, key).shape[1:], getattr(c, key).shape[1:]
            if a != b:
                raise DatasetError(
                    f"{c.source}: key {key!r} has shape [N, {_dims(b)}], expected [N, {_dims(a)}] as in {first.source}"
                )


def _dims(shape: tuple[int, ...]) -> str:
    return ", ".join(map(str, shape))


def prepare_cache(source: Path, layout: Layout, cache_root: Path) -> Path:
    """The complete cache directory of ``source``, converting it first if missing or incomplete."""
    cache = cache_path(source, layout, cache_root)
    if not (cache / MARKER).exists():
        convert(source, layout, cache)
        _prune_older_copies(cache)
    return cache


def _prune_older_copies(cache: Path) -> None:
    """Remove complete caches of the same file made for an older version of it (another size or mtime)."""
    stem = cache.name.rsplit("-", 1)[0]
    for other in cache.parent.glob(f"{stem}-*"):
        if other != cache and other.name.rsplit("-", 1)[0] == stem and (other / MARKER).exists():
            shutil.rmtree(other, ignore_errors=True)


def cache_path(source: Path, layout: Layout, cache_root: Path) -> Path:
    st = source.stat()
    ident = [source.name, st.st_size, st.st_mtime_ns, layout.task_set and layout.task_set.name, layout.rows]
    key = hashlib.sha1(json.dumps([CACHE_VERSION, *ident]).encode()).hexdigest()[:12]
    return cache_root / f"{source.stem}-{key}"


def _load_cache(source: Path, cache: Path, with_task: bool, random_access: bool) -> Chunk:
    arrays = {k: map_npy(cache / f"{k}.npy", random_access) for k in _FLOAT_KEYS}
    task = np.load(cache / "task.npy") if with_task else None
    return Chunk(source, cache, arrays["obs"], arrays["action"], arrays["reward"], task)


def map_npy(path: Path, random_access: bool = False) -> np.ndarray:
    """A read-only memory map of a ``.npy`` file (like ``np.load(mmap_mode="r")``, plus the paging hint).

    The array's ``base`` is the ``mmap.mmap``, which stays open as long as the array (or a view of it) lives.
    """
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran_order, dtype = read_header(f)
        offset = f.tell()
        mapping = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    if random_access and hasattr(mmap, "MADV_RANDOM"):
        mapping.madvise(mmap.MADV_RANDOM)
    return np.ndarray(shape, dtype, buffer=mapping, offset=offset, order="F" if fortran_order else "C")


# ------------------------------------------------------------------------------------------------------- convert


def convert(source: Path, layout: Layout, cache: Path) -> None:
    """Validate ``source`` and write its cache.

    The cache is built under a temporary name and renamed into place after its marker is written, so the final
    directory is complete whenever it exists, and concurrent openers (e.g. one per DDP rank) are safe: the first
    rename wins and the others discard their copy. A final directory without the marker (files edited or deleted
    by hand) is removed and rebuilt.
    """
    tensors = _validate_structure(source, _read_source(source), layout)
    if cache.exists() and not (cache / MARKER).exists():
        shutil.rmtree(cache)
    _remove_abandoned(cache)
    tmp = cache.with_name(f"{cache.name}{_partial_suffix()}{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        _write_cache(source, tensors, layout, tmp)
        (tmp / MARKER).write_text("")
        os.rename(tmp, cache)  # fails if another process renamed its copy first
    except OSError:
        if not (cache / MARKER).exists():
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _partial_suffix() -> str:
    """``.partial-<host>-``: pids are only meaningful on their own host (the cache may sit on a shared disk)."""
    return f".partial-{socket.gethostname()}-"


def _remove_abandoned(cache: Path) -> None:
    """Delete partial conversions of ``cache`` left by this host's processes that no longer run (killed)."""
    prefix = f"{cache.name}{_partial_suffix()}"
    for partial in cache.parent.glob(f"{cache.name}.partial-*"):
        pid = partial.name[len(prefix) :] if partial.name.startswith(prefix) else ""
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(partial, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_source(source: Path) -> object:
    """Load lazily (``mmap=True``) when the file allows it, else fully (legacy non-zip files); weights-only."""
    allow = dataset_chunk_types()
    try:
        return safe_torch_load(source, what="dataset chunk", allow=allow, map_location="cpu", mmap=True)
    except UnsafeFileError as e:
        raise DatasetError(str(e)) from None
    except RuntimeError as e:
        if "mmap" not in str(e):
            raise DatasetError(f"{source}: torch.load failed: {_first_line(e)}") from e
    except Exception as e:
        raise DatasetError(f"{source}: torch.load failed: {type(e).__name__}: {_first_line(e)}") from e
    try:
        return safe_torch_load(source, what="dataset chunk", allow=allow, map_location="cpu")
    except UnsafeFileError as e:
        raise DatasetError(str(e)) from None
    except Exception as e:
        raise DatasetError(f"{source}: torch.load failed: {type(e).__name__}: {_first_line(e)}") from e


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else ""


def _validate_structure(source: Path, data: object, layout: Layout) -> dict[str, torch.Tensor]:
    """Check keys, dtypes and shapes from metadata alone (no data read); return the tensors by key."""
    if not isinstance(data, Mapping) and not _is_tensordict(data):
        raise DatasetError(f"{source}: expected a TensorDict or dict of tensors, found {type(data).__name__}")
    keys = list(data.keys())
    if layout.task_set is None and "task" in keys:
        raise DatasetError(
            f"{source}: has key 'task' (TD-MPC2 multitask layout); open it with task_set='mt30' or 'mt80'"
        )
    tensors: dict[str, torch.Tensor] = {}
    for key in layout.keys:
        if key not in keys:
            raise DatasetError(f"{source}: missing key {key!r} (found keys: {', '.join(map(str, keys))})")
        value = data[key]
        if not isinstance(value, torch.Tensor):
            raise DatasetError(f"{source}: key {key!r} is a {type(value).__name__}, expected a torch.Tensor")
        tensors[key] = value
    if layout.task_set is None and tensors["reward"].ndim == 3 and tensors["reward"].shape[2] == 1:
        tensors["reward"] = tensors["reward"].squeeze(2)  # PWM files may store rewards as [N, T, 1]
    for key, value in tensors.items():
        _check_tensor(source, key, value, layout, tensors["obs"])
    return tensors


def _is_tensordict(data: object) -> bool:
    try:
        from tensordict import TensorDictBase
    except ImportError:
        return False
    return isinstance(data, TensorDictBase)


def _check_tensor(source: Path, key: str, t: torch.Tensor, layout: Layout, obs: torch.Tensor) -> None:
    where = f"{source}: key {key!r}"
    allowed = (torch.int32, torch.int64) if key == "task" else (torch.float32,)
    if t.dtype not in allowed:
        expected = " or ".join(str(d) for d in allowed)
        raise DatasetError(f"{where} has dtype {t.dtype}, expected {expected}")
    ndim = 3 if key in ("obs", "action") else 2
    if t.ndim != ndim:
        expected = "[episodes, T, dim]" if ndim == 3 else "[episodes, T]"
        raise DatasetError(f"{where} has shape [{_dims(tuple(t.shape))}], expected {ndim} dims {expected}")
    if t.shape[0] != obs.shape[0]:
        raise DatasetError(f"{where} has {t.shape[0]} episodes, expected {obs.shape[0]} (as key 'obs')")
    rows = layout.rows if layout.rows is not None else obs.shape[1]
    if t.shape[1] != rows:
        raise DatasetError(f"{where} has episode length {t.shape[1]}, expected {rows} {layout.describe()}")
    if rows < 2:
        raise DatasetError(f"{where} has episode length {rows}, expected at least 2 (initial obs + 1 transition)")
    ts = layout.task_set
    if ts is not None and key in ("obs", "action"):
        padded, what = (ts.obs_dim, "obs") if key == "obs" else (ts.action_dim, "action")
        if t.shape[2] != padded:
            raise DatasetError(
                f"{where} has {what} dim {t.shape[2]}, expected {padded} (padded {what} dim of {ts.name})"
            )


def _write_cache(source: Path, tensors: dict[str, torch.Tensor], layout: Layout, out: Path) -> None:
    """Copy in blocks of episodes (bounded RAM), checking values on the way."""
    n = tensors["obs"].shape[0]
    row_bytes = sum(t[0].numel() * t.element_size() for t in tensors.values())
    block = max(1, _BLOCK_BYTES // max(row_bytes, 1))
    outs = {
        k: np.lib.format.open_memmap(out / f"{k}.npy", mode="w+", dtype=np.float32, shape=tuple(tensors[k].shape))
        for k in _FLOAT_KEYS
    }
    task = np.empty(n, np.int32) if "task" in tensors else None
    for lo in range(0, n, block):
        hi = min(n, lo + block)
        for key in _FLOAT_KEYS:
            values = tensors[key][lo:hi].numpy()
            _check_finite(source, key, values, lo)
            outs[key][lo:hi] = values
        if task is not None:
            task[lo:hi] = _episode_tasks(source, tensors["task"][lo:hi].numpy(), lo, layout.task_set)
    for arr in outs.values():
        arr.flush()
    del outs
    if task is not None:
        np.save(out / "task.npy", task)
    meta = {
        "source": str(source.resolve()),
        "version": CACHE_VERSION,
        "episodes": n,
        "task_set": layout.task_set and layout.task_set.name,
        "shapes": {k: list(t.shape) for k, t in tensors.items()},
    }
    (out / "meta.json").write_text(json.dumps(meta))


def _check_finite(source: Path, key: str, values: np.ndarray, first_episode: int) -> None:
    """All obs rows, and action / reward rows >= 1, must be finite (row 0's filler may be NaN)."""
    checked = values if key == "obs" else values[:, 1:]
    bad = ~np.isfinite(checked)
    if bad.any():
        ep, row = np.argwhere(bad)[0][:2]
        row += 0 if key == "obs" else 1
        raise DatasetError(f"{source}: key {key!r} has a non-finite value in episode {first_episode + ep} row {row}")


def _episode_tasks(source: Path, task: np.ndarray, first_episode: int, task_set: TaskSet) -> np.ndarray:
    per_episode = task[:, 0]
    changed = np.flatnonzero((task != per_episode[:, None]).any(axis=1))
    if changed.size:
        ep = changed[0]
        other = task[ep][task[ep] != per_episode[ep]][0]
        raise DatasetError(
            f"{source}: key 'task' changes within episode {first_episode + ep} ({per_episode[ep]} "
            f"then {other}), expected one task per episode"
        )
    bad = np.flatnonzero((per_episode < 0) | (per_episode >= len(task_set)))
    if bad.size:
        ep = bad[0]
        raise DatasetError(
            f"{source}: key 'task' has id {per_episode[ep]} in episode {first_episode + ep}, expected "
            f"ids in [0, {len(task_set)}) for {task_set.name}"
        )
    return per_episode.astype(np.int32)
