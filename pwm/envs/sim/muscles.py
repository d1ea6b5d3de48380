"""Muscle forces (dflex semantics) and ball-joint springs as body wrenches for newton's Featherstone solver.

dflex models a muscle as a polyline of waypoints fixed on bodies. For every consecutive waypoint pair on two
different bodies it applies a force of magnitude ``activation`` (already multiplied by the muscle's strength)
along the segment: the first body is pulled towards the second waypoint and the second body towards the first,
so the pair is equal and opposite and a muscle never moves the skeleton's centre of mass. There is no Hill-type
force-length/velocity model and no passive force (``docs/simulators.md``, "Physics that follows dflex"). Pairs
on the same body carry no force: they only route the line (wrap points).

newton's ``State.body_f`` is a world-frame wrench ``(force, torque)`` about the body's centre of mass
(checked in ``tests/test_envs_anymal_snu.py``: a force written there accelerates a free body by F/m and does not
spin it), so each segment end adds ``(f, (p - com) x f)``.

The kernels here are differentiable under ``wp.Tape`` (w.r.t. the forces and the body poses). newton's
Featherstone ball joints have no drive, stiffness or limit; ``ball_spring_kernel`` adds dflex's ball-joint
stiffness (``-ke * q_xyz``, the quaternion's vector part, as a torque pair on parent and child).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import warp as wp

ASSETS = Path(__file__).parent / "assets"
SNU_MUSCLE_FILE = ASSETS / "snu_muscles.json"


@dataclass(frozen=True)
class MuscleTable:
    """Muscles read from a table: names, groups, strengths ``f0`` [N] and waypoints ``(body name, local point)``."""

    names: tuple[str, ...]
    groups: tuple[str, ...]
    f0: np.ndarray
    waypoints: tuple[tuple[tuple[str, tuple[float, float, float]], ...], ...]

    @property
    def num_muscles(self) -> int:
        return len(self.names)

    @property
    def body_names(self) -> set[str]:
        return {body for path in self.waypoints for body, _ in path}

    def segments(self, body_index: Mapping[str, int]) -> MuscleSegments:
        """The force-carrying segments (consecutive waypoints on different bodies), bodies as local indices."""
        missing = sorted(self.body_names - set(body_index))
        if missing:
            raise KeyError(f"muscle table names bodies the skeleton lacks: {', '.join(missing)}")
        muscle, b0, b1, p0, p1 = [], [], [], [], []
        for m, path in enumerate(self.waypoints):
            for (name0, q0), (name1, q1) in itertools.pairwise(path):
                if name0 == name1:
                    continue
                muscle.append(m)
                b0.append(body_index[name0])
                b1.append(body_index[name1])
                p0.append(q0)
                p1.append(q1)
        return MuscleSegments(
            muscle=np.asarray(muscle, dtype=np.int32),
            body0=np.asarray(b0, dtype=np.int32),
            body1=np.asarray(b1, dtype=np.int32),
            point0=np.asarray(p0, dtype=np.float32).reshape(-1, 3),
            point1=np.asarray(p1, dtype=np.float32).reshape(-1, 3),
        )


@dataclass(frozen=True)
class MuscleSegments:
    """One world's muscle segments: muscle index, the two body indices and body-local attachment points."""

    muscle: np.ndarray
    body0: np.ndarray
    body1: np.ndarray
    point0: np.ndarray
    point1: np.ndarray

    def __len__(self) -> int:
        return len(self.muscle)


