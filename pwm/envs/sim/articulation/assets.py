"""Asset loading for the articulation backend: where the robot files are, and building one robot into a newton
``ModelBuilder`` with dflex's rules (masses from the collision shapes at one density, dflex's joint constants, and
dflex's ground-contact points). See ``docs/simulators.md``, "Physics that follows dflex".
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import warp as wp

from pwm.envs.sim.articulation.kernels import import_newton

ASSET_DIR = Path(__file__).resolve().parent.parent / "assets"


def newton_asset(name: str) -> str:
    """Path of an asset shipped with newton (``nv_ant.xml``, ``nv_humanoid.xml``)."""
    import newton.examples

    return newton.examples.get_asset(name)


NEWTON_PREFIX = "newton:"


def asset_file(asset: str) -> str:
    """Path of a robot's declared asset (its class's ``ASSET``): ``newton:<name>`` is an asset shipped with newton,
    any other name a file of ours in ``ASSET_DIR``."""
    if asset.startswith(NEWTON_PREFIX):
        return newton_asset(asset[len(NEWTON_PREFIX) :])
    return str(ASSET_DIR / asset)


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
    import_newton()
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
    newton = import_newton()
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
