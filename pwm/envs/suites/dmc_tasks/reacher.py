"""``reacher-three-easy`` and ``reacher-three-hard``: the stock reacher task on a 3-link arm.

Model: ``reacher_three_links.xml`` (ours, written from TD-MPC2's published dimensions): links of 0.09 m with
an unlimited shoulder and two ±80° joints, finger 0.27 m from the shoulder at zero angles, motors of gear 0.05.
Task, initial state and reward are the stock ``Reacher``'s: joints uniform (shoulder0 in [-π, π], the others in
range), target at radius U[.05, .20) and angle U[0, 2π); reward 1 when the finger-to-target distance is at most
target radius + finger radius (0.05 + 0.01 easy, 0.015 + 0.01 hard), else 0. Observations: joint angles (3),
target - finger in the plane (2), joint velocities (3).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dm_control.rl import control
from dm_control.suite import common, reacher

_TIME_LIMIT = 20  # seconds (stock); the control step is the 0.02 s physics step
_BIG_TARGET = 0.05
_SMALL_TARGET = 0.015
MODEL_PATH = Path(__file__).with_name("reacher_three_links.xml")


def _environment(
    target_size: float, time_limit: float, random: Any, environment_kwargs: dict | None
) -> control.Environment:
    physics = reacher.Physics.from_xml_string(MODEL_PATH.read_bytes(), common.ASSETS)
    task = reacher.Reacher(target_size=target_size, random=random)
    return control.Environment(physics, task, time_limit=time_limit, **(environment_kwargs or {}))


def three_easy(
    time_limit: float = _TIME_LIMIT, random: Any = None, environment_kwargs: dict | None = None
) -> control.Environment:
    """``reacher-three-easy``: target radius 0.05."""
    return _environment(_BIG_TARGET, time_limit, random, environment_kwargs)


def three_hard(
    time_limit: float = _TIME_LIMIT, random: Any = None, environment_kwargs: dict | None = None
) -> control.Environment:
    """``reacher-three-hard``: target radius 0.015."""
    return _environment(_SMALL_TARGET, time_limit, random, environment_kwargs)
