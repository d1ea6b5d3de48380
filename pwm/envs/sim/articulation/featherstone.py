"""The Featherstone substep as a launch program: newton 1.8's ``SolverFeatherstone.step`` re-issued with its own
kernels, one named stage per function, each appending its launches to an ``Ops`` program.

``WarpSim._emit`` strings the stages together: per substep forward kinematics, (on the first substep) the public ->
internal free-joint velocity conversion, inverse dynamics, external wrenches (ground contact and the task's
extra-forces hook), joint torques, the mass matrix and its Cholesky factor (every ``mm_interval`` substeps), the
joint-space solve and the integration; after the last substep, forward kinematics with the internal -> public
velocity conversion. ``sim`` is the ``WarpSim``: its model, solver, control, contact points and CRBA index lists.
``sc`` is one substep's ``Scratch`` of arrays (``Buffers.scratch``).
"""

from __future__ import annotations

import functools
from typing import Any

import warp as wp

from pwm.envs.sim.articulation.kernels import (
    composite_force_kernel,
    copy_wrench_kernel,
    ground_contact_kernel,
    import_newton,
    mass_matrix_entries_kernel,
)
from pwm.envs.sim.articulation.program import Ops


def _featherstone_kernels() -> Any:
    """newton's internal Featherstone kernels module (imported on first use, after warp is initialised)."""
    import_newton()
    from newton._src.solvers.featherstone import kernels as fk

    return fk


def emit_fk(sim: Any, ops: Ops, sc: Any, q: Any) -> None:
    """Body poses of joint coordinates ``q`` (``sc.body_q``, ``sc.body_q_com``)."""
    fk = _featherstone_kernels()
    m, sv, arts = sim.model, sim.solver, sim.model.articulation_count
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


def emit_qd_to_internal(sim: Any, ops: Ops, sc: Any, qd_in: Any, qd: Any) -> None:
    """Public generalized velocities ``qd_in`` -> the solver's internal free-joint convention, into ``qd``."""
    fk = _featherstone_kernels()
    m, joints = sim.model, sim.model.joint_count
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


def emit_inverse_dynamics(sim: Any, ops: Ops, sc: Any, q: Any, qd: Any) -> None:
    """Body twists, motion subspaces, spatial inertias and the bias wrenches of the substep (``eval_rigid_id``)."""
    fk = _featherstone_kernels()
    m, sv, arts = sim.model, sim.solver, sim.model.articulation_count
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


def emit_external_wrenches(sim: Any, ops: Ops, sc: Any, q: Any, extra: Any, hooks: Any, k: int) -> None:
    """``sc.body_f``: public wrenches (force, torque about the COM, world axes) of the ground contact and the
    extra-forces hook, from the poses and public twists; copied to ``sc.body_f_ext`` on a taped slot."""
    m = sim.model
    # external wrenches (public: force, torque about the COM, world axes) from poses and public twists
    ops.zero(sc.body_f)
    if sim.num_points:
        c = sim.contact
        ops.launch(
            ground_contact_kernel,
            sim.num_envs * sim.num_points,
            [
                sc.body_q,
                sc.body_qd,
                m.body_com,
                sim.point_body,
                sim.point_local,
                sim.point_radius,
                c.ke,
                c.kd,
                c.kf,
                c.mu,
            ],
            [sc.body_f],
        )
    if sim.extra_forces is not None:
        view = import_newton().State()
        view.body_q, view.body_qd, view.body_f, view.joint_q = sc.body_q, sc.body_qd, sc.body_f, q
        hook = functools.partial(sim.extra_forces, m, view, extra, k)
        if hooks is None:
            ops.call(hook)
        else:  # taped slot: the hook's launches go on a small tape per use; its backward runs in place
            ops.call(functools.partial(hooks.forward, k, hook), functools.partial(hooks.backward, k))
    if sc.body_f_ext is not sc.body_f:
        ops.launch(copy_wrench_kernel, m.body_count, [sc.body_f], [sc.body_f_ext])


def emit_joint_torques(sim: Any, ops: Ops, sc: Any, q: Any, qd: Any, joint_f: Any) -> None:
    """Generalized forces of the substep (``eval_rigid_tau``: actuation, joint springs/damping/limits, wrenches)."""
    fk = _featherstone_kernels()
    m, ctrl, arts = sim.model, sim._control, sim.model.articulation_count
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
            copy_wrench_kernel, m.body_count, [sc.body_f], [sc.body_f_ext], device=sim.device, record_cmd=True
        )
        ops.on_backward(restore.launch)


def emit_mass_matrix(sim: Any, ops: Ops, sc: Any, mm: tuple[Any, Any, Any]) -> None:
    """The joint-space mass matrix ``mm[0]`` by the two-launch CRBA and its Cholesky factor ``mm[1]``."""
    fk = _featherstone_kernels()
    sv, arts = sim.solver, sim.model.articulation_count
    ops.zero(mm[2])
    ops.launch(
        composite_force_kernel,
        len(sim._pair_dof),
        [sim._pair_dof, sim._pair_body, sc.joint_S_s, sc.body_I_s],
        [mm[2]],
    )
    ops.launch(
        mass_matrix_entries_kernel,
        len(sim._entry_row),
        [sim._entry_row, sim._entry_col, sim._entry_index, sim._entry_index_t, sc.joint_S_s, mm[2]],
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


def emit_solve_and_integrate(
    sim: Any, ops: Ops, sc: Any, mm: tuple[Any, Any, Any], q: Any, qd: Any, q_next: Any, qd_next: Any
) -> None:
    """Joint accelerations from the factored mass matrix, then one semi-implicit Euler substep into ``q_next``,
    ``qd_next``."""
    fk = _featherstone_kernels()
    m, sv = sim.model, sim.solver
    arts, joints = m.articulation_count, m.joint_count
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
            sim.sub_dt,
        ],
        [q_next, qd_next],
    )


def emit_public_output(sim: Any, ops: Ops, end: Any, q: Any, qd: Any) -> None:
    """After the last substep: body poses and twists, and the public generalized velocities ``end.joint_qd``."""
    fk = _featherstone_kernels()
    m = sim.model
    arts, joints = m.articulation_count, m.joint_count
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
