"""Record an episode of a policy as an MP4, for looking at what a policy does (not used by training).

Frames come from ``env.render`` (MuJoCo offscreen rendering; ``MUJOCO_GL`` defaults to ``egl`` so that no display
is needed) and are streamed to ``imageio``'s ffmpeg writer (``pip install imageio imageio-ffmpeg``; the latter
bundles an ffmpeg binary), so memory does not grow with the episode length.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from pwm.envs.suites.gl import use_headless_gl
from pwm.envs.suites.wrappers import Env

use_headless_gl()  # in case this module is imported before any env module imports mujoco


def _video_writer(path: Path, fps: int) -> Any:
    try:
        import imageio.v2 as imageio
        import imageio_ffmpeg  # noqa: F401  (imageio's mp4 backend; fail here with a useful message)
    except ImportError as e:
        raise ImportError(
            f"recording videos needs imageio and imageio-ffmpeg ({e}): pip install imageio imageio-ffmpeg"
        ) from e
    # macro_block_size 2: H.264 (yuv420p) needs even sizes; larger blocks would rescale small test frames.
    return imageio.get_writer(path, format="FFMPEG", fps=fps, codec="libx264", macro_block_size=2)


def record_episode(
    env: Env,
    policy_fn: Callable[[np.ndarray], np.ndarray],
    path: str | Path,
    fps: int = 30,
    size: tuple[int, int] = (384, 384),
    camera_id: int | str | None = None,
) -> dict[str, float]:
    """Run one episode of ``policy_fn`` (obs -> action) on ``env`` and write its frames to ``path`` (.mp4).

    Args:
        env: any pwm env (``make_env``), including a ``MultitaskEnv``; its episode length decides the video's.
        policy_fn: maps the env's observation to an action of the env's action dim.
        path: output file; must end in ``.mp4``; parent folders are created.
        fps: frames per second of the video (one frame per agent step, plus the initial state).
        size: (width, height) in pixels; even numbers (H.264).
        camera_id: camera name or index; ``None`` for the env's default view.

    Returns:
        ``return``, ``success`` (of the last step) and ``length`` (the keys of ``evaluate``) of the recorded episode.
    """
    path = Path(path)
    if path.suffix != ".mp4":
        raise ValueError(f"record_episode writes .mp4 files, got {path}")
    width, height = size
    if width % 2 or height % 2:
        raise ValueError(f"video size must be even (H.264), got {width}x{height}")
    camera = {} if camera_id is None else {"camera_id": camera_id}
    path.parent.mkdir(parents=True, exist_ok=True)
    obs, total, steps, success, done = env.reset(), 0.0, 0, 0.0, False
    with _video_writer(path, fps) as writer:
        writer.append_data(env.render(width=width, height=height, **camera))
        while not done:
            result = env.step(policy_fn(obs))
            obs, total, steps = result.obs, total + result.reward, steps + 1
            success = float((result.info or {}).get("success", 0.0))
            done = result.terminated or result.truncated
            writer.append_data(env.render(width=width, height=height, **camera))
    return {"return": total, "success": success, "length": float(steps)}
