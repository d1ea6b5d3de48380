"""What a user meets first: a busy run directory, leftovers of a killed run, a run killed before its first
step-clock checkpoint, bad config values, a full disk, read-only data, and the one-line errors of the scripts."""

from __future__ import annotations

import errno
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from test_loop import CountingRun, rows

from pwm.config import (
    LoggerConfig,
    MPPIConfig,
    PWMConfig,
    RunConfig,
    SHACConfig,
    TDMPC2Config,
    TrainWorldModelConfig,
    WorldModelConfig,
    WorldModelRunConfig,
    resolve_world_model,
)  # fmt: skip
from pwm.training import loop
from pwm.utils import io as pwm_io
from pwm.utils.errors import ConfigError
from pwm.utils.run_lock import RunDirBusyError, RunDirLock

ROOT = Path(__file__).resolve().parents[1]


def test_a_second_run_on_a_busy_run_dir_fails_naming_the_holder(tmp_path):
    with RunDirLock(tmp_path), pytest.raises(RunDirBusyError, match=rf"in use by another run \(PID {os.getpid()}\)"):
        CountingRun(tmp_path, steps=2).run()
    CountingRun(tmp_path, steps=2).run()  # free again once the holder is gone


def test_leftovers_of_a_killed_write_are_removed_and_the_start_is_announced(tmp_path, capsys):
    CountingRun(tmp_path, steps=3).run()
    stale = [tmp_path / "best_policy.pt.123.tmp", tmp_path / "checkpoints" / "state_000000004.pt.77.tmp"]
    for path in stale:
        path.write_bytes(b"half a file")
    capsys.readouterr()
    CountingRun(tmp_path, steps=5).run()
    assert not any(p.exists() for p in stale)
    assert f"{tmp_path}: resuming from step 3" in capsys.readouterr().out
    assert [r["step"] for r in rows(tmp_path)] == [2, 3, 4, 5]  # every step once (3: the old run's last row)


def test_a_run_killed_before_its_first_step_clock_state_resumes_from_a_time_clock_one(tmp_path):
    torch.manual_seed(0)
    CountingRun(tmp_path / "full", steps=6).run()
    torch.manual_seed(0)
    cut = CountingRun(
        tmp_path / "cut", steps=6, nan_at=5
    )  # dies in step 5, before any step-clock state (save_every 100)
    cut.general.save_every, cut.general.save_minutes = 100, 1e-9  # every step is due on the time clock
    with pytest.raises(loop.TrainingError):
        cut.run()
    assert (tmp_path / "cut" / "checkpoints" / "state_000000004.pt").is_file()
    resumed = CountingRun(tmp_path / "cut", steps=6)
    resumed.general.save_every = 100
    resumed.run()
    assert resumed.trained == 2 and rows(tmp_path / "cut") == rows(tmp_path / "full")


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: RunConfig(keep_checkpoints=-1), r"general.keep_checkpoints=-1 must be >= 1"),
        (lambda: RunConfig(save_every=0), r"general.save_every=0 must be >= 1"),
        (lambda: RunConfig(threads=-1), r"general.threads=-1 must be >= 1"),
        (lambda: LoggerConfig(log_every=0), r"logger.log_every=0 must be >= 1"),
        (lambda: PWMConfig(gamma=1.5), r"alg.gamma=1.5 must lie in \(0, 1\]"),
        (lambda: PWMConfig(critic_batches=0), r"alg.critic_batches=0 must be >= 1"),
        (lambda: SHACConfig(num_critics=0), r"alg.num_critics=0 must be >= 1"),
        (lambda: SHACConfig(actor_lr=-1e-3), r"alg.actor_lr=-0.001 must be > 0"),
        (lambda: TDMPC2Config(tau=5), r"tdmpc2.tau=5 must lie in \(0, 1\]"),
        (lambda: TDMPC2Config(grad_clip_norm=-1), r"tdmpc2.grad_clip_norm=-1 must be > 0"),
        (lambda: MPPIConfig(num_elites=600), r"num_elites=600 must be <= num_samples=512"),
    ],
)
def test_out_of_range_values_are_one_line_errors(make, message):
    with pytest.raises(ConfigError, match=message) as info:
        make().check()
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("field", "message"),
    [({"dropout": 1.5}, r"dropout=1.5 must lie in \[0, 1\)"), ({"vmin": 20.0}, r"vmin=20.0 must be < vmax=10.0")],
)
def test_world_model_values_are_checked(field, message):
    with pytest.raises(ConfigError, match=message):
        resolve_world_model(WorldModelConfig(size=1, task="mt30", **field))


