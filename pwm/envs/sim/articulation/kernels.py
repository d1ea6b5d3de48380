"""The warp side of the articulation backend: warp/newton start-up and our own warp kernels.

Every kernel lives in this one module, so warp compiles them together, once, into its kernel cache. newton is
imported through ``import_newton`` (never at module import), so building a torch-only task never loads it.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import warp as wp

wp.config.quiet = True

_WARP_READY = False
_WARNED: list[bool] = []


def init_warp() -> None:
    """``wp.init()`` once (``wp.from_torch`` and friends need it); say so when the kernels will be compiled."""
    global _WARP_READY
    if not _WARP_READY:
        wp.init()
        _WARP_READY = True
        cache = Path(wp.config.kernel_cache_dir or "")
        if not any(cache.glob(f"wp_{__name__}_*")):  # no compiled copy of this module yet: a silent minute follows
            print(f"compiling the simulator's warp kernels into {cache} (first run only, about a minute)",
                  file=sys.stderr, flush=True)  # fmt: skip


NEWTON_VERSION = "1.8.0"  # WarpSim issues newton's internal Featherstone kernels; their signatures are version-bound


def import_newton():
    """The ``newton`` module, after ``init_warp``; warns once when its version is not the one we were written for."""
    init_warp()
    import newton

    if getattr(newton, "__version__", NEWTON_VERSION) != NEWTON_VERSION and not _WARNED:
        warnings.warn(
            f"pwm.envs.sim.articulation was written against newton {NEWTON_VERSION} internals, "
            f"found {newton.__version__}",
            stacklevel=2,
        )
        _WARNED.append(True)
    return newton


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
