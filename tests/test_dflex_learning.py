"""benchmarks/dflex_learning.py end to end at a tiny budget: PWM (pretrained on SHAC's data), SHAC and PPO on one
task and seed, the table built from the run files, and a rerun that skips every finished run."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TINY_WM = "latent_dim=32 enc_dim=32 mlp_dim=32 num_enc_layers=2 num_q=2 dropout=0.0"
TINY = [
    "--tasks", "hopper", "--seeds", "1", "--env-steps", "128", "--evals", "2", "--eval-runs", "2",
    "--pretrain-steps", "2", "--reps", "100",
    "--hydra-args", "env.config.episode_length=20 env.config.num_envs=4 logger.log_every=1",
    "--shac-args", "alg.horizon=8 alg.actor_hidden=[16] alg.critic_hidden=[16]",
    "--pwm-args", "alg.horizon=4 alg.actor_hidden=[16] alg.critic_hidden=[16] alg.wm_bootstrap_iterations=3 "
    "alg.wm_iterations=2 alg.wm_batch_size=8 alg.wm_horizon=4 "
    + " ".join(f"alg.world_model.{kv}" for kv in TINY_WM.split()),
    "--ppo-args", "--n-steps 8",
]  # fmt: skip


def _csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_benchmark_runs_three_algorithms_and_tabulates_their_run_files(tmp_path):
    cmd = [sys.executable, str(ROOT / "benchmarks" / "dflex_learning.py"), "--out", str(tmp_path / "runs"), *TINY]
    first = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    runs = tmp_path / "runs" / "dflex_hopper"
    assert (runs / "shac" / "1" / "episodes.pt").is_file()  # PWM's pretraining data
    assert any(k.startswith("pretrain/") for k in _csv(runs / "pwm" / "1" / "metrics.csv")[0])
    table = {r["alg"]: r for r in _csv(tmp_path / "runs" / "curves_table.csv")}
    assert sorted(table) == ["ppo", "pwm", "shac"] and (tmp_path / "runs" / "curves.png").is_file()
    for alg, row in table.items():
        evals = [(float(r["env_steps"]), float(r["eval/return"])) for r in _csv(runs / alg / "1" / "metrics.csv")
                 if r["eval/return"] not in ("", "nan")]  # fmt: skip
        assert max(e[0] for e in evals) >= 128  # the budget was reached
        best = max(evals, key=lambda e: e[1])  # one seed: the IQM curve is the run's own curve
        assert float(row["max_iqm"]) == pytest.approx(best[1]) and float(row["env_steps"]) == best[0]
    assert float(table["ppo"]["ours"]) == pytest.approx(1.0)
    assert float(table["pwm"]["ours"]) == pytest.approx(float(table["pwm"]["max_iqm"]) / float(table["ppo"]["max_iqm"]))
    assert "| dflex_hopper | pwm | 1 |" in first.stdout
    again = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count(": finished") == 3 and "run dflex_hopper" not in again.stdout
