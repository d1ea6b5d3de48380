"""benchmarks/multitask_evidence.py at toy size: SAC data -> one world model -> PWM / MPPI baselines -> the table,
and a rerun that skips every finished stage."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from pwm.data.dataset import open_dataset

ROOT = Path(__file__).resolve().parents[1]
TASKS = ("cartpole-balance", "cartpole-swingup")  # ids 8, 10; random policies already score > 0 on both
TOY = [
    "--tasks", *TASKS, "--seeds", "1", "--collect-steps", "500", "--random-steps", "100",
    "--collect-args", "--save-every 500 --eval-episodes 1 --batch-size 16",
    "--wm-steps", "10", "--wm-dims", "size=null latent_dim=32 enc_dim=32 mlp_dim=32 num_enc_layers=2 num_q=2",
    "--wm-args", "tdmpc2.batch_size=16", "--pwm-steps", "4", "--evals", "1", "--eval-runs", "1", "--reps", "50",
    "--pwm-args", "alg.batch_size=16 alg.horizon=4 alg.actor_hidden=[16] alg.critic_hidden=[16] "
    "alg.critic_iterations=1 alg.critic_batches=1 eval.mppi.iterations=1 eval.mppi.num_samples=16 "
    "eval.mppi.num_elites=4 eval.mppi.num_pi_trajs=2",
]  # fmt: skip
ALGS = ("pwm", "pwm+mppi", "tdmpc2-mppi")


@pytest.fixture(scope="module")
def evidence():
    spec = importlib.util.spec_from_file_location("multitask_evidence", ROOT / "benchmarks" / "multitask_evidence.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def read(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_toy_chain_makes_the_table_and_a_rerun_skips_finished_work(evidence, tmp_path, capfd, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # the stages are subprocesses
    assert evidence(["--out", str(tmp_path), *TOY]) == 0
    ds = open_dataset(tmp_path / "data", "mt30")  # the official layout's validation: T=501, padded dims, ids
    assert (ds.num_episodes, ds.episode_length, ds.obs_dim, ds.action_dim) == (2, 501, 24, 6)
    assert sorted(ds.task_of_episode.tolist()) == [8, 10]
    manifest = json.loads((tmp_path / "data" / "manifest.json").read_text())["tasks"]
    assert set(manifest) == set(TASKS) and all(e["final_return"] > 0 for e in manifest.values())

    results = tmp_path / "results"
    summary = read(results / "summary.csv")
    assert {(r["alg"], r["metric"]) for r in summary} == {(a, m) for a in ALGS for m in ("mean", "median", "iqm")}
    assert all(float(r["low"]) <= float(r["point"]) <= float(r["high"]) for r in summary)
    scores = read(results / "scores.csv")
    assert sorted((r["task"], r["alg"]) for r in scores) == sorted((t, a) for t in TASKS for a in ALGS)
    for r in scores:  # normalised by the data-collecting agent's final return, not by 1000
        assert float(r["reference"]) == pytest.approx(manifest[r["task"]]["final_return"])
        assert float(r["score"]) == pytest.approx(float(r["episode_reward"]) / float(r["reference"]), rel=1e-3)
    mean = {r["alg"]: float(r["point"]) for r in summary if r["metric"] == "mean"}
    for alg in ALGS:
        assert mean[alg] == pytest.approx(np.mean([float(r["score"]) for r in scores if r["alg"] == alg]), rel=1e-4)
    quality = read(results / "wm_quality.csv")
    assert [(q["task"], q["part"]) for q in quality] == [(t, p) for t in TASKS for p in ("early", "late", "all")]
    assert all(float(q["reward_mae_rollout"]) >= 0 and float(q["latent_mse_last"]) >= 0 for q in quality)
    policy_errors = read(results / "policy_model_errors.csv")
    assert [r["task"] for r in policy_errors] == list(TASKS)
    assert all(float(r["reward_mae_first"]) >= 0 and float(r["value_rel_error"]) >= 0 for r in policy_errors)
    assert (results / "multitask_evidence.png").stat().st_size > 0
    out = capfd.readouterr().out
    assert "tdmpc2-mppi" in out and "cartpole-swingup" in out  # the table went to stdout

    finished = [tmp_path / "data" / "chunk_10.pt", tmp_path / "world_model" / "models" / "10.pt",
                tmp_path / "policies" / "cartpole-swingup" / "seed1" / "results.csv"]  # fmt: skip
    mtimes = [p.stat().st_mtime_ns for p in finished]
    assert evidence(["--out", str(tmp_path), *TOY]) == 0
    out = capfd.readouterr().out
    assert "skip collection" in out and "skip world model" in out
    assert all(f"skip {t} seed 1: finished" in out for t in TASKS)
    assert [p.stat().st_mtime_ns for p in finished] == mtimes
