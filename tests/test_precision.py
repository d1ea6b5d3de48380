"""general.precision: bf16 autocast keeps the fragile pieces fp32, fp32 reproduces the unchanged model's outputs,
weights and optimiser state stay fp32, and a bf16 run resumes exactly through the shared loop."""

from __future__ import annotations

import copy
import csv
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir

from pwm.algorithms.pwm import PWM
from pwm.algorithms.tdmpc2 import TDMPC2
from pwm.config import ConfigError, MPPIConfig, PWMConfig, RunConfig, TDMPC2Config, WorldModelConfig, register_configs
from pwm.config.dreamer import DreamerRunConfig
from pwm.config.polygrad import OnlineRunConfig
from pwm.data.batch import SequenceBatch
from pwm.losses.actor import imagined_actor_loss
from pwm.losses.returns import td_lambda_targets
from pwm.losses.world_model import world_model_loss
from pwm.models.activations import mish
from pwm.models.actor_critic import CriticEnsemble
from pwm.models.layers import layer_norm
from pwm.models.normalizers import RunningMeanStd, RunningScale
from pwm.models.world_model import WorldModel
from pwm.training.dflex import DflexRun
from pwm.utils.math import soft_ce, symexp, symlog, two_hot_inv
from pwm.utils.precision import Precision

ROOT = Path(__file__).resolve().parents[1]
WM = WorldModelConfig(size=None, task="mt30", latent_dim=32, enc_dim=32, mlp_dim=32, num_enc_layers=2, num_q=3)
BF16 = torch.autocast("cpu", dtype=torch.bfloat16)


def model(seed: int = 0) -> WorldModel:
    torch.manual_seed(seed)
    wm = WorldModel(WM)
    for p in wm.parameters():  # non-trivial heads (fresh ones are zero-initialised)
        torch.nn.init.normal_(p, std=0.3)
    return wm.eval()


def batch(wm: WorldModel, b: int = 8, h: int = 3) -> SequenceBatch:
    g = torch.Generator().manual_seed(5)
    return SequenceBatch(
        obs=torch.randn(h + 1, b, wm.cfg.obs_dim, generator=g),
        action=torch.rand(h, b, wm.cfg.action_dim, generator=g) * 2 - 1,
        reward=torch.rand(h, b, generator=g) * 3,
        task=torch.randint(0, 30, (b,), generator=g),
    )


def test_bf16_autocast_runs_matmuls_in_bf16_and_keeps_the_fragile_pieces_fp32():
    wm, data = model(), batch(model())
    hidden, latent_path = [], []
    wm._reward[0].register_forward_hook(lambda m, i, out: hidden.append(out.dtype))
    for layer in (wm._encoder["state"][0], wm._dynamics[0]):
        layer.register_forward_hook(lambda m, i, out: latent_path.append(out.dtype))
    critic = CriticEnsemble(WM.latent_dim, [16], 2)
    with BF16:
        z = wm.encode(data.obs[0], data.task)  # SimNorm output
        z1 = wm.next(z, data.action[0], data.task)
        reward_logits = wm.reward(z, data.action[0], data.task)  # HeadLinear
        q_logits = wm.Q(z, data.action[0], data.task, "all")  # ensemble output layer
        q_min = wm.Q(z, data.action[0], data.task, "min")
        action, info = wm.pi(z, data.task)
        values, bootstrap = critic(z), critic.bootstrap(z)
        low = torch.randn(4, 101).bfloat16()
        decoded, ce = two_hot_inv(low, wm.support), soft_ce(low, torch.rand(4), wm.support)
        logs = symlog(torch.randn(4).bfloat16()), symexp(torch.randn(4).bfloat16())
        targets = td_lambda_targets(torch.rand(3, 4).bfloat16(), torch.rand(3, 4), torch.zeros(3, 4), 0.99, 0.95)
        ensemble_ln = layer_norm(torch.randn(4, 32, requires_grad=True).bfloat16())
        module_ln = wm._dynamics[0].ln(torch.randn(4, 32, requires_grad=True).bfloat16())
    assert hidden == [torch.bfloat16]  # autocast is on: the heads' hidden layers compute in bf16
    assert latent_path == [torch.float32, torch.float32]  # the encoder and dynamics do not
    torch.testing.assert_close(bootstrap, values.min(0).values, rtol=2e-2, atol=1e-2)  # fp32 vs bf16 hidden
    for t in (
        z,
        z1,
        reward_logits,
        q_logits,
        q_min,
        action,
        info["log_std"],
        info["log_prob"],
        decoded,
        ce,
        *logs,
        bootstrap,
    ):
        assert t.dtype == torch.float32
    assert targets.dtype == torch.float32
    for out in (ensemble_ln, module_ln):  # bf16 output, statistics (saved for backward) in fp32
        assert out.dtype == torch.bfloat16
        assert out.grad_fn._saved_result1.dtype == out.grad_fn._saved_result2.dtype == torch.float32
    assert RunningMeanStd().mean.dtype == torch.float64 and RunningScale().value.dtype == torch.float32


