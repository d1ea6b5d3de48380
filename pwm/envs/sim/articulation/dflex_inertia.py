"""dflex's body inertia rule, reproduced as dflex computes it (including its quirk).

dflex's ``ModelBuilder`` adds the shapes of a body one at a time (``_update_body_mass``): the new COM is the
mass-weighted mean, and the new inertia is ``shift(old) + shift(rotate(shape))`` with Steiner's theorem. Its rotation
helper ``transform_inertia`` writes ``R * I * R.T`` on numpy arrays, which is an *element-wise* product, not a
matrix product. So a shape's rotated inertia keeps only ``R_ii^2 I_ii`` on the diagonal, and every time a shape is
added the inertia accumulated so far loses its off-diagonal terms (it is "rotated" by the identity element-wise).
Masses and COMs are unaffected; rotational inertias of bodies with tilted capsules come out smaller than the true
ones (for dflex's Ant the thigh about its long axis ~3x smaller), which makes the legs quicker.

``apply_dflex_inertia`` recomputes mass, COM and inertia of chosen bodies of a newton ``ModelBuilder`` this way, so
a robot built from the same shapes moves as dflex's does. dflex's local shape frames: spheres and boxes as given,
capsules along x (newton's run along z), so a capsule's dflex rotation is the one taking x to the capsule's axis
the way dflex's MJCF parser builds it (about ``axis x e_x`` by ``-acos(axis . e_x)``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import warp as wp

from pwm.envs.sim.articulation.kernels import import_newton

Shape = tuple[float, np.ndarray, np.ndarray, np.ndarray]  # mass, inertia (shape frame), position, rotation


def _axis_angle_matrix(axis: np.ndarray, angle: float) -> np.ndarray:
    """Rotation matrix about a unit ``axis`` by ``angle`` (Rodrigues)."""
    k = np.array([[0.0, -axis[2], axis[1]], [axis[2], 0.0, -axis[0]], [-axis[1], axis[0], 0.0]])
    return np.eye(3) + math.sin(angle) * k + (1.0 - math.cos(angle)) * (k @ k)


def capsule_frame(direction: np.ndarray) -> np.ndarray:
    """dflex's rotation of an x-aligned capsule onto ``direction`` (its MJCF ``fromto`` rule)."""
    d = direction / np.linalg.norm(direction)
    cross = np.cross(d, (1.0, 0.0, 0.0))
    if np.linalg.norm(cross) < 1e-9:
        return np.eye(3)
    angle = math.acos(float(np.clip(d[0], -1.0, 1.0)))
    return _axis_angle_matrix(cross / np.linalg.norm(cross), -angle)


def shape_inertia(kind: str, size: Sequence[float], density: float) -> tuple[float, np.ndarray]:
    """dflex's mass and inertia (about the shape centre, in dflex's shape frame) of a sphere (r), capsule (r, half
    length; x-aligned) or box (half extents)."""
    if kind == "sphere":
        m = density * 4.0 / 3.0 * math.pi * size[0] ** 3
        return m, np.eye(3) * 0.4 * m * size[0] ** 2
    if kind == "capsule":
        r, length = size[0], 2.0 * size[1]
        ms, mc = density * 4.0 / 3.0 * math.pi * r**3, density * math.pi * r * r * length
        ia = mc * (0.25 * r * r + length * length / 12.0) + ms * (0.4 * r * r + 0.375 * r * length + 0.25 * length**2)
        ib = (0.5 * mc + 0.4 * ms) * r * r
        return ms + mc, np.diag((ib, ia, ia))
    w, h, d = (2.0 * s for s in size[:3])
    m = density * w * h * d
    return m, np.diag((m / 12.0 * (h * h + d * d), m / 12.0 * (w * w + d * d), m / 12.0 * (w * w + h * h)))


def _steiner(m: float, offset: np.ndarray) -> np.ndarray:
    return m * (np.dot(offset, offset) * np.eye(3) - np.outer(offset, offset))


def accumulate(
    shapes: Sequence[tuple[float, np.ndarray, np.ndarray, np.ndarray]],
) -> tuple[float, np.ndarray, np.ndarray]:
    """dflex's ``_update_body_mass`` over ``(mass, inertia, pos, rot)`` shapes in order: (mass, com, inertia)."""
    mass, com, inertia = 0.0, np.zeros(3), np.zeros((3, 3))
    for m, inertia_s, pos, rot in shapes:
        new_mass = mass + m
        if new_mass == 0.0:
            continue
        new_com = (com * mass + pos * m) / new_mass
        kept = np.diag(np.diag(inertia))  # the identity-rotated old inertia, element-wise
        rotated = rot * inertia_s * rot.T  # dflex's element-wise "rotation"
        inertia = kept + _steiner(mass, new_com - com) + rotated + _steiner(m, new_com - pos)
        mass, com = new_mass, new_com
    return mass, com, inertia


def _builder_shapes(builder: Any, body: int, density: float) -> list[Shape]:
    newton = import_newton()
    kinds = {
        int(newton.GeoType.SPHERE): "sphere",
        int(newton.GeoType.CAPSULE): "capsule",
        int(newton.GeoType.BOX): "box",
    }
    shapes = []
    for s in range(builder.shape_count):
        kind = kinds.get(int(builder.shape_type[s]))
        if builder.shape_body[s] != body or kind is None:
            continue
        tf = builder.shape_transform[s]
        rot = np.array(wp.quat_to_matrix(wp.quat(*tf[3:7]))).reshape(3, 3)
        if kind == "capsule":
            rot = capsule_frame(rot @ np.array([0.0, 0.0, 1.0]))
        m, inertia = shape_inertia(kind, builder.shape_scale[s], density)
        shapes.append((m, inertia, np.array(tf[:3], dtype=float), rot))
    return shapes


def apply_dflex_inertia(builder: Any, density: float, bodies: Sequence[int] | None = None) -> None:
    """Set mass, COM and inertia of ``builder``'s bodies (default: all) from their shapes by dflex's rule."""
    for b in range(builder.body_count) if bodies is None else bodies:
        mass, com, inertia = accumulate(_builder_shapes(builder, b, density))
        if mass <= 0.0:
            continue
        builder.body_mass[b] = mass
        builder.body_inv_mass[b] = 1.0 / mass
        builder.body_com[b] = wp.vec3(*com)
        builder.body_inertia[b] = wp.mat33(*inertia.flatten())
        builder.body_inv_inertia[b] = wp.mat33(*np.linalg.inv(inertia).flatten())
