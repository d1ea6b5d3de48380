"""Torch quaternion helpers (xyzw, batched over leading dims) and the map from newton's Z-up world to dflex's Y-up
world (see the package docstring, "Frames")."""

from __future__ import annotations

import math

import torch


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
