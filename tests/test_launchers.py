"""cfg/hydra/launcher/{slurm,local}.yaml compose and launch; scripts/mt30.bash / mt80.bash build one multirun."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from pwm.config import register_configs
from pwm.data.tasks import MT30, MT80

ROOT = Path(__file__).resolve().parents[1]
CFG_DIR = ROOT / "cfg"
SLURM_TARGET = "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
BASIC_TARGET = "hydra._internal.core_plugins.basic_launcher.BasicLauncher"

APP = """
import hydra
from hydra.core.hydra_config import HydraConfig

@hydra.main(config_path=".", config_name="primary", version_base="1.3")
def main(cfg):
    print("job", cfg.task, cfg.seed, HydraConfig.get().runtime.output_dir, flush=True)

if __name__ == "__main__":
    main()
"""


@pytest.fixture
def app(tmp_path) -> Path:
    """A throwaway Hydra app whose primary config finds pwm's cfg/ through hydra.searchpath."""
    (tmp_path / "app.py").write_text(APP)
    (tmp_path / "primary.yaml").write_text(
        f"task: a\nseed: 0\nhydra:\n  searchpath: [file://{CFG_DIR}]\n"
        f"  sweep:\n    dir: {tmp_path}/multirun\n    subdir: ${{task}}/seed${{seed}}\n"
    )
    return tmp_path


def launcher_cfg(config_dir: Path, config_name: str, launcher: str, *overrides: str):
    register_configs()
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        cfg = compose(config_name, overrides=[f"hydra/launcher={launcher}", *overrides], return_hydra_config=True)
    return cfg.hydra.launcher


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PWM_", "SLURM", "DRY_RUN", "SEEDS", "TASKS"))}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    return {**env, **extra}


def test_slurm_launcher_composes_via_searchpath(app, monkeypatch):
    monkeypatch.delenv("PWM_SLURM_PARTITION", raising=False)
    monkeypatch.delenv("PWM_SLURM_ACCOUNT", raising=False)
    launcher = launcher_cfg(app, "primary", "slurm")
    assert launcher._target_ == SLURM_TARGET
    assert launcher.gpus_per_node == 1 and launcher.nodes == 1 and launcher.tasks_per_node == 1
    assert launcher.partition is None and launcher.account is None  # SLURM's defaults
    assert launcher.timeout_min >= 60 and launcher.max_num_timeout > 0 and launcher.array_parallelism > 0
    assert launcher.setup[0] == f"export OMP_NUM_THREADS={launcher.cpus_per_task}"
    monkeypatch.setenv("PWM_SLURM_PARTITION", "gpu")
    assert launcher_cfg(app, "primary", "slurm").partition == "gpu"


def test_local_launcher_is_hydras_basic_launcher(app):
    assert OmegaConf.to_container(launcher_cfg(app, "primary", "local")) == {"_target_": BASIC_TARGET}


@pytest.mark.parametrize("config_name", ["config_mt30", "config_mt80", "train_world_model"])
@pytest.mark.parametrize(("launcher", "target"), [("slurm", SLURM_TARGET), ("local", BASIC_TARGET)])
def test_every_pwm_primary_accepts_the_launchers(config_name, launcher, target):
    overrides = ["general.data_dir=/x"] if config_name == "train_world_model" else ["task=mw-assembly", "seed=2"]
    assert launcher_cfg(CFG_DIR, config_name, launcher, *overrides)._target_ == target


def test_local_multirun_runs_jobs_in_order(app):
    cmd = [sys.executable, "app.py", "-m", "task=a,b", "seed=1,2", "hydra/launcher=local"]
    proc = subprocess.run(cmd, cwd=app, capture_output=True, text=True, timeout=120, env=clean_env())
    assert proc.returncode == 0, proc.stderr
    jobs = [line.split()[1:] for line in proc.stdout.splitlines() if line.startswith("job ")]
    assert jobs == [[t, s, str(app / "multirun" / t / f"seed{s}")] for t in "ab" for s in "12"]


