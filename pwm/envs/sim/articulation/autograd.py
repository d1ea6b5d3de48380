"""The autograd bridge of the articulation backend: a ``torch.autograd.Function`` around a recorded warp step.

A taped control step is a ``Slot``: every array written once, a pre-packed forward program and the matching
pre-packed adjoint launches. ``WarpStep.forward`` leases a slot from the simulator's pool and runs it;
``WarpStep.backward`` feeds the output grads in, replays the adjoints and hands the slot back. A slot whose graph
is freed without a backward also goes back to the pool (``Lease.__del__``). Here ``sim`` is always a
``WarpSim`` (``simulator.py``); this module only uses its model, device, sizes, slot pool and ``_emit``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import warp as wp

from pwm.envs.sim.articulation.program import Buffers, Ops, Scoped


class HookTapes:
    """The extra-forces hook on a taped slot: one small ``wp.Tape`` per substep and use, replayed backwards in place
    (the hook's own intermediate arrays, if it has any with grads, are its business)."""

    def __init__(self) -> None:
        self.tapes: dict[int, Any] = {}

    def forward(self, substep: int, hook: Callable[[], Any]) -> None:
        tape = wp.Tape()
        with tape:
            hook()
        self.tapes[substep] = tape

    def backward(self, substep: int) -> None:
        tape = self.tapes.pop(substep, None)
        if tape is not None:
            tape.backward()


class Slot:
    """A reusable taped control step: arrays written once each, a pre-packed forward program and the matching
    pre-packed adjoint launches (a hand-made ``wp.Tape`` that costs no Python argument packing per use)."""

    def __init__(self, sim: Any, extra_size: int) -> None:
        m = sim.model
        bufs = Buffers(sim, fresh=True)
        self.sim = sim
        self.extra_size = extra_size
        self.q_in = bufs._array("in_q", 0, m.joint_coord_count, float)
        self.qd_in = bufs._array("in_qd", 0, m.joint_dof_count, float)
        self.f_in = bufs._array("in_f", 0, m.joint_dof_count, float)
        self.extra_in = bufs._array("in_extra", 0, extra_size, float) if extra_size else None
        self.hooks = HookTapes()
        self.program: list[Callable[[], Any]] = []
        backward: list[Callable[[], Any]] = []
        ops = Ops(sim.device, self.program, backward)
        self.q_out, self.qd_out = sim._emit(ops, bufs, self.q_in, self.qd_in, self.f_in, self.extra_in, self.hooks)
        self.backward_program = backward[::-1]
        self.grads = [a.grad for a in bufs.allocated if a.grad is not None]

    def forward(self, q: torch.Tensor, qd: torch.Tensor, joint_f: torch.Tensor, extra: torch.Tensor | None) -> None:
        wp.to_torch(self.q_in).copy_(q.detach().reshape(-1))
        wp.to_torch(self.qd_in).copy_(qd.detach().reshape(-1))
        wp.to_torch(self.f_in).copy_(joint_f.detach().reshape(-1))
        if extra is not None:
            wp.to_torch(self.extra_in).copy_(extra.detach().reshape(-1))
        for op in self.program:
            op()

    def backward(self, grad_q: torch.Tensor | None, grad_qd: torch.Tensor | None) -> list[torch.Tensor | None]:
        for g in self.grads:
            g.zero_()
        if grad_q is not None:
            wp.to_torch(self.q_out.grad).copy_(grad_q.reshape(-1))
        if grad_qd is not None:
            wp.to_torch(self.qd_out.grad).copy_(grad_qd.reshape(-1))
        for op in self.backward_program:
            op()
        arrays = (self.q_in, self.qd_in, self.f_in, self.extra_in)
        return [None if a is None else wp.to_torch(a.grad).clone() for a in arrays]


class Lease:
    """Holds a slot for one recorded step; returns it to the pool after backward or when the graph is freed."""

    def __init__(self, sim: Any, slot: Slot) -> None:
        self.sim: Any | None = sim
        self.slot = slot

    def release(self) -> None:
        if self.sim is not None:
            self.sim._release(self.slot)
            self.sim = None

    def __del__(self) -> None:
        self.release()


class WarpStep(torch.autograd.Function):
    """Differentiable control step (see ``WarpSim.step``)."""

    @staticmethod
    def forward(ctx, sim: Any, q, qd, joint_f, extra):  # type: ignore[override]
        with Scoped(sim):
            slot = sim._acquire(0 if extra is None else extra.numel())
            lease = Lease(sim, slot)
            slot.forward(q, qd, joint_f, extra)
            q_new = wp.to_torch(slot.q_out).view(sim.num_envs, sim.nq).clone()
            qd_new = wp.to_torch(slot.qd_out).view(sim.num_envs, sim.nqd).clone()
        ctx.sim = sim
        ctx.lease = lease
        ctx.meta = [(t.shape, t.dtype) if t is not None else None for t in (q, qd, joint_f, extra)]
        return q_new, qd_new

    @staticmethod
    def backward(ctx, grad_q, grad_qd):  # type: ignore[override]
        lease: Lease | None = ctx.lease
        if lease is None or lease.sim is None:
            raise RuntimeError("WarpSim step: backward through the same step twice is not supported")
        with Scoped(ctx.sim):
            grads = lease.slot.backward(grad_q, grad_qd)
        lease.release()
        ctx.lease = None
        result = []
        for g, meta in zip(grads, ctx.meta, strict=True):
            if g is None or meta is None:
                result.append(None)
            else:
                g = g.view(meta[0]).to(meta[1])
                result.append(torch.nan_to_num(g, nan=0.0, posinf=0.0, neginf=0.0))
        return (None, *result)
