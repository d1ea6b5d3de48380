"""``hopper-hop-backwards``: hop toward -x while upright.

reward = 1[0.6 ≤ h ≤ 2] · clip(-v), with h the torso's centre-of-mass height above the foot's and v the torso
subtree (centre-of-mass) x velocity. Unlike the stock hop (clip(v / 2)), backwards hopping saturates at 1 m/s.
Stock ``Hopper`` initial state and observations (positions, velocities, log(1 + touch)).
"""

from __future__ import annotations

from typing import Any

from dm_control.rl import control
from dm_control.suite import common, hopper
from dm_control.utils import rewards

_TIME_LIMIT = 20  # seconds (stock)
_CONTROL_TIMESTEP = 0.02  # seconds (stock): 4 physics steps of 0.005
_STAND_HEIGHT = 0.6
_HOP_SPEED = 1.0


class HopBackwards(hopper.Hopper):
    """Rewards hopping toward -x (1 m/s saturates), but only while the torso is 0.6-2 m above the foot."""

    def __init__(self, random: Any = None) -> None:
        super().__init__(hopping=False, random=random)

    def get_reward(self, physics: hopper.Physics) -> float:
        standing = rewards.tolerance(physics.height(), (_STAND_HEIGHT, 2))
        hopping = rewards.tolerance(
            physics.speed(),
            bounds=(-float("inf"), -_HOP_SPEED),
            margin=_HOP_SPEED / 2,
            value_at_margin=0.5,
            sigmoid="linear",
        )
        return float(standing * hopping)


def hop_backwards(
    time_limit: float = _TIME_LIMIT, random: Any = None, environment_kwargs: dict | None = None
) -> control.Environment:
    """``hopper-hop-backwards``."""
    physics = hopper.Physics.from_xml_string(common.read_model("hopper.xml"), common.ASSETS)
    return control.Environment(
        physics,
        HopBackwards(random=random),
        time_limit=time_limit,
        control_timestep=_CONTROL_TIMESTEP,
        **(environment_kwargs or {}),
    )
