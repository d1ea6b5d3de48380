"""Hopper, Ant and Humanoid on warp/newton (``pwm.envs.sim.articulation``): dims and observation layouts, rest,
gradients against finite differences, graph cutting, determinism and termination. Tiny batches on CPU; each robot is
built once per module. A cold warp kernel cache compiles newton's Featherstone kernels first (about a minute); warm
runs start in about a second."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pwm.envs.sim.ant import AntConfig, AntEnv
from pwm.envs.sim.hopper import HopperConfig, HopperEnv
from pwm.envs.sim.humanoid import HUMANOID_STRENGTHS, HumanoidConfig, HumanoidEnv

N = 2
S = 1.0 / math.sqrt(2.0)


@pytest.fixture(scope="module")
def hopper() -> HopperEnv:
    return HopperEnv(HopperConfig(num_envs=N, seed=3), requires_grad=True)


@pytest.fixture(scope="module")
def ant() -> AntEnv:
    return AntEnv(AntConfig(num_envs=N, seed=0))


@pytest.fixture(scope="module")
def humanoid() -> HumanoidEnv:
    return HumanoidEnv(HumanoidConfig(num_envs=N, seed=0))


def _deterministic_reset(env, seed: int = 0) -> torch.Tensor:
    env.cfg.stochastic_init = False
    try:
        return env.reset(seed=seed)
    finally:
        env.cfg.stochastic_init = True


def test_dims(hopper: HopperEnv, ant: AntEnv, humanoid: HumanoidEnv) -> None:
    for env, dims in ((hopper, (11, 3, 6, 6)), (ant, (37, 8, 15, 14)), (humanoid, (76, 21, 28, 27))):
        assert (env.obs_dim, env.action_dim, env.nq, env.nqd) == dims
        env.set_requires_grad(False)
        obs = env.reset(seed=0)
        assert obs.shape == (N, env.obs_dim) and torch.isfinite(obs).all()
        out = env.step(env.random_actions())
        assert out.obs.shape == (N, env.obs_dim) and out.reward.shape == (N,)
        assert out.obs.dtype == torch.float32 and torch.isfinite(out.obs).all()
    assert hopper.sim.substeps == 16 and ant.sim.substeps == 16 and humanoid.sim.substeps == 48
    # dflex's mass rule: density 1000 on every geom (the Ant's MJCF says density 5)
    assert 170.0 < sum(ant.robot.body_mass) < 190.0
    assert 39.0 < sum(humanoid.robot.body_mass) < 43.0
    assert abs(sum(hopper.robot.body_mass) - 15.82) < 0.05
    # the 21 strengths are mapped by joint name, in the MJCF's DoF order
    expected = torch.tensor([HUMANOID_STRENGTHS[n] for n in humanoid.dof_names]) * 0.35
    torch.testing.assert_close(humanoid.torque_scale, expected)
    assert humanoid.dof_names[:3] == ["abdomen_z", "abdomen_y", "abdomen_x"] and humanoid.dof_names[6] == "right_knee"


def test_masses_from_shapes_match_the_importer() -> None:
    """``set_masses_from_shapes`` (dflex's rule for any asset, e.g. URDF) reproduces the density-1000 MJCF import."""
    import newton

    from pwm.envs.sim.articulation.assets import load_mjcf, set_masses_from_shapes

    builder = newton.ModelBuilder()
    load_mjcf(builder, AntEnv.asset_path(), density=1000.0)
    mass, inertia = list(builder.body_mass), np.array([np.array(i) for i in builder.body_inertia])
    set_masses_from_shapes(builder, 1000.0)
    assert builder.body_mass == pytest.approx(mass, rel=1e-6)
    np.testing.assert_allclose(np.array([np.array(i) for i in builder.body_inertia]), inertia, rtol=1e-5, atol=1e-6)


def test_free_base_observation_layout(ant: AntEnv, humanoid: HumanoidEnv) -> None:
    ant.set_requires_grad(False)
    obs = _deterministic_reset(ant)
    torch.testing.assert_close(obs[:, 0], torch.full((N,), 0.75))
    torch.testing.assert_close(obs[:, 1:5], torch.tensor([[-S, 0.0, 0.0, S]] * N))  # dflex's -pi/2 base rotation
    torch.testing.assert_close(obs[:, 11:19], torch.tensor([[0.0, 1.0, 0.0, -1.0, 0.0, -1.0, 0.0, 1.0]] * N))
    torch.testing.assert_close(obs[:, 27:29], torch.ones(N, 2))  # up and heading projections when upright
    assert not obs[:, 29:].any()  # previous action
    # velocities in dflex's Y-up axes: newton (x, y, z) -> dflex (x, z, -y); Ant's torso COM is its origin
    state = dict(ant.state)
    qd = torch.zeros(N, ant.nqd)
    qd[:, 0:3] = torch.tensor([1.0, 2.0, 3.0])
    qd[:, 3:6] = torch.tensor([0.1, 0.2, 0.3])
    qd[:, 6:] = 1.0
    state["qd"] = qd
    obs = ant._observe(state)
    torch.testing.assert_close(obs[:, 5:8], torch.tensor([[1.0, 3.0, -2.0]] * N))
    torch.testing.assert_close(obs[:, 8:11], torch.tensor([[0.1, 0.3, -0.2]] * N))
    torch.testing.assert_close(obs[:, 19:27], torch.full((N, 8), 0.1))
    # the previous (clipped) action is the observation's tail
    action = torch.linspace(-1.5, 1.5, 8).expand(N, 8)
    out = ant.step(action)
    torch.testing.assert_close(out.obs[:, 29:], action.clamp(-1, 1))
    # heading: yawing the torso by 90 degrees turns heading_proj to 0, a pitch turns up_y to cos(pitch)
    state = dict(ant.state)
    q = state["q"].clone()
    q[:, 3:7] = torch.tensor([0.0, 0.0, math.sin(math.pi / 4), math.cos(math.pi / 4)])
    up, heading = ant.up_and_heading(q, 10000.0)
    torch.testing.assert_close(heading, torch.zeros(N), atol=1e-5, rtol=0)
    torch.testing.assert_close(up, torch.ones(N))
    q[:, 3:7] = torch.tensor([0.0, math.sin(0.3 / 2), 0.0, math.cos(0.3 / 2)])
    up, _ = ant.up_and_heading(q, 10000.0)
    torch.testing.assert_close(up, torch.full((N,), math.cos(0.3)))

    humanoid.set_requires_grad(False)
    obs = _deterministic_reset(humanoid)
    torch.testing.assert_close(obs[:, 0], torch.full((N,), 1.35))
    torch.testing.assert_close(obs[:, 1:5], torch.tensor([[-S, 0.0, 0.0, S]] * N))
    torch.testing.assert_close(obs[:, 53:55], torch.ones(N, 2))
    assert not obs[:, 11:53].any() and not obs[:, 55:].any()


def test_hopper_observation_layout(hopper: HopperEnv) -> None:
    hopper.set_requires_grad(False)
    obs = _deterministic_reset(hopper)
    assert not obs.any()  # dflex's Hopper starts at q = qd = 0 (z is the height displacement)
    state = dict(hopper.state)
    state["q"] = torch.arange(6.0).expand(N, 6)
    state["qd"] = 10 + torch.arange(6.0).expand(N, 6)
    obs = hopper._observe(state)
    torch.testing.assert_close(obs, torch.tensor([[1.0, 2, 3, 4, 5, 10, 11, 12, 13, 14, 15]] * N))


def test_ant_settles_and_stays_at_rest(ant: AntEnv) -> None:
    """Zero torque: the (dflex-heavy, 180 kg) Ant sinks onto its torso, then stays still."""
    ant.set_requires_grad(False)
    ant.cfg.early_termination = False
    try:
        _deterministic_reset(ant)
        zero = torch.zeros(N, 8)
        for _ in range(200):
            ant.step(zero)
        heights, speeds = [], []
        for _ in range(60):
            out = ant.step(zero)
            heights.append(out.obs[:, 0])
            speeds.append(out.obs[:, 5:11].abs().max())
    finally:
        ant.cfg.early_termination = True
    heights = torch.stack(heights)
    assert torch.isfinite(heights).all()
    assert heights.var(0).max() < 1e-8
    assert max(speeds) < 1e-3
    assert 0.2 < heights.mean() < 0.3  # resting on the torso sphere (radius 0.25)


def _hopper_return(env: HopperEnv, actions: torch.Tensor, grad: bool) -> torch.Tensor:
    env.set_requires_grad(grad)
    env.reset(seed=3)
    total = torch.zeros(())
    for t in range(actions.shape[0]):
        total = total + env.step(actions[t]).reward.sum()
    return total


def test_hopper_action_gradients_match_finite_differences(hopper: HopperEnv) -> None:
    """Return of a 4-step rollout: autograd through the taped warp steps vs central differences.

    newton's kernels are float32 only, so the differences use eps = 1e-2 (the return is smooth enough at this
    seed's trajectory that eps 1e-2 and 3e-3 agree to 1e-4); the tolerance is 2e-3 absolute + 2 % relative.
    """
    horizon = 4
    gen = torch.Generator().manual_seed(0)
    actions = (torch.rand(horizon, N, 3, generator=gen) - 0.5).requires_grad_(True)
    total = _hopper_return(hopper, actions, grad=True)
    total.backward()
    grad = actions.grad.clone()
    assert torch.isfinite(grad).all()
    eps = 1e-2
    for t, e, j in [(0, 0, 0), (0, 1, 2), (1, 0, 1), (2, 0, 2), (0, 0, 1), (3, 1, 0)]:
        plus, minus = actions.detach().clone(), actions.detach().clone()
        plus[t, e, j] += eps
        minus[t, e, j] -= eps
        with torch.no_grad():
            fd = (_hopper_return(hopper, plus, False) - _hopper_return(hopper, minus, False)).item() / (2 * eps)
        assert abs(grad[t, e, j].item() - fd) < 2e-3 + 0.02 * abs(fd), (t, e, j, grad[t, e, j].item(), fd)
    # the early actions act through the simulator (not only through the action penalty)
    assert grad[0].abs().sum() > 0.2


def test_gradients_reach_the_start_state(hopper: HopperEnv) -> None:
    hopper.set_requires_grad(True)
    hopper.reset(seed=3)
    q0 = hopper.state["q"].clone().requires_grad_(True)
    qd0 = hopper.state["qd"].clone().requires_grad_(True)
    hopper.state = {"q": q0, "qd": qd0, "act": hopper.state["act"]}
    hopper.obs = hopper._observe(hopper.state)
    total = sum(hopper.step(torch.zeros(N, 3)).reward.sum() for _ in range(3))
    total.backward()
    assert q0.grad is not None and qd0.grad is not None
    assert torch.isfinite(q0.grad).all() and torch.isfinite(qd0.grad).all()
    assert q0.grad[:, 1:].abs().sum() > 0 and qd0.grad.abs().sum() > 0
    # d return / d initial x-velocity, through the simulator: one central difference
    eps = 1e-2
    with torch.no_grad():
        values = []
        for sign in (1.0, -1.0):
            hopper.reset(seed=3)
            qd = qd0.detach().clone()
            qd[0, 0] += sign * eps
            hopper.state = {"q": q0.detach().clone(), "qd": qd, "act": hopper.state["act"]}
            hopper.obs = hopper._observe(hopper.state)
            values.append(sum(hopper.step(torch.zeros(N, 3)).reward.sum() for _ in range(3)))
    fd = (values[0] - values[1]).item() / (2 * eps)
    assert abs(qd0.grad[0, 0].item() - fd) < 2e-3 + 0.02 * abs(fd)


def test_detach_cuts_the_graph(hopper: HopperEnv) -> None:
    hopper.set_requires_grad(True)
    hopper.reset(seed=0)
    first = torch.zeros(N, 3, requires_grad=True)
    hopper.step(first)
    obs = hopper.detach()
    assert obs.grad_fn is None and all(v.grad_fn is None for v in hopper.state.values())
    later = torch.zeros(N, 3, requires_grad=True)
    out = hopper.step(later)
    (reached_first, reached_later) = torch.autograd.grad(
        out.reward.sum() + out.obs.sum(), [first, later], allow_unused=True
    )
    assert reached_first is None or not reached_first.any()
    assert reached_later is not None and reached_later.abs().sum() > 0


def test_seed_determinism(ant: AntEnv, hopper: HopperEnv) -> None:
    for env in (ant, hopper):
        env.set_requires_grad(False)
        runs = []
        for _ in range(2):
            obs = [env.reset(seed=5)]
            gen = torch.Generator().manual_seed(1)
            for _ in range(6):
                obs.append(env.step(torch.rand(N, env.action_dim, generator=gen) * 2 - 1).obs)
            runs.append(torch.stack(obs))
        assert torch.equal(runs[0], runs[1])
        assert not torch.equal(env.reset(seed=5), env.reset(seed=6))


def test_termination_when_the_torso_drops(hopper: HopperEnv, ant: AntEnv, humanoid: HumanoidEnv) -> None:
    """World 0 is put below the termination height (Hopper: legs folded up so that it falls freely; Ant: torso sphere
    on the ground; Humanoid: pelvis low, legs folded), world 1 is left alone."""
    cases = (
        (hopper, {1: -0.5, 3: -2.0, 4: -2.0}),
        (ant, {2: 0.2}),
        (humanoid, {2: 0.45, 12: -1.4, 18: -1.4, 13: -2.6, 19: -2.6}),  # hips flexed, knees bent
    )
    for env, low in cases:
        env.set_requires_grad(False)
        env.reset(seed=0)
        q = env.state["q"].clone()
        for index, value in low.items():
            q[0, index] = value
        env.state = {**env.state, "q": q}
        env.obs = env._observe(env.state)
        out = env.step(torch.zeros(N, env.action_dim))
        assert out.terminated.tolist() == [True, False], env.name
        assert out.info["obs_before_reset"][0, 0] < env.cfg.termination_height
        assert out.obs[0, 0] > env.cfg.termination_height  # auto-reset
        assert env.progress[0] == 0 and env.progress[1] == 1


def test_humanoid_gradient_is_finite(humanoid: HumanoidEnv) -> None:
    humanoid.set_requires_grad(True)
    humanoid.reset(seed=1)
    actions = torch.zeros(3, N, 21, requires_grad=True)
    total = sum(humanoid.step(actions[t] + 0.3).reward.sum() for t in range(3))
    total.backward()
    grad = actions.grad
    assert torch.isfinite(grad).all() and grad[0].abs().sum() > 0 and grad.norm() < 1e3
    humanoid.set_requires_grad(False)


def test_registered_and_checker(hopper: HopperEnv, ant: AntEnv, humanoid: HumanoidEnv) -> None:
    from pwm.envs.sim import checker, registry

    assert registry.TASKS["dflex_hopper"][1:] == ("HopperEnv", "HopperConfig")
    assert registry.TASKS["dflex_ant"][1:] == ("AntEnv", "AntConfig")
    assert registry.TASKS["dflex_humanoid"][1:] == ("HumanoidEnv", "HumanoidConfig")
    for env in (hopper, ant, humanoid):
        ran = checker.check_env(env, steps=4)
        assert "gradients" in ran and "seed determinism" in ran
