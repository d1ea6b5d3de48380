"""``walker-walk-backwards`` and ``walker-run-backwards``: the stock walker reward with the move term mirrored.

reward = stand · (5·move + 1) / 6 with stand = (3·tolerance(h, [1.2, ∞), margin 0.6) + (1 + u) / 2) / 4 (h torso
height, u torso z-axis projection on world z) and move = clip(-v / s) (v the walker's centre-of-mass x velocity,
s = 1 walking, 8 running). Stock ``PlanarWalker`` initial state (random joint angles, often upside down).
"""

from __future__ import annotations

from typing import Any

from dm_control.rl import control
from dm_control.suite import common, walker
from dm_control.utils import rewards

from pwm.envs.suites.dmc_tasks import edit_model

_TIME_LIMIT = 25  # seconds (stock)
_CONTROL_TIMESTEP = 0.025  # seconds (stock): 10 physics steps of 0.0025
_STAND_HEIGHT = 1.2
_WALK_SPEED = 1.0
_RUN_SPEED = 8.0


def model_xml() -> bytes:
    """The stock model with the floor plane extended toward -x (size 500 instead of 250), as in TD-MPC2.

    A walker moving backwards would otherwise leave the rendered floor; planes collide everywhere, so the
    dynamics are those of the stock model.
    """
    return edit_model(common.read_model("walker.xml"), b'size="250 .8 .2"', b'size="500 .8 .2"')


class BackwardsWalker(walker.PlanarWalker):
    """Rewards standing upright while the centre of mass moves toward -x at ``speed`` or faster."""

    def __init__(self, speed: float, random: Any = None) -> None:
        self._speed = speed
        super().__init__(move_speed=speed, random=random)

    def get_reward(self, physics: walker.Physics) -> float:
        standing = rewards.tolerance(
            physics.torso_height(), bounds=(_STAND_HEIGHT, float("inf")), margin=_STAND_HEIGHT / 2
        )
        upright = (1 + physics.torso_upright()) / 2
        stand = (3 * standing + upright) / 4
        move = rewards.tolerance(
            physics.horizontal_velocity(),
            bounds=(-float("inf"), -self._speed),
            margin=self._speed / 2,
            value_at_margin=0.5,
            sigmoid="linear",
        )
        return float(stand * (5 * move + 1) / 6)


def _environment(speed: float, time_limit: float, random: Any, environment_kwargs: dict | None) -> control.Environment:
    physics = walker.Physics.from_xml_string(model_xml(), common.ASSETS)
    task = BackwardsWalker(speed, random=random)
    return control.Environment(
        physics, task, time_limit=time_limit, control_timestep=_CONTROL_TIMESTEP, **(environment_kwargs or {})
    )


def walk_backwards(
    time_limit: float = _TIME_LIMIT, random: Any = None, environment_kwargs: dict | None = None
) -> control.Environment:
    """``walker-walk-backwards``: target speed 1 m/s toward -x."""
    return _environment(_WALK_SPEED, time_limit, random, environment_kwargs)


def run_backwards(
    time_limit: float = _TIME_LIMIT, random: Any = None, environment_kwargs: dict | None = None
) -> control.Environment:
    """``walker-run-backwards``: target speed 8 m/s toward -x."""
    return _environment(_RUN_SPEED, time_limit, random, environment_kwargs)
