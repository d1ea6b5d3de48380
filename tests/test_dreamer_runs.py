"""train_dreamer.py's runs on real pixel envs at tiny sizes: the success metric on a scripted Meta-World episode,
kill-and-resume of an online run, a pretrain -> fine-tune cycle, and one-line errors."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir

from pwm.checkpoint.pretrained import read_pretrained
from pwm.config import ConfigError, register_configs
from pwm.data.videos import VideoDataError, write_clip
from pwm.envs.suites.pixels import episode_success, make_pixel_env
from pwm.envs.suites.scripted import scripted_policy
from pwm.training.dreamer import make_runner

ROOT = Path(__file__).resolve().parents[1]
TINY = [
    "model.depth=4", "model.deter=16", "model.hidden=16", "model.groups=4", "model.classes=4", "model.units=16",
    "model.layers=1", "model.latent_action=8", "model.slot_units=16", "alg.batch=2", "alg.seq_len=4",
    "alg.horizon=3", "alg.initial_updates=2", "alg.train_every=4", "alg.bonus_queue=32", "alg.bonus_window=2",
    "alg.warmup_updates=2",
    "env.episode_length=6", "alg.prefill=6", "general.eval_runs=1", "general.eval_every=2", "general.save_every=1",
    "general.threads=1", "logger.wandb=false", "logger.progress=false", "logger.log_every=1",
]  # fmt: skip


def _runner(overrides: list[str], run_dir: Path):
    register_configs()
    with initialize_config_dir(config_dir=str(ROOT / "cfg"), version_base="1.3"):
        return make_runner(compose(config_name="config_dreamer", overrides=[*TINY, *overrides]), run_dir)


def _rows(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_success_metric_on_a_scripted_drawer_open_episode():
    """The scripted policy opens the drawer part-way through the episode: success counts at any step, and
    matches the env's per-step flags; a motionless arm never succeeds."""
    env = make_pixel_env("mw-drawer-open", seed=0, action_repeat=2, episode_length=120)
    try:
        policy, flags, frame = scripted_policy("mw-drawer-open"), [], env.reset(seed=5)
        assert frame.shape == (3, 64, 64) and frame.dtype == np.uint8
        for _ in range(60):
            flags.append(env.step(policy.get_action(env.state_obs)).info["success"])
        env.reset(seed=5)
        still = [env.step(np.zeros(4)).info["success"] for _ in range(10)]
    finally:
        env.close()
    first = flags.index(1.0)
    assert 0 < first < 59 and episode_success(flags) == 1.0
    assert episode_success(still) == 0.0 and episode_success([0.0, 1.0, 0.0]) == 1.0


def test_online_run_kill_and_resume_equals_uninterrupted(tmp_path):
    """DMControl from pixels with action repeat and frame stacking: 3 episodes in one go vs 2 episodes, then a new
    runner on the same run directory for the third: same metric rows, same weights."""
    args = ["alg=dreamerv2", "env.task=cartpole-swingup", "env.action_repeat=2", "env.frame_stack=2",
            "general.eval_every=0"]  # fmt: skip
    whole = _runner([*args, "general.steps=3", f"general.run_dir={tmp_path / 'a'}"], tmp_path / "a")
    whole.run()
    _runner([*args, "general.steps=2", f"general.run_dir={tmp_path / 'b'}"], tmp_path / "b").run()
    resumed = _runner([*args, "general.steps=3", f"general.run_dir={tmp_path / 'b'}"], tmp_path / "b")
    resumed.run()
    drop = ("time/steps_per_s", "time/train_s")
    rows_a, rows_b = ([{k: v for k, v in r.items() if k not in drop} for r in _rows(tmp_path / d)] for d in "ab")
    assert rows_a == rows_b and len(rows_a) == 3
    last = rows_a[-1]
    assert float(last["env_steps"]) == 18 and float(last["train/return"]) >= 0 and float(last["train/updates"]) > 0
    assert resumed.replay.episodes[0]["obs"].shape == (4, 6, 64, 64)  # 3 agent steps + reset, 2 stacked RGB frames
    for key, value in whole.algo.actor.state_dict().items():
        assert torch.equal(value, resumed.algo.actor.state_dict()[key])


def test_pretrain_then_finetune_cycle_carries_the_model(tmp_path):
    """A PreLAR pretraining (its resumed twin writes the same weights), then fine-tuning from it (31 tensors)."""
    rng = np.random.default_rng(0)
    for i in range(2):
        write_clip(tmp_path / "videos", "metaworld", "mw-reach", i, rng.integers(0, 256, (6, 3, 64, 64), np.uint8))
    common = ["alg=prelar_pretrain", "alg.consistency=soft", f"general.video_dir={tmp_path / 'videos'}",
              "general.eval_every=0"]  # fmt: skip
    pre = _runner([*common, "general.steps=2"], tmp_path / "pre")
    pre.run()
    assert (tmp_path / "pre" / "pretrained.pt").is_file()
    for steps in (1, 2):  # the same pretraining, interrupted after one update
        _runner([*common, f"general.steps={steps}"], tmp_path / "pre_b").run()
    weights = [read_pretrained(tmp_path / d)["weights"] for d in ("pre", "pre_b")]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    ft = _runner(["alg=prelar_finetune", f"alg.pretrained={tmp_path / 'pre'}", "general.steps=2"], tmp_path / "ft")
    ft.run()
    row = _rows(tmp_path / "ft")[-1]
    assert float(row["carried_tensors"]) == 31 and 0.0 <= float(row["eval/success"]) <= 1.0


def test_bad_inputs_are_one_line_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(VideoDataError, match="has no clips"):
        _runner(["alg=apv_pretrain", f"general.video_dir={tmp_path / 'empty'}"], tmp_path / "r1")
    with pytest.raises(ConfigError, match=r"alg\.pretrained"):
        _runner(["alg=apv_finetune"], tmp_path / "r2")
    env = {**os.environ, "MUJOCO_GL": "no-such-backend", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, str(ROOT / "scripts" / "train_dreamer.py"), f"general.run_dir={tmp_path / 'r3'}"]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    errors = [line for line in (out.stdout + out.stderr).splitlines() if line.startswith("error:")]
    assert out.returncode != 0 and len(errors) == 1, out.stdout + out.stderr
    assert "MUJOCO_GL=no-such-backend" in errors[0] and "Traceback" not in out.stderr


def test_every_v3_task_has_a_scripted_policy():
    import metaworld
    import metaworld.policies as policies

    from pwm.envs.suites.scripted import policy_class_name

    tasks = [
        "mw-" + k.removesuffix("-v3-goal-observable") for k in metaworld.env_dict.ALL_V3_ENVIRONMENTS_GOAL_OBSERVABLE
    ]
    assert len(tasks) == 50
    assert [t for t in tasks if not hasattr(policies, policy_class_name(t))] == []


def test_make_videos_writes_frames_only_and_refuses_finetuning_tasks(tmp_path, capsys):
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from make_videos import main
    finally:
        sys.path.pop(0)
    main(["--out", str(tmp_path), "--tasks", "mw-reach", "--episodes", "1", "--frames", "4"])
    path = tmp_path / "metaworld" / "mw-reach" / "clip_00000.npz"
    with np.load(path, allow_pickle=False) as data:
        assert data.files == ["frames"] and data["frames"].shape == (4, 3, 64, 64)
        assert data["frames"].std() > 0  # a rendered scene, not a blank buffer
    with pytest.raises(SystemExit, match="mw-drawer-open are fine-tuning tasks"):
        main(["--out", str(tmp_path), "--tasks", "mw-drawer-open"])
