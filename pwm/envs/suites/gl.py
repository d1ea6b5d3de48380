"""MuJoCo's GL backend for the evaluation suites (a leaf module, so every suite module can import it)."""

from __future__ import annotations

import os


def use_headless_gl() -> None:
    """Default MuJoCo's GL backend to EGL, which renders without a display.

    The one place that sets ``MUJOCO_GL``: it must run before ``mujoco`` is first imported (the backend is chosen
    at import), and a value the user already set wins.
    """
    os.environ.setdefault("MUJOCO_GL", "egl")
