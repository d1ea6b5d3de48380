"""Step-size control for a policy-gradient actor (PolyGRAD, arXiv 2312.08533, ``docs/polygrad.md``): keep each
actor step's *update size*, the mean ``|log pi_old(a|s) - log pi_new(a|s)|`` on the batch, near a target.

Two mechanisms, as in the reference implementation:

- a line search (:func:`line_search`): after a step, while the update size is off the target by more than the
  tolerance, reload the pre-step weights and step again with the learning rate times or divided by ``ratio``. The
  gradients are kept, but each re-step advances the optimiser's moments again, as the reference's does. The
  learning rate is restored afterwards: the search only picks this step's size;
- a learned learning rate (:class:`LearnedLogLR`): ``log(lr)`` is itself fitted by AdamW on
  ``-log(lr) (target - size)``, where ``size`` is the first step's, before any search. It rises while steps are too
  small, falls while they are too large, and is clamped at the initial (largest) rate.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import torch
from torch import nn


class LearnedLogLR:
    """The actor's learning rate as ``exp(log_lr)``, with ``log_lr`` adapted towards a target update size."""

    def __init__(self, lr: float, lr_lr: float) -> None:
        self.max_log_lr = math.log(lr)
        self.log_lr = torch.tensor(self.max_log_lr, requires_grad=True)
        self.opt = torch.optim.AdamW([self.log_lr], lr=lr_lr) if lr_lr > 0 else None

    @property
    def lr(self) -> float:
        return math.exp(float(self.log_lr.detach()))

    def adapt(self, update_size: float, target: float) -> None:
        """One AdamW step on ``-log_lr (target - update_size)``, then the clamp at the largest rate."""
        if self.opt is None:
            return
        loss = -self.log_lr * (target - update_size)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        with torch.no_grad():
            self.log_lr.clamp_(max=self.max_log_lr)

    def state_dict(self) -> dict:
        opt = None if self.opt is None else copy.deepcopy(self.opt.state_dict())  # a snapshot, not live moments
        return {"log_lr": self.log_lr.detach().clone(), "opt": opt}

    def load_state_dict(self, state: dict) -> None:
        with torch.no_grad():
            self.log_lr.copy_(state["log_lr"])
        if self.opt is not None and state["opt"] is not None:
            self.opt.load_state_dict(state["opt"])


def line_search(
    opt: torch.optim.Optimizer,
    net: nn.Module,
    before: dict[str, torch.Tensor],
    measure: Callable[[], float],
    size: float,
    target: float,
    tolerance: float,
    ratio: float,
    max_lr: float,
    max_steps: int,
) -> tuple[float, int]:
    """Re-step ``net`` from its pre-step weights ``before`` until ``measure()`` is within ``tolerance`` (relative)
    of ``target``; ``size`` is the first step's. Stops when the rate would exceed ``max_lr`` (keeping the last
    step) or after ``max_steps`` steps in all. Returns the final update size and the number of steps taken."""
    group = opt.param_groups[0]
    first_lr, steps = group["lr"], 1
    while abs(size - target) > tolerance * target:
        group["lr"] = group["lr"] * ratio if size > target else group["lr"] / ratio
        if group["lr"] > max_lr:
            break
        net.load_state_dict(before)
        opt.step()
        size = measure()
        steps += 1
        if steps > max_steps:
            break
    group["lr"] = first_lr
    return size, steps
