"""The one training loop every runner uses: resume, the step / log / eval / save clocks, timing, the progress bar,
metric rows and NaN handling.

A runner (:class:`Runner`) builds its pieces (envs, data, algorithm) and gives the loop one ``train_step``; the loop
owns everything around it, so that resume, logging and failure behave the same for world-model training, multitask
PWM and the single-task simulators. Rerunning with the same run directory resumes from the newest run state with
the same random streams, so an interrupted run reproduces the rows of an uninterrupted one (CPU, fixed seed).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from pwm.checkpoint.run_state import CheckpointDir, RunStateError, Stateful, load_run_state
from pwm.config import LoggerConfig, RunConfig
from pwm.training.metrics import MetricLogger
from pwm.utils.device import resolve_device
from pwm.utils.io import remove_partial_writes
from pwm.utils.run_lock import RunDirLock
from pwm.utils.seeding import seed_everything


class TrainingError(RuntimeError):
    """Training cannot go on (non-finite loss or state); the message is one line and the last run state is intact."""


def start_up(general: RunConfig, seed: int, local_rank: int = 0) -> torch.device:
    """Before anything is built: the device, torch's CPU threads and every RNG seed."""
    device = resolve_device(general.device, local_rank)
    if general.threads:
        torch.set_num_threads(general.threads)
    seed_everything(seed)
    return device


@dataclass
class LoopState:
    step: int = 0
    """Training steps done."""
    total_time: float = 0.0
    """Seconds spent in training steps (not in evaluation or saving), over every session of the run."""


class Runner(ABC):
    """What the loop needs from a runner: ``train_step``; the other hooks default to doing nothing."""

    run_dir: Path
    general: RunConfig
    logger_cfg: LoggerConfig
    config: dict
    """Stored in every run state; a resume under another config (``RESUME_IGNORES`` aside) is refused."""
    components: dict[str, Stateful]
    """What a run state saves besides the RNG states: algorithm, samplers, envs, buffers."""
    name: str = "run"
    is_main: bool = True
    """False on the non-zero ranks of a data-parallel run: they neither log nor write files."""
    evaluate_at_start: bool = False
    """Evaluate (and save) once before the first step of a fresh run."""
    save_on_time_clock: bool = True
    """Also write a run state every ``general.save_minutes`` (off where ranks must agree on when to save)."""
    state: LoopState

    def run(self) -> dict[str, Any]:
        """Train to ``general.steps`` through :func:`run` (the module's loop)."""
        return run(self)

    @abstractmethod
    def train_step(self) -> dict[str, float]:
        """One training step (one algorithm update); returns its metrics."""

    def evaluate(self, step: int) -> dict[str, float]:
        return {}

    def start(self, fresh: bool) -> dict[str, float]:
        """Before the first step of this session (warm-ups, pretraining); returned metrics join the first row."""
        return {}

    def row_extra(self) -> dict[str, Any]:
        """Columns added to every metric row."""
        return {}

    def postfix(self, row: dict[str, Any]) -> dict[str, str]:
        """What the progress bar shows of a metric row."""
        return {}

    def checkpoint_extra(self) -> dict[str, Any]:
        """Values stored in a run state besides the components (called on every rank)."""
        return {}

    def restore(self, extra: dict[str, Any]) -> None:
        """Take back :meth:`checkpoint_extra` values on resume (``self.state`` is already restored)."""
        return None

    def after_save(self, step: int) -> None:
        """After each run state (main rank): exports such as the official-format world model."""
        return None

    def partial_write_dirs(self) -> list[Path]:
        """Directories besides the run directory and ``checkpoints/`` that this runner writes atomically into
        (their leftover ``*.tmp`` files are removed at start)."""
        return []

    def finish(self, last_eval: dict[str, float]) -> None:
        """After the last step: videos, data files, figures."""
        return None


def run(runner: Runner) -> dict[str, Any]:
    """Train ``runner`` to ``general.steps`` (resuming if its run directory has a run state); return the last
    metric row (empty when the run had already finished). The main rank holds the run directory's lock."""
    if not runner.is_main:
        return _run(runner)
    with RunDirLock(runner.run_dir):
        return _run(runner)


