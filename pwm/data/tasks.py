"""MT30 / MT80 task registry in the official TD-MPC2 order.

The index of a task in its set is its task id: the row of the task embedding and the value stored in the
dataset's ``task`` field. Changing the order would silently pair data and checkpoints with the wrong task.
"""

from __future__ import annotations

from dataclasses import dataclass

DMC_EPISODE_LENGTH = 500
METAWORLD_EPISODE_LENGTH = 100

# (name, obs_dim, action_dim) for the 30 DMControl tasks; ids 19-29 are TD-MPC2's custom tasks.
_DMC_TASKS: tuple[tuple[str, int, int], ...] = (
    ("walker-stand", 24, 6),
    ("walker-walk", 24, 6),
    ("walker-run", 24, 6),
    ("cheetah-run", 17, 6),
    ("reacher-easy", 6, 2),
    ("reacher-hard", 6, 2),
    ("acrobot-swingup", 6, 1),
    ("pendulum-swingup", 3, 1),
    ("cartpole-balance", 5, 1),
    ("cartpole-balance-sparse", 5, 1),
    ("cartpole-swingup", 5, 1),
    ("cartpole-swingup-sparse", 5, 1),
    ("cup-catch", 8, 2),
    ("finger-spin", 9, 2),
    ("finger-turn-easy", 12, 2),
    ("finger-turn-hard", 12, 2),
    ("fish-swim", 24, 5),
    ("hopper-stand", 15, 4),
    ("hopper-hop", 15, 4),
    ("walker-walk-backwards", 24, 6),
    ("walker-run-backwards", 24, 6),
    ("cheetah-run-backwards", 17, 6),
    ("cheetah-run-front", 17, 6),
    ("cheetah-run-back", 17, 6),
    ("cheetah-jump", 17, 6),
    ("hopper-hop-backwards", 15, 4),
    ("reacher-three-easy", 8, 3),
    ("reacher-three-hard", 8, 3),
    ("cup-spin", 8, 2),
    ("pendulum-spin", 3, 1),
)

_METAWORLD_TASKS: tuple[str, ...] = (
    "assembly", "basketball", "button-press-topdown", "button-press-topdown-wall", "button-press",
    "button-press-wall", "coffee-button", "coffee-pull", "coffee-push", "dial-turn", "disassemble",
    "door-open", "door-close", "drawer-close", "drawer-open", "faucet-open", "faucet-close", "hammer",
    "handle-press-side", "handle-press", "handle-pull-side", "handle-pull", "lever-pull", "peg-insert-side",
    "peg-unplug-side", "pick-out-of-hole", "pick-place", "pick-place-wall", "plate-slide", "plate-slide-side",
    "plate-slide-back", "plate-slide-back-side", "push-back", "push", "push-wall", "reach", "reach-wall",
    "shelf-place", "soccer", "stick-push", "stick-pull", "sweep-into", "sweep", "window-open", "window-close",
    "bin-picking", "box-close", "door-lock", "door-unlock", "hand-insert",
)  # fmt: skip


@dataclass(frozen=True)
class TaskSpec:
    """One task: its dims before padding and its episode length in agent steps (action repeat 2)."""

    name: str
    obs_dim: int
    action_dim: int
    episode_length: int

    @property
    def suite(self) -> str:
        return "metaworld" if self.name.startswith("mw-") else "dmcontrol"

    @property
    def discount(self) -> float:
        """TD-MPC2's heuristic: γ = clip((L/5 - 1) / (L/5), 0.95, 0.995) for episode length L."""
        frac = self.episode_length / 5
        return min(max((frac - 1) / frac, 0.95), 0.995)


@dataclass(frozen=True)
class TaskSet:
    """An ordered multitask set with the padded dims its datasets and checkpoints use."""

    name: str
    tasks: tuple[TaskSpec, ...]
    obs_dim: int
    action_dim: int
    dataset_episode_length: int

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.tasks]

    @property
    def action_dims(self) -> list[int]:
        return [t.action_dim for t in self.tasks]

    @property
    def discounts(self) -> list[float]:
        return [t.discount for t in self.tasks]

    def index(self, name: str) -> int:
        """Task id of ``name``; an unknown name lists the valid ones."""
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(f"unknown task {name!r} for {self.name}; valid tasks: {', '.join(self.names)}") from None

    def __len__(self) -> int:
        return len(self.tasks)


_DMC = tuple(TaskSpec(n, o, a, DMC_EPISODE_LENGTH) for n, o, a in _DMC_TASKS)
_MW = tuple(TaskSpec(f"mw-{n}", 39, 4, METAWORLD_EPISODE_LENGTH) for n in _METAWORLD_TASKS)

MT30 = TaskSet("mt30", _DMC, obs_dim=24, action_dim=6, dataset_episode_length=501)
MT80 = TaskSet("mt80", _DMC + _MW, obs_dim=39, action_dim=6, dataset_episode_length=101)
TASK_SETS: dict[str, TaskSet] = {"mt30": MT30, "mt80": MT80}


def get_task_set(name: str) -> TaskSet:
    if name not in TASK_SETS:
        raise KeyError(f"unknown task set {name!r}; valid: {', '.join(TASK_SETS)}")
    return TASK_SETS[name]


def get_task(name: str) -> TaskSpec:
    """Look a single task up in MT80 (which contains MT30)."""
    return MT80.tasks[MT80.index(name)]
