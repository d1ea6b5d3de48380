"""DMControl envs: TD-MPC2's 11 custom tasks (dims, reward formulas, initial states), make_env, the multitask
wrapper, rendering and video. Episodes are shortened with ``episode_length`` to keep every test fast."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from pwm.data.tasks import MT30, MT80, get_task
from pwm.envs.suites.dmcontrol import CUSTOM_TASKS, DMControlEnv, StepResult, split_task_name
from pwm.envs.suites.registry import make_env
from pwm.envs.suites.wrappers import MultitaskEnv

CUSTOM = sorted(CUSTOM_TASKS)


def clip01(x: float) -> float:
    return min(max(x, 0.0), 1.0)


def up(z: float) -> float:
    """tolerance(z, [1.2, inf), margin 0.6, gaussian with value 0.1 at the margin)."""
    return 1.0 if z >= 1.2 else 0.1 ** (((1.2 - z) / 0.6) ** 2)


def set_state(env: DMControlEnv, qpos: dict[str, float], qvel: dict[str, float]) -> None:
    """Zero state except the named joints, then forward kinematics and sensors (what rewards read)."""
    physics = env.physics
    physics.data.qpos[:] = 0.0
    physics.data.qvel[:] = 0.0
    for joint, value in qpos.items():
        physics.named.data.qpos[joint] = value
    for joint, value in qvel.items():
        physics.named.data.qvel[joint] = value
    physics.forward()


def reward(env: DMControlEnv) -> float:
    return env.task.get_reward(env.physics)


@pytest.fixture(scope="module")
def envs():
    """One env per custom task, shared by the reward checks (each sets its own state)."""
    made = {name: DMControlEnv(name, seed=0, episode_length=5) for name in CUSTOM}
    for env in made.values():
        env.reset()
    yield made
    for env in made.values():
        env.close()


def test_custom_tasks_are_mt30_ids_19_to_29():
    assert CUSTOM_TASKS == set(MT30.names[19:30])
    from pwm.envs.suites.dmc_tasks import TASKS

    assert {(d, t) for d, tasks in TASKS.items() for t in tasks} == {split_task_name(n) for n in CUSTOM}


@pytest.mark.parametrize("name", CUSTOM)
def test_custom_task_dims_rewards_and_seeding(name):
    spec = get_task(name)
    env, twin, other = (make_env(name, seed, episode_length=4) for seed in (7, 7, 8))
    assert (env.obs_dim, env.action_dim, env.episode_length) == (spec.obs_dim, spec.action_dim, 4)
    obs, obs_twin = env.reset(), twin.reset()
    assert obs.dtype == np.float32 and obs.shape == (spec.obs_dim,)
    np.testing.assert_array_equal(obs, obs_twin)
    assert not np.array_equal(obs, other.reset())  # the seed drives the initial state
    rng = np.random.default_rng(0)
    for t in range(1, 5):
        action = rng.uniform(-1, 1, spec.action_dim)
        result, result_twin = env.step(action), twin.step(action)
        np.testing.assert_array_equal(result.obs, result_twin.obs)
        assert result.reward == result_twin.reward
        assert 0.0 <= result.reward <= 2.0  # two env steps with rewards in [0, 1]
        assert result.info == {"success": 0.0} and not result.terminated
        assert result.truncated == (t == 4)
        assert result.obs.dtype == np.float32 and np.isfinite(result.obs).all()
    for e in (env, twin, other):
        e.close()


@pytest.mark.parametrize(("name", "speed", "v"), [("walker-walk-backwards", 1, -0.6), ("walker-run-backwards", 8, -3)])
def test_walker_backwards_reward(envs, name, speed, v):
    env = envs[name]
    set_state(env, {"rootz": -0.3, "rooty": 0.4}, {"rootx": v})
    height, upright = 1.3 - 0.3, math.cos(0.4)  # torso frame at z = 1.3 + rootz; its z-axis tilted by rooty
    stand = (3 * up(height) + (1 + upright) / 2) / 4
    expected = stand * (5 * clip01(-v / speed) + 1) / 6
    assert 0.1 < expected < 0.9
    assert reward(env) == pytest.approx(expected, rel=1e-6)
    set_state(env, {"rootz": -0.3, "rooty": 0.4}, {"rootx": -v})  # moving forward earns only the stand term
    assert reward(env) == pytest.approx(stand / 6, rel=1e-6)


def test_cheetah_run_backwards_reward(envs):
    env = envs["cheetah-run-backwards"]
    for v in (-2.0, 3.0, -9.0):
        set_state(env, {}, {"rootx": v})
        assert reward(env) == pytest.approx(clip01(-v / 8), abs=1e-9)


@pytest.mark.parametrize(("name", "foot"), [("cheetah-run-front", "bfoot"), ("cheetah-run-back", "ffoot")])
def test_cheetah_one_foot_reward(envs, name, foot):
    env = envs[name]
    set_state(env, {"rootz": 0.3, "rooty": -0.6 if foot == "bfoot" else 0.6}, {"rootx": 3.0})
    z_torso = 0.7 + 0.3  # torso frame at z = 0.7 + rootz
    z_foot = env.physics.named.data.xpos[foot, "z"]
    expected = (3 * up(z_foot) + 2 * up(z_torso)) / 5 * (5 * clip01(3.0 / 6) + 1) / 6
    assert 0.05 < expected < 0.95
    assert reward(env) == pytest.approx(expected, rel=1e-6)


def test_cheetah_jump_reward(envs):
    env = envs["cheetah-jump"]
    set_state(env, {"rootz": 0.4}, {"rootx": 0.7})
    z_torso = 0.7 + 0.4
    still = clip01(1 - (abs(0.7) - 0.5) / 0.5)  # 0.6
    feet = [env.physics.named.data.xpos[f, "z"] for f in ("bfoot", "ffoot")]
    expected = sum((5 * up((z_torso + z) / 2) + still) / 6 for z in feet) / 2
    assert 0.1 < expected < 0.9
    assert reward(env) == pytest.approx(expected, rel=1e-6)


def test_hopper_hop_backwards_reward(envs):
    env = envs["hopper-hop-backwards"]
    xipos = env.physics.named.data.xipos
    set_state(env, {}, {"rootx": -0.4})
    assert 0.6 <= xipos["torso", "z"] - xipos["foot", "z"] <= 2  # upright: the standing indicator is 1
    assert reward(env) == pytest.approx(0.4, rel=1e-6)
    set_state(env, {"knee": 2.5, "hip": -2.9}, {"rootx": -0.4})  # folded: torso COM too close to the foot
    assert xipos["torso", "z"] - xipos["foot", "z"] < 0.6
    assert reward(env) == 0.0


def test_pendulum_spin_reward(envs):
    env = envs["pendulum-spin"]
    for omega in (0.0, -4.5, 7.2, 12.0):
        set_state(env, {"hinge": 1.0}, {"hinge": omega})
        assert reward(env) == pytest.approx(clip01(abs(omega) / 9), abs=1e-9)


def test_cup_spin_reward(envs):
    env = envs["cup-spin"]
    qpos = {"cup_x": 0.05, "cup_z": -0.02, "ball_x": 0.2, "ball_z": 0.1}
    set_state(env, qpos, {"ball_x": 3.0, "ball_z": -1.5, "cup_x": 5.0})  # cup speed does not count
    target = np.array([0.05, 0.6 - 0.02 - 0.05])  # cup body at z .6, target site 0.05 below it
    ball = np.array([0.2, 0.2 + 0.1])  # ball body at z .2
    dist, speed = np.linalg.norm(target - ball), math.hypot(3.0, -1.5)
    expected = (clip01(2 * dist) + 2 * clip01(speed / 6)) / 3
    assert 0.2 < expected < 0.8
    assert reward(env) == pytest.approx(expected, rel=1e-6)
    set_state(env, {"cup_x": 0.05, "cup_z": -0.02, "ball_x": 0.05, "ball_z": 0.33}, {"ball_x": 3.0})  # in the cup
    assert reward(env) == 0.0


@pytest.mark.parametrize(("name", "radius"), [("reacher-three-easy", 0.05), ("reacher-three-hard", 0.015)])
def test_reacher_three_reward_and_kinematics(envs, name, radius):
    env = envs[name]
    physics = env.physics
    angles = (0.3, -0.5, 0.7)
    set_state(env, dict(zip(("shoulder0", "shoulder1", "wrist"), angles, strict=True)), {})
    cumulative = np.cumsum(angles)
    finger = 0.09 * np.array([np.cos(cumulative).sum(), np.sin(cumulative).sum()])  # three 0.09 m links
    np.testing.assert_allclose(physics.named.data.geom_xpos["finger", :2], finger, atol=1e-9)
    assert physics.named.model.geom_size["target", 0] == radius
    threshold = radius + 0.01  # target radius + finger radius
    for offset, expected in ((threshold - 0.004, 1.0), (threshold + 0.004, 0.0)):
        physics.named.model.geom_pos["target", ["x", "y"]] = finger + offset * np.array([0.6, 0.8])
        physics.forward()
        assert reward(env) == expected
        obs = env.task.get_observation(physics)
        np.testing.assert_allclose(obs["to_target"], offset * np.array([0.6, 0.8]), atol=1e-9)


def test_reacher_three_model():
    env = DMControlEnv("reacher-three-easy", seed=0)
    model = env.physics.named.model
    np.testing.assert_allclose(
        model.body_mass[["arm0", "arm1", "hand", "finger"]], [0.0325, 0.0325, 0.0356, 0.00419], atol=5e-5
    )
    np.testing.assert_allclose(np.rad2deg(model.jnt_range[["shoulder1", "wrist"]]), [[-80, 80], [-80, 80]])
    assert list(model.jnt_limited) == [0, 1, 1] and list(model.actuator_gear[:, 0]) == [0.05] * 3
    for _ in range(20):  # stock reacher initial state on the 3-link arm
        env.reset()
        qpos, target = env.physics.data.qpos, env.physics.named.model.geom_pos["target", :2]
        assert abs(qpos[1]) <= np.deg2rad(80) and abs(qpos[2]) <= np.deg2rad(80) and abs(qpos[0]) <= np.pi
        assert 0.05 <= np.linalg.norm(target) < 0.20
    env.close()


def test_cup_spin_initial_state():
    env = DMControlEnv("cup-spin", seed=3)
    inside = 0
    for _ in range(40):
        env.reset()
        physics = env.physics
        assert physics.data.ncon == 0 and not physics.data.qvel.any()
        assert physics.named.data.qpos["cup_x"] == 0 and physics.named.data.qpos["cup_z"] == 0
        assert -0.2 <= physics.named.data.qpos["ball_x"] <= 0.2 and 0.2 <= physics.named.data.qpos["ball_z"] <= 0.5
        inside += physics.in_target()
    assert 30 <= inside < 40  # ~90 % start in the cup; with this seed some do not
    env.close()


def test_registration_is_lazy():
    """Importing pwm's env modules leaves dm_control's suites alone; the first custom task registers all 11."""
    code = (
        "import pwm.envs.suites.registry, pwm.envs.suites.dmcontrol, pwm.envs.suites.dmc_tasks\n"
        "from dm_control import suite\n"
        "from dm_control.suite import walker, ball_in_cup\n"
        "assert 'walk_backwards' not in walker.SUITE\n"
        "pwm.envs.suites.dmcontrol.DMControlEnv('pendulum-spin')\n"
        "pwm.envs.suites.dmc_tasks.register()\n"
        "assert 'walk_backwards' in walker.SUITE.tagged('custom')\n"
        "suite.load('ball_in_cup', 'spin', task_kwargs={'random': 0}).reset()\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=60)


def test_multitask_wrapper_pads_obs_and_slices_actions():
    env = make_env("pendulum-spin", 1, task_set="mt30", episode_length=3)
    assert isinstance(env, MultitaskEnv) and env.task_id == MT30.index("pendulum-spin") == 29
    assert (env.obs_dim, env.action_dim, env.episode_length) == (24, 6, 3)
    obs = env.reset()
    assert obs.shape == (24,) and obs.dtype == np.float32 and not obs[3:].any() and obs[:3].any()
    result = env.step(np.array([0.5, 1, 1, 1, 1, 1]))
    assert result.obs.shape == (24,) and not result.obs[3:].any() and result.info["success"] == 0.0
    with pytest.raises(ValueError, match="takes actions of 6 entries"):
        env.step(np.zeros(1))
    mt80 = make_env("cheetah-jump", 1, task_set="mt80", episode_length=3)
    assert mt80.task_id == 24 and mt80.reset().shape == (MT80.obs_dim,)


def test_multitask_env_receives_only_its_action_dims():
    class Recorder:
        name, obs_dim, action_dim, episode_length = "stub", 2, 3, 10

        def __init__(self):
            self.actions = []

        def reset(self):
            return np.ones(2, np.float32)

        def step(self, action):
            self.actions.append(np.array(action))
            return StepResult(np.ones(2, np.float32), 0.5, False, False, {"success": 0.0})

    inner = Recorder()
    env = MultitaskEnv(inner, MT30, task_id=5)
    obs = env.step(np.arange(6.0)).obs
    np.testing.assert_array_equal(inner.actions[0], [0.0, 1.0, 2.0])
    np.testing.assert_array_equal(obs, [1, 1] + [0] * 22)
    # on a real env, the padded tail has no effect at all
    a, b = (make_env("cup-spin", 4, task_set="mt30", episode_length=2) for _ in range(2))
    a.reset(), b.reset()
    ra, rb = a.step(np.array([0.3, -0.2, 0, 0, 0, 0])), b.step(np.array([0.3, -0.2, 1, -1, 1, -1]))
    np.testing.assert_array_equal(ra.obs, rb.obs)
    assert ra.reward == rb.reward


def test_unknown_names_are_one_line_errors():
    for kwargs in ({}, {"task_set": "mt30"}):
        with pytest.raises(KeyError, match=r"unknown task 'walker-jump'.*valid tasks: walker-stand, ") as e:
            make_env("walker-jump", 0, **kwargs)
        assert "\n" not in str(e.value)
    with pytest.raises(KeyError, match="unknown task 'mw-reach' for mt30"):
        make_env("mw-reach", 0, task_set="mt30")
    with pytest.raises(KeyError, match="unknown task set 'mt50'"):
        make_env("walker-walk", 0, task_set="mt50")
    with pytest.raises(ValueError, match="unknown DMControl task 'walker-jump'"):
        DMControlEnv("walker-jump")
    with pytest.raises(ValueError, match="takes actions of 1 entries"):
        env = DMControlEnv("pendulum-spin")
        env.reset()
        env.step(np.zeros(2))


def test_step_result_info_defaults_to_none():
    result = StepResult(np.zeros(1, np.float32), 0.0, False, True)
    assert result.info is None and result._replace(info={"success": 1.0}).info == {"success": 1.0}


def test_render():
    env = make_env("reacher-three-easy", 0, task_set="mt30", episode_length=3)
    env.reset()
    frame = env.render(width=64, height=48)
    assert frame.shape == (48, 64, 3) and frame.dtype == np.uint8 and frame.std() > 5
    env.close()


def test_video(tmp_path):
    import imageio.v2 as imageio

    from pwm.envs.suites.video import record_episode

    env = make_env("pendulum-spin", 0, task_set="mt30", episode_length=3)
    path = tmp_path / "videos" / "pendulum.mp4"
    stats = record_episode(env, lambda obs: np.full(6, 0.5), path, fps=10, size=(64, 48))
    assert stats["length"] == 3 and 0 <= stats["return"] <= 6 and stats["success"] == 0.0
    frames = imageio.mimread(path)
    assert len(frames) == 4 and frames[0].shape == (48, 64, 3)  # the initial state plus one per step
    assert not np.array_equal(frames[0], frames[-1])
    with pytest.raises(ValueError, match=r"\.mp4"):
        record_episode(env, lambda obs: np.zeros(6), tmp_path / "x.gif")
    env.close()
