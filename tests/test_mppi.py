import torch

from pwm.config import MPPIConfig, WorldModelConfig
from pwm.models.world_model import WorldModel
from pwm.planning.mppi import MPPIPlanner

TARGET = torch.tensor([0.6, -0.3])


class QuadraticRewardModel(WorldModel):
    """A real WorldModel whose reward is replaced by -(a - target)^2 (decoded value), so the optimum is known."""

    def reward(self, z, a, task=None):
        return -(a - TARGET).pow(2).sum(-1, keepdim=True)

    def decode(self, logits, space="symexp"):
        return logits.squeeze(-1)


def make_planner(**kw) -> MPPIPlanner:
    torch.manual_seed(0)
    dims = dict(latent_dim=16, enc_dim=16, mlp_dim=16, num_enc_layers=2, num_q=2)
    cfg = WorldModelConfig(size=None, task="reacher-easy", **dims)
    wm = QuadraticRewardModel(cfg)
    prior = lambda z: torch.zeros(z.shape[0], 2)  # noqa: E731
    value = lambda z: torch.zeros(z.shape[0])  # noqa: E731
    return MPPIPlanner(wm, MPPIConfig(**kw), discount=0.99, prior=prior, terminal_value=value)


def test_plan_finds_the_reward_maximising_action():
    planner = make_planner()
    action = planner.plan(torch.randn(6))
    assert action.shape == (2,)
    torch.testing.assert_close(action, TARGET, atol=0.1, rtol=0)


def test_plan_is_seeded_and_bounded_and_masked():
    a = make_planner().plan(torch.randn(6))
    b = make_planner().plan(torch.randn(6))
    assert torch.equal(a, b)
    planner = make_planner()
    planner.action_mask = torch.tensor([1.0, 0.0])
    masked = planner.plan(torch.randn(6), explore=True)
    assert masked[1] == 0 and masked.abs().max() <= 1


def test_warm_start_shifts_the_previous_mean():
    planner = make_planner(iterations=1)
    planner.plan(torch.randn(6))
    assert planner._prev_mean.shape == (3, 2)
    planner.reset()
    assert planner._prev_mean is None
