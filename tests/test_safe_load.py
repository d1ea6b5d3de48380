"""No file load runs code: every loader reads weights-only with its format's allowlist (pwm/utils/safe_load.py)."""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir

from pwm.checkpoint.run_state import RunStateError, read_run_state, save_run_state
from pwm.checkpoint.tdmpc2_layouts import CheckpointError
from pwm.checkpoint.tdmpc2_load import load_state_dict_file
from pwm.config import ConfigError, register_configs
from pwm.data.buffer import ReplayBuffer
from pwm.data.dataset import DatasetError, open_dataset
from pwm.data.episodes import EpisodeFileError, EpisodeRecorder, load_episodes
from pwm.envs.sim.registry import make_dflex_env
from pwm.training.dflex import DflexRun
from pwm.utils.safe_load import TRUST_ENV, UnsafeFileError, safe_torch_load
from pwm.utils.seeding import capture_rng, restore_rng, seed_everything

ROOT = Path(__file__).resolve().parents[1]


class Payload:
    """Unpickling this writes a marker file: what a crafted ``.pt`` would do with ``weights_only=False``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').write('ran')",)


def crafted(path: Path, marker: Path, legacy: bool = False, **around) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({**around, "x": Payload(marker)}, path, _use_new_zipfile_serialization=not legacy)
    return path


def assert_refused(err: pytest.ExceptionInfo, path: Path, marker: Path) -> None:
    message = str(err.value)
    assert not marker.exists(), "the file's code ran"
    assert "\n" not in message and str(path) in message and "'builtins.exec'" in message, message
    assert "refusing to load" in message and f"{TRUST_ENV}=1" in message


def test_run_state_reader_refuses(tmp_path):
    path, marker = crafted(tmp_path / "state_000000001.pt", tmp_path / "ran"), tmp_path / "ran"
    with pytest.raises(RunStateError) as err:
        read_run_state(path)
    assert_refused(err, path, marker)


def test_a_module_torch_blocks_is_named_too(tmp_path):
    class System:
        def __reduce__(self):
            import os

            return os.system, (f"touch {tmp_path / 'ran'}",)

    torch.save({"x": System()}, tmp_path / "s.pt")
    with pytest.raises(RunStateError, match=r"s\.pt: refusing to load: it needs the type '\w+\.system'"):
        read_run_state(tmp_path / "s.pt")
    assert not (tmp_path / "ran").exists()


def test_official_checkpoint_loader_refuses(tmp_path):
    marker = tmp_path / "ran"
    path = crafted(tmp_path / "mt30-5M.pt", marker, model={"_encoder.state.0.weight": torch.zeros(2, 2)})
    with pytest.raises(CheckpointError) as err:
        load_state_dict_file(path)
    assert_refused(err, path, marker)


@pytest.mark.parametrize("legacy", [False, True], ids=["mmap", "legacy-no-mmap"])
def test_dataset_chunk_reader_refuses(tmp_path, legacy):
    marker = tmp_path / "ran"
    path = crafted(tmp_path / "data" / "chunk_0.pt", marker, legacy=legacy)
    with pytest.raises(DatasetError) as err:
        open_dataset(tmp_path / "data", "mt30")
    assert_refused(err, path, marker)


def test_episode_loader_refuses(tmp_path):
    marker = tmp_path / "ran"
    path = crafted(tmp_path / "episodes.pt", marker, format="pwm-episodes-v1")
    with pytest.raises(EpisodeFileError) as err:
        load_episodes(path, 5, 1)
    assert_refused(err, path, marker)


def test_eval_dflex_refuses_a_crafted_best_policy(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("eval_dflex", ROOT / "scripts" / "eval_dflex.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    marker = tmp_path / "ran"
    path = crafted(tmp_path / "run" / "best_policy.pt", marker, algo={})
    assert script.main([str(tmp_path / "run"), "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: {path}: refusing to load") and "'builtins.exec'" in err
    assert not marker.exists()


@pytest.mark.parametrize("name", ["best_policy.pt", "state_000000004.pt"])
def test_train_dflex_refuses_a_crafted_start_checkpoint(tmp_path, name):
    marker = tmp_path / "ran"
    path = crafted(tmp_path / name, marker, algo={})
    overrides = [
        "alg=shac", "env.config.num_envs=2", "env.config.episode_length=10", "alg.horizon=4", "alg.actor_hidden=[8]",
        "alg.critic_hidden=[8]", "general.threads=1", "logger.wandb=false", "logger.progress=false",
        f"general.checkpoint={path}",
    ]  # fmt: skip
    register_configs()
    with initialize_config_dir(config_dir=str(ROOT / "cfg"), version_base="1.3"):
        cfg = compose(config_name="config_dflex", overrides=overrides)
    with pytest.raises(ConfigError) as err:
        DflexRun(cfg, tmp_path / "run").run()
    assert_refused(err, path, marker)
    assert str(err.value).startswith(f"general.checkpoint={path}: refusing to load")


def test_trusting_files_loads_a_legitimate_checkpoint_with_an_extra_type(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.pt"
    torch.save({"model": {"_encoder.state.0.weight": torch.ones(2, 2)}, "step": np.int64(7)}, path)
    with pytest.raises(CheckpointError, match=r"ckpt\.pt: refusing to load: it needs the type 'numpy\."):
        load_state_dict_file(path)
    monkeypatch.setenv(TRUST_ENV, "1")
    assert torch.equal(load_state_dict_file(path)["_encoder.state.0.weight"], torch.ones(2, 2))


def test_a_load_leaves_the_process_allowlist_as_it_was(tmp_path):
    import tensordict  # noqa: F401  (adds its types to torch's process-wide allowlist on import)

    before = set(torch.serialization.get_safe_globals())  # torch keeps a set: its list's order is arbitrary
    torch.save({"a": torch.zeros(1)}, tmp_path / "a.pt")
    safe_torch_load(tmp_path / "a.pt", what="test file")
    with pytest.raises(UnsafeFileError):
        safe_torch_load(crafted(tmp_path / "b.pt", tmp_path / "ran"), what="test file")
    assert set(torch.serialization.get_safe_globals()) == before


def test_rng_state_round_trips_weights_only_and_bit_identically(tmp_path):
    seed_everything(5)
    np.random.normal(size=3)  # leaves a cached Gaussian in numpy's legacy state
    state = capture_rng()
    path = tmp_path / "rng.pt"
    torch.save(state, path)
    expected = (np.random.rand(50), np.random.normal(size=3), random.random(), torch.rand(4))
    restore_rng(torch.load(path, weights_only=True))
    got = (np.random.rand(50), np.random.normal(size=3), random.random(), torch.rand(4))
    for a, b in zip(expected, got, strict=True):
        assert np.array_equal(np.asarray(a), np.asarray(b))


def test_recorder_and_replay_episodes_round_trip_through_a_run_state(tmp_path):
    """Steps in progress, finished episodes and buffered episodes come back as the same numpy values."""
    env = make_dflex_env("dflex_cartpole", {"num_envs": 2, "episode_length": 3})
    recorder = EpisodeRecorder(env.reset(seed=0), keep_data=True)
    for _ in range(5):  # one finished episode per env and two steps in progress
        action = env.random_actions()
        recorder.record(action, env.step(action))
    buffer = ReplayBuffer(100, 2, 2, max_episode_length=3)
    for e in recorder.finished:
        buffer.add_episode(e.obs, e.action, e.reward, terminated=e.terminated)
    wrapped = {"recorder": recorder, "env": env}
    save_run_state(tmp_path / "s.pt", wrapped, 5, {}, extra={"episodes": buffer.state_dict(with_episodes=True)})
    payload = read_run_state(tmp_path / "s.pt")
    twin = EpisodeRecorder(env.obs, keep_data=True)
    twin.load_state_dict(payload["components"]["recorder"])
    for a, b in zip(recorder._steps, twin._steps, strict=True):
        assert len(a) == len(b) == 2
        assert all(
            np.array_equal(x, y) and type(x) is type(y)
            for s, t in zip(a, b, strict=True)
            for x, y in zip(s, t, strict=True)
        )
    assert all(np.array_equal(a, b) for a, b in zip(recorder._start, twin._start, strict=True))
    for a, b in zip(recorder.finished, twin.finished, strict=True):
        assert np.array_equal(a.obs, b.obs) and np.array_equal(a.reward, b.reward) and a.terminated == b.terminated
    copy = ReplayBuffer(100, 2, 2, max_episode_length=3, seed=1)
    copy.load_state_dict(payload["extra"]["episodes"])
    torch.testing.assert_close(copy.sample().obs, buffer.sample().obs, rtol=0, atol=0)


def test_sb3_baseline_resume_refuses(tmp_path):
    from pwm.training.sb3_run import STATE_FILE, Sb3Run, Sb3Settings

    marker = tmp_path / "ran"
    path = crafted(tmp_path / STATE_FILE, marker, num_timesteps=64)
    settings = Sb3Settings(env="dflex_cartpole", algo="ppo", out=str(tmp_path), steps=128, num_envs=4, eval_runs=2)
    with pytest.raises(RunStateError) as err:
        Sb3Run(settings)
    assert_refused(err, path, marker)
