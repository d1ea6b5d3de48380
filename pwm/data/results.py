"""Schema of ``results.csv``, the per-run evaluation log that training writes and evaluation reads.

One file per run (one task set, algorithm, task and seed), with this header and one row per evaluation:

- ``iteration``: training iteration at which the evaluation ran (int);
- ``task``, ``task_set``, ``seed``, ``alg``: the run's identity, equal on every row;
- ``episode_reward``, ``episode_success``, ``episode_length``: evaluation episode statistics (floats);
- ``total_time``: training wall-clock seconds up to this evaluation (float).

It lives in the data layer so that the writer (``pwm.training.multitask``) and the reader
(``pwm.evaluation.aggregate``) share it without importing each other.
"""

from __future__ import annotations

RESULTS_FILENAME = "results.csv"
RESULTS_HEADER: tuple[str, ...] = (
    "iteration", "task", "task_set", "seed", "alg", "episode_reward", "episode_success", "episode_length",
    "total_time",
)  # fmt: skip