def test_mish_of_bf16_activations_is_accurate_in_the_negative_tail():
    x = torch.linspace(-9, 6, 301).bfloat16().requires_grad_()
    y = mish(x)
    y.backward(torch.ones_like(y))
    exact = x.detach().float().requires_grad_()
    F.mish(exact).backward(torch.ones_like(exact))
    torch.testing.assert_close(y.float(), F.mish(exact.detach()), rtol=2e-2, atol=1e-4)
    torch.testing.assert_close(x.grad.float(), exact.grad, rtol=2e-2, atol=1e-3)
    assert y[0] < 0  # mish(-9) = -0.0011, not 0


def test_bf16_mish_matches_atens_kernel_on_every_bf16_value():
    """Our faster bf16 kernel computes in fp32 and rounds once, as ATen's does: outputs and gradients agree on all
    34k finite bf16 values in (-30, 100) (to the bit on our build; one bf16 step of slack for other builds)."""
    every = torch.arange(-32768, 32768, dtype=torch.int32).to(torch.int16).view(torch.bfloat16)
    x = every[torch.isfinite(every) & (every.float() > -30) & (every.float() < 100)]
    ours, aten = x.clone().requires_grad_(), x.clone().requires_grad_()
    upstream = torch.randn(x.shape, generator=torch.Generator().manual_seed(0)).bfloat16()
    y_ours, y_aten = mish(ours), F.mish(aten)
    y_ours.backward(upstream)
    y_aten.backward(upstream)
    assert y_ours.dtype == ours.grad.dtype == torch.bfloat16
    torch.testing.assert_close(y_ours, y_aten, rtol=2**-8, atol=0)
    torch.testing.assert_close(ours.grad, aten.grad, rtol=2**-8, atol=0)
    with torch.no_grad():  # no gradient needed: the forward skips the derivative and still agrees
        torch.testing.assert_close(mish(x), y_aten.detach(), rtol=2**-8, atol=0)


def test_bf16_updates_keep_weights_gradients_and_adam_state_fp32_and_track_fp32():
    wm, data = model(), batch(model())
    results = {}
    for name in ("fp32", "bf16"):
        algo = TDMPC2(copy.deepcopy(wm), TDMPC2Config(batch_size=8, horizon=3), name)
        torch.manual_seed(1)
        results[name] = algo.update(data)
        params = list(algo.model.parameters())
        assert all(p.dtype == torch.float32 for p in params)
        states = [s for s in algo.optim.state.values()] + [s for s in algo.pi_optim.state.values()]
        assert states and all(s["exp_avg"].dtype == s["exp_avg_sq"].dtype == torch.float32 for s in states)
    # the encoder and dynamics run in fp32 under either setting, so the latents and their loss are the same
    assert results["bf16"]["wm/consistency_loss"] == results["fp32"]["wm/consistency_loss"]
    for key in ("wm/reward_loss", "wm/value_loss"):
        assert results["bf16"][key] != results["fp32"][key]  # the heads computed in bf16 ...
        assert results["bf16"][key] == pytest.approx(results["fp32"][key], rel=0.03)  # ... but the same thing


