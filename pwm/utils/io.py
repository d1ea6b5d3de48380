"""Atomic file writes shared by every checkpoint format."""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

import torch


class DiskFullError(RuntimeError):
    """The disk filled up while writing a file; the message is one line and the previous file is intact."""


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> Path:
    """``torch.save`` to a temporary file in the same directory, fsync, then rename over ``path``.

    A process killed at any point leaves either the previous file or the new one, never a truncated file under
    ``path``; the temporary file carries the writer's pid and a ``.tmp`` suffix that no loader looks for.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    writer = None
    try:
        with open(tmp, "wb") as f:
            writer = _WriteErrors(f)
            torch.save(obj, writer)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as err:  # torch reports a failed write as a RuntimeError without the cause
        cause = err if isinstance(err, OSError) else writer.error if writer is not None else None
        if cause is not None and cause.errno == errno.ENOSPC:
            message = f"no space left writing {path}; the previous file is intact: free space and rerun"
            raise DiskFullError(message) from None
        raise
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)
    return path


class _WriteErrors:
    """A file's ``write``/``flush`` that remembers the OSError behind a failed write (torch.save hides it)."""

    def __init__(self, f) -> None:
        self.f, self.error = f, None

    def write(self, data) -> int:
        try:
            return self.f.write(data)
        except OSError as err:
            self.error = err
            raise

    def flush(self) -> None:
        self.f.flush()


def _fsync_dir(directory: Path) -> None:
    """Persist the rename itself; not possible on every platform, where the rename is still atomic."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_partial_writes(directory: str | os.PathLike) -> list[Path]:
    """Delete the temporary files :func:`atomic_torch_save` leaves when a process dies mid-write; return them."""
    directory = Path(directory)
    stale = sorted(directory.glob("*.tmp")) if directory.is_dir() else []
    for path in stale:
        path.unlink(missing_ok=True)
    return stale
