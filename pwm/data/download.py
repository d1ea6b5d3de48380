"""Fetch TD-MPC2's official multitask datasets and checkpoints from the Hugging Face Hub into a local cache.

Files (repo ``nicklashansen/tdmpc2``): the dataset repo holds ``mt30/chunk_{0..3}.pt`` and ``mt80/chunk_{0..19}.pt``
(about 20 / 34 GB); the model repo holds ``multitask/{mt30,mt80}-{1M,5M,19M,48M,317M}.pt``. Files land in the
standard hub cache layout (``<cache>/datasets--nicklashansen--tdmpc2/snapshots/<sha>/mt30/chunk_0.pt``), so a
file is downloaded once and shared with any other hub user of the same cache. ``offline=True`` (or
``HF_HUB_OFFLINE=1``) reads only the cache, for machines without internet access: fill the cache elsewhere and copy
it over.
"""

from __future__ import annotations

import os
from pathlib import Path

from huggingface_hub import hf_hub_download

from pwm.data.tasks import get_task_set

REPO_ID = "nicklashansen/tdmpc2"
DATASET_CHUNKS = {"mt30": 4, "mt80": 20}
CHECKPOINT_SIZES = ("1M", "5M", "19M", "48M", "317M")


class DownloadError(RuntimeError):
    """A file could not be fetched or is missing from the offline cache; the message is one line."""


def fetch(
    filename: str,
    *,
    repo_id: str = REPO_ID,
    repo_type: str = "model",
    cache_dir: str | os.PathLike | None = None,
    offline: bool = False,
) -> Path:
    """Path of ``filename`` in the local cache, downloading it first unless ``offline``."""
    try:
        path = hf_hub_download(repo_id, filename, repo_type=repo_type, cache_dir=cache_dir, local_files_only=offline)
    except Exception as e:  # the hub raises many types (missing entry, HTTP, offline mode, network OSError)
        where = cache_dir if cache_dir is not None else "the default hub cache"
        if offline or _env_offline():
            reason = "is not in the cache (offline mode: only the local cache is read)"
        else:
            reason = f"could not be downloaded ({type(e).__name__}: {_first_line(e)})"
        raise DownloadError(f"{repo_type} repo {repo_id}: file {filename} {reason}; cache: {where}") from e
    return Path(path)


def _env_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else ""


def download_dataset(
    task_set: str,
    *,
    chunks: list[int] | None = None,
    cache_dir: str | os.PathLike | None = None,
    offline: bool = False,
) -> Path:
    """Fetch the chunks of ``task_set`` ("mt30" / "mt80"; all unless ``chunks``); return the directory holding them,
    ready for ``pwm.data.dataset.open_dataset``."""
    name = get_task_set(task_set).name
    count = DATASET_CHUNKS[name]
    indices = list(range(count)) if chunks is None else chunks
    bad = [i for i in indices if not 0 <= i < count]
    if bad:
        raise ValueError(f"chunk index {bad[0]} out of range for {name}: chunks are 0..{count - 1}")
    paths = [fetch(f"{name}/chunk_{i}.pt", repo_type="dataset", cache_dir=cache_dir, offline=offline) for i in indices]
    return paths[0].parent


def download_checkpoint(
    task_set: str, size: str, *, cache_dir: str | os.PathLike | None = None, offline: bool = False
) -> Path:
    """Fetch the official multitask checkpoint ``multitask/<task_set>-<size>.pt`` (e.g. mt80-48M)."""
    name = get_task_set(task_set).name
    if size not in CHECKPOINT_SIZES:
        raise ValueError(f"unknown checkpoint size {size!r}; valid: {', '.join(CHECKPOINT_SIZES)}")
    return fetch(f"multitask/{name}-{size}.pt", repo_type="model", cache_dir=cache_dir, offline=offline)
