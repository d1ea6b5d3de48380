import pytest
import torch

from pwm.losses.returns import one_step_targets, td_lambda_targets


def reference_lambda_returns(rewards, next_values, done, gamma, lam):
    """Slow definition: G^λ_t = (1-λ) Σ_{n=1}^{N-1} λ^{n-1} G^(n)_t + λ^{N-1} G^(N)_t over t's own segment.

    G^(n)_t = Σ_{k<n} γ^k r_{t+k} + γ^n V(s_{t+n}); N = steps from t to the end of its segment (inclusive).
    """
    horizon, batch = rewards.shape
    out = torch.zeros_like(rewards)
    for b in range(batch):
        for t in range(horizon):
            end = t
            while end < horizon - 1 and not done[end, b]:
                end += 1
            n_max = end - t + 1
            returns = []
            for n in range(1, n_max + 1):
                g = sum(gamma**k * rewards[t + k, b] for k in range(n))
                returns.append(g + gamma**n * next_values[t + n - 1, b])
            mix = sum((1 - lam) * lam ** (n - 1) * returns[n - 1] for n in range(1, n_max))
            out[t, b] = mix + lam ** (n_max - 1) * returns[-1]
    return out


@pytest.mark.parametrize("lam", [0.0, 0.5, 0.95])
def test_td_lambda_matches_definition_with_terminations_and_truncations(lam):
    g = torch.Generator().manual_seed(0)
    horizon, batch, gamma = 9, 4, 0.9
    rewards = torch.randn(horizon, batch, generator=g, dtype=torch.float64)
    next_values = torch.randn(horizon, batch, generator=g, dtype=torch.float64)
    done = torch.zeros(horizon, batch, dtype=torch.float64)
    done[2, 0] = 1  # a termination: the caller passes V = 0 for it
    next_values[2, 0] = 0.0
    done[5, 1] = 1  # a truncation: V of the pre-reset state stays
    done[[1, 6], 2] = 1  # two segments ending in one rollout
    expected = reference_lambda_returns(rewards, next_values, done, gamma, lam)
    torch.testing.assert_close(td_lambda_targets(rewards, next_values, done, gamma, lam), expected)


def test_single_step_and_one_step_targets():
    r, v = torch.tensor([[1.0], [2.0]]), torch.tensor([[10.0], [20.0]])
    # λ = 0 is the one-step target everywhere
    torch.testing.assert_close(td_lambda_targets(r, v, torch.zeros_like(r), 0.5, 0.0), one_step_targets(r, v, 0.5))
    # horizon end bootstraps: last target = r_H-1 + γ V_H; first = (1-λ)(r0+γv0) + λ(r0 + γ r1 + γ² v1)
    out = td_lambda_targets(r, v, torch.zeros_like(r), 0.5, 0.5)
    assert out[1, 0].item() == pytest.approx(2 + 0.5 * 20)
    assert out[0, 0].item() == pytest.approx(0.5 * (1 + 5) + 0.5 * (1 + 0.5 * 2 + 0.25 * 20))