def _run(runner: Runner) -> dict[str, Any]:
    g = runner.general
    checkpoints = CheckpointDir(runner.run_dir / "checkpoints", keep=g.keep_checkpoints)
    runner.state = state = LoopState()
    if runner.is_main:
        for directory in (runner.run_dir, checkpoints.directory, *runner.partial_write_dirs()):
            remove_partial_writes(directory)
    latest = checkpoints.latest()
    if latest is not None:
        state.step, extra = load_run_state(latest, runner.components, runner.config, ignore=type(g).RESUME_IGNORES)
        state.total_time = extra.get("total_time", 0.0)
        runner.restore(extra)
    if runner.is_main:
        resumed = f"resuming from step {state.step} ({latest})" if latest is not None else "starting at step 0"
        print(f"{runner.run_dir}: {resumed}", flush=True)
    logger = MetricLogger(runner.run_dir, runner.logger_cfg, runner.config, runner.name) if runner.is_main else None
    try:
        if logger is not None:
            logger.truncate_after(state.step)
        loop = _Loop(runner, checkpoints, logger)
        loop.record(runner.start(fresh=latest is None))
        if latest is None and runner.evaluate_at_start:
            loop.last_eval = runner.evaluate(0)
            loop.save(0)
        row = loop.train()
    finally:
        if logger is not None:
            logger.close()
    runner.finish(loop.last_eval)
    return row


class _Loop:
    def __init__(self, runner: Runner, checkpoints: CheckpointDir, logger: MetricLogger | None) -> None:
        self.runner, self.checkpoints, self.logger = runner, checkpoints, logger
        self.last_eval: dict[str, float] = {}
        self.last_save = time.monotonic()

    def record(self, metrics: dict[str, float]) -> None:
        if self.logger is not None and metrics:
            self.logger.record(metrics)

    def train(self) -> dict[str, Any]:
        runner, g, state = self.runner, self.runner.general, self.runner.state
        log_every = runner.logger_cfg.log_every
        show = runner.logger_cfg.progress and runner.is_main
        bar = tqdm(total=g.steps, initial=state.step, disable=not show, smoothing=0, unit="step")
        start, start_step, row = time.perf_counter(), state.step, {}
        while state.step < g.steps:
            self.record(self._timed_step())
            bar.update(1)
            last = state.step == g.steps
            evaluate_now = g.eval_every > 0 and (state.step % g.eval_every == 0 or last)
            if evaluate_now:
                self.last_eval = runner.evaluate(state.step)
            if evaluate_now or last or state.step % log_every == 0:
                rate = (state.step - start_step) / (time.perf_counter() - start)
                extra = {**runner.row_extra(), "time/steps_per_s": rate, "time/train_s": round(state.total_time, 2)}
                if evaluate_now:
                    extra.update({f"eval/{k}": v for k, v in self.last_eval.items()})
                row = self.logger.dump(state.step, extra) if self.logger is not None else extra
                bar.set_postfix(runner.postfix(row))
            if state.step % g.save_every == 0 or last or self._time_to_save():
                self.save(state.step)
        bar.close()
        return row

    def _timed_step(self) -> dict[str, float]:
        state = self.runner.state
        start = time.perf_counter()
        try:
            metrics = self.runner.train_step()
        except FloatingPointError as err:  # non-finite loss or gradient: nothing was saved from it
            raise TrainingError(
                f"step {state.step + 1}: {err}; the last run state in {self.checkpoints.directory} is intact"
            ) from None
        state.total_time += time.perf_counter() - start
        state.step += 1
        return metrics

    def _time_to_save(self) -> bool:
        due = self.runner.general.save_minutes * 60
        return self.runner.save_on_time_clock and due > 0 and time.monotonic() - self.last_save >= due

    def save(self, step: int) -> None:
        self.last_save = time.monotonic()
        extra = {**self.runner.checkpoint_extra(), "total_time": self.runner.state.total_time}
        if not self.runner.is_main:
            return
        try:
            self.checkpoints.save(self.runner.components, step, self.runner.config, extra)
        except RunStateError as err:  # NaN state: the last good one is kept
            raise TrainingError(str(err)) from None
        self.runner.after_save(step)
