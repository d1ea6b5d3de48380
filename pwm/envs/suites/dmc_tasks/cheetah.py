"""Cheetah tasks: ``cheetah-run-backwards``, ``cheetah-run-front``, ``cheetah-run-back`` and ``cheetah-jump``.

All keep the stock ``Cheetah`` initial state (leg joints uniform in range, 200 settling steps) and observations;
only the reward differs. v is the torso subtree (centre-of-mass) x velocity; z_b is the world height of body b's
frame origin; up(z) = tolerance(z, [1.2, ∞), margin 0.6) (1 above 1.2, else 0.1^(((1.2 - z) / 0.6)²)).

- run-backwards: clip(-v / 8).
- run-front / run-back: [(3·up(z_foot) + 2·up(z_torso)) / 5] · (5·clip(v / 6) + 1) / 6, where the foot that must
  be in the air is ``bfoot`` for run-front (running on the front legs) and ``ffoot`` for run-back.
- jump: mean over f in {bfoot, ffoot} of (5·up((z_torso + z_f) / 2) + still) / 6 with
  still = tolerance(v, [-0.5, 0.5], margin 0.5, linear).
"""

from __future__ import annotations

from typing import Any

from dm_control.rl import control
from dm_control.suite import cheetah, common
from dm_control.utils import rewards

from pwm.envs.suites.dmc_tasks import edit_model

_TIME_LIMIT = 10  # seconds (stock); the control step is the 0.01 s physics step
_RUN_SPEED = 10.0  # stock cheetah-run target speed; the custom tasks use fractions of it
_BACKWARDS_SPEED = 0.8 * _RUN_SPEED
_ONE_FOOT_SPEED = 0.6 * _RUN_SPEED
_UP_HEIGHT = 1.2
_JUMP_STILL_SPEED = 0.5


def model_xml() -> bytes:
    """The stock model with the ground plane extended toward -x (size 200 instead of 100), as in TD-MPC2.

    Rendering only: planes collide everywhere, so the dynamics are those of the stock model.
    """
    return edit_model(common.read_model("cheetah.xml"), b'size="100 .8 .5"', b'size="200 .8 .5"')


def _height(physics: cheetah.Physics, body: str) -> float:
    return float(physics.named.data.xpos[body, "z"])


def _up(height: float) -> float:
    return float(rewards.tolerance(height, bounds=(_UP_HEIGHT, float("inf")), margin=_UP_HEIGHT / 2))


class RunBackwards(cheetah.Cheetah):
    """Rewards speed toward -x, saturating at 8 m/s."""

    def get_reward(self, physics: cheetah.Physics) -> float:
        return float(
            rewards.tolerance(
                physics.speed(),
                bounds=(-float("inf"), -_BACKWARDS_SPEED),
                margin=_BACKWARDS_SPEED,
                value_at_margin=0,
                sigmoid="linear",
            )
        )


class OneFootRun(cheetah.Cheetah):
    """Rewards running forward (6 m/s saturates) with the torso and ``foot`` lifted to 1.2 m."""

    def __init__(self, foot: str, random: Any = None) -> None:
        self._foot = foot
        super().__init__(random=random)

    def get_reward(self, physics: cheetah.Physics) -> float:
        up = (3 * _up(_height(physics, self._foot)) + 2 * _up(_height(physics, "torso"))) / 5
        speed = rewards.tolerance(
            physics.speed(),
            bounds=(_ONE_FOOT_SPEED, float("inf")),
            margin=_ONE_FOOT_SPEED,
            value_at_margin=0,
            sigmoid="linear",
        )
        return float(up * (5 * speed + 1) / 6)


class Jump(cheetah.Cheetah):
    """Rewards lifting both torso-foot midpoints to 1.2 m while staying nearly still horizontally."""

    def get_reward(self, physics: cheetah.Physics) -> float:
        still = rewards.tolerance(
            physics.speed(),
            bounds=(-_JUMP_STILL_SPEED, _JUMP_STILL_SPEED),
            margin=_JUMP_STILL_SPEED,
            value_at_margin=0,
            sigmoid="linear",
        )
        torso = _height(physics, "torso")
        stands = [(5 * _up((torso + _height(physics, foot)) / 2) + still) / 6 for foot in ("bfoot", "ffoot")]
        return float(sum(stands) / 2)


def _environment(task: cheetah.Cheetah, time_limit: float, environment_kwargs: dict | None) -> control.Environment:
    physics = cheetah.Physics.from_xml_string(model_xml(), common.ASSETS)
    return control.Environment(physics, task, time_limit=time_limit, **(environment_kwargs or {}))


def run_backwards(
    time_limit: float = _TIME_LIMIT, random: Any = None, environment_kwargs: dict | None = None
) -> control.Environment:
    """``cheetah-run-backwards``."""
    return _environment(RunBackwards(random=random), time_limit, environment_kwargs)


def run_front(
    time_limit: float = _TIME_LIMIT, random: Any = None, environment_kwargs: dict | None = None
) -> control.Environment:
    """``cheetah-run-front``: run on the front legs (back foot in the air)."""
    return _environment(OneFootRun("bfoot", random=random), time_limit, environment_kwargs)


def run_back(
    time_limit: float = _TIME_LIMIT, random: Any = None, environment_kwargs: dict | None = None
) -> control.Environment:
    """``cheetah-run-back``: run on the back legs (front foot in the air)."""
    return _environment(OneFootRun("ffoot", random=random), time_limit, environment_kwargs)


def jump(
    time_limit: float = _TIME_LIMIT, random: Any = None, environment_kwargs: dict | None = None
) -> control.Environment:
    """``cheetah-jump``."""
    return _environment(Jump(random=random), time_limit, environment_kwargs)
