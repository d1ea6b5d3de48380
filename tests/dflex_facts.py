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

# SNU: 11 bodies; joint DoFs per side: Femur ball (3), Tibia hinge, Talus ball (3), FootThumb and FootPinky hinges
SNU_SIDE_RANGES = [None, None, None, (0.0, 2.3), None, None, None, (-0.6, 0.6), (-0.6, 0.6)]
ROBOTS["dflex_snu_humanoid"] = {
    "obs": 53,
    "act": 152,
    "masses": [15.0, *[7.0, 3.0, 0.6, 0.2, 0.2] * 2],
    "total": 37.0,
    "ranges": SNU_SIDE_RANGES * 2,
    "settle": (120, 0, 0.1901),
}
# dflex's Skeleton gains (stiffness 5 sqrt(m/15), limit_ke 1e3 m/15, limit_kd 10 m/15, damping 2) as the fork's
# ModelBuilder holds them: hinge DoF -> (stiffness, limit_ke, damping incl. the always-on limit damping)
SNU_HINGE_GAINS = {"TibiaR": (2.2361, 200.0, 4.0), "FootThumbR": (0.57735, 13.3333, 2.13333)}
SNU_BALL_STIFFNESS = {"FemurR": 3.41565, "TalusR": 1.0}
# muscle284.xml's units whose waypoints all lie on the 11 bodies (dflex keeps exactly these)
SNU_MUSCLES = {"units": 152, "waypoints": 636, "f0_sum": 55158.5, "f0_median": 212.85, "f0_max": 1792.95}

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

# One 16-step rollout of the fork's dflex (CPU build, float32) from the deterministic start under the actions
# a[t, j] = 0.5 sin(0.3 t + j): the summed reward, the first 23 observation entries after the last step, and the
# gradient of the summed reward w.r.t. the first 8 entries of the first action.
ROLLOUT_STEPS = 16
# fmt: off
ANT_ROLLOUT_OBS = [
    0.58769, -0.67141, -0.06332, -0.01199, 0.73828, 0.17791, 0.94113, 0.49058, 0.41239, 0.51278, 0.86852, 0.63924,
    1.52606, 0.29565, -1.22445, -0.30139, -0.86577, 0.35713, 1.62926, -0.02905, -0.06172, -0.0421, 0.1247,
]
ANYMAL_ROLLOUT_OBS = [
    0.30893, -0.6952, 0.02974, -0.01683, 0.718, -0.15895, -0.98154, 0.05932, 1.86846, 3.02748, 0.67205, 0.20017,
    -0.33838, -0.60323, -0.62946, 0.269, 0.18185, 0.53669, -0.14518, -0.14581, -0.23717, 0.24589, 0.60482,
]
SNU_ROLLOUT_OBS = [
    0.93845, -0.22836, 0.66227, 0.15429, 0.69674, -0.02554, -0.11568, -0.02303, 0.51763, -0.29768, -0.45264,
    0.18557, 0.00036, 0.03833, 0.98188, 0.30216, -0.02744, 0.04113, 0.04519, 0.99775, -0.08278, -0.01238, 0.12419,
]
# fmt: on
ROLLOUTS = {
    "dflex_ant": {
        "total": 25.85042,
        "obs": ANT_ROLLOUT_OBS,
        "grad0": [0.43361, 0.52387, 0.44659, 0.93024, -0.14407, -0.99723, -0.20809, 0.88775],
    },
    "dflex_anymal": {
        "total": 20.33097,
        "obs": ANYMAL_ROLLOUT_OBS,
        "grad0": [-0.57946, -0.25917, 0.28389, 0.21514, -0.01696, 0.02824, 0.18419, -0.06193],
    },
    "dflex_snu_humanoid": {
        "total": 14.85089,
        "obs": SNU_ROLLOUT_OBS,
        "grad0": [0.06224, 0.0521, 0.0679, 0.05859, 0.09059, 0.07762, 0.10363, 0.08574],
    },
}
# float32 runs of two implementations drift apart along a contact-rich rollout: agreement seen is ~1e-3 on the
# observations and ~1 % on the gradients (SNU: 0.2 % on the return)
ROLLOUT_TOL = {"total": 0.1, "obs": 0.01, "grad_abs": 0.005, "grad_rel": 0.02}
