import copy

import pytest
import torch

from pwm.algorithms.pwm import PWM
from pwm.config import ConfigError, PWMConfig, WorldModelConfig
from pwm.losses.actor import critic_loss, imagined_actor_loss
from pwm.models.world_model import WorldModel

WM = WorldModelConfig(size=None, task="mt30", latent_dim=32, enc_dim=32, mlp_dim=32, num_enc_layers=2, num_q=2)
SMALL = dict(horizon=5, batch_size=16, actor_hidden=[32, 32], critic_hidden=[32, 32], critic_batches=2)


def make(**kw) -> tuple[WorldModel, PWM]:
    torch.manual_seed(0)
    wm = WorldModel(WM)
    for p in wm.parameters():  # a world model with non-trivial rewards (the fresh one predicts 0 everywhere)
        torch.nn.init.normal_(p, std=0.3)
    return wm, PWM(wm, PWMConfig(**{**SMALL, **kw}), task=4)


def test_actor_loss_reaches_only_the_actor():
    wm, algo = make()
    obs = torch.randn(16, 24)
    z = wm.encode(obs, torch.full((16,), 4))
    rollout = imagined_actor_loss(wm, algo.actor, algo.critic, z, torch.full((16,), 4), algo.cfg)
    rollout.loss.mean().backward()
    assert all(p.grad is None for p in wm.parameters())  # frozen world model
    assert all(p.grad is None for p in algo.critic.parameters())
    grads = [p.grad for p in algo.actor.parameters()]
    assert all(g is not None for g in grads) and sum(g.abs().sum() for g in grads) > 0


def test_critic_loss_leaves_the_actor_untouched():
    _, algo = make()
    loss = critic_loss(algo.critic, torch.rand(10, 32), torch.randn(10))
    loss.backward()
    assert all(p.grad is None for p in algo.actor.parameters())
    assert all(p.grad is not None for p in algo.critic.parameters())


def test_update_leaves_world_model_unchanged_and_raises_predicted_return():
    wm, algo = make(actor_lr=3e-3, max_iterations=1000)
    obs = torch.randn(16, 24)
    algo.act(obs)  # the first lookup renormalises the embedding row in place (max_norm=1), by design
    before = {k: v.clone() for k, v in wm.state_dict().items()}
    returns = [algo.update(obs)["actor/imagined_return"] for _ in range(40)]
    assert all(torch.equal(v, wm.state_dict()[k]) for k, v in before.items())
    assert sum(returns[-5:]) / 5 > sum(returns[:5]) / 5 + 0.1


def test_act_is_deterministic_and_bounded():
    _, algo = make()
    obs = torch.randn(8, 24) * 10
    a1, a2 = algo.act(obs), algo.act(obs)
    assert torch.equal(a1, a2) and a1.shape == (8, 6) and a1.abs().max() <= 1


@pytest.mark.parametrize(
    ("key", "value"),
    [("critic_targets", "td"), ("reward_space", "log"), ("terminal_bootstrap", "h"), ("lr_schedule", "cosine")],
)
def test_bad_choices_name_the_key(key, value):
    with pytest.raises(ConfigError, match=f"alg.{key}='{value}'"):
        PWMConfig(**{key: value}).check()


def test_reference_quirk_options_change_the_objective():
    obs = torch.randn(16, 24)
    losses = {}
    for name, kw in {
        "default": {},
        "q2": {"terminal_bootstrap": "gamma_h_plus_1"},
        "q3": {"reward_space": "symexp"},
    }.items():
        wm, algo = make(**kw)
        z = wm.encode(obs, torch.full((16,), 4))
        losses[name] = imagined_actor_loss(wm, algo.actor, algo.critic, z, torch.full((16,), 4), algo.cfg).loss
    assert not torch.allclose(losses["default"], losses["q2"]) and not torch.allclose(losses["default"], losses["q3"])


def test_state_dict_round_trip_continues_identically():
    _, algo = make()
    obs = torch.randn(16, 24)
    algo.update(obs)
    state = copy.deepcopy(algo.state_dict())  # state_dict() holds live tensors
    torch.manual_seed(5)
    expected = algo.update(obs)
    _, other = make()
    other.load_state_dict(state)
    torch.manual_seed(5)
    assert other.update(obs) == expected


@pytest.mark.parametrize("detach", [True, False])
def test_actor_input_detach_decides_whether_the_gradient_is_the_full_derivative(detach):
    """Without the reference's stop-gradient the actor gradient is the exact derivative of the imagined return
    (checked by central differences in float64); with it, the policy's reaction to later states is left out."""
    wm, algo = make(detach_actor_input=detach)
    wm.double(), algo.actor.double(), algo.critic.double()
    task = torch.full((16,), 4)
    with torch.no_grad():
        z = wm.encode(torch.randn(16, 24, dtype=torch.float64), task)
    bias = algo.actor.mu[-1].bias
    direction = torch.randn_like(bias)

    def loss() -> torch.Tensor:
        torch.manual_seed(1)  # the same action noise in every evaluation
        return imagined_actor_loss(wm, algo.actor, algo.critic, z, task, algo.cfg).loss.sum()

    (grad,) = torch.autograd.grad(loss(), bias)
    eps = 1e-6
    with torch.no_grad():
        bias += eps * direction
        up = loss()
        bias -= 2 * eps * direction
        down = loss()
    exact = float((up - down) / (2 * eps))
    analytic = float(grad @ direction)
    assert (abs(analytic - exact) < 1e-5 * abs(exact)) is not detach
