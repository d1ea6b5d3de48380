"""PolyGRAD: diffusion schedule, denoisers, policy guidance, the guidance tuner, replay windows, the error
evaluator, the online runner (outputs, resume) and bad input."""

from __future__ import annotations

import copy
import csv
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from torch import nn
from torch.distributions import Normal

from pwm.algorithms.polygrad import standardized_action_std, tune_guidance
from pwm.algorithms.step_size_control import LearnedLogLR, line_search
from pwm.config import ConfigError, register_configs
from pwm.data.trajectories import TrajectoryBuffer
from pwm.envs.suites.gym_mujoco import GymMujocoEnv
from pwm.evaluation.error_study import MODELS, load_run, run_study
from pwm.evaluation.trajectory_error import open_loop_mse
from pwm.models.diffusion import GaussianDiffusion, cosine_tau_alphas_cumprod
from pwm.models.gaussian_policy import GaussianPolicy
from pwm.models.trajectory_denoisers import make_denoiser
from pwm.models.trajectory_normalizer import TrajectoryNormalizer
from pwm.planning.guided_sampling import GuidanceSettings, guide_actions, policy_guided_sample
from pwm.training.online import OnlineRun

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "alg=polygrad_cpu", "env.episode_length=30", "alg.denoiser_width=32", "alg.denoiser_blocks=1",
    "alg.diffusion_steps=4", "alg.agent_batch=8", "alg.denoiser_batch=8", "alg.hidden=[16]", "alg.horizon=4",
    "alg.prefill_steps=20", "alg.pretrain_denoiser=4", "alg.ema_start=4", "alg.ema_every=2", "alg.denoiser_updates=2",
    "alg.clip_below_t=1", "general.eval_runs=1", "general.eval_every=20", "general.save_every=20", "general.threads=1",
    "logger.wandb=false", "logger.progress=false", "logger.log_every=10", "seed=3",
]  # fmt: skip


class FixedPolicy(nn.Module):
    """pi(a | s) = N(W s, sigma) with a fixed W."""

    def __init__(self, obs_dim: int, action_dim: int, sigma: float) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.randn(obs_dim, action_dim, generator=torch.Generator().manual_seed(0)) * 0.3)
        self.sigma = sigma

    def forward(self, obs: torch.Tensor) -> Normal:
        mean = obs @ self.w
        return Normal(mean, torch.full_like(mean, self.sigma))


def test_cosine_tau_schedule_matches_its_formula():
    """alpha_bar(u) = cos(pi u / 2) ** (2 tau): 0.5 at u = 1/2 for tau = 1; tau = 0.1 keeps it near 1 (Hopper)."""
    tau1, tau01 = cosine_tau_alphas_cumprod(128, 1.0), cosine_tau_alphas_cumprod(128, 0.1)
    assert float(tau1[63]) == pytest.approx(0.5, abs=1e-6)
    assert [round(float(tau01[t]), 2) for t in (31, 63, 95)] == [0.98, 0.93, 0.83]
    assert float(tau1[-1]) < 1e-3 and torch.all(tau1[1:] < tau1[:-1])


def test_posterior_of_the_true_x0_shrinks_towards_it():
    """With x0 known, q(x_{t-1} | x_t, x0) is a convex blend whose noise is what is left at t-1."""
    d = GaussianDiffusion(8, 1.0)
    x0, x_t = torch.ones(2, 3, 4), torch.zeros(2, 3, 4)
    mean, std = d.posterior(x0, x_t, 1)
    assert torch.allclose(mean, d.post_coef_x0[1] * x0) and 0 < float(d.post_coef_x0[1]) <= 1 and std > 0
    mean0, std0 = d.posterior(x0, x_t, 0)
    assert std0 == 0.0 and torch.allclose(mean0, x0, atol=1e-6)


