"""The launch program of one control step: a list of pre-packed warp launches that can be replayed (``Ops``), the
arrays those launches write (``Buffers``) and the device/stream scope they run in (``Scoped``).

Replaying a pre-packed launch skips warp's per-launch argument packing; with an adjoint list, ``Ops`` also collects
the matching pre-packed adjoint launches, which makes a recorded program a reusable hand-made ``wp.Tape``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import warp as wp


def _adjoint(arg: Any) -> Any:
    """The adjoint argument of a kernel argument, as ``wp.Tape.backward`` passes it (grad array or None)."""
    return arg.grad if isinstance(arg, wp.array) else None


class Ops:
    """Builds one control step as a replayable program of pre-packed launches (a list of callables; replaying skips
    warp's per-launch argument packing). With ``backward`` given, the matching pre-packed adjoint launches are
    collected too (in forward order; the caller replays them reversed), which makes the program a reusable tape."""

    def __init__(
        self, device: Any, program: list[Callable[[], Any]], backward: list[Callable[[], Any]] | None = None
    ) -> None:
        self.device = device
        self.program = program
        self.backward = backward

    def launch(self, kernel: Any, dim: int, inputs: list[Any], outputs: list[Any]) -> None:
        cmd = wp.launch(kernel, dim=dim, inputs=inputs, outputs=outputs, device=self.device, record_cmd=True)
        self.program.append(cmd.launch)
        if self.backward is not None:
            adj = wp.launch(
                kernel,
                dim=dim,
                inputs=inputs,
                outputs=outputs,
                adj_inputs=[_adjoint(a) for a in inputs],
                adj_outputs=[_adjoint(a) for a in outputs],
                adjoint=True,
                device=self.device,
                record_cmd=True,
            )
            self.backward.append(adj.launch)

    def zero(self, array: Any) -> None:
        self.program.append(array.zero_)

    def call(self, fn: Callable[[], Any], adjoint: Callable[[], Any] | None = None) -> None:
        self.program.append(fn)
        if self.backward is not None and adjoint is not None:
            self.backward.append(adjoint)

    def on_backward(self, fn: Callable[[], Any]) -> None:
        """Run ``fn`` in the backward pass just before the adjoints of everything issued so far."""
        if self.backward is not None:
            self.backward.append(fn)


class Buffers:
    """The arrays of one control step. ``fresh=False``: one reusable set (the no-grad path; the q/qd chains
    alternate between two arrays). ``fresh=True``: a new array with grads for every write (a taped slot), so no array
    is written twice in a step and every adjoint sees its own primal values."""

    def __init__(self, sim: Any, fresh: bool) -> None:
        self.sim = sim
        self.fresh = fresh
        self._cache: dict[tuple[str, int], Any] = {}
        self.allocated: list[Any] = []

    def _array(self, name: str, slot: int, size: int, dtype: Any) -> Any:
        key = (name, slot)
        if self.fresh or key not in self._cache:
            arr = wp.zeros(size, dtype=dtype, device=self.sim.device, requires_grad=self.fresh)
            self.allocated.append(arr)
            if self.fresh:
                return arr
            self._cache[key] = arr
        return self._cache[key]

    def q(self, k: int) -> Any:
        return self._array("q", k % 2, self.sim.model.joint_coord_count, float)

    def qd(self, k: int) -> Any:
        return self._array("qd", k % 2, self.sim.model.joint_dof_count, float)

    def scratch(self, k: int) -> Any:
        m = self.sim.model
        nb, nd = m.body_count, m.joint_dof_count
        sc = Scratch()
        sc.body_q = self._array("body_q", 0, nb, wp.transform)
        sc.body_q_com = self._array("body_q_com", 0, nb, wp.transform)
        sc.body_qd = self._array("body_qd", 0, nb, wp.spatial_vector)
        sc.joint_S_s = self._array("joint_S_s", 0, nd, wp.spatial_vector)
        sc.body_solve_origin = self._array("origin", 0, nb, wp.vec3)
        sc.body_I_s = self._array("body_I_s", 0, nb, wp.spatial_matrix)
        sc.body_v_s = self._array("body_v_s", 0, nb, wp.spatial_vector)
        sc.body_f_s = self._array("body_f_s", 0, nb, wp.spatial_vector)
        sc.body_a_s = self._array("body_a_s", 0, nb, wp.spatial_vector)
        sc.body_ft_s = self._array("body_ft_s", 0, nb, wp.spatial_vector)
        sc.body_f = self._array("body_f", 0, nb, wp.spatial_vector)
        # eval_rigid_tau shifts its wrench buffer in place; on a tape it gets a copy (restored before its adjoint)
        sc.body_f_ext = self._array("body_f_ext", 0, nb, wp.spatial_vector) if self.fresh else sc.body_f
        sc.joint_tau = self._array("joint_tau", 0, nd, float)
        sc.joint_qdd = self._array("joint_qdd", 0, nd, float)
        sc.joint_solve_tmp = self._array("joint_solve_tmp", 0, nd, float)
        return sc

    def mass_matrix(self) -> tuple[Any, Any]:
        size, nd = self.sim.solver.H_size, self.sim.model.joint_dof_count
        return (
            self._array("H", 0, size, float),
            self._array("L", 0, size, float),
            self._array("crba_force", 0, nd, wp.spatial_vector),
        )

    def end(self) -> Any:
        m = self.sim.model
        sc = Scratch()
        sc.body_q = self._array("end_body_q", 0, m.body_count, wp.transform)
        sc.body_qd = self._array("end_body_qd", 0, m.body_count, wp.spatial_vector)
        sc.joint_qd = self._array("end_qd", 0, m.joint_dof_count, float)
        return sc


class Scratch:
    """A namespace of arrays."""


class Scoped:
    """Run warp on the sim's device (and, on CUDA, on torch's current stream)."""

    def __init__(self, sim: Any) -> None:
        self.scopes = [wp.ScopedDevice(sim.device)]
        if sim.device.is_cuda:
            self.scopes.append(wp.ScopedStream(wp.stream_from_torch(sim.torch_device)))

    def __enter__(self) -> None:
        for s in self.scopes:
            s.__enter__()

    def __exit__(self, *exc: Any) -> None:
        for s in reversed(self.scopes):
            s.__exit__(*exc)