def load_muscle_table(path: str | Path = SNU_MUSCLE_FILE) -> MuscleTable:
    """Read and validate a muscle table (JSON: ``{"muscles": [{"name", "group", "f0", "waypoints"}, ...]}``)."""
    with open(path) as fh:
        raw = json.load(fh)
    names, groups, f0, waypoints = [], [], [], []
    for i, entry in enumerate(raw["muscles"]):
        name = entry.get("name", f"muscle{i}")
        path_pts = tuple((str(body), tuple(float(x) for x in point)) for body, point in entry["waypoints"])
        if len(path_pts) < 2 or any(len(p) != 3 for _, p in path_pts):
            raise ValueError(f"{path}: muscle {name} needs >= 2 waypoints of 3 coordinates")
        if all(a == b for (a, _), (b, _) in itertools.pairwise(path_pts)):
            raise ValueError(f"{path}: muscle {name} has no segment between two different bodies")
        if not float(entry["f0"]) > 0.0:
            raise ValueError(f"{path}: muscle {name} needs f0 > 0, got {entry['f0']}")
        names.append(name)
        groups.append(entry.get("group", name))
        f0.append(float(entry["f0"]))
        waypoints.append(path_pts)
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: muscle names are not unique")
    return MuscleTable(tuple(names), tuple(groups), np.asarray(f0, dtype=np.float32), tuple(waypoints))


@wp.kernel
def muscle_wrench_kernel(
    body_q: wp.array(dtype=wp.transform),
    body_com: wp.array(dtype=wp.vec3),
    seg_force: wp.array(dtype=int),
    seg_body0: wp.array(dtype=int),
    seg_body1: wp.array(dtype=int),
    seg_point0: wp.array(dtype=wp.vec3),
    seg_point1: wp.array(dtype=wp.vec3),
    force: wp.array(dtype=float),
    body_f: wp.array(dtype=wp.spatial_vector),
):
    """One thread per segment (all worlds): pull the two attachment points together with ``force[seg_force]``."""
    s = wp.tid()
    b0 = seg_body0[s]
    b1 = seg_body1[s]
    x0 = body_q[b0]
    x1 = body_q[b1]
    p0 = wp.transform_point(x0, seg_point0[s])
    p1 = wp.transform_point(x1, seg_point1[s])
    c0 = wp.transform_point(x0, body_com[b0])
    c1 = wp.transform_point(x1, body_com[b1])
    f = wp.normalize(p1 - p0) * force[seg_force[s]]
    wp.atomic_add(body_f, b0, wp.spatial_vector(f, wp.cross(p0 - c0, f)))
    wp.atomic_add(body_f, b1, wp.spatial_vector(-f, wp.cross(p1 - c1, -f)))


@wp.kernel
def ball_spring_kernel(
    body_q: wp.array(dtype=wp.transform),
    joint_q: wp.array(dtype=float),
    ball_parent: wp.array(dtype=int),
    ball_child: wp.array(dtype=int),
    ball_q_start: wp.array(dtype=int),
    ball_frame: wp.array(dtype=wp.quat),
    ball_ke: wp.array(dtype=float),
    body_f: wp.array(dtype=wp.spatial_vector),
):
    """dflex's ball-joint stiffness: torque ``-ke * q_xyz`` (joint frame) on the child and its opposite on the parent.

    The vector part of the joint quaternion is the rotation axis times sin(angle/2); it is the same in the parent
    and child joint frames, rotated to world by the parent body's pose and the joint's parent frame
    (``ball_frame``). The sign of ``w`` is folded in so that ``q`` and ``-q`` (the same rotation) agree.
    """
    k = wp.tid()
    qs = ball_q_start[k]
    v = wp.vec3(joint_q[qs + 0], joint_q[qs + 1], joint_q[qs + 2])
    if joint_q[qs + 3] < 0.0:
        v = -v
    parent = ball_parent[k]
    rot = ball_frame[k]
    if parent >= 0:
        rot = wp.transform_get_rotation(body_q[parent]) * rot
    tau = wp.quat_rotate(rot, v) * (-ball_ke[k])
    wp.atomic_add(body_f, ball_child[k], wp.spatial_vector(wp.vec3(0.0), tau))
    if parent >= 0:
        wp.atomic_add(body_f, parent, wp.spatial_vector(wp.vec3(0.0), -tau))


