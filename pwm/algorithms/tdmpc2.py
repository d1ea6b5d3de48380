"""TD-MPC2 world-model training: optimisers, update order, target update and NaN guard.

The losses live in ``pwm.losses.world_model``; this class owns everything stateful around them so that a run
state (``pwm.checkpoint.run_state``) can save and restore it exactly.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from pwm.algorithms.base import Algorithm
from pwm.config import TDMPC2Config
from pwm.data.batch import SequenceBatch
from pwm.losses.world_model import policy_prior_loss, td_targets, world_model_loss
from pwm.models.normalizers import RunningScale
from pwm.models.world_model import WorldModel
from pwm.utils.precision import Precision


class NonFiniteLossError(FloatingPointError):
    """A loss or gradient norm was NaN/inf; the update was skipped and no parameter changed."""


def discount_vector(model: WorldModel, cfg: TDMPC2Config) -> torch.Tensor:
    """Per-task discounts (TD-MPC2 heuristic from episode lengths), or the fixed ``cfg.discount``."""
    from pwm.data.tasks import TASK_SETS, get_task

    task = model.cfg.task
    if cfg.discount is not None:
        values = [cfg.discount] * max(model.cfg.num_tasks, 1)
    elif task in TASK_SETS:
        values = TASK_SETS[task].discounts
    elif task is not None:
        values = [get_task(task).discount]
    else:
        raise ValueError("discount is unset and the world model has no task to derive it from; set discount=")
    return torch.tensor(values, dtype=torch.float32)


def _fast_adam(device: torch.device) -> dict:
    """The fused Adam kernel (one pass over all parameters) where this torch build has it for the device."""
    return {"fused": True} if device.type in ("cpu", "cuda") else {}


class TDMPC2(Algorithm):
    """World-model update of TD-MPC2 (Hansen et al. 2024, arXiv:2310.16828).

    One :meth:`update` = consistency/reward/value losses with TD targets from the target Q ensemble, an Adam
    step on the world model (encoder at ``enc_lr_scale``), a policy-prior step on the rolled-out latents, and
    a Polyak update of the target Q. ``precision="bf16"`` runs the forward passes (targets, losses) under bf16
    autocast; backward passes, Adam and the target update stay fp32.
    """

    state_keys = ("model", "optim", "pi_optim", "scale")

    def __init__(self, model: WorldModel, cfg: TDMPC2Config, precision: str = "fp32") -> None:
        cfg.check()
        self.model, self.cfg = model, cfg
        device = next(model.parameters()).device
        self.discount = discount_vector(model, cfg).to(device)
        self.precision = Precision(precision, device)
        groups = [
            {"params": list(model._encoder.parameters()), "lr": cfg.lr * cfg.enc_lr_scale},
            {"params": [*model._dynamics.parameters(), *model._reward.parameters(), *model._Qs.parameters()]},
        ]
        if model.cfg.multitask:
            groups.append({"params": list(model._task_emb.parameters())})
        self.wm_params = [p for g in groups for p in g["params"]]
        self.optim = torch.optim.Adam(groups, lr=cfg.lr, **_fast_adam(device))
        self.pi_optim = torch.optim.Adam(model._pi.parameters(), lr=cfg.lr, eps=1e-5, **_fast_adam(device))
        self.scale = RunningScale(cfg.tau).to(device)
        self.grad_sync: Callable[[list[nn.Parameter]], None] | None = None
        """Called on each parameter list after backward, before clipping (data-parallel gradient averaging)."""

    @torch.no_grad()
    def act(self, obs: torch.Tensor, deterministic: bool = True, task: torch.Tensor | None = None) -> torch.Tensor:
        """The policy prior's action (its mean when ``deterministic``); TD-MPC2 proper plans with MPPI on top of
        it (``pwm.planning.mppi``)."""
        action, info = self.model.pi(self.model.encode(obs, task), task)
        return info["mean"] if deterministic else action

    def update(self, batch: SequenceBatch) -> dict[str, float]:
        """One training step; raises NonFiniteLossError (parameters untouched) if a loss is not finite."""
        model, cfg = self.model, self.cfg
        task = batch.task
        discount = self.discount[task] if task is not None else self.discount[0]
        not_done = 1.0 if batch.terminated is None else 1.0 - batch.terminated
        autocast = self.precision.autocast
        with torch.no_grad(), autocast():
            next_z = model.encode(batch.obs[1:], task)
            td = td_targets(model, next_z, batch.reward, task, discount, not_done)
        model.train()
        with autocast():
            loss, metrics, zs = world_model_loss(model, batch, next_z, td, cfg)
        grad_norm = self._step(self.optim, loss, self.wm_params, "world-model loss")
        with autocast():
            pi_loss, pi_metrics = policy_prior_loss(model, zs.detach(), task, self.scale, cfg)
        pi_grad_norm = self._step(self.pi_optim, pi_loss, list(model._pi.parameters()), "policy-prior loss")
        model.update_target_Q(cfg.tau)
        model.eval()
        out = {**metrics, **pi_metrics, "grad_norm": grad_norm, "pi_grad_norm": pi_grad_norm}
        return {f"wm/{k}": float(v.detach()) for k, v in out.items()}

    def _step(
        self, optim: torch.optim.Optimizer, loss: torch.Tensor, params: list[nn.Parameter], name: str
    ) -> torch.Tensor:
        optim.zero_grad(set_to_none=True)
        loss.backward()
        if self.grad_sync is not None:
            self.grad_sync(params)
        grad_norm = nn.utils.clip_grad_norm_(params, self.cfg.grad_clip_norm)
        if not (torch.isfinite(loss) and torch.isfinite(grad_norm)):
            optim.zero_grad(set_to_none=True)
            raise NonFiniteLossError(f"{name} is {loss.item():.4g} (gradient norm {grad_norm.item():.4g})")
        optim.step()
        return grad_norm
