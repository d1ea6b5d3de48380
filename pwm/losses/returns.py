"""Return estimators as pure functions of time-major tensors ``[H, B]`` (no modules, no state)."""

from __future__ import annotations

import torch

from pwm.utils.precision import fp32


@fp32  # a sum of up to H discounted terms: bf16's 8 mantissa bits would round a return of 300 to steps of 2
def td_lambda_targets(
    rewards: torch.Tensor, next_values: torch.Tensor, done: torch.Tensor, gamma: float, lam: float
) -> torch.Tensor:
    """TD(λ) value targets for the states at steps ``0..H-1`` of a rollout.

    Args:
        rewards: ``r_t`` for t = 0..H-1.
        next_values: ``V(s_{t+1})``: 0 where step t terminated, the value of the pre-reset state where it was
            truncated.
        done: 1 where step t ended a segment (termination or truncation); the last step always ends one (the
            rollout's horizon is a truncation), whatever ``done[-1]`` says.

    Returns the λ-return of each state over its own segment: the (1-λ)λ^(n-1)-weighted mix of n-step returns
    bootstrapped with ``next_values``, with the remaining weight on the longest return that fits the segment.
    Computed with SHAC's backward recursion (one pass, O(H)).
    """
    done = done.clone()
    done[-1] = 1.0
    horizon = rewards.shape[0]
    out = torch.empty_like(rewards)
    a = torch.zeros_like(rewards[0])
    b = torch.zeros_like(rewards[0])
    lam_t = torch.ones_like(rewards[0])
    for t in reversed(range(horizon)):
        d = done[t]
        lam_t = lam * lam_t * (1 - d) + d
        a = (1 - d) * (lam * gamma * a + gamma * next_values[t] + (1 - lam_t) / (1 - lam) * rewards[t])
        b = gamma * (next_values[t] * d + b * (1 - d)) + rewards[t]
        out[t] = (1 - lam) * a + lam_t * b
    return out


@fp32
def one_step_targets(rewards: torch.Tensor, next_values: torch.Tensor, gamma: float) -> torch.Tensor:
    """r_t + γ V(s_{t+1}): what PWM's reference multitask code computes, since it marks every step done
    (docs/pwm_reference.md, "Q1: every imagined step marked done")."""
    return rewards + gamma * next_values


class SegmentReturns:
    """The H-step actor objective of SHAC and single-task PWM over envs that may finish mid-rollout.

    Per env it accumulates the discounted reward of the current segment; where a segment ends (the env finished,
    or the rollout's last step) it subtracts that return plus the discounted bootstrap value from ``loss``, and a
    finished env starts a new segment. ``loss [B]`` is the negative sum of the segments' bootstrapped returns.
    """

    def __init__(self, num: int, gamma: float, device: torch.device) -> None:
        self.gamma = gamma
        self.loss = torch.zeros(num, device=device)
        self.ret = torch.zeros(num, device=device)
        self.discount = torch.ones(num, device=device)

    def add(self, reward: torch.Tensor, value: torch.Tensor, done: torch.Tensor, last: bool, extra: float = 1.0):
        """One step: ``value`` is V of the next state (0 where it terminated); ``extra`` scales the bootstrap."""
        self.ret = self.ret + self.discount * reward
        segment = self.ret + self.gamma * self.discount * extra * value
        end = torch.ones_like(done) if last else done
        self.loss = self.loss - torch.where(end, segment, torch.zeros_like(segment))
        self.ret = torch.where(done, torch.zeros_like(self.ret), self.ret)
        self.discount = torch.where(done, torch.ones_like(self.discount), self.gamma * self.discount)