class MuscleModel:
    """A muscle table bound to a replicated newton model: launches the wrench kernel for all worlds at once.

    Args:
        table: the muscles.
        body_names: the body names of one world, in newton's body order (world ``w`` owns bodies
            ``[w * len(body_names), (w + 1) * len(body_names))``, as ``ModelBuilder.replicate`` lays them out).
        num_worlds: how many copies the model holds.
        device: warp device of the model.
    """

    def __init__(self, table: MuscleTable, body_names: Sequence[str], num_worlds: int, device: str | None = None):
        self.table = table
        self.num_worlds = num_worlds
        self.bodies_per_world = len(body_names)
        segs = table.segments({name: i for i, name in enumerate(body_names)})
        self.segments = segs
        n, m, b = len(segs), table.num_muscles, self.bodies_per_world
        world = np.repeat(np.arange(num_worlds, dtype=np.int32), n)
        self.seg_force = wp.array(world * m + np.tile(segs.muscle, num_worlds), dtype=int, device=device)
        self.seg_body0 = wp.array(world * b + np.tile(segs.body0, num_worlds), dtype=int, device=device)
        self.seg_body1 = wp.array(world * b + np.tile(segs.body1, num_worlds), dtype=int, device=device)
        self.seg_point0 = wp.array(np.tile(segs.point0, (num_worlds, 1)), dtype=wp.vec3, device=device)
        self.seg_point1 = wp.array(np.tile(segs.point1, (num_worlds, 1)), dtype=wp.vec3, device=device)

    @property
    def num_segments(self) -> int:
        return len(self.segments) * self.num_worlds

    def apply(self, body_q: wp.array, body_com: wp.array, force: wp.array, body_f: wp.array) -> None:
        """Add the muscle wrenches to ``body_f``; ``force`` is ``[num_worlds * num_muscles]`` signed forces [N]."""
        if force.shape[0] != self.num_worlds * self.table.num_muscles:
            raise ValueError(f"force must have {self.num_worlds * self.table.num_muscles} entries, got {force.shape}")
        wp.launch(
            muscle_wrench_kernel,
            dim=self.num_segments,
            inputs=[
                body_q,
                body_com,
                self.seg_force,
                self.seg_body0,
                self.seg_body1,
                self.seg_point0,
                self.seg_point1,
                force,
            ],
            outputs=[body_f],
            device=body_f.device,
        )


class BallSprings:
    """dflex's ball-joint stiffness for every BALL joint of a newton model (see ``ball_spring_kernel``); ``ke``: one
    stiffness for all, or one per ball joint of a world (in joint order; repeated over the worlds)."""

    def __init__(self, model, ke: float | Sequence[float]):
        import newton

        types = model.joint_type.numpy()
        ids = np.flatnonzero(types == int(newton.JointType.BALL))
        self.count = len(ids)
        ke = np.asarray(ke, dtype=np.float32).reshape(-1)  # one value, or one per ball joint of one world (tiled)
        ke = np.tile(ke, self.count // ke.size) if self.count % ke.size == 0 else np.broadcast_to(ke, (self.count,))
        self.any_stiffness = bool(np.any(ke != 0.0))
        self.ke = wp.array(ke.copy(), dtype=float, device=model.device)
        device = model.device
        self.parent = wp.array(model.joint_parent.numpy()[ids].astype(np.int32), dtype=int, device=device)
        self.child = wp.array(model.joint_child.numpy()[ids].astype(np.int32), dtype=int, device=device)
        self.q_start = wp.array(model.joint_q_start.numpy()[ids].astype(np.int32), dtype=int, device=device)
        frames = model.joint_X_p.numpy()[ids][:, 3:7] if self.count else np.zeros((0, 4))
        self.frame = wp.array(frames.astype(np.float32), dtype=wp.quat, device=device)

    def apply(self, body_q: wp.array, joint_q: wp.array, body_f: wp.array) -> None:
        if self.count == 0 or not self.any_stiffness:
            return
        wp.launch(
            ball_spring_kernel,
            dim=self.count,
            inputs=[body_q, joint_q, self.parent, self.child, self.q_start, self.frame, self.ke],
            outputs=[body_f],
            device=body_f.device,
        )
