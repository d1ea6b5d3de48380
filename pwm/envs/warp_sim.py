"""Differentiable articulated-body simulation on warp/newton (Featherstone) behind torch tensors, dflex-style.

Two layers:

``WarpSim``
    One newton ``Model`` holding ``num_envs`` copies (worlds) of one robot on a ground plane, stepped by newton's
    Featherstone kernels, with a dflex-style ground contact. ``WarpSim.step(q, qd, joint_f, extra)`` advances every
    world by one control step (``substeps`` Featherstone substeps of ``dt / substeps``, the torques held constant)
    and returns the new ``(q, qd)`` as torch tensors. With torch grad enabled and an input that requires grad, the
    step is a ``torch.autograd.Function`` that records the step (a reusable "slot": arrays written once each, with
    pre-packed forward and adjoint launches, i.e. a hand-made ``wp.Tape``); backward feeds the output grads into it
    and returns grads for ``q``, ``qd``, ``joint_f`` and ``extra``. Without grad it records nothing and replays a
    pre-packed list of launches on persistent buffers (about 6x less Python overhead per launch than ``wp.launch``).

``WarpArticulationEnv``
    A ``BatchedEnv`` on top of ``WarpSim``: it builds the model once, keeps the state as
    ``{"q": [N, nq], "qd": [N, nqd], "act": [N, A]}`` (``act`` = the previous clipped action, for observations), and
    gives tasks short helpers for dflex's observations (torso height, quaternion, COM velocity, up and heading
    projections) expressed in dflex's frame.

Frames. newton runs **Z-up** (the MJCF's own frame, gravity -z); dflex was **Y-up** (it rotated every MJCF by -pi/2
about x). Joint coordinates are frame independent and identical to dflex's. Free-joint coordinates are newton's:
``q = [pos (3), quat xyzw (4)]`` in the Z-up world and ``qd = [COM linear velocity (3), angular velocity (3)]`` in
world axes (dflex had ``[angular, spatial-twist linear]``). The observation helpers map world vectors to dflex's
axes, ``(x, y, z)_newton -> (x, z, -y)_dflex``, so observations keep dflex's layouts and meaning (height = vertical
coordinate, forward = +x, quaternion including dflex's -pi/2 base rotation).

Physics that follows dflex (``envs_and_peers.md`` A.0), not newton's defaults:

* masses and inertias from the collision shapes at one density (``set_masses_from_shapes``);
* ground contact: every sphere is one contact point, every capsule two (its end spheres), every box eight corners;
  penalty force ``ke*d + kd*max(-v_n, 0)*d`` (d = penetration), friction ``-kf*v_t`` capped at ``mu*ke*d``, applied
  at the lowest point of the sphere; no shape-shape collisions (``ground_contact_kernel``);
* joint torque ``act - (damping + limit_kd)*qd + stiffness*(q_rest - q) + limit_ke*(violation)``: dflex applies its
  ``limit_kd`` damping always, so ``configure_joints`` folds it into newton's ``joint_damping`` and sets newton's
  at-limit damping to zero.

Extra forces. A subclass can add body wrenches every substep (muscles, springs, perturbations) by overriding
``WarpArticulationEnv._extra_forces(model, state, extra, substep)``; it runs inside the tape, after the ground contact
and before the joint-space solve. ``state`` is a ``newton.State`` view: ``state.body_q`` (body poses, ``wp.transform``
of the body frame), ``state.body_qd`` (public twists ``(v_com, omega)`` in world axes) and ``state.joint_q`` (the
substep's joint coordinates) must only be read; ``state.body_f`` is the wrench accumulator
(``wp.spatial_vector(force, torque about the body COM)`` in world axes), to which a kernel must ``wp.atomic_add``
(never assign: the contact forces are already in it). ``state.joint_qd`` is not provided (between substeps the solver
keeps free-joint velocities in its internal convention). ``extra`` is a flat float32 ``wp.array`` of ``[N * K]``
holding the tensor returned by ``_extra_inputs(action)`` (row-major, world-major), with ``requires_grad`` when the step
is taped; its gradient is returned to torch, so e.g. muscle activations are differentiable. The hook is called once
per substep; on the no-grad path its arrays are the same objects every call.

Gradient notes. Within a recorded step every array is written once (its own buffers per substep and per
mass-matrix update), except newton's ``eval_rigid_tau``, which shifts its wrench input in place: it gets a copy that
is restored just before its adjoint runs. The mass-matrix (CRBA) kernels are written so that warp's adjoint is exact
(no loop-carried accumulators). A recorded slot is reused after its backward (or once its graph is freed), so
memory stays at about one slot per step of the longest live rollout. Gradients are w.r.t. states, forces and extra
inputs only (the model is finalized without grads). Kernels run in float32 (newton has no float64 path); Hopper,
Ant and Humanoid gradients match central finite differences to ~1e-4 absolute (``tests/test_envs_warp.py`` checks
the Hopper). The dynamics are piecewise smooth (contact onset, joint limits, the Coulomb cap), so gradients are
one-sided at those kinks.
"""

from __future__ import annotations

import abc
import functools
import math
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import warp as wp

from pwm.envs.base import BatchedEnv, EnvConfig, State

wp.config.quiet = True

_WARP_READY = False
_WARNED: list[bool] = []


def init_warp() -> None:
    """``wp.init()`` once (``wp.from_torch`` and friends need it)."""
    global _WARP_READY
    if not _WARP_READY:
        wp.init()
        _WARP_READY = True


