"""Anymal and SNU humanoid (muscles) on warp/newton: dims, standing, body-wrench convention, muscle forces, gradients,
determinism and termination. Tiny batches on CPU; the envs are built once per module (warp's kernel cache makes later
runs start in seconds; a cold cache compiles newton's Featherstone kernels for about a minute)."""

from __future__ import annotations

import dataclasses
import math
from collections import Counter

import numpy as np
import pytest
import torch

from pwm.envs.sim.anymal import AnymalConfig, AnymalEnv
from pwm.envs.sim.muscles import load_muscle_table
from pwm.envs.sim.snu_humanoid import SNUHumanoidConfig, SNUHumanoidEnv

N = 2


@pytest.fixture(scope="module")
def anymal() -> AnymalEnv:
    return AnymalEnv(AnymalConfig(num_envs=N, seed=0))


@pytest.fixture(scope="module")
def snu() -> SNUHumanoidEnv:
    return SNUHumanoidEnv(SNUHumanoidConfig(num_envs=N, seed=0))


def test_dims(anymal: AnymalEnv, snu: SNUHumanoidEnv) -> None:
    assert (anymal.obs_dim, anymal.action_dim, anymal.nq, anymal.nqd) == (49, 12, 19, 18)
    assert (snu.obs_dim, snu.action_dim, snu.nq, snu.nqd) == (53, 152, 29, 24)
    for env in (anymal, snu):
        obs = env.reset(seed=0)
        assert obs.shape == (N, env.obs_dim) and torch.isfinite(obs).all()
        out = env.step(torch.zeros(N, env.action_dim))
        assert out.obs.shape == (N, env.obs_dim) and out.reward.shape == (N,)
    assert abs(sum(anymal.robot.body_mass) - 37.25) < 1e-2  # dflex's shapes at density 1000
    assert abs(sum(snu.robot.body_mass) - 37.0) < 1e-3  # human.xml's lower body


def test_observations_start_pose(anymal: AnymalEnv, snu: SNUHumanoidEnv) -> None:
    """dflex's start quaternions: -pi/2 about x (Anymal), +pi/2 about y (SNU); up = heading = 1 when upright."""
    s = 1.0 / math.sqrt(2.0)
    for env, quat, up_idx in ((anymal, (-s, 0.0, 0.0, s), 35), (snu, (0.0, s, 0.0, s), 51)):
        q = torch.tensor(env.robot.joint_q, dtype=torch.float32).expand(N, -1).clone()
        q[:, 2] = 1.0
        obs = env._observe(env.make_state(q, torch.zeros(N, env.nqd)))
        torch.testing.assert_close(obs[:, 1:5], torch.tensor([quat] * N), atol=1e-6, rtol=0)
        torch.testing.assert_close(obs[:, up_idx : up_idx + 2], torch.ones(N, 2), atol=1e-6, rtol=0)


def test_anymal_stands_under_zero_action(anymal: AnymalEnv) -> None:
    anymal.reset(seed=1)
    heights = []
    for _ in range(60):
        out = anymal.step(torch.zeros(N, 12))
        assert not out.terminated.any()
        heights.append(out.obs[:, 0])
    heights = torch.stack(heights)
    assert heights.min() > anymal.cfg.termination_height + 0.1, heights.min()
    assert torch.isfinite(out.obs).all()


