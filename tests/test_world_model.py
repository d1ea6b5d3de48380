import pytest
import torch

from pwm.config import ConfigError, WorldModelConfig, resolve_world_model
from pwm.models.layers import SimNorm, mlp
from pwm.models.world_model import WorldModel

PUBLISHED_MILLIONS = {
    ("mt80", 1): 1.44, ("mt80", 5): 5.39, ("mt80", 19): 18.97, ("mt80", 48): 48.79, ("mt80", 317): 317.38,
    ("mt30", 1): 1.43, ("mt30", 5): 5.24, ("mt30", 19): 16.03, ("mt30", 48): 48.24, ("mt30", 317): 317.32,
}  # fmt: skip


@pytest.mark.parametrize(("task", "size"), sorted(PUBLISHED_MILLIONS))
def test_parameter_counts_equal_published(task, size):
    with torch.device("meta"):  # shapes only: the 317M models would cost seconds to initialise
        model = WorldModel(WorldModelConfig(size=size, task=task))
    assert round(model.num_trainable_params() / 1e6, 2) == PUBLISHED_MILLIONS[(task, size)]


def test_multitask_dim_rules():
    assert resolve_world_model(WorldModelConfig(size=19, task="mt30")).latent_dim == 512
    assert resolve_world_model(WorldModelConfig(size=19, task="mt80")).latent_dim == 768
    assert resolve_world_model(WorldModelConfig(size=5, task="mt30")).task_dim == 64
    assert resolve_world_model(WorldModelConfig(size=5, task="mt80")).task_dim == 96
    assert resolve_world_model(WorldModelConfig(size=317, task="mt30")).task_dim == 96
    single = resolve_world_model(WorldModelConfig(size=5, task="walker-walk"))
    assert (single.task_dim, single.obs_dim, single.action_dim) == (0, 24, 6)


def test_bad_config_values_name_the_key():
    with pytest.raises(ConfigError, match=r"world_model.size=7 is not a preset"):
        resolve_world_model(WorldModelConfig(size=7, task="mt30"))
    with pytest.raises(ConfigError, match=r"world_model.task: unknown task 'walker-fly'"):
        resolve_world_model(WorldModelConfig(task="walker-fly"))
    with pytest.raises(ConfigError, match=r"world_model.obs_dim is unset"):
        resolve_world_model(WorldModelConfig(size=5))
    with pytest.raises(ConfigError, match=r"latent_dim=100 must be a multiple of simnorm_dim=8"):
        resolve_world_model(WorldModelConfig(size=5, task="mt30", latent_dim=100))


def test_simnorm_groups_sum_to_one():
    x = torch.randn(3, 5, 64) * 10
    y = SimNorm(8)(x).view(3, 5, 8, 8)
    torch.testing.assert_close(y.sum(-1), torch.ones(3, 5, 8))
    assert (y >= 0).all()


def test_mlp_state_dict_layout():
    keys = set(mlp(10, [32, 32], 4, act=SimNorm(4)).state_dict())
    assert keys == {f"{i}.{k}" for i in range(3) for k in ("weight", "bias", "ln.weight", "ln.bias")}
    assert "2.ln.weight" not in mlp(10, [32, 32], 4).state_dict()


def small_mt_model(**kw) -> WorldModel:
    cfg = WorldModelConfig(size=None, task="mt30", latent_dim=64, enc_dim=32, mlp_dim=48, num_enc_layers=2, num_q=5)
    return WorldModel(cfg.__class__(**{**cfg.__dict__, **kw}))


def test_shapes_and_latents_on_simplex():
    model = small_mt_model()
    obs, task = torch.randn(7, 24), torch.randint(0, 30, (7,))
    z = model.encode(obs, task)
    assert z.shape == (7, 64)
    torch.testing.assert_close(z.view(7, 8, 8).sum(-1), torch.ones(7, 8))
    a = torch.rand(7, 6) * 2 - 1
    assert model.next(z, a, task).shape == (7, 64)
    assert model.reward(z, a, task).shape == (7, 101)
    assert model.Q(z, a, task, "all").shape == (5, 7, 101)
    assert model.Q(z, a, task, "min").shape == (7,)
    # time-major inputs [T, B, .] broadcast the [B] task ids over time
    assert model.encode(torch.randn(4, 7, 24), task).shape == (4, 7, 64)


def test_zero_initialised_heads_predict_zero():
    model = small_mt_model()
    z, a, task = torch.rand(5, 64), torch.rand(5, 6), torch.zeros(5, dtype=torch.long)
    torch.testing.assert_close(model.decode(model.reward(z, a, task)), torch.zeros(5))
    torch.testing.assert_close(model.Q(z, a, task, "avg"), torch.zeros(5))


def test_action_masks_zero_inactive_dims():
    model = small_mt_model()
    task = torch.tensor([7, 4, 0])  # pendulum-swingup (1 dim), reacher-easy (2), walker-stand (6)
    action, info = model.pi(torch.rand(3, 64), task)
    assert (action[0, 1:] == 0).all() and (action[1, 2:] == 0).all()
    assert (action[0, :1] != 0).all() and (action[2] != 0).all()
    assert info["log_prob"].shape == (3,) and torch.isfinite(info["log_prob"]).all()


def test_q_ensemble_matches_per_member_loop():
    model = small_mt_model(dropout=0.0)
    for p in model._Qs.parameters():
        torch.nn.init.normal_(p, std=0.1)
    z, a, task = torch.rand(6, 64), torch.rand(6, 6), torch.randint(0, 30, (6,))
    x = model._za(z, a, task)
    out = model.Q(z, a, task, "all")
    for k in range(5):
        h = x
        for layer in model._Qs.params:
            h = h @ layer.weight[k].T + layer.bias[k]
            if layer.ln is not None:
                h = torch.nn.functional.layer_norm(h, h.shape[-1:], layer.ln.weight[k], layer.ln.bias[k])
                h = torch.nn.functional.mish(h)
        torch.testing.assert_close(out[k], h, rtol=1e-5, atol=1e-5)
    sub = model._Qs(x, torch.tensor([3, 1]))
    torch.testing.assert_close(sub, out[[3, 1]], rtol=1e-5, atol=1e-5)


def test_target_q_polyak_and_no_grad():
    model = small_mt_model()
    assert not any(p.requires_grad for p in model._target_Qs.parameters())
    before = model._target_Qs.params[0].weight.clone()
    with torch.no_grad():
        model._Qs.params[0].weight.add_(1.0)
    model.update_target_Q(0.25)
    torch.testing.assert_close(model._target_Qs.params[0].weight, before + 0.25)


def test_detached_q_gives_no_parameter_grads():
    model = small_mt_model()
    z = torch.rand(4, 64, requires_grad=True)
    model.Q(z, torch.rand(4, 6), 0, "avg", detach=True).sum().backward()
    assert all(p.grad is None for p in model._Qs.parameters())
    assert z.grad is not None
