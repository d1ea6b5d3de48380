"""Facts about dflex's seven tasks as PWM's dflex fork (imgeorgiev/DiffRL) builds them, for the fidelity tests.

Where the numbers come from:

* ``obs``/``act``: ``num_obs``/``num_act`` of the fork's env classes (``dflex/dflex/envs/<task>.py``).
* ``masses``: dflex's ``ModelBuilder.body_mass`` after building one env (masses from the collision shapes at density
  1000; bodies without shapes, e.g. dflex's links for URDF fixed joints or the Hopper's slider links, have none and are
  left out here), in body order. ``total`` is their sum.
* ``ranges``: ``joint_limit_lower``/``joint_limit_upper`` of the actuated DoFs, in radians (dflex reads MJCF degrees);
  ``None`` where dflex sets +-1e3 (URDF limits without bounds) or leaves the joint unlimited.
* ``settle``: (control steps, observation index, value): the observation after that many steps of zero action from
  the fork's deterministic start (``stochastic_init=False``, no early termination, one env). Measured by running
  the fork's dflex on CPU (its kernels build with g++; no GPU needed). Index 0 is the root height (Hopper: the
  z slider, relative to the start).
* Planar tasks: the fork's URDF boxes at density 1000 (cart 0.5 x 0.5 x 0.2 m, poles 0.05 x 0.05 x 1 m),
  armature 0.1, the cart's +-4 m slider limit.
"""

from __future__ import annotations

HIP, ANKLE_UP, ANKLE_DOWN = (-0.69813, 0.69813), (0.5236, 1.74533), (-1.74533, -0.5236)  # Ant, rad
HUMANOID_TRUNK_LEGS = [8.90746, 2.26195, 6.61619, 4.75175, 2.7557, 1.13114, 4.75175, 2.7557, 1.13114]  # kg
# fmt: off
HUMANOID_RANGES = [
    (-0.7854, 0.7854), (-1.309, 0.5236), (-0.61087, 0.61087), (-0.43633, 0.08727), (-1.0472, 0.61087),
    (-1.39626, 0.34907), (-2.79253, 0.03491), (-0.87266, 0.87266), (-0.87266, 0.87266), (-0.43633, 0.08727),
    (-1.0472, 0.61087), (-1.39626, 0.34907), (-2.79253, 0.03491), (-0.87266, 0.87266), (-0.87266, 0.87266),
    (-1.0472, 1.0472), (-1.0472, 1.0472), (-1.5708, 0.87266), (-1.0472, 1.0472), (-1.0472, 1.0472),
    (-1.5708, 0.87266),
]
# fmt: on

ROBOTS = {
    "dflex_hopper": {
        "obs": 11,
        "act": 3,
        "masses": [3.66519, 4.05789, 2.78136, 5.31557],
        "total": 15.82001,
        "ranges": [(-2.61799, 0.0), (-2.61799, 0.0), (-0.7854, 0.7854)],
        "settle": (120, 0, -0.04573),
    },
    "dflex_ant": {
        "obs": 37,
        "act": 8,
        "masses": [96.77605, *[7.83155, 13.51844] * 4],
        "total": 182.17602,
        # (hip, ankle) per leg, legs 1..4 (front left, front right, back left, back right)
        "ranges": [HIP, ANKLE_UP, HIP, ANKLE_DOWN, HIP, ANKLE_DOWN, HIP, ANKLE_UP],
        "settle": (150, 0, 0.24903),
    },
    "dflex_humanoid": {
        "obs": 76,
        "act": 21,
        "masses": [*HUMANOID_TRUNK_LEGS, 1.66108, 1.22954, 1.66108, 1.22954],
        "total": 40.84402,
        "ranges": HUMANOID_RANGES,
        "settle": (150, 0, 0.14636),
    },
    "dflex_anymal": {
        "obs": 49,
        "act": 12,
        "masses": [27.75066, *[2.26195, 0.11310] * 4],
        "total": 37.25091,
        "ranges": [None] * 12,
        "settle": (240, 0, 0.4043),
    },
}

PLANAR = {
    "dflex_cartpole": {"obs": 5, "act": 1, "masses": (50.0, 2.5), "armature": 0.1, "slider_limit": 4.0},
    "dflex_doublependulum": {"obs": 6, "act": 1, "masses": (2.5, 2.5), "armature": 0.1},
}

# Settled heights agree to this (m): the Hopper's foot capsule sits 5 mm off dflex's, and a collapsed robot's
# resting pose depends on float32 rounding along a long contact-rich fall.
SETTLE_TOL = 0.01
MASS_TOL = 1e-3
RANGE_TOL = 1e-4
UNLIMITED = 1.0e3