def test_slurm_multirun_submits_one_array(app):
    """With stand-ins for sbatch/srun, submitit writes the sbatch script of a 4-job array from slurm.yaml."""
    bin_dir = app / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text(f'#!/bin/sh\ncp "$1" {app}/submitted.sh\necho "sbatch: error: test" >&2\nexit 1\n')
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 0\n")
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    env = clean_env(PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", PWM_SLURM_PARTITION="gpu")
    cmd = [sys.executable, "app.py", "-m", "task=a,b", "seed=1,2", "hydra/launcher=slurm"]
    proc = subprocess.run(cmd, cwd=app, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode != 0 and "sbatch: error: test" in proc.stderr  # the stand-in refuses the job
    script = (app / "submitted.sh").read_text()
    for line in ["--array=0-3%4", "--gpus-per-node=1", "--partition=gpu", "--time=240", "--cpus-per-task=8"]:
        assert f"#SBATCH {line}\n" in script
    assert "export OMP_NUM_THREADS=8\n" in script


# --- scripts/mt30.bash, scripts/mt80.bash ---------------------------------------------------------------------


def path_without_sbatch() -> str:
    return os.pathsep.join(d for d in os.environ["PATH"].split(os.pathsep) if not (Path(d) / "sbatch").exists())


def dry_run(script: str, *args: str, path: str | None = None, **env: str) -> subprocess.CompletedProcess:
    env = clean_env(DRY_RUN="1", PYTHON=sys.executable, PATH=path or path_without_sbatch(), **env)
    cmd = ["bash", str(ROOT / "scripts" / script), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)


def command_of(proc: subprocess.CompletedProcess) -> list[str]:
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 1, proc.stdout
    return shlex.split(lines[0])


def test_mt30_dry_run_is_one_local_multirun_without_sbatch():
    cmd = command_of(dry_run("mt30.bash", "general.data_dir=/x", "alg=pwm_48M"))
    assert cmd[:2] == [sys.executable, str(ROOT / "scripts" / "train_multitask.py")]
    assert cmd[cmd.index("-cn") + 1] == "config_mt30" and "-m" in cmd
    tasks = next(a for a in cmd if a.startswith("task=")).removeprefix("task=").split(",")
    assert tasks == MT30.names and len(tasks) == 30
    assert "seed=1,2,3" in cmd and "hydra/launcher=local" in cmd
    assert cmd[-2:] == ["general.data_dir=/x", "alg=pwm_48M"]  # extra arguments pass through, last


def test_mt80_dry_run_with_sbatch_on_path_uses_slurm(tmp_path):
    (tmp_path / "sbatch").write_text("#!/bin/sh\nexit 1\n")
    (tmp_path / "sbatch").chmod(0o755)
    cmd = command_of(dry_run("mt80.bash", "general.data_dir=/x", path=f"{tmp_path}{os.pathsep}{path_without_sbatch()}"))
    tasks = next(a for a in cmd if a.startswith("task=")).removeprefix("task=").split(",")
    assert tasks == MT80.names and len(tasks) == 80 and sum(t.startswith("mw-") for t in tasks) == 50
    assert cmd[cmd.index("-cn") + 1] == "config_mt80" and "hydra/launcher=slurm" in cmd and "seed=1,2,3" in cmd


def test_launcher_seeds_and_tasks_from_the_environment():
    cmd = command_of(dry_run("mt30.bash", PWM_LAUNCHER="slurm", SEEDS="4,5", TASKS="walker-walk,cup-spin"))
    assert {"hydra/launcher=slurm", "seed=4,5", "task=walker-walk,cup-spin"} <= set(cmd)
    for bad in ({"PWM_LAUNCHER": "pbs"}, {"SEEDS": "1;rm"}):
        proc = dry_run("mt30.bash", **bad)
        assert proc.returncode == 1 and proc.stdout == "" and proc.stderr.startswith("error: ")


def test_dry_run_quotes_only_words_that_need_it():
    cmd = command_of(dry_run("mt30.bash", "general.data_dir=/my data", "+x=[1,2]"))
    assert cmd[-2:] == ["general.data_dir=/my data", "+x=[1,2]"]