@pytest.mark.parametrize("kind", ["mlp", "transformer"])
def test_denoiser_overfits_one_batch(kind):
    torch.set_num_threads(1)  # tiny ops: one thread is the fastest
    net = make_denoiser(kind, horizon=4, x_dim=5, action_dim=2, width=32, blocks=2)
    diffusion = GaussianDiffusion(8, 1.0)
    x0, actions = torch.randn(8, 4, 5), torch.randn(8, 4, 2)
    probe = torch.Generator().manual_seed(1)
    with torch.no_grad():
        before = float(diffusion.loss(net, x0, actions, generator=probe.manual_seed(1)))
    opt = torch.optim.Adam(net.parameters(), lr=5e-3)
    for _ in range(300):
        loss = diffusion.loss(net, x0, actions)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        after = float(diffusion.loss(net, x0, actions, generator=probe.manual_seed(1)))
    assert after < 0.1 * before


def test_one_guidance_step_with_g_sigma_squared_lands_on_the_policy_mean():
    """a + g grad log N(a; mu, sigma) = a + g (mu - a) / sigma^2 = mu when g = sigma^2."""
    policy = FixedPolicy(5, 3, sigma=0.4)
    obs, actions = torch.randn(6, 4, 5), torch.randn(6, 4, 3) * 0.3
    mean = policy(obs).loc.detach()
    out = guide_actions(actions, obs, policy, GuidanceSettings("grad", scale=0.4**2, clip_std=None))
    assert torch.allclose(out, mean, atol=1e-6)
    half = guide_actions(actions, obs, policy, GuidanceSettings("grad", scale=0.4**2 / 2, clip_std=None))
    assert torch.allclose(half, (actions + mean) / 2, atol=1e-6)
    far = guide_actions(mean + 10.0, obs, policy, GuidanceSettings("none"))
    assert torch.equal(far, mean + 10.0)  # "none" leaves actions alone
    clamped = guide_actions(mean + 10.0, obs, policy, GuidanceSettings("grad", scale=1e-9), final=True)
    assert torch.allclose(clamped, mean + 3 * 0.4, atol=1e-6)  # the final step only clamps to mean + 3 sigma


class Identity(nn.Module):
    def forward(self, x, actions, t):
        return x


def test_tuner_moves_standardised_action_std_toward_one_with_an_identity_denoiser():
    """Actions far more spread than the policy (std >> 1 in policy units) raise g until they look on-policy."""
    torch.set_num_threads(1)
    policy, diffusion, norm = FixedPolicy(3, 2, sigma=0.2), GaussianDiffusion(8, 1.0), TrajectoryNormalizer(5, 2)
    starts, log_g = torch.randn(64, 3), math.log(1e-4)
    stds = []
    for _ in range(40):
        settings = GuidanceSettings("grad", math.exp(log_g), clip_std=None)
        traj = policy_guided_sample(diffusion, Identity(), norm, policy, starts, 4, settings)
        stds.append(standardized_action_std(policy, traj.obs, traj.actions))
        log_g = tune_guidance(log_g, stds[-1], lr=0.05)
    assert stds[0] > 5.0 and abs(stds[-1] - 1.0) < 0.1 * abs(stds[0] - 1.0)
    assert math.exp(log_g) > 1e-4


def test_replay_windows_pad_after_a_terminal_and_round_trip(tmp_path):
    buf = TrajectoryBuffer(100, obs_dim=2, action_dim=1, state_dim=3, seed=0)
    for k in range(3):
        buf.add_step(np.full(2, k), np.full(1, -k), float(k), k == 2, np.full(3, k))
    buf.end_episode(terminated=True)
    w = buf.window(0, 1, 4)
    assert w["obs"][:, 0].tolist() == [1, 2, 2, 2] and w["rewards"].tolist() == [1, 2, 0, 0]
    assert w["terminals"].tolist() == [0, 1, 1, 1] and buf.num_windows(4) == 3
    for _ in range(3):  # a time-limit episode gives only the windows that fit
        buf.add_step(np.zeros(2), np.zeros(1), 0.0, False, np.zeros(3))
    buf.end_episode(terminated=False)
    buf.add_step(np.ones(2), np.ones(1), 5.0, False, np.ones(3))  # an open episode
    assert buf.num_windows(2) == 3 + 2
    other = TrajectoryBuffer(100, 2, 1, 3, seed=9)
    other.load_state_dict(buf.state_dict())
    assert torch.equal(other.sample(5, 2)[0], buf.sample(5, 2)[0]) and other.open["rewards"] == [5.0]