def test_body_f_is_a_world_wrench_about_the_com() -> None:
    """newton's State.body_f = (force, torque about the COM), world axes: a force there accelerates a free body by
    F/m without spinning it, whatever the body's orientation and COM offset."""
    from pwm.envs.sim.articulation.kernels import init_warp

    init_warp()
    import newton
    import warp as wp

    builder = newton.ModelBuilder(gravity=(0.0, 0.0, 0.0))
    rot = wp.quat_from_axis_angle(wp.normalize(wp.vec3(0.3, 1.0, 0.2)), 0.7)
    builder.add_body(
        xform=wp.transform(wp.vec3(0.5, -0.2, 1.0), rot),
        mass=2.0,
        com=wp.vec3(0.1, 0.2, -0.05),
        inertia=wp.mat33(*np.diag([0.02, 0.03, 0.04]).flatten()),
    )
    model = builder.finalize(device="cpu")
    solver = newton.solvers.SolverFeatherstone(model)

    def velocity_after(wrench: np.ndarray, steps: int = 10, dt: float = 1e-3) -> np.ndarray:
        a, b = model.state(), model.state()
        newton.eval_fk(model, model.joint_q, model.joint_qd, a)
        for _ in range(steps):
            a.body_f.assign(np.asarray([wrench], dtype=np.float32))
            solver.step(a, b, model.control(), None, dt)
            a, b = b, a
        return a.body_qd.numpy()[0]

    force = np.array([3.0, -1.0, 2.0])
    v = velocity_after(np.concatenate([force, np.zeros(3)]))
    np.testing.assert_allclose(v[:3], force / 2.0 * 0.01, rtol=1e-4)
    np.testing.assert_allclose(v[3:], 0.0, atol=1e-6)
    v = velocity_after(np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.4]))  # a pure torque does not move the COM
    np.testing.assert_allclose(v[:3], 0.0, atol=1e-6)
    assert abs(v[5]) > 0.05


def test_muscle_table() -> None:
    """muscle284.xml's lower-body units: 76 per side, each left unit routed over the mirror bodies of its right twin."""
    table = load_muscle_table()
    assert table.num_muscles == 152
    assert Counter(name[:2] for name in table.names) == {"R_": 76, "L_": 76}
    assert table.body_names == {"Pelvis"} | {
        f"{b}{s}" for b in ("Femur", "Tibia", "Talus", "FootThumb", "FootPinky") for s in "RL"
    }
    right = {n[2:]: w for n, w in zip(table.names, table.waypoints, strict=True) if n.startswith("R_")}
    for name, path in zip(table.names, table.waypoints, strict=True):
        if name.startswith("L_"):
            mirror = right[name[2:]]
            assert [b.rstrip("L") for b, _ in path] == [b.rstrip("R") for b, _ in mirror], name


def test_muscle_forces_are_equal_and_opposite(snu: SNUHumanoidEnv) -> None:
    snu.reset(seed=2)
    wrench, com = snu.muscle_wrenches(snu.state, snu.random_actions())
    force, torque = wrench[..., :3], wrench[..., 3:]
    assert np.abs(force).max() > 100.0  # the muscles do pull on single bodies
    scale = np.abs(force).sum(axis=(1, 2))
    net_force = force.sum(axis=1)
    net_moment = (torque + np.cross(com, force)).sum(axis=1)  # about the world origin
    assert (np.abs(net_force).max(-1) < 1e-6 * scale).all(), net_force
    assert (np.abs(net_moment).max(-1) < 1e-6 * scale).all(), net_moment


def test_activation_modes(snu: SNUHumanoidEnv) -> None:
    ones = torch.ones(N, 152)
    f_max = 0.36 * torch.as_tensor(snu.muscle_table.f0)
    torch.testing.assert_close(snu._extra_inputs(-ones), -f_max.expand(N, -1))
    cfg = snu.cfg
    try:
        snu.cfg = dataclasses.replace(cfg, muscle_activation="unit")
        torch.testing.assert_close(snu._extra_inputs(-ones), torch.zeros(N, 152))
        torch.testing.assert_close(snu._extra_inputs(ones), f_max.expand(N, -1))
    finally:
        snu.cfg = cfg
    with pytest.raises(ValueError, match="muscle_activation"):
        SNUHumanoidEnv(SNUHumanoidConfig(num_envs=1, muscle_activation="tanh"))  # type: ignore[arg-type]


def _rollout(env: SNUHumanoidEnv, actions: torch.Tensor, seed: int) -> torch.Tensor:
    env.reset(seed=seed)
    total = torch.zeros(())
    for a in actions:
        total = total + env.step(a).reward.sum()
    return total