NEWTON_VERSION = "1.8.0"  # WarpSim issues newton's internal Featherstone kernels; their signatures are version-bound


def _newton():
    init_warp()
    import newton

    if getattr(newton, "__version__", NEWTON_VERSION) != NEWTON_VERSION and not _WARNED:
        warnings.warn(
            f"pwm.envs.warp_sim was written against newton {NEWTON_VERSION} internals, found {newton.__version__}",
            stacklevel=2,
        )
        _WARNED.append(True)
    return newton


ASSET_DIR = Path(__file__).resolve().parent / "assets"


def newton_asset(name: str) -> str:
    """Path of an asset shipped with newton (``nv_ant.xml``, ``nv_humanoid.xml``)."""
    import newton.examples

    return newton.examples.get_asset(name)


# ---------------------------------------------------------------------------------------------------------------------
# warp kernels (one module: every kernel of this file compiles together, once, into warp's kernel cache)
# ---------------------------------------------------------------------------------------------------------------------
@wp.kernel
def ground_contact_kernel(
    body_q: wp.array[wp.transform],
    body_qd: wp.array[wp.spatial_vector],
    body_com: wp.array[wp.vec3],
    point_body: wp.array[int],
    point_local: wp.array[wp.vec3],
    point_radius: wp.array[float],
    ke: float,
    kd: float,
    kf: float,
    mu: float,
    body_f: wp.array[wp.spatial_vector],
):
    """dflex ground contact (plane z = 0) for one contact sphere; adds its wrench to ``body_f``."""
    i = wp.tid()
    b = point_body[i]
    xform = body_q[b]
    center = wp.transform_point(xform, point_local[i])
    p = center - wp.vec3(0.0, 0.0, point_radius[i])
    depth = -p[2]
    if depth <= 0.0:
        return
    com = wp.transform_point(xform, body_com[b])
    twist = body_qd[b]
    r = p - com
    v = wp.spatial_top(twist) + wp.cross(wp.spatial_bottom(twist), r)
    vn = v[2]
    vt = wp.vec3(v[0], v[1], 0.0)
    fn = ke * depth + kd * wp.max(-vn, 0.0) * depth
    # viscous friction capped at Coulomb; the capped branch never normalises a zero vector
    ft = vt * (-kf)
    cap = mu * ke * depth
    speed_sq = wp.dot(vt, vt)
    if kf * kf * speed_sq > cap * cap:
        ft = vt * (-cap / wp.sqrt(speed_sq))
    f = wp.vec3(ft[0], ft[1], fn)
    wp.atomic_add(body_f, b, wp.spatial_vector(f, wp.cross(r, f)))


@wp.kernel
def composite_force_kernel(
    pair_dof: wp.array[int],
    pair_body: wp.array[int],
    joint_s: wp.array[wp.spatial_vector],
    body_inertia: wp.array[wp.spatial_matrix],
    force: wp.array[wp.spatial_vector],
):
    """CRBA, part 1: ``force[d] = sum over bodies b in the subtree of DoF d's joint of I_b S_d`` (one (d, b) pair per
    thread; the pair lists come from the tree, see ``WarpSim._mass_matrix_pairs``)."""
    t = wp.tid()
    d = pair_dof[t]
    wp.atomic_add(force, d, body_inertia[pair_body[t]] * joint_s[d])


@wp.kernel
def mass_matrix_entries_kernel(
    entry_row: wp.array[int],
    entry_col: wp.array[int],
    entry_index: wp.array[int],
    entry_index_t: wp.array[int],
    joint_s: wp.array[wp.spatial_vector],
    force: wp.array[wp.spatial_vector],
    h_out: wp.array[float],
):
    """CRBA, part 2: ``H[r, c] = H[c, r] = S_c . force[r]`` for DoF c on the path from DoF r's joint to the root.

    Same H as newton's J / M / two dense GEMMs (M is block diagonal and J follows the tree) at a fraction of the
    cost. Each H entry is written exactly once and no thread carries a loop accumulator, so warp's adjoint is exact.
    """
    t = wp.tid()
    v = wp.dot(joint_s[entry_col[t]], force[entry_row[t]])
    i = entry_index[t]
    h_out[i] = v
    it = entry_index_t[t]
    if it != i:
        h_out[it] = v


@wp.kernel
def copy_wrench_kernel(src: wp.array[wp.spatial_vector], dst: wp.array[wp.spatial_vector]):
    """``dst = src`` (a differentiable copy)."""
    i = wp.tid()
    dst[i] = src[i]


# ---------------------------------------------------------------------------------------------------------------------
# model building helpers
# ---------------------------------------------------------------------------------------------------------------------
def prepare_mjcf(path: str | Path, density: float | None = 1000.0, drop_world_geoms: bool = True) -> str:
    """The MJCF text of ``path`` with dflex's mass rule applied and world geoms (the floor) removed.

    dflex derives masses from the collision shapes at one density and ignores MJCF ``density``/``mass``/``<inertial>``;
    setting ``density`` on every geom and removing the rest makes newton's importer do the same.
    """
    tree = ET.parse(str(path))
    root = tree.getroot()
    if density is not None:
        for parent in root.iter():
            for child in list(parent):
                if child.tag == "inertial":
                    parent.remove(child)
        for geom in root.iter("geom"):
            geom.attrib.pop("mass", None)
            geom.set("density", repr(float(density)))
    if drop_world_geoms:
        for world in root.iter("worldbody"):
            for child in list(world):
                if child.tag == "geom":
                    world.remove(child)
    return ET.tostring(root, encoding="unicode")