def test_sampled_windows_equal_the_windows_of_their_draws():
    """``sample`` gathers from flat arrays; it must give exactly ``window`` of each draw, padding included."""
    rng = np.random.default_rng(0)
    buf = TrajectoryBuffer(10_000, obs_dim=5, action_dim=2, state_dim=7, seed=1)
    for ep in range(30):
        length = int(rng.integers(1, 40))
        for t in range(length):
            buf.add_step(rng.normal(size=5), rng.normal(size=2), rng.normal(), t == length - 1 and ep % 2 == 0,
                         rng.normal(size=7))  # fmt: skip
        buf.end_episode(terminated=ep % 2 == 0)
    state = buf.generator.get_state()
    x, actions = buf.sample(256, 10)
    starts = buf.sample_starts(64, 10)
    buf.generator.set_state(state)
    draws = buf._draw(256, 10)
    assert any(s + 10 > len(buf.episodes[e]["rewards"]) for e, s in draws)  # some windows are padded
    windows = [buf.window(e, s, 10) for e, s in draws]
    expected = [np.concatenate([w["obs"], w["rewards"][:, None], w["terminals"][:, None]], 1) for w in windows]
    assert np.array_equal(x.numpy(), np.stack(expected))
    assert np.array_equal(actions.numpy(), np.stack([w["actions"] for w in windows]))
    assert np.array_equal(starts.numpy(), np.stack([buf.episodes[e]["obs"][s] for e, s in buf._draw(64, 10)]))


def test_error_evaluator_is_zero_for_a_replayed_real_trajectory():
    env = GymMujocoEnv("gym_hopper", seed=0)
    obs, rng = [env.reset()], np.random.default_rng(0)
    states, actions = [env.sim_state()], rng.uniform(-1, 1, (12, 3))
    for a in actions:
        obs.append(env.step(a).obs)
        states.append(env.sim_state())
    starts = [0, 3, 5]
    sim = np.stack([states[s] for s in starts])
    acts = np.stack([actions[s : s + 6] for s in starts])
    real = np.stack([np.stack(obs[s : s + 6]) for s in starts])
    assert np.all(open_loop_mse(GymMujocoEnv("gym_hopper", seed=5), sim, acts, real) == 0.0)
    assert open_loop_mse(GymMujocoEnv("gym_hopper", seed=5), sim, acts, real + 0.1)[1:] == pytest.approx(0.01)


def _compose(overrides: list[str]):
    register_configs()
    with initialize_config_dir(config_dir=str(ROOT / "cfg"), version_base="1.3"):
        return compose(config_name="config_online", overrides=overrides)


