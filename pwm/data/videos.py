"""Action-free video clips on disk (what PreLAR / APV pretrain on), and the reader that samples them.

Layout (docs/prelar.md): ``<root>/<source>/<task>/clip_<NNNNN>.npz``, each an uncompressed ``.npz`` holding one
array ``frames``: uint8 [T, 3, H, W] (channel-first RGB, T >= 2). Nothing else is stored: no actions, rewards or
states. Files are read with ``numpy.load(allow_pickle=False)``, which never executes code; a file that is not
such an array is refused with a one-line :class:`VideoDataError` naming it.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import torch

CLIP_GLOB = "*/*/clip_*.npz"


class VideoDataError(ValueError):
    """A video folder or clip file is unusable; the message is one line naming it."""


def write_clip(root: str | Path, source: str, task: str, index: int, frames: np.ndarray) -> Path:
    """Store ``frames`` (uint8 [T, 3, H, W]) as ``<root>/<source>/<task>/clip_<index>.npz`` (atomically)."""
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[1] != 3 or len(frames) < 2:
        raise VideoDataError(f"clips are uint8 [T>=2, 3, H, W] frames, got {frames.dtype} {frames.shape}")
    import io

    buffer = io.BytesIO()
    np.savez(buffer, frames=frames)
    path = Path(root) / source / task / f"clip_{index:05d}.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # never matched by CLIP_GLOB
    tmp.write_bytes(buffer.getvalue())
    os.replace(tmp, path)  # a killed writer leaves no half clip under the clip's name
    return path


def read_clip(path: Path) -> np.ndarray:
    """The frames of one clip file, checked; never unpickles."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if "frames" not in data.files:
                raise VideoDataError(f"{path}: no 'frames' array (found {', '.join(data.files) or 'nothing'})")
            frames = data["frames"]
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        if isinstance(err, VideoDataError):
            raise
        raise VideoDataError(f"{path}: not a readable clip file ({str(err).splitlines()[0]})") from None
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[1] != 3 or len(frames) < 2:
        raise VideoDataError(f"{path}: frames must be uint8 [T>=2, 3, H, W], got {frames.dtype} {frames.shape}")
    return frames


class VideoClips:
    """Every clip under ``root``, loaded into memory; ``sample`` draws [B, L, 3, H, W] windows uniformly."""

    def __init__(self, root: str | Path, seq_len: int, seed: int = 0) -> None:
        root = Path(root)
        if not root.is_dir():
            raise VideoDataError(f"video folder {root} does not exist (make one with scripts/make_videos.py)")
        paths = sorted(root.glob(CLIP_GLOB))
        if not paths:
            raise VideoDataError(f"video folder {root} has no clips (<source>/<task>/clip_*.npz)")
        self.clips = [torch.from_numpy(read_clip(p)) for p in paths]
        shapes = {tuple(c.shape[1:]) for c in self.clips}
        if len(shapes) > 1:
            raise VideoDataError(f"video folder {root} mixes frame sizes {sorted(shapes)}")
        self.clips = [c for c in self.clips if len(c) >= seq_len]
        if not self.clips:
            raise VideoDataError(f"video folder {root} has no clip of at least {seq_len} frames (alg.seq_len)")
        self.seq_len, self.paths = seq_len, paths
        self.gen = torch.Generator().manual_seed(seed)

    @property
    def frames(self) -> int:
        return sum(len(c) for c in self.clips)

    def sample(self, batch: int) -> torch.Tensor:
        picks = torch.randint(len(self.clips), (batch,), generator=self.gen).tolist()
        out = []
        for i in picks:
            start = int(torch.randint(len(self.clips[i]) - self.seq_len + 1, (1,), generator=self.gen))
            out.append(self.clips[i][start : start + self.seq_len])
        return torch.stack(out)

    def state_dict(self) -> dict:
        return {"gen": self.gen.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.gen.set_state(state["gen"])