def mjcf_dof_names(path: str | Path) -> list[str]:
    """Names of the non-free joints of an MJCF in document (= newton DoF) order."""
    root = ET.parse(str(path)).getroot()
    names = []
    for world in root.iter("worldbody"):
        for joint in world.iter():
            if joint.tag == "freejoint" or (joint.tag == "joint" and joint.get("type") == "free"):
                continue
            if joint.tag == "joint":
                names.append(joint.get("name", f"joint{len(names)}"))
    return names


def set_masses_from_shapes(builder: Any, density: float, bodies: Sequence[int] | None = None) -> None:
    """Recompute body mass, COM and inertia of ``builder``'s bodies from their collision shapes at ``density``.

    This is dflex's rule for URDF/MJCF alike (inertial tags ignored). Shapes on body -1 (world) are skipped.
    """
    _newton()
    from newton.geometry import compute_inertia_shape

    bodies = range(builder.body_count) if bodies is None else bodies
    for b in bodies:
        mass, first, second = 0.0, np.zeros(3), np.zeros((3, 3))  # sum m, sum m*c, inertia about the body origin
        for s in range(builder.shape_count):
            if builder.shape_body[s] != b:
                continue
            m, com, inertia = compute_inertia_shape(
                builder.shape_type[s], builder.shape_scale[s], builder.shape_source[s], density
            )
            if m <= 0.0:
                continue
            tf = builder.shape_transform[s]
            rot = np.array(wp.quat_to_matrix(wp.quat(*tf[3:7]))).reshape(3, 3)
            c = rot @ np.array(com) + np.array(tf[:3])
            inertia_b = rot @ np.array(inertia).reshape(3, 3) @ rot.T
            mass += m
            first += m * c
            second += inertia_b + m * (np.dot(c, c) * np.eye(3) - np.outer(c, c))
        if mass <= 0.0:
            continue
        com = first / mass
        inertia_com = second - mass * (np.dot(com, com) * np.eye(3) - np.outer(com, com))
        builder.body_mass[b] = mass
        builder.body_inv_mass[b] = 1.0 / mass
        builder.body_com[b] = wp.vec3(*com)
        builder.body_inertia[b] = wp.mat33(*inertia_com.flatten())
        builder.body_inv_inertia[b] = wp.mat33(*np.linalg.inv(inertia_com).flatten())


def configure_joints(
    builder: Any,
    dofs: Sequence[int] | slice,
    *,
    armature: float | Sequence[float] | None = None,
    damping: float | Sequence[float] | None = None,
    stiffness: float | Sequence[float] | None = None,
    limit_ke: float | None = None,
    limit_kd: float | None = None,
) -> None:
    """Set per-DoF joint constants on ``builder`` with dflex's meaning.

    ``damping`` is dflex's target damping and ``limit_kd`` dflex's always-on limit damping: their sum becomes newton's
    ``joint_damping`` (newton's at-limit-only damping is set to 0). ``stiffness`` is a spring to ``joint_rest_q``.
    ``None`` keeps the builder's current value (for ``damping``: the imported value, still adding ``limit_kd``).
    """
    idx = list(range(len(builder.joint_armature)))[dofs] if isinstance(dofs, slice) else list(dofs)

    def _values(value, i):
        return value[i] if isinstance(value, Sequence) else value

    for k, d in enumerate(idx):
        if armature is not None:
            builder.joint_armature[d] = float(_values(armature, k))
        if stiffness is not None:
            builder.joint_stiffness[d] = float(_values(stiffness, k))
        base_damping = builder.joint_damping[d] if damping is None else float(_values(damping, k))
        builder.joint_damping[d] = base_damping + (float(limit_kd) if limit_kd is not None else 0.0)
        if limit_kd is not None:
            builder.joint_limit_kd[d] = 0.0
        if limit_ke is not None:
            builder.joint_limit_ke[d] = float(limit_ke)
        builder.joint_target_ke[d] = 0.0
        builder.joint_target_kd[d] = 0.0


def contact_points(builder: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """dflex's ground-contact points of one robot: (body [P], local point [P, 3], radius [P])."""
    newton = _newton()
    bodies, points, radii = [], [], []
    for s in range(builder.shape_count):
        b = builder.shape_body[s]
        if b < 0:
            continue
        kind = int(builder.shape_type[s])
        tf = builder.shape_transform[s]
        pos = np.array(tf[:3])
        rot = np.array(wp.quat_to_matrix(wp.quat(*tf[3:7]))).reshape(3, 3)
        scale = builder.shape_scale[s]
        if kind == int(newton.GeoType.SPHERE):
            local, radius = [pos], scale[0]
        elif kind == int(newton.GeoType.CAPSULE):
            axis = rot @ np.array([0.0, 0.0, scale[1]])
            local, radius = [pos + axis, pos - axis], scale[0]
        elif kind == int(newton.GeoType.BOX):
            corners = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], dtype=float)
            local, radius = [pos + rot @ (c * np.array(scale[:3])) for c in corners], 0.0
        else:
            continue
        for p in local:
            bodies.append(b)
            points.append(p)
            radii.append(radius)
    return np.array(bodies, dtype=np.int32), np.array(points, dtype=np.float32), np.array(radii, dtype=np.float32)


@dataclass
class ContactParams:
    """dflex ground-contact constants (see ``ground_contact_kernel``)."""

    ke: float
    kd: float
    kf: float
    mu: float


ExtraForces = Callable[[Any, Any, Any, int], None]