def _rows(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_gym_render_shows_the_current_state():
    """A frame of the requested size, with content, that changes when the simulator state changes."""
    env = GymMujocoEnv("gym_hopper", seed=0)
    try:
        env.reset()
        first = env.render(width=64, height=48)
        assert first.shape == (48, 64, 3) and first.dtype == np.uint8 and first.std() > 0
        state = env.sim_state()
        state[2] += 0.8  # tilt the torso
        env.set_sim_state(state)
        assert np.abs(env.render(width=64, height=48).astype(int) - first).mean() > 1.0
    finally:
        env.close()


def test_online_script_writes_metrics_and_resumes_to_identical_rows(tmp_path):
    """The script's smoke run; then a run cut after its step-40 state resumes to the uninterrupted rows."""
    cmd = [sys.executable, str(ROOT / "scripts" / "train_online.py"), *TINY, f"general.run_dir={tmp_path / 'cli'}"]
    done = subprocess.run([*cmd, "general.steps=40"], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    rows = _rows(tmp_path / "cli")
    assert [int(r["env_steps"]) for r in rows] == [10, 20, 30, 40]
    assert rows[-1]["eval/return"] != "" and rows[-1]["denoiser/loss"] != "" and rows[-1]["actor/loss"] != ""
    full = tmp_path / "full"
    OnlineRun(_compose([*TINY, "general.steps=60"]), full).run()
    cut = tmp_path / "cut"
    shutil.copytree(full, cut)
    (cut / "checkpoints" / "state_000000060.pt").unlink()  # as if killed after the step-40 state
    OnlineRun(_compose([*TINY, "general.steps=60"]), cut).run()
    keys = ["step", "env_steps", "denoiser/loss", "actor/loss", "critic/loss", "guidance/scale", "eval/return"]
    assert [[r[k] for k in keys] for r in _rows(cut)] == [[r[k] for k in keys] for r in _rows(full)]
    rec = load_run(str(full))  # the error study on this run's buffer and final policy, at a toy size
    mse = run_study(rec, list(MODELS), steps=2, starts=3, tune_rounds=1, seed=0, sizes={"mlp": (16, 1),
                    "transformer": (16, 1)})  # fmt: skip
    assert set(mse) == set(MODELS) and all(
        v.shape == (4,) and v[0] < 1e-9 and np.isfinite(v).all() for v in mse.values()
    )


class _ImageEnv:
    """Registered below as a Gymnasium env whose observations are images."""


def test_bad_input_is_one_line(tmp_path):
    import gymnasium as gym

    with pytest.raises(ConfigError, match="unknown gymnasium task 'gym_hoper'"):
        OnlineRun(_compose([*TINY, "env.name=gym_hoper"]), tmp_path / "a")
    with pytest.raises(ConfigError, match=r"alg.horizon=40 is longer than gym_hopper's episodes \(30 steps\)"):
        OnlineRun(_compose([*TINY, "alg.horizon=40"]), tmp_path / "b")
    if "PwmImageObs-v0" not in gym.registry:
        gym.register("PwmImageObs-v0", entry_point=f"{__name__}:make_image_env")
    with pytest.raises(ConfigError, match="image-like observations of shape"):
        OnlineRun(_compose([*TINY, "env.id=PwmImageObs-v0"]), tmp_path / "c")
    script = [sys.executable, str(ROOT / "scripts" / "train_online.py"), f"general.run_dir={tmp_path / 'd'}"]
    out = subprocess.run([*script, *TINY, "env.name=gym_hoper"], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode != 0 and out.stderr.strip().splitlines() == [
        "error: unknown gymnasium task 'gym_hoper'; choose one of gym_hopper, gym_walker2d, gym_halfcheetah"
    ]


def make_image_env():
    import gymnasium as gym

    class ImageEnv(gym.Env):
        observation_space = gym.spaces.Box(0, 255, (8, 8, 3), np.uint8)
        action_space = gym.spaces.Box(-1, 1, (2,), np.float32)

    return ImageEnv()


def test_sb3_baseline_on_a_gymnasium_task_uses_our_evaluation_and_resumes(tmp_path):
    """SB3 PPO on gym_hopper: rows at the evaluation steps, evaluated by our sequential evaluate(); rerun is a no-op."""
    from pwm.training.sb3_run import Sb3Run, Sb3Settings

    settings = Sb3Settings(env="gym_hopper", algo="ppo", out=str(tmp_path / "ppo"), steps=64, eval_every=32,
                           eval_runs=2, num_envs=0, n_steps=32, minibatches=2, epochs=1, episode_length=20)  # fmt: skip
    row = Sb3Run(settings).run()
    rows = _rows(tmp_path / "ppo")
    assert [int(r["env_steps"]) for r in rows] == [0, 32, 64] and float(row["eval/length"]) <= 20
    assert Sb3Run(settings).run() == {} and len(_rows(tmp_path / "ppo")) == 3


@pytest.mark.parametrize("alg", ["polygrad", "polygrad_cpu"])
def test_every_gym_env_config_composes_with_both_presets(alg):
    """Hopper gets the reference's tau=0.1 from alg_env; the paper preset keeps the reference's sizes."""
    from pwm.training.online import typed_config

    for env, obs_dim, tau in (("gym_hopper", 11, 0.1), ("gym_walker2d", 17, 1.0), ("gym_halfcheetah", 17, 1.0)):
        cfg = typed_config(_compose([f"env={env}", f"alg={alg}"]))
        cfg.check()
        assert cfg.alg.tau == tau and GymMujocoEnv(cfg.env.name).obs_dim == obs_dim
        sizes = (cfg.alg.denoiser_width, cfg.alg.diffusion_steps, cfg.alg.agent_batch)
        assert sizes == ((1024, 128, 1024) if alg == "polygrad" else (256, 32, 128))


def _policy_gradient_step(policy: GaussianPolicy, lr: float):
    """A policy, its AdamW at ``lr`` after one REINFORCE-like step, the pre-step weights and the update size."""
    gen = torch.Generator().manual_seed(0)
    obs, adv = torch.randn(64, 4, generator=gen), torch.randn(64, generator=gen)
    with torch.no_grad():
        actions = policy(obs).sample()
        old = policy(obs).log_prob(actions).sum(-1)
    opt = torch.optim.AdamW(policy.parameters(), lr=lr)
    (-(policy(obs).log_prob(actions).sum(-1) * adv).mean()).backward()
    before = copy.deepcopy(policy.state_dict())
    opt.step()

    def size() -> float:
        with torch.no_grad():
            return float((policy(obs).log_prob(actions).sum(-1) - old).abs().mean())

    return opt, before, size


@pytest.mark.parametrize("lr", [3e-5, 3e-2])
def test_line_search_brings_the_update_size_within_tolerance_and_restores_the_rate(lr):
    """Too small a first step (3e-5) is re-stepped larger, too large a one (3e-2) smaller, until the update size
    is within 20 % of the target; the optimiser's rate is the first step's again afterwards."""
    torch.manual_seed(0)
    policy = GaussianPolicy(4, 2, [16], 1.0, 0.1)
    opt, before, size = _policy_gradient_step(policy, lr)
    first, target = size(), 0.01
    assert abs(first - target) > 0.2 * target  # the first step misses
    final, steps = line_search(opt, policy, before, size, first, target, 0.2, 0.8, max_lr=1.0, max_steps=50)
    assert abs(final - target) <= 0.2 * target and final == pytest.approx(size())
    assert 1 < steps <= 50 and opt.param_groups[0]["lr"] == lr


def test_line_search_stops_at_the_largest_rate_and_keeps_the_first_step():
    torch.manual_seed(0)
    policy = GaussianPolicy(4, 2, [16], 1.0, 0.1)
    opt, before, size = _policy_gradient_step(policy, 3e-5)
    first = size()
    final, steps = line_search(opt, policy, before, size, first, 0.01, 0.2, 0.8, max_lr=3e-5, max_steps=50)
    assert (final, steps) == (first, 1) and size() == first


def test_learned_log_lr_falls_for_large_steps_rises_for_small_ones_up_to_its_cap_and_round_trips():
    rate = LearnedLogLR(3e-5, 3e-4)
    for _ in range(10):
        rate.adapt(0.05, 0.01)
    low = rate.lr
    assert low == pytest.approx(3e-5 * math.exp(-10 * 3e-4), rel=0.05)  # Adam: ~lr_lr per step on log(lr)
    copy_ = LearnedLogLR(3e-5, 3e-4)
    copy_.load_state_dict(rate.state_dict())
    for _ in range(30):  # Adam's momentum first carries it lower, then it rises
        rate.adapt(0.0, 0.01)
        copy_.adapt(0.0, 0.01)
    assert rate.lr == copy_.lr > low
    for _ in range(100):
        rate.adapt(0.0, 0.01)
    assert rate.lr == pytest.approx(3e-5, rel=1e-6)
    fixed = LearnedLogLR(3e-5, 0.0)
    fixed.adapt(0.05, 0.01)
    assert fixed.lr == pytest.approx(3e-5, rel=1e-6)