def test_a_full_disk_is_one_line_and_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "state.pt"
    pwm_io.atomic_torch_save({"x": torch.ones(3)}, path)

    class FullDisk(io.FileIO):
        def write(self, data):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pwm_io, "open", lambda p, mode: FullDisk(p, mode), raising=False)
    with pytest.raises(pwm_io.DiskFullError, match=rf"^no space left writing {path}; the previous file is intact"):
        pwm_io.atomic_torch_save({"x": torch.zeros(1000)}, path)
    assert torch.equal(torch.load(path, weights_only=True)["x"], torch.ones(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.pt"]


def test_read_only_data_gets_its_cache_in_the_user_cache(tmp_path, monkeypatch):
    from pwm.data import dataset

    (tmp_path / "data").mkdir()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user_cache"))
    monkeypatch.setattr(dataset, "_writable", lambda directory: False)
    root = dataset._default_cache_root(tmp_path / "data")
    assert root.parent == tmp_path / "user_cache" / "pwm" / "datasets"
    monkeypatch.setattr(dataset, "_writable", lambda directory: True)
    assert dataset._default_cache_root(tmp_path / "data") == tmp_path / "data" / ".pwm_cache"


def test_world_model_nan_names_the_loss_and_the_step(tmp_path):
    tiny = dict(size=None, latent_dim=32, enc_dim=32, mlp_dim=32, num_enc_layers=2, num_q=2)
    data = _tiny_dataset(tmp_path)
    cfg = TrainWorldModelConfig(
        general=WorldModelRunConfig(data_dir=str(data), steps=20, threads=1), world_model=WorldModelConfig(**tiny),
        tdmpc2=TDMPC2Config(batch_size=8, horizon=2, lr=1e30), logger=LoggerConfig(wandb=False, progress=False),
    )  # fmt: skip
    from pwm.training.world_model import train_world_model

    with pytest.raises(loop.TrainingError, match=r"^step \d+: world-model loss is nan .* is intact$"):
        train_world_model(cfg, tmp_path / "run")


def _tiny_dataset(tmp_path: Path) -> Path:
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_dataset", ROOT / "scripts" / "make_dataset.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "data"
    module.main(["--tasks", "pendulum-swingup", "--episodes-per-task", "1", "--out", str(out)])
    return out


def _script(name: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / name), *args], capture_output=True, text=True,
                          cwd=cwd, timeout=300)  # fmt: skip


def test_a_missing_mandatory_value_is_one_line_with_an_example(tmp_path):
    result = _script("train_world_model.py", f"general.run_dir={tmp_path / 'run'}", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: general.data_dir is required: give it as")


@pytest.mark.parametrize(
    ("script", "override", "suggestion"),
    [
        ("train_dflex.py", "general.stepz=3", "general.steps"),
        ("train_dflex.py", "alg.actor_lrr=1", "alg.actor_lr"),
        ("train_world_model.py", "tdmpc2.rhoo=0.5", "tdmpc2.rho"),
    ],
)
def test_a_misspelt_key_suggests_the_nearest_valid_one(tmp_path, script, override, suggestion):
    result = _script(script, override, cwd=tmp_path)
    assert result.returncode == 1 and list(tmp_path.iterdir()) == []  # nothing written anywhere
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: unknown key {override.split('=')[0]}; did you mean {suggestion}")


def test_a_sweep_dry_run_warns_about_missing_required_values(tmp_path):
    env = {**os.environ, "DRY_RUN": "1", "PYTHON": sys.executable}
    result = subprocess.run(["bash", str(ROOT / "scripts" / "sweep.bash"), "mt30", "general.checkpoint=/c.pt"],
                            capture_output=True, text=True, env=env, cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0
    assert "warning: general.data_dir= is not given" in result.stderr and "general.checkpoint=" not in result.stderr
