"""``make_env``: one constructor for every evaluation environment, by TD-MPC2 task name."""

from __future__ import annotations

from pwm.data.tasks import get_task, get_task_set
from pwm.envs.suites.wrappers import Env, MultitaskEnv


def make_env(task: str, seed: int, *, task_set: str | None = None, episode_length: int | None = None) -> Env:
    """The environment of ``task`` (a name from MT30/MT80), seeded.

    Args:
        task: e.g. ``walker-walk``, ``cup-spin`` or ``mw-assembly``.
        seed: seeds the task's initial-state (and Meta-World goal) randomness.
        task_set: ``"mt30"`` or ``"mt80"`` to get a ``MultitaskEnv`` with that set's padded dims and the task's id
            in it, as multitask models expect; ``None`` for the task's own dims.
        episode_length: agent steps per episode; ``None`` for the task's official length (500 DMControl,
            100 Meta-World). Shorter episodes are for tests and quick looks.

    Unknown task or set names raise a one-line KeyError listing the valid ones.
    """
    task_id = get_task_set(task_set).index(task) if task_set is not None else None
    spec = get_task(task)
    length = spec.episode_length if episode_length is None else episode_length
    if length < 1:
        raise ValueError(f"episode_length must be >= 1, got {length}")
    if spec.suite == "metaworld":
        from pwm.envs.suites.metaworld import MetaWorldEnv

        env: Env = MetaWorldEnv(task, seed=seed, episode_length=length)
    else:
        from pwm.envs.suites.dmcontrol import DMControlEnv

        env = DMControlEnv(task, seed=seed, episode_length=length)
    if env.obs_dim != spec.obs_dim or env.action_dim != spec.action_dim:
        raise RuntimeError(
            f"{task}: the env has obs {env.obs_dim} / action {env.action_dim} but the task registry says "
            f"{spec.obs_dim} / {spec.action_dim}"
        )
    return env if task_id is None else MultitaskEnv(env, get_task_set(task_set), task_id)
