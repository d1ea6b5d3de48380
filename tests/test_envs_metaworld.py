"""Meta-World envs with TD-MPC2's conventions (v3 tasks of metaworld 3.1.1): names, dims, reset/step protocol,
success, seeding, the mt80 wrapper and rendering."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from pwm.envs.suites.gl import use_headless_gl

use_headless_gl()  # before metaworld imports mujoco, which picks its GL backend at import (rendering test)
import metaworld  # noqa: E402

from pwm.data.tasks import MT80  # noqa: E402
from pwm.envs.suites.metaworld import MetaWorldEnv, _import_metaworld, metaworld_id  # noqa: E402
from pwm.envs.suites.registry import make_env  # noqa: E402

MW_TASKS = [n for n in MT80.names if n.startswith("mw-")]


def test_all_mt80_metaworld_tasks_exist_in_v3():
    envs = metaworld.env_dict.ALL_V3_ENVIRONMENTS_GOAL_OBSERVABLE
    assert len(MW_TASKS) == 50
    assert [n for n in MW_TASKS if metaworld_id(n) not in envs] == []
    assert metaworld_id("mw-assembly") == "assembly-v3-goal-observable"


@pytest.mark.parametrize("name", ["mw-reach", "mw-door-open", "mw-assembly"])
def test_episode_protocol(name):
    env = make_env(name, seed=0)
    assert (env.obs_dim, env.action_dim, env.episode_length) == (39, 4, 100)
    obs = env.reset()
    assert obs.shape == (39,) and obs.dtype == np.float32
    assert env._env.curr_path_length == 1  # reset took TD-MPC2's one zero-action step
    rng = np.random.default_rng(0)
    for t in range(1, 101):
        result = env.step(rng.uniform(-1, 1, 4))
        assert result.obs.shape == (39,) and result.obs.dtype == np.float32
        assert result.truncated == (t == 100) and not result.terminated
        assert isinstance(result.info["success"], float) and result.info["success"] in (0.0, 1.0)
        assert 0.0 <= result.reward <= 20.0  # two env steps with rewards in [0, 10]
    assert env._env.curr_path_length == 1 + 2 * 100  # action repeat 2
    env.close()


@pytest.mark.filterwarnings("ignore:Constant.*may be too high:UserWarning")  # the scripted policy's own gains
def test_scripted_policy_reaches_success():
    """``success`` is the last step's ``info["success"]``; Meta-World's scripted reach policy earns it."""
    from metaworld.policies import SawyerReachV3Policy

    policy = SawyerReachV3Policy()
    env = make_env("mw-reach", seed=1, episode_length=50)
    obs, result = env.reset(), None
    for _ in range(50):
        result = env.step(policy.get_action(obs))
        obs = result.obs
    assert result.truncated and result.info["success"] == 1.0
    env.close()


def test_seeding_and_random_goals():
    a, b, c = (MetaWorldEnv("mw-reach", seed=s, episode_length=5) for s in (3, 3, 4))
    goals_a = [a.reset()[36:] for _ in range(3)]  # the last 3 entries are the goal position
    goals_b = [b.reset()[36:] for _ in range(3)]
    np.testing.assert_array_equal(goals_a, goals_b)  # reproducible from the seed
    assert not np.array_equal(goals_a[0], goals_a[1])  # a new goal at every reset
    assert not np.array_equal(goals_a[0], c.reset()[36:])
    action = np.array([0.5, -0.5, 0.2, 1.0])
    np.testing.assert_array_equal(a.step(action).obs, b.step(action).obs)
    for env in (a, b, c):
        env.close()


def test_episode_length_override_and_mt80_wrapper():
    env = make_env("mw-button-press", seed=0, task_set="mt80", episode_length=3)
    assert env.task_id == MT80.index("mw-button-press") and (env.obs_dim, env.action_dim) == (39, 6)
    env.reset()
    results = [env.step(np.array([0.1, 0.2, 0.3, 0.4, 1.0, -1.0])) for _ in range(3)]
    assert [r.truncated for r in results] == [False, False, True]
    assert env.env._env.curr_path_length == 7
    with pytest.raises(ValueError, match="takes actions of 4 entries"):
        MetaWorldEnv("mw-reach").step(np.zeros(6))
    env.close()


def test_unknown_task_errors():
    with pytest.raises(ValueError, match=r"unknown Meta-World task 'mw-fly'.*valid tasks: mw-assembly"):
        MetaWorldEnv("mw-fly")
    with pytest.raises(KeyError, match="unknown task 'mw-fly'"):
        make_env("mw-fly", 0)


def test_render():
    env = MetaWorldEnv("mw-reach", seed=0, episode_length=2)
    env.reset()
    frame = env.render(width=64, height=48)
    assert frame.shape == (48, 64, 3) and frame.dtype == np.uint8 and frame.std() > 5
    big = env.render(width=800, height=600)  # larger than the model's default offscreen buffer
    assert big.shape == (600, 800, 3)
    env.close()


def test_missing_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "metaworld", None)  # makes `import metaworld` raise ImportError
    with pytest.raises(ImportError, match=r'pip install -e "\.\[metaworld\]"'):
        _import_metaworld()


@pytest.mark.filterwarnings("ignore:Constant.*may be too high:UserWarning")
def test_runner_evaluation_on_padded_metaworld_env():
    """The runner's ``evaluate`` on an mt80-padded Meta-World env: scripted reach succeeds, zero actions don't."""
    from metaworld.policies import SawyerReachV3Policy

    from pwm.training.evaluate import evaluate

    env = make_env("mw-reach", seed=2, task_set="mt80", episode_length=50)
    scripted = SawyerReachV3Policy()
    padded = lambda obs: np.pad(scripted.get_action(obs[:39]), (0, 2))  # noqa: E731 (the set's 6 action dims)
    good = evaluate(padded, env, episodes=2)
    idle = evaluate(lambda obs: np.zeros(6, dtype=np.float32), env, episodes=2)
    assert good["success"] == 1.0 and good["length"] == 50
    assert idle["success"] == 0.0 and good["return"] > idle["return"]
    env.close()
