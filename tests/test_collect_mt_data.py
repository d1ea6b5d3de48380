"""scripts/collect_mt_data.py: a learning agent's replay buffer in the official layout, killed and resumed."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from pwm.data.dataset import open_dataset

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "collect_mt_data.py"
SMALL = ["--episode-length", "50", "--random-steps", "100", "--eval-episodes", "1", "--batch-size", "16"]


@pytest.fixture(scope="module")
def collect_main():
    spec = importlib.util.spec_from_file_location("collect_mt_data", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def start(out: Path, *argv: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, str(SCRIPT), "--out", str(out), *SMALL, *argv]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def test_killed_collection_resumes_and_writes_whole_episodes(tmp_path):
    args = ["--tasks", "cartpole-swingup", "--steps", "200", "--save-every", "50"]
    state = tmp_path / "agents" / "cartpole-swingup" / "sac_state.pt"
    first = start(tmp_path, *args)
    deadline = time.monotonic() + 120
    while not state.is_file() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)  # killed mid-training, at an arbitrary point after its first run state
    first.wait()
    assert not (tmp_path / "manifest.json").is_file()

    second = start(tmp_path, *args)
    out, _ = second.communicate(timeout=300)
    assert second.returncode == 0, out[-2000:]
    resumed = [line for line in out.splitlines() if "resumed at step" in line]
    assert resumed and int(resumed[0].split()[-1]) % 50 == 0 and int(resumed[0].split()[-1]) > 0

    ds = open_dataset(tmp_path, "mt30", episode_length=51)
    assert (ds.num_episodes, ds.episode_length, ds.obs_dim, ds.action_dim) == (4, 51, 24, 6)
    chunk = ds.chunks[0]
    assert (chunk.task == 10).all() and np.isnan(chunk.reward[:, 0]).all() and (chunk.obs[:, :, 5:] == 0).all()
    assert (chunk.action[:, 1:, 1:] == 0).all() and np.abs(chunk.action[:, 1:, 0]).max() <= 1
    entry = json.loads((tmp_path / "manifest.json").read_text())["tasks"]["cartpole-swingup"]
    returns = chunk.reward[:, 1:].sum(1)
    np.testing.assert_allclose(entry["train_episode_returns"], returns, atol=0.01)  # buffer order = chunk order
    assert entry["task_id"] == 10 and entry["episodes"] == 4 and entry["final_return"] >= 0

    again = start(tmp_path, *args)  # finished: skipped, nothing rewritten
    mtime = (tmp_path / "chunk_10.pt").stat().st_mtime_ns
    assert "skip cartpole-swingup: finished" in again.communicate(timeout=120)[0]
    assert (tmp_path / "chunk_10.pt").stat().st_mtime_ns == mtime


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--tasks", "walker-jump"], "unknown task 'walker-jump' for mt30"),
        (["--tasks", "mw-reach", "--task-set", "mt80"], "is a Meta-World task"),
        (["--tasks", "cartpole-swingup", "--steps", "75"], "must be multiples of --episode-length"),
        (["--tasks", "cartpole-swingup", "cartpole-swingup"], "lists a task twice"),
        (["--tasks", "cartpole-swingup", "--random-steps", "5000", "--steps", "100"], "must lie in [0, --steps 100]"),
    ],
)
def test_rejected_arguments(collect_main, tmp_path, capsys, argv, message):
    assert collect_main(["--out", str(tmp_path), *SMALL, *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not any(tmp_path.glob("*.pt"))


def test_other_settings_for_a_collected_dir_are_refused(collect_main, tmp_path, capsys):
    (tmp_path / "manifest.json").write_text(json.dumps({
        "format": "pwm-mt-collect-v1", "tasks": {},
        "settings": {"task_set": "mt30", "steps": 100, "random_steps": 100, "episode_length": 50, "seed": 1,
                     "batch_size": 16, "gradient_steps": 1},
    }))  # fmt: skip
    assert collect_main(["--out", str(tmp_path), *SMALL, "--tasks", "cartpole-swingup", "--steps", "200"]) == 2
    assert "collected with steps=100, this run asks for 200" in capsys.readouterr().err
