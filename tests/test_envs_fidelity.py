"""Fidelity of the seven dflex tasks: facts of PWM's dflex fork (``tests/dflex_facts.py``, written from the original
assets and from running the fork) checked against our envs: dims, total and per-body mass, actuated joint ranges,
and where the robot comes to rest under zero action. A change that drifts from dflex fails here."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pwm.envs.sim.muscles import load_muscle_table
from pwm.envs.sim.registry import make_dflex_env
from tests.dflex_facts import (
    MASS_TOL,
    PLANAR,
    RANGE_TOL,
    ROBOTS,
    ROLLOUT_STEPS,
    ROLLOUT_TOL,
    ROLLOUTS,
    SETTLE_TOL,
    SNU_BALL_STIFFNESS,
    SNU_HINGE_GAINS,
    SNU_MUSCLES,
    UNLIMITED,
)


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
    assert first == (6 if env.free_base else 3)
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


def test_snu_muscle_table() -> None:
    table = load_muscle_table()
    facts = SNU_MUSCLES
    assert table.num_muscles == facts["units"]
    assert sum(len(path) for path in table.waypoints) == facts["waypoints"]
    assert abs(float(table.f0.sum()) - facts["f0_sum"]) < 0.5
    assert abs(float(np.median(table.f0)) - facts["f0_median"]) < 1e-3
    assert abs(float(table.f0.max()) - facts["f0_max"]) < 1e-3


def test_snu_skeleton_gains() -> None:
    import newton

    env = _robot("dflex_snu_humanoid")
    b = env.robot
    names = [label.split("/")[-1] for label in b.body_label]
    for body, (stiffness, limit_ke, damping) in SNU_HINGE_GAINS.items():
        dof = b.joint_qd_start[names.index(body)]
        got = (b.joint_stiffness[dof], b.joint_limit_ke[dof], b.joint_damping[dof])
        np.testing.assert_allclose(got, (stiffness, limit_ke, damping), rtol=1e-4, err_msg=body)
    ball = int(newton.JointType.BALL)
    ball_bodies = [names[j] for j, kind in enumerate(b.joint_type) if int(kind) == ball]
    for body, stiffness in SNU_BALL_STIFFNESS.items():
        assert abs(env.ball_stiffness[ball_bodies.index(body)] - stiffness) < 1e-4, body


@pytest.mark.parametrize("task", sorted(ROLLOUTS))
def test_rollout_and_gradient_match_dflex(task: str) -> None:
    """The same actions give dflex's return, end state and action gradient (sim + autograd vs the fork's adjoints)."""
    env = make_dflex_env(task, {"num_envs": 1, "stochastic_init": False, "early_termination": False}, True)
    t = torch.arange(ROLLOUT_STEPS, dtype=torch.float32)[:, None]
    j = torch.arange(env.action_dim, dtype=torch.float32)[None, :]
    actions = (0.5 * torch.sin(0.3 * t + j)).unsqueeze(1).requires_grad_(True)
    env.reset(seed=0)
    total = torch.zeros(())
    for k in range(ROLLOUT_STEPS):
        out = env.step(actions[k])
        total = total + out.reward.sum()
    total.backward()
    facts, tol = ROLLOUTS[task], ROLLOUT_TOL
    assert abs(total.item() - facts["total"]) < tol["total"], (total.item(), facts["total"])
    np.testing.assert_allclose(out.obs[0, :23].detach().numpy(), facts["obs"], atol=tol["obs"], rtol=0)
    grad = actions.grad[0, 0, :8].numpy()
    np.testing.assert_allclose(grad, facts["grad0"], atol=tol["grad_abs"], rtol=tol["grad_rel"])
