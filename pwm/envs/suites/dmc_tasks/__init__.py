"""TD-MPC2's 11 custom DMControl tasks (MT30 ids 19-29), reimplemented from their published definitions.

TD-MPC2 (``tdmpc2/envs/tasks``) added these tasks to dm_control's stock domains: mirrored or one-footed
locomotion rewards, a 3-link reacher, spinning the ball around the cup and spinning the pendulum. Each module here
builds them from the stock domain's ``Physics`` and ``Task`` classes, overriding only the reward (and, for
``cup-spin``, the initial state), so observations, initial-state randomisation and timing stay the stock ones.
None of them terminates early. The 3-link reacher's model is our own ``reacher_three_links.xml``.

Registration: :func:`register` adds the task factories to the stock domains' ``SUITE`` (dm_control's public
``TaggedTasks.add`` decorator, tag ``"custom"``), so ``dm_control.suite.load("walker", "walk_backwards")`` works
as in TD-MPC2. It runs the first time a custom task is requested (``DMControlEnv``), never at import, so importing
``pwm`` leaves dm_control untouched. dm_control's precomputed ``suite.ALL_TASKS`` / ``TASKS_BY_DOMAIN`` tuples
are not extended (that needs private helpers); :data:`TASKS` lists the custom tasks instead.
"""

from __future__ import annotations

import functools
import importlib

from pwm.envs.suites.gl import use_headless_gl

use_headless_gl()  # the domain modules import dm_control, which picks its GL backend at import

# dm_control domain -> its custom task names (TD-MPC2 name: <domain alias>-<task with dashes>).
TASKS: dict[str, tuple[str, ...]] = {
    "walker": ("walk_backwards", "run_backwards"),
    "cheetah": ("run_backwards", "run_front", "run_back", "jump"),
    "hopper": ("hop_backwards",),
    "reacher": ("three_easy", "three_hard"),
    "ball_in_cup": ("spin",),
    "pendulum": ("spin",),
}


def edit_model(xml: bytes, old: bytes, new: bytes) -> bytes:
    """``xml`` with its single occurrence of ``old`` replaced; fails loudly if a dm_control update moved it."""
    if xml.count(old) != 1:
        raise RuntimeError(f"expected exactly one {old.decode()!r} in the stock model XML, found {xml.count(old)}")
    return xml.replace(old, new)


@functools.cache
def register() -> None:
    """Add the custom tasks to dm_control's stock domains (idempotent).

    A name that the domain already holds with another factory (e.g. TD-MPC2's own registration in the same
    process) is an error rather than a silent override, since the two could differ.
    """
    for domain, names in TASKS.items():
        ours = importlib.import_module(f"{__name__}.{domain}")
        stock = importlib.import_module(f"dm_control.suite.{domain}")
        for name in names:
            factory = getattr(ours, name)
            if name in stock.SUITE:
                if stock.SUITE[name] is not factory:
                    raise RuntimeError(f"dm_control's {domain} domain already has a task {name!r} that is not pwm's")
                continue
            stock.SUITE.add("custom")(factory)
