"""Differentiable articulated-body simulation on warp/newton (Featherstone) behind torch tensors, dflex-style.

Modules, bottom up: ``kernels`` (warp/newton start-up, our warp kernels), ``assets`` (asset paths, MJCF loading
and dflex's model-building rules), ``program`` (replayable launch programs and their buffers), ``featherstone``
(the substep's launch stages), ``autograd`` (the ``torch.autograd.Function`` around a recorded step),
``simulator`` (``WarpSim``), ``frames`` (quaternions, newton -> dflex axes) and ``env`` (the env base classes).

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

Physics that follows dflex (``docs/simulators.md``, "Physics that follows dflex"), not newton's defaults:

* masses and inertias from the collision shapes at one density (``set_masses_from_shapes``); where a robot must move
  exactly as dflex's, its inertias follow dflex's own accumulation rule with its element-wise "rotation"
  (``dflex_inertia.apply_dflex_inertia``, used by the Ant; the SNU asset carries inertias made by that rule), and
  the robot sets ``exact_inertia`` so newton keeps them;
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