def test_anymal_reward_gradient_matches_finite_differences(anymal: AnymalEnv) -> None:
    """4-step return: autograd through the taped steps vs a central difference on one joint torque."""
    torch.manual_seed(1)
    actions = 0.3 * torch.randn(4, N, 12)
    anymal.set_requires_grad(True)
    try:
        a = actions.clone().requires_grad_(True)
        _rollout(anymal, a, seed=6).backward()
    finally:
        anymal.set_requires_grad(False)
    grad = a.grad
    assert torch.isfinite(grad).all() and grad[0].abs().sum() > 0
    e = torch.zeros_like(actions)
    e[0, 0, 4] = 1e-2
    with torch.no_grad():
        fd = (_rollout(anymal, actions + e, seed=6) - _rollout(anymal, actions - e, seed=6)) / 2e-2
    assert abs(grad[0, 0, 4]) > 0.01
    assert abs(fd - grad[0, 0, 4]) < 0.05 * abs(grad[0, 0, 4]) + 1e-3, (fd, grad[0, 0, 4])


def test_snu_reward_gradient_wrt_activations(snu: SNUHumanoidEnv) -> None:
    torch.manual_seed(0)
    actions = 0.3 * torch.randn(3, N, 152)
    snu.set_requires_grad(True)
    try:
        a = actions.clone().requires_grad_(True)
        _rollout(snu, a, seed=5).backward()
    finally:
        snu.set_requires_grad(False)
    grad = a.grad
    assert torch.isfinite(grad).all()
    # rewards are pre-step (the fork's timing), so only the earlier actions move the physics part of the return
    assert grad[:2].abs().sum() > 0 and (grad[0] != 0).float().mean() > 0.9
    # central finite difference on one activation
    e = torch.zeros_like(actions)
    e[0, 1, 60] = 1e-2
    with torch.no_grad():
        fd = (_rollout(snu, actions + e, seed=5) - _rollout(snu, actions - e, seed=5)) / 2e-2
    assert abs(fd - grad[0, 1, 60]) < 0.1 * abs(grad[0, 1, 60]) + 1e-3, (fd, grad[0, 1, 60])


@pytest.mark.parametrize("which", ["anymal", "snu"])
def test_seed_determinism(which: str, request: pytest.FixtureRequest) -> None:
    env = request.getfixturevalue(which)

    def run() -> torch.Tensor:
        obs = [env.reset(seed=7)]
        for _ in range(3):
            obs.append(env.step(env.random_actions()).obs)
        return torch.stack(obs)

    first, second = run(), run()
    torch.testing.assert_close(first, second, rtol=0, atol=0)
    assert not torch.equal(env.reset(seed=8), first[0])


def test_termination_flags(anymal: AnymalEnv, snu: SNUHumanoidEnv) -> None:
    # the flag itself
    for env, limit in ((anymal, 0.25), (snu, 0.46)):
        obs = torch.zeros(3, env.obs_dim)
        obs[:, 0] = torch.tensor([limit - 0.01, limit + 0.01, 1.0])
        assert env._terminated(obs).tolist() == [True, False, False]
    # a body lying on the ground terminates on the next step and is reset
    s = 1.0 / math.sqrt(2.0)
    for env, quat, height in ((anymal, (1.0, 0.0, 0.0, 0.0), 0.08), (snu, (0.0, s, 0.0, s), 0.1)):
        env.reset(seed=3)
        q = torch.tensor(env.robot.joint_q, dtype=torch.float32).expand(N, -1).clone()
        q[0, 2], q[1, 2] = height, 1.0 if env is snu else 0.55
        q[0, 3:7] = torch.tensor(quat)
        env.state = env.make_state(q, torch.zeros(N, env.nqd))
        env.obs = env._observe(env.state)
        out = env.step(torch.zeros(N, env.action_dim))
        assert out.terminated.tolist() == [True, False]
        assert out.info["obs_before_reset"][0, 0] < env.cfg.termination_height
        assert out.obs[0, 0] > env.cfg.termination_height  # reset to a fresh start
        assert env.progress.tolist() == [0, 1]


def test_truncation(anymal: AnymalEnv) -> None:
    anymal.reset(seed=4)
    length = anymal.episode_length
    try:
        anymal.episode_length = 2
        first = anymal.step(torch.zeros(N, 12))
        second = anymal.step(torch.zeros(N, 12))
    finally:
        anymal.episode_length = length
    assert not first.truncated.any() and second.truncated.all() and not second.terminated.any()


def test_checker_passes(anymal: AnymalEnv, snu: SNUHumanoidEnv) -> None:
    from pwm.envs.sim.checker import check_env

    for env in (anymal, snu):
        ran = check_env(env, steps=3)
        assert "gradients" in ran and "seed determinism" in ran