# ---------------------------------------------------------------------------------------------------------------------
# the simulator
# ---------------------------------------------------------------------------------------------------------------------
def _adjoint(arg: Any) -> Any:
    """The adjoint argument of a kernel argument, as ``wp.Tape.backward`` passes it (grad array or None)."""
    return arg.grad if isinstance(arg, wp.array) else None


class _Ops:
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


class _Buffers:
    """The arrays of one control step. ``fresh=False``: one reusable set (the no-grad path; the q/qd chains
    alternate between two arrays). ``fresh=True``: a new array with grads for every write (a taped slot), so no array
    is written twice in a step and every adjoint sees its own primal values."""

    def __init__(self, sim: WarpSim, fresh: bool) -> None:
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
        sc = _Scratch()
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
        sc = _Scratch()
        sc.body_q = self._array("end_body_q", 0, m.body_count, wp.transform)
        sc.body_qd = self._array("end_body_qd", 0, m.body_count, wp.spatial_vector)
        sc.joint_qd = self._array("end_qd", 0, m.joint_dof_count, float)
        return sc


class _Scratch:
    """A namespace of arrays."""


class WarpSim:
    """``num_envs`` worlds of one robot stepped by newton's Featherstone kernels (see the module docstring).

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
    ) -> None:
        newton = _newton()
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
        self.model = scene.finalize(device=self.device, requires_grad=False)
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
        self._persistent = _Buffers(self, fresh=False)
        self._free_slots: dict[int, list[_Slot]] = {}
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
            return _WarpStep.apply(self, q, qd, joint_f, extra)
        with torch.no_grad(), _Scoped(self):
            return self._step_nograd(q, qd, joint_f, extra)

    def body_state(self, q: torch.Tensor, qd: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Forward kinematics: body poses ``[N, B, 7]`` (pos, quat xyzw) and public twists ``[N, B, 6]``."""
        newton = _newton()
        s = self._fk_state
        with torch.no_grad(), _Scoped(self):
            wp.to_torch(s.joint_q).copy_(q.reshape(-1))
            wp.to_torch(s.joint_qd).copy_(qd.reshape(-1))
            newton.eval_fk(self.model, s.joint_q, s.joint_qd, s)
            body_q = wp.to_torch(s.body_q).view(self.num_envs, self.bodies_per_world, 7).clone()
            body_qd = wp.to_torch(s.body_qd).view(self.num_envs, self.bodies_per_world, 6).clone()
        return body_q, body_qd

    # ---- internals --------------------------------------------------------------------------------------------------
    def _emit(self, ops: _Ops, bufs: _Buffers, q_in: Any, qd_in: Any, joint_f: Any, extra: Any, hooks: Any) -> Any:
        """Issue one control step (``substeps`` Featherstone substeps); returns the arrays of (q, public qd)."""
        from newton._src.solvers.featherstone import kernels as fk

        newton = _newton()
        m, sv, ctrl = self.model, self.solver, self._control
        arts, joints = m.articulation_count, m.joint_count
        q, qd = q_in, None
        mm = None
        for k in range(self.substeps):
            sc = bufs.scratch(k)
            ops.launch(
                fk.eval_rigid_fk,
                arts,
                [
                    m.articulation_start,
                    m.articulation_end,
                    m.joint_type,
                    m.joint_parent,
                    m.joint_child,
                    m.joint_q_start,
                    m.joint_qd_start,
                    q,
                    m.joint_X_p,
                    m.joint_X_c,
                    sv.body_X_com,
                    m.joint_axis,
                    m.joint_dof_dim,
                ],
                [sc.body_q, sc.body_q_com],
            )
            if k == 0:
                qd = bufs.qd(0)
                ops.launch(
                    fk.convert_free_distance_joint_qd_public_to_internal,
                    joints,
                    [
                        m.joint_type,
                        m.joint_parent,
                        m.joint_child,
                        m.joint_qd_start,
                        m.joint_X_p,
                        sc.body_q,
                        m.body_com,
                        qd_in,
                    ],
                    [qd],
                )
            ops.zero(sc.body_f_s)
            ops.launch(
                fk.eval_rigid_id,
                arts,
                [
                    None,
                    m.articulation_start,
                    m.articulation_end,
                    m.joint_type,
                    m.joint_parent,
                    m.joint_child,
                    m.joint_q_start,
                    m.joint_qd_start,
                    q,
                    qd,
                    None,
                    m.joint_axis,
                    m.joint_dof_dim,
                    sv.body_I_m,
                    sc.body_q,
                    sc.body_q_com,
                    m.joint_X_p,
                    m.body_world,
                    m.gravity,
                ],
                [sc.body_qd, sc.joint_S_s, sc.body_solve_origin, sc.body_I_s, sc.body_v_s, sc.body_f_s, sc.body_a_s],
            )
            # external wrenches (public: force, torque about the COM, world axes) from poses and public twists
            ops.zero(sc.body_f)
            if self.num_points:
                c = self.contact
                ops.launch(
                    ground_contact_kernel,
                    self.num_envs * self.num_points,
                    [
                        sc.body_q,
                        sc.body_qd,
                        m.body_com,
                        self.point_body,
                        self.point_local,
                        self.point_radius,
                        c.ke,
                        c.kd,
                        c.kf,
                        c.mu,
                    ],
                    [sc.body_f],
                )
            if self.extra_forces is not None:
                view = newton.State()
                view.body_q, view.body_qd, view.body_f, view.joint_q = sc.body_q, sc.body_qd, sc.body_f, q
                hook = functools.partial(self.extra_forces, m, view, extra, k)
                if hooks is None:
                    ops.call(hook)
                else:  # taped slot: the hook's launches go on a small tape per use; its backward runs in place
                    ops.call(functools.partial(hooks.forward, k, hook), functools.partial(hooks.backward, k))
            if sc.body_f_ext is not sc.body_f:
                ops.launch(copy_wrench_kernel, m.body_count, [sc.body_f], [sc.body_f_ext])
            ops.zero(sc.body_ft_s)
            ops.launch(
                fk.eval_rigid_tau,
                arts,
                [
                    None,
                    m.articulation_start,
                    m.articulation_end,
                    m.joint_type,
                    m.joint_parent,
                    m.joint_child,
                    m.joint_q_start,
                    m.joint_qd_start,
                    m.joint_target_q_start,
                    m.joint_dof_dim,
                    ctrl.joint_target_q,
                    ctrl.joint_target_qd,
                    q,
                    qd,
                    joint_f,
                    m.joint_target_ke,
                    m.joint_target_kd,
                    m.joint_limit_lower,
                    m.joint_limit_upper,
                    m.joint_limit_ke,
                    m.joint_limit_kd,
                    m.joint_damping,
                    m.joint_stiffness,
                    m.joint_rest_q,
                    sc.joint_S_s,
                    sc.body_q_com,
                    sc.body_solve_origin,
                    sc.body_f_s,
                    sc.body_f_ext,
                ],
                [sc.body_ft_s, sc.joint_tau],
            )
            if sc.body_f_ext is not sc.body_f:
                # eval_rigid_tau shifted body_f_ext in place; its adjoint must replay with the public wrenches
                restore = wp.launch(
                    copy_wrench_kernel, m.body_count, [sc.body_f], [sc.body_f_ext], device=self.device, record_cmd=True
                )
                ops.on_backward(restore.launch)
            if k % self.mm_interval == 0:
                mm = bufs.mass_matrix()
                ops.zero(mm[2])
                ops.launch(
                    composite_force_kernel,
                    len(self._pair_dof),
                    [self._pair_dof, self._pair_body, sc.joint_S_s, sc.body_I_s],
                    [mm[2]],
                )
                ops.launch(
                    mass_matrix_entries_kernel,
                    len(self._entry_row),
                    [self._entry_row, self._entry_col, self._entry_index, self._entry_index_t, sc.joint_S_s, mm[2]],
                    [mm[0]],
                )
                ops.launch(
                    fk.eval_dense_cholesky_batched,
                    arts,
                    [
                        sv.articulation_H_start,
                        sv.articulation_H_rows,
                        sv.articulation_dof_start,
                        mm[0],
                        sv.joint_armature_effective,
                    ],
                    [mm[1]],
                )
            ops.launch(
                fk.eval_dense_solve_batched,
                arts,
                [
                    sv.articulation_H_start,
                    sv.articulation_H_rows,
                    sv.articulation_dof_start,
                    mm[0],
                    mm[1],
                    sc.joint_tau,
                ],
                [sc.joint_qdd, sc.joint_solve_tmp],
            )
            q_next, qd_next = bufs.q(k + 1), bufs.qd(k + 1)
            ops.launch(
                fk.integrate_generalized_joints,
                joints,
                [
                    m.joint_type,
                    m.joint_parent,
                    m.joint_child,
                    m.joint_q_start,
                    m.joint_qd_start,
                    m.joint_dof_dim,
                    m.joint_X_c,
                    m.body_com,
                    q,
                    qd,
                    sc.joint_qdd,
                    self.sub_dt,
                ],
                [q_next, qd_next],
            )
            q, qd = q_next, qd_next
        end = bufs.end()
        ops.launch(
            fk.eval_articulation_fk_with_velocity_conversion,
            arts,
            [
                m.articulation_start,
                m.articulation_end,
                arts,
                None,
                None,
                q,
                qd,
                m.joint_q_start,
                m.joint_qd_start,
                m.joint_type,
                m.joint_parent,
                m.joint_child,
                m.joint_X_p,
                m.joint_X_c,
                m.joint_axis,
                m.joint_dof_dim,
                m.body_com,
            ],
            [end.body_q, end.body_qd],
        )
        ops.launch(
            fk.convert_free_distance_joint_qd_internal_to_public,
            joints,
            [m.joint_type, m.joint_parent, m.joint_child, m.joint_qd_start, m.joint_X_p, end.body_q, m.body_com, qd],
            [end.joint_qd],
        )
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
                _Ops(self.device, program), self._persistent, io["q"], io["qd"], io["f"], io["extra"], None
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

    def _acquire(self, extra_size: int) -> _Slot:
        free = self._free_slots.setdefault(extra_size, [])
        return free.pop() if free else _Slot(self, extra_size)

    def _release(self, slot: _Slot) -> None:
        self._free_slots.setdefault(slot.extra_size, []).append(slot)


