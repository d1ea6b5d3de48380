"""``pendulum-spin``: spin the pendulum as fast as possible, in either direction.

reward = clip(|ω| / 9) with ω the hinge's angular velocity (rad/s). The torque limit is far below what holding
the pole horizontal needs (m·g·l ≈ 4.9 N·m), so the agent has to pump energy. Stock ``SwingUp`` initial state
(hinge uniform in [-π, π), at rest) and observations (pole orientation, angular velocity).
"""

from __future__ import annotations

from typing import Any

from dm_control.rl import control
from dm_control.suite import common, pendulum
from dm_control.utils import rewards

_TIME_LIMIT = 20  # seconds (stock); the control step is the 0.02 s physics step
_SPIN_SPEED = 9.0  # rad/s


class Spin(pendulum.SwingUp):
    """Rewards angular speed, saturating at 9 rad/s."""

    def get_reward(self, physics: pendulum.Physics) -> float:
        speed = abs(float(physics.named.data.qvel["hinge"][0]))
        return float(
            rewards.tolerance(
                speed,
                bounds=(_SPIN_SPEED, float("inf")),
                margin=_SPIN_SPEED / 2,
                value_at_margin=0.5,
                sigmoid="linear",
            )
        )


def spin(
    time_limit: float = _TIME_LIMIT, random: Any = None, environment_kwargs: dict | None = None
) -> control.Environment:
    """``pendulum-spin``."""
    physics = pendulum.Physics.from_xml_string(common.read_model("pendulum.xml"), common.ASSETS)
    return control.Environment(physics, Spin(random=random), time_limit=time_limit, **(environment_kwargs or {}))
