"""benchmarks/prelar_metaworld.py --plot-only on a benchmark in progress: finished evaluations are tabulated, runs
not started are left out with a note, and a benchmark with no evaluation at all ends in one line."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("prelar_metaworld", ROOT / "benchmarks" / "prelar_metaworld.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def read(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def episode(step: int, success: str, ret: str, train_s: float) -> dict:
    """One metrics.csv row of an online run; training rows carry no evaluation (empty eval columns)."""
    return {"step": step, "env_steps": step * 500, "eval/success": success, "eval/return": ret, "time/train_s": train_s}


def test_plot_only_tabulates_finished_evaluations_and_skips_runs_not_started(bench, tmp_path, capsys):
    out, results = tmp_path / "runs", tmp_path / "results"
    pre = [{"step": 50, "pre/image": 120.0, "pre/kl": 0.05, "time/train_s": 40.0},
           {"step": 100, "pre/image": 45.5, "pre/kl": 1.3, "time/train_s": 81.5}]  # fmt: skip
    write(out / "pretrain" / "apv" / "metrics.csv", pre)
    write(out / "mw-drawer-open" / "apv" / "seed1" / "metrics.csv",
          [episode(1, "", "", 60.0), episode(2, "0.2", "300.0", 130.0), episode(3, "", "", 190.0),
           episode(4, "0.0", "350.5", 260.0)])  # fmt: skip
    bench.main(["--out", str(out), "--results", str(results), "--tag", "t", "--methods", "dreamerv2", "apv",
                "--seeds", "1", "--plot-only"])  # fmt: skip
    assert "mw-drawer-open dreamerv2 seed 1: no evaluation yet, left out" in capsys.readouterr().out
    evals = read(results / "prelar_t.csv")
    assert [(r["method"], r["env_steps"], r["success"]) for r in evals] == [
        ("apv", "1000", "0.2"),
        ("apv", "2000", "0.0"),
    ]
    runs = {r["run"]: r for r in read(results / "prelar_t_runs.csv")}
    assert set(runs) == {"pretrain/apv", "mw-drawer-open/apv/seed1"}
    assert (runs["pretrain/apv"]["steps"], runs["pretrain/apv"]["train_s"]) == ("100", "81.5")
    fine = runs["mw-drawer-open/apv/seed1"]
    assert (fine["steps"], fine["last_success"], fine["best_success"], fine["train_s"]) == ("4", "0.0", "0.2", "260.0")
    curves = read(results / "prelar_t_pretrain.csv")  # APV-style logs no latent-action losses: empty cells
    assert [(r["model"], r["step"], r["image"], r["kl"], r["va_kl"]) for r in curves] == [
        ("apv", "50", "120.0", "0.05", ""), ("apv", "100", "45.5", "1.3", "")]  # fmt: skip
    assert (results / "prelar_t.png").stat().st_size > 0


def test_plot_only_without_any_evaluation_ends_in_one_line(bench, tmp_path):
    with pytest.raises(SystemExit, match=r"no run under .* has an evaluation yet"):
        bench.main(["--out", str(tmp_path), "--results", str(tmp_path / "r"), "--seeds", "1", "--plot-only"])
