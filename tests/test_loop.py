"""The shared training loop with a fake algorithm that counts calls: the log / eval / save clocks, exact resume,
the NaN stop and the evaluation at step 0."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from pwm.algorithms.base import Algorithm
from pwm.checkpoint.run_state import read_run_state
from pwm.config import LoggerConfig, RunConfig
from pwm.training import loop


class RandomWalk(Algorithm):
    """A parameter that takes one random step per update, so rows depend on the RNG stream a resume restores."""

    state_keys = ("weight", "updates")

    def __init__(self, nan_at: int | None = None) -> None:
        self.weight = torch.nn.Parameter(torch.zeros(3))
        self.updates, self.nan_at = 0, nan_at

    def act(self, obs: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        return torch.zeros(obs.shape[0], 1)

    def update(self, data=None) -> dict[str, float]:
        self.updates += 1
        if self.updates == self.nan_at:
            raise FloatingPointError("loss is nan")
        with torch.no_grad():
            self.weight += torch.randn(3)
        return {"fake/weight_sum": float(self.weight.detach().sum())}


class CountingRun(loop.Runner):
    def __init__(self, run_dir: Path, steps: int, nan_at: int | None = None, at_start: bool = False) -> None:
        self.run_dir = run_dir
        self.general = RunConfig(steps=steps, eval_every=4, save_every=3, keep_checkpoints=100)
        self.logger_cfg = LoggerConfig(wandb=False, progress=False, log_every=2)
        self.algo = RandomWalk(nan_at)
        self.components = {"algo": self.algo}
        self.config = {"algorithm": "random-walk"}
        self.evaluate_at_start = at_start
        self.trained, self.evaluated, self.saved, self.starts, self.finished = 0, [], [], [], 0

    def train_step(self) -> dict[str, float]:
        self.trained += 1
        return self.algo.update()

    def evaluate(self, step: int) -> dict[str, float]:
        self.evaluated.append(step)
        return {"return": float(self.algo.weight.detach().sum())}

    def start(self, fresh: bool) -> dict[str, float]:
        self.starts.append(fresh)
        return {}

    def after_save(self, step: int) -> None:
        self.saved.append(step)

    def finish(self, last_eval: dict[str, float]) -> None:
        self.finished += 1


def rows(run_dir: Path) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if not k.startswith("time/")} for line in lines]


def test_clocks_call_train_eval_log_and_save_when_due(tmp_path):
    torch.manual_seed(0)
    run = CountingRun(tmp_path, steps=10)
    last = run.run()
    assert run.trained == 10 and run.starts == [True] and run.finished == 1
    assert run.evaluated == [4, 8, 10]  # eval clock and the last step
    assert run.saved == [3, 6, 9, 10]  # save clock and the last step
    written = rows(tmp_path)
    assert [r["step"] for r in written] == [2, 4, 6, 8, 10]  # log clock, eval steps and the last step
    assert [r["step"] for r in written if "eval/return" in r] == [4, 8, 10]
    assert last["step"] == 10 and last["eval/return"] == float(run.algo.weight.detach().sum())
    assert read_run_state(tmp_path / "checkpoints" / "state_000000010.pt")["extra"]["total_time"] > 0


def test_resume_after_a_cut_writes_the_rows_of_an_uninterrupted_run(tmp_path):
    torch.manual_seed(0)
    CountingRun(tmp_path / "full", steps=10).run()
    torch.manual_seed(0)
    CountingRun(tmp_path / "cut", steps=7).run()  # states at 3, 6 and 7; rows up to step 7
    (tmp_path / "cut" / "checkpoints" / "state_000000007.pt").unlink()  # as if killed before it was written
    torch.manual_seed(123)  # the resumed stream must come from the run state, not from here
    resumed = CountingRun(tmp_path / "cut", steps=10)
    resumed.run()
    assert resumed.trained == 4 and resumed.starts == [False] and resumed.algo.updates == 10
    assert rows(tmp_path / "cut") == rows(tmp_path / "full")  # step 7's stale row was dropped, none repeats
    again = CountingRun(tmp_path / "cut", steps=10)
    assert again.run() == {} and again.trained == 0  # a finished run does nothing


def test_non_finite_step_stops_with_one_line_and_keeps_the_last_state(tmp_path):
    run = CountingRun(tmp_path, steps=10, nan_at=5)
    with pytest.raises(loop.TrainingError, match=r"^step 5: loss is nan; the last run state in .* is intact$"):
        run.run()
    states = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert states == ["state_000000003.pt"] and run.finished == 0


def test_non_finite_state_is_not_saved(tmp_path):
    run = CountingRun(tmp_path, steps=4)
    original = run.algo.update

    def poisoned(data=None):
        metrics = original(data)
        if run.algo.updates == 3:
            run.algo.weight.data[0] = float("nan")
        return metrics

    run.algo.update = poisoned
    with pytest.raises(loop.TrainingError, match="NaN/inf"):
        run.run()
    assert not (tmp_path / "checkpoints").exists() or not list((tmp_path / "checkpoints").iterdir())


def test_evaluation_at_start_runs_once_per_run(tmp_path):
    first = CountingRun(tmp_path, steps=4, at_start=True)
    first.run()
    assert first.evaluated == [0, 4] and first.saved == [0, 3, 4]
    resumed = CountingRun(tmp_path, steps=8, at_start=True)
    resumed.run()
    assert resumed.evaluated == [8] and resumed.saved == [6, 8]


def test_algorithm_state_round_trips_through_the_contract():
    a, b = RandomWalk(), RandomWalk()
    a.update()
    b.load_state_dict(a.state_dict())
    assert torch.equal(a.weight, b.weight) and b.updates == 1
