"""``make_env``: one constructor for every evaluation environment, by TD-MPC2 task name."""

from __future__ import annotations

from pwm.data.tasks import get_task, get_task_set
from pwm.envs.wrappers import MultitaskEnv


def make_env(task: str, seed: int, *, task_set: str | None = None, episode_length: int | None = None):
    """The environment of ``task`` (a name from MT30/MT80), seeded; with ``task_set`` it speaks that set's
    padded dims. Unknown names raise a KeyError listing the valid ones."""
    if task_set is not None:
        ts = get_task_set(task_set)
        task_id = ts.index(task)
    spec = get_task(task)
    length = episode_length or spec.episode_length
    if spec.suite == "metaworld":
        from pwm.envs.metaworld import MetaWorldEnv

        env = MetaWorldEnv(task, seed=seed, episode_length=length)
    else:
        from pwm.envs.dmcontrol import DMControlEnv

        env = DMControlEnv(task, seed=seed, episode_length=length)
    return MultitaskEnv(env, ts, task_id) if task_set is not None else env
