"""What every entry script shares: where the run goes, the typed config, the tuned CPU allocator, and one-line
errors.

A known failure (bad config, data, checkpoint or run state, a non-finite loss, a busy run directory) ends the
script with one line ``error: ...``; inside a Hydra multirun it is raised instead, so that the sweep's other jobs
still run and Hydra reports this one. A misspelt command-line key is caught before Hydra starts, with the nearest
valid key suggested.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

from pwm.checkpoint.run_state import RunStateError
from pwm.checkpoint.tdmpc2_layouts import CheckpointError
from pwm.config import ConfigError
from pwm.data.dataset import DatasetError
from pwm.data.episodes import EpisodeFileError
from pwm.data.videos import VideoDataError
from pwm.training.loop import TrainingError
from pwm.utils.io import DiskFullError
from pwm.utils.perf import tune_cpu_allocator
from pwm.utils.run_lock import RunDirBusyError

KNOWN_ERRORS = (
    ConfigError, DatasetError, CheckpointError, RunStateError, TrainingError, EpisodeFileError, RunDirBusyError,
    DiskFullError, KeyError, ImportError, VideoDataError,
)  # fmt: skip
EXAMPLES = {  # what a missing mandatory value looks like when given
    "general.data_dir": "general.data_dir=data/demo (a directory of chunk_*.pt, e.g. from scripts/make_dataset.py)",
    "general.checkpoint": "general.checkpoint=runs/demo/models/150.pt (a world model from train_world_model.py)",
    "env.name": "env=dflex_cartpole",
}
CFG_DIR = Path(__file__).resolve().parents[2] / "cfg"


def hydra_run_dir() -> Path:
    """The run directory: ``general.run_dir`` when given (the configs point Hydra's own at it), else Hydra's."""
    from hydra.core.hydra_config import HydraConfig

    return Path(HydraConfig.get().runtime.output_dir)


def to_object(cfg: DictConfig) -> Any:
    """The typed config object; a missing mandatory value or a bad value is a one-line ConfigError."""
    try:
        return OmegaConf.to_object(cfg)
    except MissingMandatoryValue as err:
        key = err.full_key
        raise ConfigError(f"{key} is required: give it as {EXAMPLES.get(key, f'{key}=...')}") from None
    except OmegaConfBaseException as err:
        raise ConfigError(f"config: {str(err).splitlines()[0]}") from None


def run_script(train: Callable[[], Any], run_dir: Path) -> Any:
    """Run ``train()`` with the allocator tuned; a known error becomes one line."""
    tune_cpu_allocator()
    print(f"run directory: {run_dir}", flush=True)
    try:
        return train()
    except KNOWN_ERRORS as err:
        _fail(f"error: {err.args[0] if err.args else err}")


def check_command_line(default_config: str, argv: list[str] | None = None) -> None:
    """Before Hydra runs: compose the command line's config once, and turn an unknown key into one line naming
    the nearest valid keys. Sweeps (``-m``) and Hydra's own flags are left to Hydra."""
    argv = sys.argv[1:] if argv is None else argv
    if any(a in ("-m", "--multirun", "--help", "-h", "--cfg", "-c", "--info") for a in argv):
        return
    name, overrides = _split_command_line(default_config, argv)
    from hydra import compose, initialize_config_dir
    from hydra.errors import ConfigCompositionException

    try:
        with initialize_config_dir(config_dir=str(CFG_DIR), version_base="1.3"):
            compose(name, overrides=overrides)
    except ConfigCompositionException as err:
        message = _suggest(name, overrides, err)
        if message:
            _fail(message)
    except Exception:  # anything else: Hydra reports it its own way
        return


def _split_command_line(default_config: str, argv: list[str]) -> tuple[str, list[str]]:
    name, overrides, i = default_config, [], 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("-cn", "--config-name"):
            name, i = argv[i + 1], i + 2
            continue
        if arg.startswith("--config-name="):
            name = arg.split("=", 1)[1]
        elif "=" in arg and not arg.startswith("-") and not arg.startswith("hydra"):
            overrides.append(arg)
        i += 1
    return name, overrides


def _suggest(name: str, overrides: list[str], err: Exception) -> str | None:
    """``error: unknown key general.stepz; did you mean general.steps?`` for a key missing from the config."""
    text = str(err)
    if "Could not find" in text and "Available options" in text:  # an unknown config-group choice
        options = [line.strip() for line in text.split("Available options", 1)[1].splitlines()[1:]]
        choices = [o for o in options if o and not o.startswith(("Config search path", "provider="))]
        return f"error: {text.splitlines()[0].split(': ', 1)[-1]}; choose one of {', '.join(choices)}"
    bad = next((o.split("=", 1)[0].lstrip("+~") for o in overrides if f"'{o}'" in text or o in text), None)
    if bad is None or ("not in struct" not in text and "Could not override" not in text):
        return None
    from hydra import compose, initialize_config_dir

    if bad.startswith("env.config."):  # a task setting the env's yaml does not list: Hydra wants it added with +
        return f"error: {bad} is not in this env's yaml; set a task setting it lacks with +{bad}=..."
    rest = [o for o in overrides if not o.startswith(bad + "=") and "." not in o.split("=", 1)[0]]
    with initialize_config_dir(config_dir=str(CFG_DIR), version_base="1.3"):
        cfg = compose(name, overrides=rest)
    keys = _flat_keys(OmegaConf.to_container(cfg, resolve=False))
    close = difflib.get_close_matches(bad, keys, n=2, cutoff=0.6)
    hint = f"; did you mean {' or '.join(close)}?" if close else "; see the config with --cfg job"
    return f"error: unknown key {bad}{hint}"


def _flat_keys(node: Any, prefix: str = "") -> list[str]:
    if not isinstance(node, dict):
        return [prefix[:-1]]
    keys = []
    for key, value in node.items():
        keys += _flat_keys(value, f"{prefix}{key}.") if isinstance(value, dict) and value else [f"{prefix}{key}"]
    return keys


def _fail(message: str) -> None:
    if _in_multirun():
        raise RuntimeError(message) from None
    sys.exit(message)


def _in_multirun() -> bool:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