class _HookTapes:
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


class _Slot:
    """A reusable taped control step: arrays written once each, a pre-packed forward program and the matching
    pre-packed adjoint launches (a hand-made ``wp.Tape`` that costs no Python argument packing per use)."""

    def __init__(self, sim: WarpSim, extra_size: int) -> None:
        m = sim.model
        bufs = _Buffers(sim, fresh=True)
        self.sim = sim
        self.extra_size = extra_size
        self.q_in = bufs._array("in_q", 0, m.joint_coord_count, float)
        self.qd_in = bufs._array("in_qd", 0, m.joint_dof_count, float)
        self.f_in = bufs._array("in_f", 0, m.joint_dof_count, float)
        self.extra_in = bufs._array("in_extra", 0, extra_size, float) if extra_size else None
        self.hooks = _HookTapes()
        self.program: list[Callable[[], Any]] = []
        backward: list[Callable[[], Any]] = []
        ops = _Ops(sim.device, self.program, backward)
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


class _Lease:
    """Holds a slot for one recorded step; returns it to the pool after backward or when the graph is freed."""

    def __init__(self, sim: WarpSim, slot: _Slot) -> None:
        self.sim: WarpSim | None = sim
        self.slot = slot

    def release(self) -> None:
        if self.sim is not None:
            self.sim._release(self.slot)
            self.sim = None

    def __del__(self) -> None:
        self.release()


