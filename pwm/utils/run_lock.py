"""An exclusive lock on a run directory, so that two processes never write one run's files at the same time."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class RunDirBusyError(RuntimeError):
    """Another live process holds the run directory; the message is one line naming it."""


class RunDirLock:
    """``with RunDirLock(run_dir):`` holds ``<run_dir>/.lock`` (an ``flock``, released by the kernel if the holder
    dies, so a killed run never leaves a stale lock); the file records the holder's PID for the error message."""

    def __init__(self, run_dir: str | os.PathLike) -> None:
        self.path = Path(run_dir) / ".lock"
        self._fd: int | None = None

    def __enter__(self) -> RunDirLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise RunDirBusyError(
                f"{self.path.parent} is in use by another run (PID {holder}); wait for it or choose another "
                "general.run_dir"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
