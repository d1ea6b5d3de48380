"""What every entry script shares: where the run goes, the tuned CPU allocator, and one-line errors.

A known failure (bad config, data, checkpoint or run state, a non-finite loss) ends the script with one line
``error: ...``; inside a Hydra multirun it is raised instead, so that the sweep's other jobs still run and Hydra
reports this one.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pwm.checkpoint.run_state import RunStateError
from pwm.checkpoint.tdmpc2_layouts import CheckpointError
from pwm.config import ConfigError, RunConfig
from pwm.data.dataset import DatasetError
from pwm.data.episodes import EpisodeFileError
from pwm.training.loop import TrainingError
from pwm.utils.perf import tune_cpu_allocator

KNOWN_ERRORS = (
    ConfigError, DatasetError, CheckpointError, RunStateError, TrainingError, EpisodeFileError, KeyError, ImportError,
)  # fmt: skip


def run_dir_of(general: RunConfig) -> Path:
    """``general.run_dir``, or Hydra's run directory when it is unset."""
    if general.run_dir:
        return Path(general.run_dir)
    from hydra.core.hydra_config import HydraConfig

    return Path(HydraConfig.get().runtime.output_dir)


def run_script(train: Callable[[], Any], run_dir: Path) -> Any:
    """Run ``train()`` with the allocator tuned; a known error becomes one line."""
    tune_cpu_allocator()
    print(f"run directory: {run_dir}", flush=True)
    try:
        return train()
    except KNOWN_ERRORS as err:
        message = f"error: {err.args[0] if err.args else err}"
        if _in_multirun():
            raise RuntimeError(message) from None
        sys.exit(message)


def _in_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