class _Scoped:
    """Run warp on the sim's device (and, on CUDA, on torch's current stream)."""

    def __init__(self, sim: WarpSim) -> None:
        self.scopes = [wp.ScopedDevice(sim.device)]
        if sim.device.is_cuda:
            self.scopes.append(wp.ScopedStream(wp.stream_from_torch(sim.torch_device)))

    def __enter__(self) -> None:
        for s in self.scopes:
            s.__enter__()

    def __exit__(self, *exc: Any) -> None:
        for s in reversed(self.scopes):
            s.__exit__(*exc)


class _WarpStep(torch.autograd.Function):
    """Differentiable control step (see ``WarpSim.step``)."""

    @staticmethod
    def forward(ctx, sim: WarpSim, q, qd, joint_f, extra):  # type: ignore[override]
        with _Scoped(sim):
            slot = sim._acquire(0 if extra is None else extra.numel())
            lease = _Lease(sim, slot)
            slot.forward(q, qd, joint_f, extra)
            q_new = wp.to_torch(slot.q_out).view(sim.num_envs, sim.nq).clone()
            qd_new = wp.to_torch(slot.qd_out).view(sim.num_envs, sim.nqd).clone()
        ctx.sim = sim
        ctx.lease = lease
        ctx.meta = [(t.shape, t.dtype) if t is not None else None for t in (q, qd, joint_f, extra)]
        return q_new, qd_new

    @staticmethod
    def backward(ctx, grad_q, grad_qd):  # type: ignore[override]
        lease: _Lease | None = ctx.lease
        if lease is None or lease.sim is None:
            raise RuntimeError("WarpSim step: backward through the same step twice is not supported")
        with _Scoped(ctx.sim):
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


# ---------------------------------------------------------------------------------------------------------------------
# torch quaternion helpers (xyzw, batched over leading dims)
# ---------------------------------------------------------------------------------------------------------------------
def quat_mul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Hamilton product of xyzw quaternions."""
    ax, ay, az, aw = a.unbind(-1)
    bx, by, bz, bw = b.unbind(-1)
    return torch.stack(
        (
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
            aw * bw - ax * bx - ay * by - az * bz,
        ),
        dim=-1,
    )


def quat_conjugate(q: torch.Tensor) -> torch.Tensor:
    return torch.cat((-q[..., :3], q[..., 3:]), dim=-1)


def quat_rotate(q: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Rotate vectors ``v [..., 3]`` by unit quaternions ``q [..., 4]`` (xyzw)."""
    u, w = q[..., :3], q[..., 3:]
    t = 2.0 * torch.cross(u, v, dim=-1)
    return v + w * t + torch.cross(u, t, dim=-1)


