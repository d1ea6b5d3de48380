"""Fidelity of the seven dflex tasks: facts of PWM's dflex fork (``tests/dflex_facts.py``, written from the original
assets and from running the fork) checked against our envs: dims, total and per-body mass, actuated joint ranges,
and where the robot comes to rest under zero action. A change that drifts from dflex fails here."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pwm.envs.sim.registry import make_dflex_env
from tests.dflex_facts import MASS_TOL, PLANAR, RANGE_TOL, ROBOTS, SETTLE_TOL, UNLIMITED


def _robot(task: str):
    return make_dflex_env(task, {"num_envs": 1, "stochastic_init": False, "early_termination": False})


@pytest.fixture(scope="module", params=sorted(ROBOTS))
def robot(request: pytest.FixtureRequest):
    return request.param, _robot(request.param)


def test_dims(robot) -> None:
    task, env = robot
    assert (env.obs_dim, env.action_dim) == (ROBOTS[task]["obs"], ROBOTS[task]["act"])
    assert env.reset(seed=0).shape == (1, ROBOTS[task]["obs"])


def test_masses(robot) -> None:
    task, env = robot
    masses = [m for m in env.robot.body_mass if m > 0.0]
    np.testing.assert_allclose(masses, ROBOTS[task]["masses"], atol=MASS_TOL, rtol=0)
    assert abs(sum(env.robot.body_mass) - ROBOTS[task]["total"]) < MASS_TOL


def test_joint_count_and_ranges(robot) -> None:
    task, env = robot
    facts = ROBOTS[task]["ranges"]
    first = env.nqd - len(facts)
    assert first == (6 if env.free_base else 3) and env.action_dim == len(facts)
    lower = np.array(env.robot.joint_limit_lower[first:])
    upper = np.array(env.robot.joint_limit_upper[first:])
    for dof, fact in enumerate(facts):
        if fact is None:
            assert lower[dof] <= -UNLIMITED and upper[dof] >= UNLIMITED, (task, dof, lower[dof], upper[dof])
        else:
            np.testing.assert_allclose((lower[dof], upper[dof]), fact, atol=RANGE_TOL, rtol=0, err_msg=f"{task} {dof}")


def test_settles_where_dflex_does(robot) -> None:
    task, env = robot
    steps, index, value = ROBOTS[task]["settle"]
    env.reset(seed=0)
    for _ in range(steps):
        out = env.step(torch.zeros(1, env.action_dim))
    assert abs(out.obs[0, index].item() - value) < SETTLE_TOL, (task, out.obs[0, index].item(), value)


@pytest.mark.parametrize("task", sorted(PLANAR))
def test_planar_facts(task: str) -> None:
    env = make_dflex_env(task, {"num_envs": 1})
    facts = PLANAR[task]
    assert (env.obs_dim, env.action_dim) == (facts["obs"], facts["act"])
    masses = (env.cart_mass, env.pole_mass) if task == "dflex_cartpole" else (env.mass, env.mass)
    np.testing.assert_allclose(masses, facts["masses"], atol=MASS_TOL, rtol=0)
    assert env.cfg.armature == facts["armature"]
    if "slider_limit" in facts:
        assert env.cfg.slider_limit == facts["slider_limit"]
