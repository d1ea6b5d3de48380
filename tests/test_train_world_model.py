"""World-model training end to end on real DMControl data: learning, exact resume after a kill, 2-process DDP."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from pwm.checkpoint.run_state import read_run_state
from pwm.checkpoint.tdmpc2_load import load_into
from pwm.config import LoggerConfig, TDMPC2Config, TrainWorldModelConfig, WorldModelConfig, WorldModelRunConfig
from pwm.models.world_model import WorldModel
from pwm.training.world_model import build_world_model_config, train_world_model

ROOT = Path(__file__).resolve().parents[1]
TINY_WM = dict(size=None, latent_dim=64, enc_dim=64, mlp_dim=64, num_enc_layers=2, num_q=2)
OVERRIDES = [
    "world_model.size=null", "world_model.latent_dim=64", "world_model.enc_dim=64", "world_model.mlp_dim=64",
    "world_model.num_enc_layers=2", "world_model.num_q=2", "tdmpc2.batch_size=16", "tdmpc2.horizon=4",
    "logger.wandb=false", "logger.progress=false", "logger.log_every=5", "general.save_every=5", "general.threads=1",
]  # fmt: skip


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """Two real DMControl tasks, random policy, official mt30 layout."""
    spec = importlib.util.spec_from_file_location("make_dataset", ROOT / "scripts" / "make_dataset.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path_factory.mktemp("data") / "mt30"
    rc = module.main(["--tasks", "pendulum-swingup", "cartpole-swingup", "--episodes-per-task", "2", "--out", str(out)])
    assert rc in (0, None)
    return out


def config(dataset: Path, steps: int = 1000, **kw) -> TrainWorldModelConfig:
    logger = LoggerConfig(wandb=False, progress=False, log_every=kw.pop("log_every", 5))
    general = WorldModelRunConfig(data_dir=str(dataset), steps=steps, threads=1, save_every=5)
    return TrainWorldModelConfig(
        task=kw.pop("task", "mt30"), seed=3, general=general, world_model=WorldModelConfig(**TINY_WM),
        tdmpc2=TDMPC2Config(batch_size=16, horizon=4, rho=0.9), logger=logger, **kw,
    )  # fmt: skip


def rows(run_dir: Path) -> dict[int, dict]:
    """Metric rows by step; a resumed run rewrites steps after its checkpoint, the last row wins."""
    out = {}
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        row = json.loads(line)
        out[row["step"]] = row
    return out


def test_training_lowers_consistency_and_reward_loss(dataset, tmp_path):
    train_world_model(config(dataset, steps=120, log_every=20), tmp_path)
    r = rows(tmp_path)
    first, last = r[20], r[120]
    assert last["wm/consistency_loss"] < 0.6 * first["wm/consistency_loss"]
    assert last["wm/reward_loss"] < 0.5 * first["wm/reward_loss"]
    assert (tmp_path / "metrics.csv").read_text().startswith("step,")
    # the periodic official-layout checkpoint loads strictly into a fresh model
    model = WorldModel(build_world_model_config(config(dataset)))
    report = load_into(model, tmp_path / "models" / "120.pt")
    assert not report.fresh
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["110.pt", "115.pt", "120.pt"]  # keep 3


def test_single_task_selection_trains_a_single_task_model(dataset, tmp_path):
    train_world_model(config(dataset, task="cartpole-swingup", steps=5), tmp_path)
    state = read_run_state(tmp_path / "checkpoints" / "state_000000005.pt")
    assert state["components"]["algo"]["model"]["_encoder.state.0.weight"].shape == (64, 5)  # cartpole obs 5


def test_resume_after_kill_reproduces_uninterrupted_losses(dataset, tmp_path):
    reference = tmp_path / "reference"
    train_world_model(config(dataset, steps=30), reference)

    killed = tmp_path / "killed"
    cmd = [
        sys.executable, str(ROOT / "scripts" / "train_world_model.py"), "task=mt30", f"general.data_dir={dataset}",
        f"general.run_dir={killed}", "seed=3", "tdmpc2.rho=0.9", *OVERRIDES,
    ]  # fmt: skip
    proc = subprocess.Popen([*cmd, "general.steps=100000"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while not (killed / "checkpoints" / "state_000000010.pt").exists():
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.time() < deadline, "no checkpoint within 120 s"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)  # somewhere after step 10, possibly mid-save
    proc.wait()
    result = subprocess.run([*cmd, "general.steps=30"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr

    ref, res = rows(reference), rows(killed)
    assert sorted(res) == sorted(ref) == [5, 10, 15, 20, 25, 30]
    for step in ref:
        for key in ("wm/consistency_loss", "wm/reward_loss", "wm/value_loss", "wm/pi_loss"):
            assert res[step][key] == ref[step][key], (step, key)


def test_two_process_ddp_on_cpu(dataset, tmp_path):
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        str(ROOT / "scripts" / "train_world_model.py"), "task=mt30", f"general.data_dir={dataset}",
        f"general.run_dir={tmp_path}", "general.steps=10", "general.device=cpu", *OVERRIDES,
    ]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-6000:]
    state = read_run_state(tmp_path / "checkpoints" / "state_000000010.pt")
    assert state["step"] == 10 and set(state["extra"]["rank_samplers"]) == {0, 1}
    model = WorldModel(build_world_model_config(config(dataset)))
    model.load_state_dict(state["components"]["algo"]["model"])
    assert not load_into(model, tmp_path / "models" / "10.pt").fresh
    assert torch.isfinite(model._dynamics[0].weight).all()
