"""CartPoleSwingUp and DoublePendulum (pure torch), the batched-env contract, the checker and the Gym adapter."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pwm.config import ConfigError
from pwm.envs.sim.checker import EnvContractError, check_env
from pwm.envs.sim.gym_adapter import make_gym_env
from pwm.envs.sim.planar import CartPoleConfig, CartPoleSwingUpEnv, DoublePendulumConfig, DoublePendulumEnv
from pwm.envs.sim.registry import make_dflex_env

PLANAR = ["dflex_cartpole", "dflex_doublependulum"]


@pytest.mark.parametrize("name", PLANAR)
def test_checker_passes(name):
    ran = check_env(make_dflex_env(name, {"num_envs": 6}))
    assert ran == ["reset", "step outputs", "bad actions", "seed determinism", "truncation and auto-reset", "gradients"]


@pytest.mark.parametrize("name", PLANAR)
def test_return_gradient_matches_finite_differences(name):
    """d(sum of 6 rewards)/d(actions) by autograd equals central differences (float32, eps 1e-2 on 1000*a forces)."""
    env = make_dflex_env(name, {"num_envs": 3, "seed": 4}, requires_grad=True)
    steps = 6
    base = 0.3 * torch.randn(steps, 3, 1, generator=torch.Generator().manual_seed(1))

    def rollout_return(actions):
        env.reset(seed=4)
        return sum(env.step(actions[t]).reward.sum() for t in range(steps))

    actions = base.clone().requires_grad_(True)
    rollout_return(actions).backward()
    eps = 1e-2
    for t, i in [(0, 0), (1, 2), (3, 1), (4, 0)]:  # the last action only changes the unused post-step state
        plus, minus = base.clone(), base.clone()
        plus[t, i, 0] += eps
        minus[t, i, 0] -= eps
        with torch.no_grad():
            numeric = (rollout_return(plus) - rollout_return(minus)) / (2 * eps)
        analytic = actions.grad[t, i, 0]
        assert abs(analytic - numeric) <= 2e-2 * abs(numeric) + 1e-2, (t, i, float(analytic), float(numeric))


def test_gradient_reaches_start_state_and_detach_cuts_it():
    env = CartPoleSwingUpEnv(CartPoleConfig(num_envs=2), requires_grad=True)
    env.reset(seed=0)
    start = {k: v.clone().requires_grad_(True) for k, v in env.state.items()}
    env.state = dict(start)
    env.obs = env._observe(env.state)
    total = sum(env.step(torch.zeros(2, 1)).reward.sum() for _ in range(3))
    total.backward()
    assert start["q"].grad.abs().sum() > 0 and start["qd"].grad.abs().sum() > 0
    obs = env.detach()
    assert obs.grad_fn is None and all(v.grad_fn is None for v in env.state.values())


def _small_oscillation_period(env: CartPoleSwingUpEnv, amplitude: float, steps: int) -> float:
    env.reset()
    env.state = {"q": torch.tensor([[0.0, math.pi + amplitude]]), "qd": torch.zeros(1, 2)}
    phase = []
    for _ in range(steps):
        env.step(torch.zeros(1, 1))
        phase.append(float(env.state["q"][0, 1] - math.pi))
    phase = np.array(phase)
    crossings = np.nonzero((phase[:-1] > 0) & (phase[1:] <= 0))[0]
    # Linear interpolation of the downward zero crossings, in steps; the period is their mean spacing.
    times = crossings + phase[crossings] / (phase[crossings] - phase[crossings + 1])
    return float(np.diff(times).mean()) * env.cfg.dt


def test_cartpole_small_oscillation_period_matches_linearised_solution():
    """Hanging pole, free cart, no damping: omega^2 = m g l / (J - (m l)^2 / M_x) for the reduced system."""
    cfg = CartPoleConfig(num_envs=1, stochastic_init=False, joint_damping=0.0, episode_length=10_000)
    env = CartPoleSwingUpEnv(cfg)
    m, lever = env.pole_mass, env.pole_com
    m_x = env.cart_mass + m + cfg.armature
    inertia = m * lever**2 + env.pole_inertia + cfg.armature
    omega = math.sqrt(m * 9.81 * lever / (inertia - (m * lever) ** 2 / m_x))
    measured = _small_oscillation_period(env, amplitude=0.01, steps=600)
    assert measured == pytest.approx(2 * math.pi / omega, rel=5e-3)


def _cartpole_energy(env: CartPoleSwingUpEnv) -> float:
    (_, theta), (xd, thetad) = env.state["q"][0].tolist(), env.state["qd"][0].tolist()
    c, m, lever = env.cfg, env.pole_mass, env.pole_com
    kinetic = 0.5 * (env.cart_mass + m + c.armature) * xd**2 + m * lever * math.cos(theta) * xd * thetad
    kinetic += 0.5 * (m * lever**2 + env.pole_inertia + c.armature) * thetad**2
    return kinetic + m * 9.81 * lever * math.cos(theta)


def test_undamped_cartpole_conserves_energy():
    env = CartPoleSwingUpEnv(CartPoleConfig(num_envs=1, stochastic_init=False, joint_damping=0.0))
    env.reset()
    env.state = {"q": torch.tensor([[0.0, 2.0]]), "qd": torch.tensor([[0.0, 1.0]])}
    start = _cartpole_energy(env)
    swing = 0.0
    for _ in range(200):
        env.step(torch.zeros(1, 1))
        swing = max(swing, abs(_cartpole_energy(env) - start))
    scale = env.pole_mass * 9.81 * env.pole_com * 2  # the potential energy range of the swing
    assert swing < 0.02 * scale


def test_double_pendulum_at_rest_hanging_stays_at_rest():
    env = DoublePendulumEnv(DoublePendulumConfig(num_envs=1, stochastic_init=False))
    env.reset()
    env.state = {"q": torch.tensor([[math.pi, 0.0]]), "qd": torch.zeros(1, 2)}
    for _ in range(120):
        env.step(torch.zeros(1, 1))
    assert torch.allclose(env.state["q"], torch.tensor([[math.pi, 0.0]]), atol=1e-4)
    assert env.state["qd"].abs().max() < 1e-4


def test_rewards_follow_the_dflex_formulas_and_timing():
    env = CartPoleSwingUpEnv(CartPoleConfig(num_envs=1, stochastic_init=False))
    obs = env.reset()
    assert torch.allclose(obs, torch.tensor([[0.0, 0.0, math.sin(math.pi), -1.0, 0.0]]), atol=1e-6)
    out = env.step(torch.ones(1, 1))
    assert out.reward.item() == pytest.approx(-(math.pi**2), rel=1e-5)  # pre-step: the hanging start pose
    post = CartPoleSwingUpEnv(CartPoleConfig(num_envs=1, stochastic_init=False, reward_timing="post"))
    post.reset()
    out = post.step(torch.ones(1, 1))
    x, xd, s, c, thetad = out.obs[0].tolist()
    expected = -(math.atan2(s, c) ** 2 + 0.1 * thetad**2 + 0.05 * x**2 + 0.1 * xd**2)
    assert out.reward.item() == pytest.approx(expected, rel=1e-5)


def test_truncation_flags_and_auto_reset_observation():
    env = CartPoleSwingUpEnv(CartPoleConfig(num_envs=3, episode_length=5))
    env.reset(seed=0)
    for t in range(1, 6):
        out = env.step(torch.zeros(3, 1))
        assert not out.terminated.any()
        assert out.truncated.all() == (t == 5)
    assert not torch.equal(out.obs, out.info["obs_before_reset"])
    assert (env.progress == 0).all()
    # The reset rows are fresh start states: the cart velocity is within the init noise, the pole near hanging.
    assert out.obs[:, 1].abs().max() <= 0.25 and (out.obs[:, 3] <= math.cos(math.pi / 2) + 1e-6).all()


def test_termination_is_not_truncation():
    class Falls(DoublePendulumEnv):
        def _terminated(self, obs):
            return obs[:, 0] < 0.99  # the upper pole left a narrow cone around upright

    env = Falls(DoublePendulumConfig(num_envs=2, stochastic_init=False, episode_length=50, early_termination=True))
    env.reset()
    env.state = {"q": torch.tensor([[0.0, 0.0], [0.3, 0.0]]), "qd": torch.zeros(2, 2)}
    out = env.step(torch.zeros(2, 1))
    assert out.terminated.tolist() == [False, True] and not out.truncated.any()


@pytest.mark.parametrize(
    ("actions", "error"),
    [
        (torch.zeros(4, 2), "shape"),
        (torch.tensor([[0.0], [float("nan")], [0.0], [0.0]]), "NaN"),
        (np.zeros((4, 1)), "torch.Tensor"),
    ],
)
def test_bad_actions_raise_one_line_errors(actions, error):
    env = make_dflex_env("dflex_cartpole", {"num_envs": 4})
    env.reset()
    with pytest.raises((ValueError, TypeError), match=error):
        env.step(actions)


def test_step_before_reset_and_bad_config_are_clear():
    with pytest.raises(RuntimeError, match="reset"):
        make_dflex_env("dflex_cartpole", {"num_envs": 1}).step(torch.zeros(1, 1))
    with pytest.raises(ConfigError, match="unknown env 'dflex_cartpol'"):
        make_dflex_env("dflex_cartpol")
    with pytest.raises(ValueError, match="start_pose"):
        make_dflex_env("dflex_cartpole", {"start_pose": "sideways"})


def test_same_seed_same_trajectory_other_seed_differs():
    def run(seed):
        env = make_dflex_env("dflex_doublependulum", {"num_envs": 4})
        obs = [env.reset(seed=seed)]
        for _ in range(30):
            obs.append(env.step(env.random_actions()).obs)
        return torch.stack(obs)

    assert torch.equal(run(7), run(7)) and not torch.equal(run(7), run(8))


def test_checker_catches_a_broken_env():
    class NoObsBeforeReset(CartPoleSwingUpEnv):
        def _step(self, action):
            out = super()._step(action)
            return out._replace(info={})

    with pytest.raises(EnvContractError, match="obs_before_reset"):
        check_env(NoObsBeforeReset(CartPoleConfig(num_envs=2)))


def test_gymnasium_adapter_episode_and_final_observation():
    env = make_gym_env("dflex_cartpole", episode_length=3)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (5,) and obs.dtype == np.float32
    for t in range(3):
        final, reward, terminated, truncated, _ = env.step(np.array([0.5], dtype=np.float32))
        assert isinstance(reward, float) and not terminated and truncated == (t == 2)
    fresh, _ = env.reset()
    assert not np.array_equal(fresh, final)
    assert np.array_equal(env.reset(seed=0)[0], obs)


def test_stable_baselines3_sac_runs_on_the_adapter(tmp_path):
    from stable_baselines3 import SAC

    env = make_gym_env("dflex_cartpole", episode_length=20)
    model = SAC("MlpPolicy", env, learning_starts=10, batch_size=16, policy_kwargs={"net_arch": [16]}, seed=0)
    model.learn(total_timesteps=40)
    action, _ = model.predict(env.reset(seed=0)[0], deterministic=True)
    assert action.shape == (1,) and np.all(np.abs(action) <= 1)


def test_policy_strip_follows_one_episode(tmp_path):
    from pwm.envs.sim.render import policy_rollout, write_policy_strip

    env = make_dflex_env("dflex_cartpole", {"num_envs": 2, "episode_length": 30})
    qs = policy_rollout(env, lambda obs: torch.zeros(obs.shape[0], 1), seed=0)
    assert len(qs) == 30 and all(q.shape == (2,) for q in qs)
    path = write_policy_strip(env, lambda obs: torch.zeros(obs.shape[0], 1), tmp_path / "strip.png", frames=4)
    import imageio.v2 as imageio

    image = imageio.imread(path)
    assert image.ndim == 3 and image.shape[1] > image.shape[0]  # frames side by side
