"""``cup-spin``: swing the ball around the cup, fast and far from it (dm_control domain ``ball_in_cup``).

reward = (1 - in_target) · (clip(2·dist) + 2·clip(speed / 6)) / 3, with dist the ball's distance to the cup's
target site in the x-z plane, in_target the stock "ball inside the cup" test and speed the norm of the ball's
world-frame velocity. The string caps dist near 0.36, so the reward stays below about 0.91.

Initial state: a first draw decides (probability 0.1) whether the ball may start outside the cup; then ball
positions are drawn as in stock catch (x in (-.2, .2), z in (.2, .5)) until one is contact-free and, unless that
first draw allowed otherwise, inside the cup. About 90 % of episodes therefore start with the ball in the cup.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from dm_control.rl import control
from dm_control.suite import ball_in_cup, base, common
from dm_control.utils import rewards

_TIME_LIMIT = 20  # seconds (stock)
_CONTROL_TIMESTEP = 0.02  # seconds (stock): 10 physics steps of 0.002
_OUT_OF_TARGET_PROB = 0.1
_FAR = 0.5  # distance at which the distance term saturates (unreachable with the 0.3 m string)
_SPIN_SPEED = 6.0  # m/s


class Spin(ball_in_cup.BallInCup):
    """Rewards the ball being out of the cup, far from it and fast."""

    def initialize_episode(self, physics: ball_in_cup.Physics) -> None:
        may_start_outside = self.random.uniform() < _OUT_OF_TARGET_PROB
        while True:
            physics.named.data.qpos["ball_x"] = self.random.uniform(-0.2, 0.2)
            physics.named.data.qpos["ball_z"] = self.random.uniform(0.2, 0.5)
            physics.after_reset()  # forward kinematics and contacts of the new position
            if physics.data.ncon == 0 and (may_start_outside or physics.in_target()):
                break
        base.Task.initialize_episode(self, physics)  # skip the stock catch initialisation

    def get_reward(self, physics: ball_in_cup.Physics) -> float:
        dist = float(np.linalg.norm(physics.ball_to_target()))
        dist_reward = rewards.tolerance(
            dist, bounds=(_FAR, float("inf")), margin=_FAR / 2, value_at_margin=0.5, sigmoid="linear"
        )
        speed = float(np.linalg.norm(physics.named.data.qvel[["ball_x", "ball_z"]]))
        speed_reward = rewards.tolerance(
            speed, bounds=(_SPIN_SPEED, float("inf")), margin=_SPIN_SPEED / 2, value_at_margin=0.5, sigmoid="linear"
        )
        return float((1 - physics.in_target()) * (dist_reward + 2 * speed_reward) / 3)


def spin(
    time_limit: float = _TIME_LIMIT, random: Any = None, environment_kwargs: dict | None = None
) -> control.Environment:
    """``cup-spin``."""
    physics = ball_in_cup.Physics.from_xml_string(common.read_model("ball_in_cup.xml"), common.ASSETS)
    return control.Environment(
        physics,
        Spin(random=random),
        time_limit=time_limit,
        control_timestep=_CONTROL_TIMESTEP,
        **(environment_kwargs or {}),
    )
