"""benchmarks/prelar_metaworld.py --plot-only on a benchmark in progress: finished evaluations are tabulated, runs
not started are left out with a note, and a benchmark with no evaluation at all ends in one line."""

from __future__ import annotations

import csv
import importlib.util
import threading
import time
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


def fake_calls(bench, monkeypatch, fail: str | None = None) -> list[tuple[str, str]]:
    """Replace the benchmark's subprocess call: record ("start"/"end", run) events; pretraining takes a little
    while, so a fine-tuning run that did not wait for it would start before its "end"; ``fail`` exits like a
    failed stage."""
    events, lock = [], threading.Lock()

    def call(cmd: list[str], log: Path) -> float:
        run = "videos" if log.name == "videos.log" else next(a.split("=", 1)[1] for a in cmd if "run_dir=" in a)
        with lock:
            events.append(("start", run))
        time.sleep(0.2 if "pretrain" in run else 0.01)
        if fail is not None and run.endswith(fail):
            raise SystemExit(f"error: {fail} failed; see {log}")
        with lock:
            events.append(("end", run))
        return 1.0

    monkeypatch.setattr(bench, "_call", call)
    return events


def test_parallel_stages_wait_for_their_pretrained_model(bench, tmp_path, monkeypatch):
    events = fake_calls(bench, monkeypatch)
    args = bench.parse_args(["--out", str(tmp_path), "--seeds", "1", "2", "--jobs", "3"])
    walls = bench.stages(args)
    started = [run for kind, run in events if kind == "start"]
    fine = [f"{tmp_path}/mw-drawer-open/{m}/seed{s}" for m in ("dreamerv2", "apv", "prelar") for s in (1, 2)]
    assert sorted(started) == sorted(["videos", f"{tmp_path}/pretrain/apv", f"{tmp_path}/pretrain/prelar", *fine])
    for method in ("apv", "prelar"):
        done = events.index(("end", f"{tmp_path}/pretrain/{method}"))
        for seed in (1, 2):
            assert events.index(("start", f"{tmp_path}/mw-drawer-open/{method}/seed{seed}")) > done
    first_dreamer = events.index(("start", f"{tmp_path}/mw-drawer-open/dreamerv2/seed1"))
    assert first_dreamer < events.index(("end", f"{tmp_path}/pretrain/apv"))  # the third slot did not sit idle
    assert [w["stage"] for w in walls][:3] == ["videos", "pretrain_apv", "pretrain_prelar"]
    assert len(walls) == 9 and all(w["wall_s"] == 1.0 for w in walls)


def test_failed_pretraining_ends_the_benchmark_without_its_fine_tuning(bench, tmp_path, monkeypatch, capsys):
    events = fake_calls(bench, monkeypatch, fail="pretrain/prelar")
    args = bench.parse_args(["--out", str(tmp_path), "--seeds", "1", "--jobs", "2"])
    with pytest.raises(SystemExit, match="pretrain/prelar failed"):
        bench.stages(args)
    assert ("start", f"{tmp_path}/mw-drawer-open/prelar/seed1") not in events
    assert "pretrain/prelar failed" in capsys.readouterr().err  # said at once, not after the running stages


def test_jobs_below_one_is_a_one_line_error(bench, capsys):
    with pytest.raises(SystemExit):
        bench.parse_args(["--jobs", "0"])
    assert "--jobs 0: at least one run must be allowed at a time" in capsys.readouterr().err
