"""The gradient-ESNR estimator: formulas, per-sample gradients, a linear system with a known answer, rollouts."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pwm.pedagogy import esnr
from pwm.pedagogy import esnr_models as em


def test_gradient_stats_by_hand():
    # per parameter: means 2 and 4, unbiased variances 2 and 8
    grads = torch.tensor([[1.0, 2.0], [3.0, 6.0]])
    variance, ratio = esnr.gradient_stats(grads)
    assert variance == pytest.approx(5.0)
    assert ratio == pytest.approx((4 / (2 + 1e-9) + 16 / (8 + 1e-9)) / 2)


def test_gradient_stats_of_a_constant_gradient_is_large_not_nan():
    variance, ratio = esnr.gradient_stats(torch.full((10, 3), 0.5))
    assert variance == 0.0 and ratio == pytest.approx(0.25 / 1e-9)


class _Drift(nn.Module):
    def __init__(self, theta: list[float]) -> None:
        super().__init__()
        self.theta = nn.Parameter(torch.tensor(theta))


def _linear_rollout(x0: float, sigma: torch.Tensor):
    """x_{t+1} = x_t + a_t with a_t = θ + σ ε_t (per dimension), loss = ½ Σ_{t=1..h} x_t²."""

    def rollout(horizon, params):
        theta = params["theta"]
        x = torch.full_like(theta, x0)
        loss = torch.zeros_like(theta)
        for _ in range(horizon):
            x = x + theta + sigma * torch.randn_like(theta)
            loss = loss + 0.5 * x**2
        return loss.sum(-1)

    return rollout


@pytest.mark.parametrize("horizon", [1, 2])
def test_linear_system_matches_known_gradient_distribution(horizon):
    # dL/dθ = Σ_t t·x_t... for h = 1: x0 + θ + σε (mean x0 + θ, var σ²);
    # h = 2: x1 + 2·x2 = 3x0 + 5θ + σ(3ε1 + 2ε2) (mean 3x0 + 5θ, var 13σ²).
    x0, theta, sigma = 0.5, torch.tensor([1.0, -2.0]), torch.tensor([0.5, 2.0])
    mean = x0 + theta if horizon == 1 else 3 * x0 + 5 * theta
    var = sigma**2 if horizon == 1 else 13 * sigma**2
    torch.manual_seed(0)
    grads = esnr.per_sample_gradients(_linear_rollout(x0, sigma), _Drift(theta.tolist()), 20000, horizon)
    assert grads.shape == (20000, 2)
    torch.testing.assert_close(grads.mean(0), mean, rtol=0.03, atol=0.03)
    torch.testing.assert_close(grads.var(0), var, rtol=0.04, atol=0.0)
    variance, ratio = esnr.gradient_stats(grads)
    assert variance == pytest.approx(float(var.mean()), rel=0.04)
    assert ratio == pytest.approx(float((mean**2 / var).mean()), rel=0.05)


def _world_model():
    torch.manual_seed(0)
    model = em.WorldModel(em.model_config(em.TrainConfig(latent_dim=16, mlp_dim=32, enc_dim=32))).eval()
    for p in model.parameters():  # a reward head that is not zero, so gradients reach the policy
        p.data.add_(0.05 * torch.randn_like(p))
    return model


def test_batched_policy_matches_world_model_pi():
    model = _world_model()
    policy = esnr.Policy.for_world_model(model, seed=0)
    model._pi.load_state_dict(policy.head.state_dict())
    z = torch.randn(5, model.cfg.latent_dim)
    torch.manual_seed(1)
    expected, _ = model.pi(z)
    torch.manual_seed(1)
    actual = policy(z, esnr.replicate(policy.head, 5))
    torch.testing.assert_close(actual, expected)


def test_per_sample_gradients_equal_separate_backward_passes():
    model = _world_model()
    policy = esnr.Policy.for_world_model(model)
    obs0 = torch.randn(3, 6)
    rollout = esnr.model_rollout(model, policy, obs0)
    torch.manual_seed(2)
    batched = esnr.per_sample_gradients(rollout, policy.head, 3, horizon=4)
    torch.manual_seed(2)
    params = esnr.replicate(policy.head, 3)
    loss = rollout(4, params)
    for n in range(3):
        grads = torch.autograd.grad(loss[n], list(params.values()), retain_graph=True, allow_unused=True)
        row = torch.cat(
            [
                (g[n] if g is not None else torch.zeros_like(p[n])).flatten()
                for g, p in zip(grads, params.values(), strict=True)
            ]
        )
        torch.testing.assert_close(batched[n], row)
    assert batched.abs().sum() > 0


def test_simulator_rollout_gradients():
    model = _world_model()
    policy = esnr.Policy.for_world_model(model)
    env = em.make_pendulum(4, grad=True)
    rollout = esnr.simulator_rollout(env, model.encode, policy)
    # one step: the reward is r(s_0) of the fixed upright start, which no action changes
    assert esnr.per_sample_gradients(rollout, policy.head, 4, 1).abs().max() == 0
    grads = esnr.per_sample_gradients(rollout, policy.head, 4, 5)
    assert torch.isfinite(grads).all() and grads.abs().max() > 0
    curve = esnr.measure("sim", rollout, policy.head, [2, 3], 4)
    assert curve.horizons == [2, 3] and all(v > 0 for v in curve.variance)
