"""Environments, in two packages with two contracts.

``pwm.envs.sim``
    Batched, differentiable simulators on the torch ``BatchedEnv`` contract (``sim/base.py``): dflex's seven
    single-task benchmarks (``sim/registry.py``), rebuilt on a torch planar solver (CartPole, DoublePendulum) and on
    newton's Featherstone solver over warp (Hopper, Ant, Humanoid, Anymal, SNU Humanoid; ``sim/articulation/``).
    SHAC and PWM's single-task loop train on these; see ``docs/simulators.md``.

``pwm.envs.suites``
    DMControl (with TD-MPC2's 11 custom tasks) and Meta-World evaluation envs on a numpy reset/step protocol with
    TD-MPC2's conventions (``suites/registry.py``'s ``make_env``), for multitask data and evaluation.

The two packages do not import each other.
"""