def quat_from_axis_angle(axis: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """xyzw quaternion of a rotation by ``angle [...]`` about unit ``axis [..., 3]``."""
    half = 0.5 * angle.unsqueeze(-1)
    return torch.cat((axis * torch.sin(half), torch.cos(half)), dim=-1)


# dflex's base rotation: -pi/2 about x maps the Z-up MJCF frame onto dflex's Y-up world, (x, y, z) -> (x, z, -y)
DFLEX_BASE_QUAT = (-math.sin(math.pi / 4), 0.0, 0.0, math.cos(math.pi / 4))


def to_dflex_frame(v: torch.Tensor) -> torch.Tensor:
    """World vectors ``[..., 3]`` from newton's Z-up axes to dflex's Y-up axes: (x, y, z) -> (x, z, -y)."""
    return torch.stack((v[..., 0], v[..., 2], -v[..., 1]), dim=-1)


# ---------------------------------------------------------------------------------------------------------------------
# the env base class
# ---------------------------------------------------------------------------------------------------------------------
@dataclass
class WarpEnvConfig(EnvConfig):
    """Physics settings every warp task shares (tasks set dflex's values as their defaults).

    ``mm_interval``: recompute the mass matrix every this many substeps (dflex's ``MM_caching_frequency``; ``None`` =
    once per control step). ``contact_*``: see ``ground_contact_kernel``. ``limit_ke``/``limit_kd``: dflex's joint
    limit stiffness and its always-on damping. ``density``: the mass-from-shapes density.
    """

    substeps: int = 16
    dt: float = 1.0 / 60.0
    mm_interval: int | None = None
    contact_ke: float = 4.0e4
    contact_kd: float = 1.0e4
    contact_kf: float = 3.0e3
    contact_mu: float = 0.75
    limit_ke: float = 1.0e3
    limit_kd: float = 10.0
    density: float = 1000.0


class WarpArticulationEnv(BatchedEnv):
    """``BatchedEnv`` whose physics is a ``WarpSim`` (see the module docstring).

    A task implements:

    * ``_build_robot(builder)``: add ONE robot to a Z-up ``newton.ModelBuilder`` (``load_mjcf`` helps) and set its
      per-DoF constants (``configure_joints``); it is replicated ``num_envs`` times.
    * ``_joint_forces(action) -> [N, nqd]``: generalized forces from the clipped action (differentiable torch).
    * ``_initial_state(n)``, ``_observe(state)``, ``_reward(obs, action)``, ``_terminated(obs)`` as in ``BatchedEnv``;
      the state is ``{"q", "qd", "act"}``, and ``make_state`` builds one.
    * optionally ``_extra_inputs(action)`` and ``_extra_forces(model, state, extra, substep)`` (muscles etc.).
    """

    cfg: WarpEnvConfig
    free_base: bool = True  # q starts with a free joint (pos 3, quat 4), qd with (v_com 3, omega 3)

    def __init__(self, cfg: WarpEnvConfig, requires_grad: bool = False) -> None:
        super().__init__(cfg, requires_grad)
        newton = _newton()
        robot = newton.ModelBuilder(up_axis=newton.Axis.Z)
        self._build_robot(robot)
        self.robot = robot
        overrides_extra = type(self)._extra_forces is not WarpArticulationEnv._extra_forces
        self.sim = WarpSim(
            robot,
            cfg.num_envs,
            device=self.device,
            substeps=cfg.substeps,
            dt=cfg.dt,
            contact=ContactParams(cfg.contact_ke, cfg.contact_kd, cfg.contact_kf, cfg.contact_mu),
            mm_interval=cfg.mm_interval,
            contact_bodies=self._contact_bodies(robot),
            extra_forces=self._extra_forces if overrides_extra else None,
        )
        self.nq, self.nqd = self.sim.nq, self.sim.nqd
        # world-frame COM offset of the root body in its own frame (for dflex's origin velocity)
        self.root_com = torch.tensor(np.array(robot.body_com[0], dtype=np.float32), device=self.device)

    # ---- hooks ------------------------------------------------------------------------------------------------------
    @abc.abstractmethod
    def _build_robot(self, builder: Any) -> None:
        """Add one robot to ``builder`` (replicated ``num_envs`` times) and set its per-DoF constants."""

    @abc.abstractmethod
    def _joint_forces(self, action: torch.Tensor) -> torch.Tensor:
        """``[N, nqd]`` generalized forces from the clipped action (differentiable)."""

    def _contact_bodies(self, builder: Any) -> Sequence[int] | None:
        """Bodies whose shapes touch the ground (``None`` = all)."""
        return None

    def _extra_inputs(self, action: torch.Tensor) -> torch.Tensor | None:
        """A ``[N, K]`` tensor handed (flattened) to ``_extra_forces`` each substep; its grad flows back."""
        return None

    def _extra_forces(self, model: Any, state: Any, extra: Any, substep: int) -> None:
        """Add body wrenches for one substep with a warp kernel (default: none). See the module docstring.

        Args:
            model: the ``newton.Model`` (all worlds; world ``w``'s bodies are ``w * B .. (w + 1) * B - 1``).
            state: a ``newton.State`` view whose ``body_q``/``body_qd``/``joint_q`` are read-only and whose ``body_f``
                receives wrenches via ``wp.atomic_add`` (see the module docstring; ``joint_qd`` is not provided).
            extra: the flat ``wp.array`` of ``_extra_inputs(action)`` (or ``None``).
            substep: 0 .. substeps-1 within the control step.
        """

    # ---- BatchedEnv -------------------------------------------------------------------------------------------------
    def _simulate(self, state: State, action: torch.Tensor) -> State:
        q, qd = self.sim.step(state["q"], state["qd"], self._joint_forces(action), self._extra_inputs(action))
        return {"q": q, "qd": qd, "act": action}

    def make_state(self, q: torch.Tensor, qd: torch.Tensor, act: torch.Tensor | None = None) -> State:
        """A state dict (the quaternion of a free base is normalised)."""
        if self.free_base:
            q = torch.cat((q[:, :3], q[:, 3:7] / q[:, 3:7].norm(dim=-1, keepdim=True), q[:, 7:]), dim=-1)
        if act is None:
            act = torch.zeros(q.shape[0], self.action_dim, device=self.device)
        return {"q": q.float(), "qd": qd.float(), "act": act.float()}

    def uniform(self, n: int, dim: int, scale: float) -> torch.Tensor:
        """U(-scale, scale) of shape ``[n, dim]`` from the env's generator."""
        return (torch.rand(n, dim, generator=self.generator, device=self.device) * 2.0 - 1.0) * scale

    def free_base_initial_state(
        self,
        n: int,
        start_pos: Sequence[float],
        joint_q: Sequence[float] | torch.Tensor,
        pos_noise: float = 0.1,
        rot_noise: float = math.pi / 24,
        joint_noise: float = 0.2,
        qd_noise: float = 0.25,
    ) -> State:
        """dflex's Ant/Humanoid start: base at ``start_pos`` (newton Z-up), upright, joints at ``joint_q``; with
        ``stochastic_init``: pos += U(±pos_noise), orientation *= random axis-angle U(±rot_noise), joints +=
        U(±joint_noise), qd = U(±qd_noise)."""
        q = torch.zeros(n, self.nq, device=self.device)
        q[:, :3] = torch.tensor(start_pos, device=self.device, dtype=torch.float32)
        q[:, 6] = 1.0
        q[:, 7:] = torch.as_tensor(joint_q, device=self.device, dtype=torch.float32)
        qd = torch.zeros(n, self.nqd, device=self.device)
        if self.cfg.stochastic_init:
            q[:, :3] += self.uniform(n, 3, pos_noise)
            angle = self.uniform(n, 1, rot_noise).squeeze(-1)
            axis = torch.nn.functional.normalize(self.uniform(n, 3, 0.5), dim=-1)
            q[:, 3:7] = quat_mul(q[:, 3:7], quat_from_axis_angle(axis, angle))
            q[:, 7:] += self.uniform(n, self.nq - 7, joint_noise)
            qd = self.uniform(n, self.nqd, qd_noise)
        return self.make_state(q, qd)

    # ---- observation helpers (free base; dflex frame) ---------------------------------------------------------------
    @staticmethod
    def height(q: torch.Tensor) -> torch.Tensor:
        """Root height (dflex's y, newton's z), ``[N]``."""
        return q[:, 2]

    @staticmethod
    def dflex_quat(q: torch.Tensor) -> torch.Tensor:
        """The root orientation as dflex stored it (including its -pi/2 base rotation), xyzw ``[N, 4]``."""
        base = torch.tensor(DFLEX_BASE_QUAT, device=q.device, dtype=q.dtype).expand(q.shape[0], 4)
        return quat_mul(base, q[:, 3:7])

    def origin_velocity(self, q: torch.Tensor, qd: torch.Tensor) -> torch.Tensor:
        """World velocity of the root body's origin (dflex's ``v_twist - p x w``), newton axes ``[N, 3]``."""
        com_world = quat_rotate(q[:, 3:7], self.root_com.expand(q.shape[0], 3))
        return qd[:, 0:3] - torch.cross(qd[:, 3:6], com_world, dim=-1)

    def up_and_heading(self, q: torch.Tensor, target_x: float) -> tuple[torch.Tensor, torch.Tensor]:
        """dflex's ``up_vec[1]`` and ``heading_vec . target_dir`` (target at (target_x, 0) on the ground), ``[N]``."""
        rot = q[:, 3:7]
        n = q.shape[0]
        ez = torch.tensor([0.0, 0.0, 1.0], device=q.device).expand(n, 3)
        ex = torch.tensor([1.0, 0.0, 0.0], device=q.device).expand(n, 3)
        up = quat_rotate(rot, ez)[:, 2]
        heading = quat_rotate(rot, ex)
        to_target = torch.stack((target_x - q[:, 0], -q[:, 1], torch.zeros_like(q[:, 0])), dim=-1)
        direction = torch.nn.functional.normalize(to_target, dim=-1)
        return up, (heading * direction).sum(-1)

    def free_base_obs(self, state: State, target_x: float, with_action: bool = True) -> torch.Tensor:
        """dflex's Ant/Humanoid/Anymal observation: [height, quat (4), COM lin vel (3), ang vel (3), joint q,
        0.1 * joint qd, up_y, heading_proj, previous action] in dflex's frame."""
        q, qd = state["q"], state["qd"]
        up, heading = self.up_and_heading(q, target_x)
        parts = [
            self.height(q).unsqueeze(-1),
            self.dflex_quat(q),
            to_dflex_frame(self.origin_velocity(q, qd)),
            to_dflex_frame(qd[:, 3:6]),
            q[:, 7:],
            0.1 * qd[:, 6:],
            up.unsqueeze(-1),
            heading.unsqueeze(-1),
        ]
        if with_action:
            parts.append(state["act"])
        return torch.cat(parts, dim=-1)


def load_mjcf(
    builder: Any, path: str | Path, density: float = 1000.0, floating: bool | None = None, **kwargs: Any
) -> None:
    """Add an MJCF robot to ``builder`` with dflex's mass rule (every geom at ``density``) and without world geoms."""
    builder.add_mjcf(
        prepare_mjcf(path, density),
        floating=floating,
        parse_visuals=False,
        parse_sites=False,
        enable_self_collisions=False,
        **kwargs,
    )


@dataclass
class FreeBaseConfig(WarpEnvConfig):
    """Settings of the free-floating robots (Ant, Anymal, Humanoid): start pose, dflex's reset noise, the heading
    target and the termination height. An empty ``start_joint_q`` starts every joint at 0."""

    start_height: float = 0.75
    start_joint_q: tuple[float, ...] = ()
    pos_noise: float = 0.1
    rot_noise: float = math.pi / 24
    joint_noise: float = 0.2
    qd_noise: float = 0.25
    target_x: float = 10000.0
    termination_height: float = 0.27


class FreeBaseRobotEnv(WarpArticulationEnv):
    """A robot on a free joint with torque-driven joints: dflex's start state, observation layout (``free_base_obs``)
    and height termination. ``_build_robot`` must set ``self.torque_scale`` (scalar or per joint): the joint torque
    is ``torque_scale * action`` and the free joint gets no generalized force."""

    cfg: FreeBaseConfig
    torque_scale: torch.Tensor | float

    def _joint_forces(self, action: torch.Tensor) -> torch.Tensor:
        root = torch.zeros(action.shape[0], 6, device=action.device, dtype=action.dtype)
        return torch.cat((root, action * self.torque_scale), dim=-1)

    def _initial_state(self, n: int) -> State:
        cfg = self.cfg
        joint_q = cfg.start_joint_q or torch.zeros(self.nq - 7)
        return self.free_base_initial_state(
            n, (0.0, 0.0, cfg.start_height), joint_q, cfg.pos_noise, cfg.rot_noise, cfg.joint_noise, cfg.qd_noise
        )

    def _observe(self, state: State) -> torch.Tensor:
        return self.free_base_obs(state, self.cfg.target_x)

    def _terminated(self, obs: torch.Tensor) -> torch.Tensor:
        return obs[:, 0] < self.cfg.termination_height
