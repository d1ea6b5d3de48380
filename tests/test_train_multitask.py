"""End to end: a world model trained on real DMControl data -> PWM runner -> real-env evaluation, CSV, resume."""

from __future__ import annotations

import csv
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from pwm.config import (
    LoggerConfig,
    TDMPC2Config,
    TrainWorldModelConfig,
    WorldModelConfig,
    WorldModelRunConfig,
    register_configs,
)  # fmt: skip
from pwm.training.world_model import train_world_model

ROOT = Path(__file__).resolve().parents[1]
WM_DIMS = dict(size=None, latent_dim=64, enc_dim=64, mlp_dim=64, num_enc_layers=2, num_q=2)
WM_OVERRIDES = [f"alg.world_model.{k}={'null' if v is None else v}" for k, v in WM_DIMS.items()]
FAST = [
    "alg.batch_size=32", "alg.horizon=4", "alg.actor_hidden=[32,32]", "alg.critic_hidden=[32,32]",
    "alg.critic_iterations=2", "alg.critic_batches=2", "general.eval_runs=1", "general.threads=1",
    "logger.wandb=false", "logger.progress=false", "logger.log_every=2",
]  # fmt: skip


@pytest.fixture(scope="module")
def world_model(tmp_path_factory) -> tuple[Path, Path]:
    """A small mt30 world model trained for a few steps on real cartpole/pendulum rollouts."""
    spec = importlib.util.spec_from_file_location("make_dataset", ROOT / "scripts" / "make_dataset.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    data = tmp_path_factory.mktemp("data") / "mt30"
    module.main(["--tasks", "pendulum-swingup", "cartpole-swingup", "--episodes-per-task", "2", "--out", str(data)])
    run = tmp_path_factory.mktemp("wm")
    cfg = TrainWorldModelConfig(
        task="mt30", general=WorldModelRunConfig(data_dir=str(data), steps=20, threads=1, save_every=20),
        world_model=WorldModelConfig(**WM_DIMS), tdmpc2=TDMPC2Config(batch_size=16, horizon=4),
        logger=LoggerConfig(wandb=False, progress=False),
    )  # fmt: skip
    train_world_model(cfg, run)
    return data, run / "models" / "20.pt"


def run_script(data: Path, ckpt: Path, run_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable, str(ROOT / "scripts" / "train_multitask.py"), "-cn", "config_mt30", "task=cartpole-swingup",
        f"general.data_dir={data}", f"general.checkpoint={ckpt}", f"general.run_dir={run_dir}",
        *WM_OVERRIDES, *FAST, *extra,
    ]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def read_results(run_dir: Path) -> list[dict]:
    with open(run_dir / "results.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_runner_trains_evaluates_and_resumes(world_model, tmp_path):
    data, ckpt = world_model
    result = run_script(data, ckpt, tmp_path, "general.steps=4", "general.eval_every=2")
    assert result.returncode == 0, result.stderr[-3000:]
    rows = read_results(tmp_path)
    assert [int(r["iteration"]) for r in rows] == [0, 2, 4]
    for r in rows:  # real cartpole-swingup episodes: 500 agent steps, return in [0, 1000]
        assert r["task"] == "cartpole-swingup" and float(r["episode_length"]) == 500
        assert 0 <= float(r["episode_reward"]) <= 1000
    assert (tmp_path / "checkpoints" / "state_000000004.pt").is_file()

    resumed = run_script(data, ckpt, tmp_path, "general.steps=6", "general.eval_every=2", "general.video=true")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert [int(r["iteration"]) for r in read_results(tmp_path)] == [0, 2, 4, 6]
    video = tmp_path / "videos" / "cartpole-swingup_6.mp4"
    assert video.is_file() and video.stat().st_size > 10_000


def test_rows_of_a_session_killed_before_its_first_run_state_are_not_repeated(world_model, tmp_path):
    """Evaluated at step 0, killed before the run state of step 0: the rerun evaluates step 0 once more, and the
    stale row goes."""
    data, ckpt = world_model
    (tmp_path / "results.csv").write_text(
        "iteration,task,task_set,seed,alg,episode_reward,episode_success,episode_length,total_time\n"
        "0,cartpole-swingup,mt30,1,pwm,1.0,0.0,500.0,0.0\n"
    )
    result = run_script(data, ckpt, tmp_path, "general.steps=2", "general.eval_every=2")
    assert result.returncode == 0, result.stderr[-3000:]
    assert [int(r["iteration"]) for r in read_results(tmp_path)] == [0, 2]


@pytest.mark.parametrize("prior", ["pwm", "tdmpc2", "both"])
def test_planning_evaluation_adds_its_own_rows(world_model, tmp_path, prior):
    data, ckpt = world_model
    planning = ["eval.planning=true", f"eval.prior={prior}", "eval.mppi.iterations=1", "eval.mppi.num_samples=32",
                "eval.mppi.num_elites=4", "eval.mppi.num_pi_trajs=4"]  # fmt: skip
    result = run_script(data, ckpt, tmp_path, "general.steps=2", "general.eval_every=2", *planning)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [(int(r["iteration"]), r["alg"]) for r in read_results(tmp_path)]
    planned = {"pwm": ["pwm+mppi"], "tdmpc2": ["tdmpc2-mppi"], "both": ["pwm+mppi", "tdmpc2-mppi"]}[prior]
    assert rows == [(0, "pwm"), (2, "pwm"), *((2, alg) for alg in planned)]
    assert 0 <= float(read_results(tmp_path)[-1]["episode_reward"]) <= 1000


def test_unknown_task_lists_valid_names(world_model, tmp_path):
    data, ckpt = world_model
    result = run_script(data, ckpt, tmp_path, "task=cartpole-fly", "general.steps=1")
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert "unknown task 'cartpole-fly'" in last and "cartpole-swingup" in last


@pytest.mark.parametrize("config_name", ["config_mt30", "config_mt80"])
@pytest.mark.parametrize("alg", ["pwm", "pwm_1M", "pwm_5M", "pwm_19M", "pwm_48M", "pwm_317M"])
def test_every_alg_composes_with_both_task_sets(config_name, alg):
    from pwm.config import MultitaskConfig, resolve_world_model

    register_configs()
    with initialize_config_dir(config_dir=str(ROOT / "cfg"), version_base="1.3"):
        cfg = compose(config_name, overrides=[f"alg={alg}", "general.data_dir=/d", "general.checkpoint=/c.pt"])
    obj: MultitaskConfig = OmegaConf.to_object(cfg)
    obj.check()
    if alg != "pwm":
        size = int(alg.removeprefix("pwm_").removesuffix("M"))
        wm = resolve_world_model(obj.alg.world_model)
        assert (wm.size, wm.task, wm.obs_dim) == (size, obj.task_set, 24 if obj.task_set == "mt30" else 39)
