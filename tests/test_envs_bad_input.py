"""Bad input to the differentiable simulators gives a one-line error naming what is wrong, never a traceback from
deep inside or silent garbage: seeds, config values, devices, and a blown-up planar env (NaN state)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from pwm.envs.sim.checks import check_config
from pwm.envs.sim.registry import TASKS, make_dflex_env, make_env_config
from pwm.utils.errors import ConfigError


def _raises_one_line(message: str, build) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)) as caught:
        build()
    assert "\n" not in str(caught.value)


# ---- 1. seeds --------------------------------------------------------------------------------------------------------
def test_numpy_integer_seeds_are_accepted_and_equal_python_ones():
    env = make_dflex_env("dflex_cartpole", {"num_envs": 3, "seed": np.int64(3)})
    same = make_dflex_env("dflex_cartpole", {"num_envs": 3, "seed": 3})
    assert torch.equal(env.reset(), same.reset())
    assert torch.equal(env.reset(seed=np.int32(7)), same.reset(seed=7))
    env.seed(np.uint8(5))
    same.seed(5)
    assert torch.equal(env.reset(), same.reset())


@pytest.mark.parametrize("seed", [1.5, 2.0, "3", None, True, np.float64(1.0)], ids=repr)
def test_non_integral_config_seed_is_one_line(seed):
    _raises_one_line(
        f"env dflex_cartpole: seed={seed!r} must be an integer",
        lambda: make_dflex_env("dflex_cartpole", {"num_envs": 1, "seed": seed}),
    )


@pytest.mark.parametrize("seed", [2.5, "1", 2**64])
def test_non_integral_reset_seed_is_one_line(seed):
    env = make_dflex_env("dflex_doublependulum", {"num_envs": 1})
    message = "must be an integer" if not isinstance(seed, int) else "must be in [-2**63, 2**64 - 1]"
    _raises_one_line(f"dflex_doublependulum: seed={seed!r} {message}", lambda: env.reset(seed=seed))


# ---- 2. config values ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("task", "overrides", "message"),
    [
        ("dflex_cartpole", {"substeps": 0}, "env dflex_cartpole: substeps=0 must be >= 1"),
        ("dflex_cartpole", {"dt": -0.01}, "env dflex_cartpole: dt=-0.01 must be > 0"),
        ("dflex_doublependulum", {"dt": 0.0}, "env dflex_doublependulum: dt=0.0 must be > 0"),
        ("dflex_cartpole", {"num_envs": 0}, "env dflex_cartpole: num_envs=0 must be >= 1"),
        ("dflex_cartpole", {"num_envs": 2.5}, "env dflex_cartpole: num_envs=2.5 must be an integer"),
        ("dflex_cartpole", {"episode_length": 0}, "env dflex_cartpole: episode_length=0 must be >= 1"),
        ("dflex_cartpole", {"dt": float("nan")}, "env dflex_cartpole: dt=nan must be a finite number"),
        ("dflex_cartpole", {"pole_length": 0.0}, "env dflex_cartpole: pole_length=0.0 must be > 0"),
        ("dflex_cartpole", {"cart_size": (0.5, 0.0, 0.2)}, "cart_size=(0.5, 0.0, 0.2) must be > 0 (every item)"),
        ("dflex_cartpole", {"cart_size": (0.5, 0.5)}, "cart_size=(0.5, 0.5) must be a tuple of 3 numbers"),
        ("dflex_cartpole", {"start_pose": "sideways"}, "start_pose='sideways' must be one of 'hanging', 'upright'"),
        ("dflex_cartpole", {"stochastic_init": "yes"}, "stochastic_init='yes' must be true or false"),
        ("dflex_doublependulum", {"reward_timing": "mid"}, "reward_timing='mid' must be one of 'pre', 'post'"),
        ("dflex_doublependulum", {"elbow_offset": -1.0}, "elbow_offset=-1.0 must be >= 0"),
        ("dflex_hopper", {"substeps": 0}, "env dflex_hopper: substeps=0 must be >= 1"),
        ("dflex_hopper", {"dt": -1.0}, "env dflex_hopper: dt=-1.0 must be > 0"),
        ("dflex_hopper", {"termination_angle": 0.0}, "env dflex_hopper: termination_angle=0.0 must be > 0"),
        ("dflex_hopper", {"mm_interval": 0}, "env dflex_hopper: mm_interval=0 must be >= 1"),
        ("dflex_hopper", {"mm_interval": 17}, "env dflex_hopper: mm_interval=17 must be <= substeps=16"),
        ("dflex_ant", {"contact_mu": -0.1}, "env dflex_ant: contact_mu=-0.1 must be >= 0"),
        ("dflex_ant", {"joint_noise": -0.2}, "env dflex_ant: joint_noise=-0.2 must be >= 0"),
        ("dflex_humanoid", {"strengths": {"abdomen_z": -1.0}}, "strengths={'abdomen_z': -1.0} must be >= 0"),
        ("dflex_anymal", {"density": 0.0}, "env dflex_anymal: density=0.0 must be > 0"),
        ("dflex_snu_humanoid", {"muscle_activation": "x"}, "muscle_activation='x' must be one of 'signed', 'unit'"),
        ("dflex_snu_humanoid", {"num_envs": -1}, "env dflex_snu_humanoid: num_envs=-1 must be >= 1"),
    ],
)
def test_bad_config_value_is_one_line(task, overrides, message):
    _raises_one_line(message, lambda: make_dflex_env(task, {"num_envs": 1, **overrides}))


def test_bad_config_value_is_caught_by_make_env_config_too():
    _raises_one_line("env dflex_ant: substeps=0 must be >= 1", lambda: make_env_config("dflex_ant", {"substeps": 0}))


def test_wrong_number_of_start_joint_angles_is_one_line():
    _raises_one_line(
        "env dflex_ant: start_joint_q has 2 values; it must have 8 (or none)",
        lambda: make_dflex_env("dflex_ant", {"num_envs": 1, "start_joint_q": (0.0, 1.0)}),
    )


@pytest.mark.parametrize("task", sorted(TASKS))
def test_valid_configs_pass_unchanged(task):
    """Defaults (and numpy scalars, once normalised) pass; a config with Python values comes back as is."""
    cfg = make_env_config(task, {"num_envs": 2})
    assert check_config(cfg, task) is cfg
    numpy_cfg = make_env_config(task, {"num_envs": np.int64(2), "seed": np.int32(0), "dt": np.float32(0.5)})
    assert type(numpy_cfg.num_envs) is int and type(numpy_cfg.seed) is int and type(numpy_cfg.dt) is float


# ---- 3. devices ------------------------------------------------------------------------------------------------------
@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
@pytest.mark.parametrize("task", ["dflex_cartpole", "dflex_hopper"])
def test_cuda_without_cuda_is_one_line(task):
    _raises_one_line(
        f"env {task}: device='cuda' but this machine has no CUDA device; use device=cpu",
        lambda: make_dflex_env(task, {"num_envs": 1, "device": "cuda"}),
    )


@pytest.mark.parametrize("task", ["dflex_cartpole", "dflex_hopper"])
def test_meta_device_is_one_line(task):
    _raises_one_line(
        f"env {task}: device='meta' is not supported: the simulators need real memory; use cpu or cuda",
        lambda: make_dflex_env(task, {"num_envs": 1, "device": "meta"}),
    )


def test_unknown_device_is_one_line():
    _raises_one_line(
        "env dflex_cartpole: device='gpu' is not a device; use cpu or cuda",
        lambda: make_dflex_env("dflex_cartpole", {"num_envs": 1, "device": "gpu"}),
    )


# ---- 4. a blown-up planar env ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("timing", ["pre", "post"])
@pytest.mark.parametrize(
    ("task", "overrides"),
    [
        ("dflex_cartpole", {"action_scale": 1e30}),
        ("dflex_cartpole", {"dt": 50.0}),
        ("dflex_doublependulum", {"action_scale": 1e30}),
    ],
)
def test_blown_up_planar_env_terminates_with_finite_obs_and_gradients(task, overrides, timing):
    """Envs 0 and 3 push hard, envs 1 and 2 do nothing: the pushed ones run to inf/NaN, are terminated and reset;
    every observation, reward and action gradient stays finite."""
    env = make_dflex_env(task, {"num_envs": 4, "reward_timing": timing, **overrides}, requires_grad=True)
    env.reset(seed=0)
    actions = [torch.tensor([[1.0], [0.0], [0.0], [1.0]], requires_grad=True) for _ in range(4)]
    total, blew_up = 0.0, torch.zeros(4, dtype=torch.bool)
    for action in actions:
        out = env.step(action)
        blew_up |= out.terminated
        for tensor in (out.obs, out.reward, out.info["obs_before_reset"]):
            assert torch.isfinite(tensor).all()
        total = total + out.reward.sum() + out.info["obs_before_reset"].sum()
    assert blew_up[0] and blew_up[3]
    total.backward()
    grads = [a.grad for a in actions if a.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_blown_up_env_gets_zero_gradient_and_others_keep_theirs():
    env = make_dflex_env("dflex_cartpole", {"num_envs": 2, "action_scale": 1e30}, requires_grad=True)
    env.reset(seed=0)
    first = torch.tensor([[1.0], [0.0]], requires_grad=True)
    out = env.step(first)
    assert out.terminated.tolist() == [True, False]
    env.step(torch.zeros(2, 1))[1].sum().backward()  # pre timing: this reward is a function of the first step
    assert first.grad[0].item() == 0.0 and first.grad[1].item() != 0.0 and torch.isfinite(first.grad).all()