def _normed(x, sd, key):
    x = F.linear(x, sd[f"{key}.weight"], sd[f"{key}.bias"])
    return F.layer_norm(x, x.shape[-1:], sd[f"{key}.ln.weight"], sd[f"{key}.ln.bias"])


def _reference_heads(wm: WorldModel, za: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Reward logits, all Q logits and next latent written out with torch.nn.functional from the state dict."""
    sd = wm.state_dict()
    r = F.mish(_normed(F.mish(_normed(za, sd, "_reward.0")), sd, "_reward.1"))
    reward = F.linear(r, sd["_reward.2.weight"], sd["_reward.2.bias"])
    qs = []
    for k in range(wm.cfg.num_q):
        h = za
        for i in range(2):
            p = lambda n, i=i, k=k: sd[f"_Qs.params.{i}.{n}"][k]  # noqa: E731
            x = F.linear(h, p("weight"), p("bias"))
            h = F.mish(F.layer_norm(x, x.shape[-1:], p("ln.weight"), p("ln.bias")))
        qs.append(F.linear(h, sd["_Qs.params.2.weight"][k], sd["_Qs.params.2.bias"][k]))
    d = F.mish(_normed(F.mish(_normed(za, sd, "_dynamics.0")), sd, "_dynamics.1"))
    d = _normed(d, sd, "_dynamics.2")
    nxt = F.softmax(d.unflatten(-1, (-1, wm.cfg.simnorm_dim)), dim=-1).flatten(-2)
    return reward, torch.stack(qs), nxt


def test_fp32_reproduces_a_hand_computation_of_the_unchanged_model():
    wm, data = model(), batch(model())
    z = wm.encode(data.obs[0], data.task)
    za = wm._za(z, data.action[0], data.task)
    reward, qs, nxt = _reference_heads(wm, za)
    torch.testing.assert_close(wm.reward(z, data.action[0], data.task), reward, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(wm.Q(z, data.action[0], data.task, "all"), qs, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(wm.next(z, data.action[0], data.task), nxt, rtol=1e-6, atol=1e-6)
    td = torch.rand(3, 8)
    _, metrics, _ = world_model_loss(wm, data, torch.rand(3, 8, 32), td, TDMPC2Config(batch_size=8, horizon=3, rho=0.9))
    zs, z_t = [z], z
    for t in range(3):
        z_t = wm.next(z_t, data.action[t], data.task)
        zs.append(z_t)
    za_all = wm._za(torch.stack(zs[:-1]), data.action, data.task)
    r_all, q_all, _ = _reference_heads(wm, za_all)
    weights = 0.9 ** torch.arange(3.0)
    expected_value = (soft_ce(q_all, td.unsqueeze(0), wm.support).mean(dim=(0, 2)) * weights).mean()
    expected_reward = (soft_ce(r_all, data.reward, wm.support).mean(1) * weights).mean()
    torch.testing.assert_close(metrics["value_loss"], expected_value, rtol=1e-6, atol=0)
    torch.testing.assert_close(metrics["reward_loss"], expected_reward, rtol=1e-6, atol=0)


def test_rollout_targets_in_one_call_equal_the_per_step_values():
    wm = model().requires_grad_(False)
    algo = PWM(wm, PWMConfig(horizon=5, batch_size=16, actor_hidden=[32], critic_hidden=[32]), task=4)
    task = torch.full((16,), 4)
    z0 = wm.encode(torch.randn(16, 24), task)
    torch.manual_seed(2)
    rollout = imagined_actor_loss(wm, algo.actor, algo.critic, z0, task, algo.cfg)
    torch.manual_seed(2)  # the unchanged loop: the critic evaluated after every step
    z, expected = z0, []
    for _ in range(5):
        a = torch.tanh(algo.actor(z.detach()))
        z = wm.next(z, a, task)
        expected.append(algo.critic.min(z))
    torch.testing.assert_close(rollout.next_values, torch.stack(expected).detach(), rtol=1e-6, atol=1e-6)


def test_bf16_pwm_update_and_planning_run_and_stay_in_range():
    from pwm.planning.mppi import MPPIPlanner

    wm = model().requires_grad_(False)
    algo = PWM(wm, PWMConfig(horizon=4, batch_size=16, actor_hidden=[32], critic_hidden=[32]), task=4, precision="bf16")
    metrics = algo.update(torch.randn(16, 24))
    assert all(torch.isfinite(torch.tensor(v)) for v in metrics.values())
    assert all(p.dtype == torch.float32 for p in (*algo.actor.parameters(), *algo.critic.parameters()))
    prior = lambda z: torch.tanh(algo.actor(z))  # noqa: E731
    planner = MPPIPlanner(wm, MPPIConfig(iterations=2, num_samples=64, num_elites=8), 0.99, prior, algo.critic.min,
                          wm._action_masks[4], precision="bf16")  # fmt: skip
    action = planner.plan(torch.randn(24), 4)
    assert action.dtype == torch.float32 and action.abs().max() <= 1 and torch.all(action[wm.cfg.action_dims[4] :] == 0)


def test_unknown_precision_is_a_one_line_config_error():
    with pytest.raises(ConfigError, match=r"general.precision='fp16'; choose one of fp32, bf16"):
        RunConfig(precision="fp16").check()
    with pytest.raises(ConfigError, match=r"general\.precision='half'"):
        Precision("half")
    for schema, name in ((OnlineRunConfig, "PolyGRAD"), (DreamerRunConfig, "DreamerV2, APV and PreLAR")):
        schema(precision="fp32").check()
        with pytest.raises(ConfigError, match=rf"general.precision=bf16 is not available here: {name} run"):
            schema(precision="bf16").check()


def _rows(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_bf16_run_killed_and_resumed_writes_the_rows_of_an_uninterrupted_run(tmp_path):
    """Single-task PWM on CartPole in bf16 (actor rollout, critic fit, TD-MPC2 world-model loss) through the loop."""
    overrides = [
        "env=dflex_cartpole", "alg=pwm", "general.precision=bf16", "env.config.num_envs=4",
        "env.config.episode_length=20", "alg.horizon=4", "alg.actor_hidden=[16]", "alg.critic_hidden=[16]",
        "alg.wm_bootstrap_iterations=3",
        "alg.wm_iterations=2", "alg.wm_batch_size=8", "alg.wm_horizon=4", "general.steps=4", "general.eval_runs=2",
        "general.eval_every=2", "general.save_every=2", "general.threads=1", "logger.wandb=false",
        "logger.progress=false", "logger.log_every=1", "seed=3",
        *(f"alg.world_model.{k}={v}" for k, v in {"latent_dim": 32, "enc_dim": 32, "mlp_dim": 32, "num_q": 2}.items()),
    ]  # fmt: skip
    register_configs()
    with initialize_config_dir(config_dir=str(ROOT / "cfg"), version_base="1.3"):
        cfg = compose(config_name="config_dflex", overrides=overrides)
    full = tmp_path / "full"
    DflexRun(cfg, full).run()
    cut = tmp_path / "cut"
    shutil.copytree(full, cut)
    (cut / "checkpoints" / "state_000000004.pt").unlink()
    DflexRun(cfg, cut).run()
    keys = ["step", "env_steps", "actor/loss", "critic/loss", "wm/loss", "eval/return"]
    assert [[r[k] for k in keys] for r in _rows(cut)] == [[r[k] for k in keys] for r in _rows(full)]
    assert all(r["wm/loss"] not in ("", "nan") for r in _rows(full))
