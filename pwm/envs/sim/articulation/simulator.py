"""The articulation step: ``WarpSim``, ``num_envs`` worlds of one robot on a ground plane stepped by newton's
Featherstone kernels with dflex's ground contact (see the package docstring and ``docs/simulators.md``, "Backend").

``WarpSim.step`` runs without a tape (a replayed program on persistent buffers) or, when torch needs gradients,
through ``autograd.WarpStep`` on a pooled taped ``autograd.Slot``. Both issue the same launches: ``_emit`` strings
together the stages of ``featherstone.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import warp as wp

from pwm.envs.sim.articulation import featherstone as fs
from pwm.envs.sim.articulation.assets import contact_points
from pwm.envs.sim.articulation.autograd import Slot, WarpStep
from pwm.envs.sim.articulation.kernels import import_newton
from pwm.envs.sim.articulation.program import Buffers, Ops, Scoped


@dataclass
class ContactParams:
    """dflex ground-contact constants (see ``ground_contact_kernel``)."""

    ke: float
    kd: float
    kf: float
    mu: float


ExtraForces = Callable[[Any, Any, Any, int], None]


class WarpSim:
    """``num_envs`` worlds of one robot stepped by newton's Featherstone kernels (see the ``pwm.envs.sim.articulation``
    package docstring).

    The substep is newton 1.8's ``SolverFeatherstone.step`` re-issued with its own kernels (the solver object only
    supplies its precomputed index arrays), specialised to articulations without kinematic bodies, mimic joints or
    particles: generalized velocities stay in the solver's internal free-joint convention between substeps (the
    public conversion runs once per control step), the mass matrix comes from a two-launch CRBA
    (``composite_force_kernel``, ``mass_matrix_entries_kernel``) instead of newton's four launches with dense GEMMs,
    every ``mm_interval`` substeps, and the no-grad path replays pre-packed launches.
    Generalized forces on FREE-joint DoFs are not supported (keep them 0; apply base wrenches in the extra-forces
    hook).
    """

    def __init__(
        self,
        robot: Any,
        num_envs: int,
        *,
        device: str | torch.device = "cpu",
        substeps: int,
        dt: float,
        contact: ContactParams,
        mm_interval: int | None = None,
        contact_bodies: Sequence[int] | None = None,
        extra_forces: ExtraForces | None = None,
        exact_inertia: bool = False,
    ) -> None:
        newton = import_newton()
        self.torch_device = torch.device(device)
        self.device = wp.device_from_torch(self.torch_device)
        self.num_envs = num_envs
        self.substeps = substeps
        self.dt = dt
        self.sub_dt = dt / substeps
        self.contact = contact
        self.mm_interval = substeps if mm_interval is None else mm_interval
        if not 1 <= self.mm_interval <= substeps:
            raise ValueError(f"mm_interval must be in [1, substeps={substeps}], got {self.mm_interval}")
        self.extra_forces = extra_forces
        if list(robot.joint_child) != list(range(robot.body_count)):
            raise ValueError("WarpSim expects joint i to have child body i (one joint per body, tree order)")

        scene = newton.ModelBuilder(up_axis=newton.Axis.Z)
        scene.replicate(robot, num_envs)
        # gradients are taken w.r.t. states, forces and extra inputs only, not model parameters
        # exact_inertia: keep the builder's inertias even where newton would "correct" them (dflex's are not always
        # physical; see dflex_inertia.py)
        self.model = scene.finalize(device=self.device, requires_grad=False, skip_validation_inertia=exact_inertia)
        self.nq = len(robot.joint_q)
        self.nqd = len(robot.joint_qd)
        self.bodies_per_world = robot.body_count
        self.solver = newton.solvers.SolverFeatherstone(self.model)
        if self.solver.has_kinematic_bodies or self.solver._has_joint_mimics:
            raise ValueError("WarpSim does not support kinematic bodies or mimic joints")
        self._control = self.model.control(clone_variables=False)

        body, local, radius = contact_points(robot)
        if contact_bodies is not None:
            keep = np.isin(body, np.asarray(contact_bodies))
            body, local, radius = body[keep], local[keep], radius[keep]
        offsets = (np.arange(num_envs, dtype=np.int32) * robot.body_count)[:, None]
        self.num_points = len(body)
        self.point_body = wp.array((body[None, :] + offsets).reshape(-1), dtype=int, device=self.device)
        self.point_local = wp.array(np.tile(local, (num_envs, 1)), dtype=wp.vec3, device=self.device)
        self.point_radius = wp.array(np.tile(radius, num_envs), dtype=float, device=self.device)

        self._mass_matrix_pairs(robot)
        self._persistent = Buffers(self, fresh=False)
        self._free_slots: dict[int, list[Slot]] = {}
        self._program: list[Callable[[], Any]] | None = None
        self._io: dict[str, Any] = {}
        self._fk_state = self.model.state(requires_grad=False)

    def _mass_matrix_pairs(self, robot: Any) -> None:
        """Index lists of the CRBA kernels for all worlds, from one robot's tree (joint i moves body i)."""
        parent = list(robot.joint_parent)
        qd_start = list(robot.joint_qd_start) if hasattr(robot, "joint_qd_start") else None
        dim = [sum(d) for d in robot.joint_dof_dim]
        if qd_start is None or len(qd_start) != len(dim):
            qd_start = list(np.concatenate(([0], np.cumsum(dim)[:-1])).astype(int))
        nj, nd = len(dim), self.nqd

        def ancestors_or_self(i: int) -> list[int]:
            path = []
            while i >= 0:
                path.append(i)
                i = parent[i]
            return path

        pair_dof, pair_body, rows, cols, idx, idx_t = [], [], [], [], [], []
        for b in range(nj):
            for i in ancestors_or_self(b):
                for d in range(qd_start[i], qd_start[i] + dim[i]):
                    pair_dof.append(d)
                    pair_body.append(b)
        for i in range(nj):
            for r in range(qd_start[i], qd_start[i] + dim[i]):
                for j in ancestors_or_self(i):
                    first = r if j == i else qd_start[j]
                    for c in range(first, qd_start[j] + dim[j]):
                        rows.append(r)
                        cols.append(c)
                        idx.append(r * nd + c)
                        idx_t.append(c * nd + r)
        h_start = self.solver.articulation_H_start.numpy()
        worlds = np.arange(self.num_envs)

        def tile(values: list[int], stride: np.ndarray) -> Any:
            arr = (np.asarray(values, dtype=np.int64)[None, :] + stride[:, None]).reshape(-1)
            return wp.array(arr.astype(np.int32), dtype=int, device=self.device)

        self._pair_dof = tile(pair_dof, worlds * nd)
        self._pair_body = tile(pair_body, worlds * robot.body_count)
        self._entry_row = tile(rows, worlds * nd)
        self._entry_col = tile(cols, worlds * nd)
        self._entry_index = tile(idx, h_start[: self.num_envs])
        self._entry_index_t = tile(idx_t, h_start[: self.num_envs])
        if self.model.articulation_count != self.num_envs:
            raise ValueError("WarpSim expects one articulation per world")

    # ---- public -----------------------------------------------------------------------------------------------------
    def step(
        self, q: torch.Tensor, qd: torch.Tensor, joint_f: torch.Tensor, extra: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One control step for all worlds: ``q [N, nq]``, ``qd [N, nqd]``, ``joint_f [N, nqd]`` (generalized forces,
        held over the substeps), ``extra [N, K]`` (handed to the extra-forces hook) -> new ``(q, qd)``."""
        tensors = [q, qd, joint_f] + ([extra] if extra is not None else [])
        if torch.is_grad_enabled() and any(t.requires_grad for t in tensors):
            return WarpStep.apply(self, q, qd, joint_f, extra)
        with torch.no_grad(), Scoped(self):
            return self._step_nograd(q, qd, joint_f, extra)

    def body_state(self, q: torch.Tensor, qd: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Forward kinematics: body poses ``[N, B, 7]`` (pos, quat xyzw) and public twists ``[N, B, 6]``."""
        newton = import_newton()
        s = self._fk_state
        with torch.no_grad(), Scoped(self):
            wp.to_torch(s.joint_q).copy_(q.reshape(-1))
            wp.to_torch(s.joint_qd).copy_(qd.reshape(-1))
            newton.eval_fk(self.model, s.joint_q, s.joint_qd, s)
            body_q = wp.to_torch(s.body_q).view(self.num_envs, self.bodies_per_world, 7).clone()
            body_qd = wp.to_torch(s.body_qd).view(self.num_envs, self.bodies_per_world, 6).clone()
        return body_q, body_qd

    # ---- internals --------------------------------------------------------------------------------------------------
    def _emit(self, ops: Ops, bufs: Buffers, q_in: Any, qd_in: Any, joint_f: Any, extra: Any, hooks: Any) -> Any:
        """Issue one control step (``substeps`` Featherstone substeps); returns the arrays of (q, public qd)."""
        q, qd = q_in, None
        mm = None
        for k in range(self.substeps):
            sc = bufs.scratch(k)
            fs.emit_fk(self, ops, sc, q)
            if k == 0:
                qd = bufs.qd(0)
                fs.emit_qd_to_internal(self, ops, sc, qd_in, qd)
            fs.emit_inverse_dynamics(self, ops, sc, q, qd)
            fs.emit_external_wrenches(self, ops, sc, q, extra, hooks, k)
            fs.emit_joint_torques(self, ops, sc, q, qd, joint_f)
            if k % self.mm_interval == 0:
                mm = bufs.mass_matrix()
                fs.emit_mass_matrix(self, ops, sc, mm)
            q_next, qd_next = bufs.q(k + 1), bufs.qd(k + 1)
            fs.emit_solve_and_integrate(self, ops, sc, mm, q, qd, q_next, qd_next)
            q, qd = q_next, qd_next
        end = bufs.end()
        fs.emit_public_output(self, ops, end, q, qd)
        return q, end.joint_qd

    def _step_nograd(self, q, qd, joint_f, extra) -> tuple[torch.Tensor, torch.Tensor]:
        io = self._io
        if self._program is None or (extra is None) != (io.get("extra") is None):
            nd = self.model.joint_dof_count
            io["q"] = self._persistent.q(0)
            io["qd"] = wp.zeros(nd, dtype=float, device=self.device)
            io["f"] = wp.zeros(nd, dtype=float, device=self.device)
            io["extra"] = None if extra is None else wp.zeros(extra.numel(), dtype=float, device=self.device)
            program: list[Callable[[], Any]] = []
            io["q_out"], io["qd_out"] = self._emit(
                Ops(self.device, program), self._persistent, io["q"], io["qd"], io["f"], io["extra"], None
            )
            self._program = program
        wp.to_torch(io["q"]).copy_(q.reshape(-1))
        wp.to_torch(io["qd"]).copy_(qd.reshape(-1))
        wp.to_torch(io["f"]).copy_(joint_f.reshape(-1))
        if extra is not None:
            wp.to_torch(io["extra"]).copy_(extra.reshape(-1))
        for op in self._program:
            op()
        q_new = wp.to_torch(io["q_out"]).view(self.num_envs, self.nq).clone()
        qd_new = wp.to_torch(io["qd_out"]).view(self.num_envs, self.nqd).clone()
        return q_new, qd_new

    def _acquire(self, extra_size: int) -> Slot:
        free = self._free_slots.setdefault(extra_size, [])
        return free.pop() if free else Slot(self, extra_size)

    def _release(self, slot: Slot) -> None:
        self._free_slots.setdefault(slot.extra_size, []).append(slot)
