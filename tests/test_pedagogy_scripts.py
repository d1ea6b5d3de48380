"""scripts/ball_wall.py and scripts/gradient_esnr.py at tiny sizes: what they write, and the model cache."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ball_wall_reference_csv(tmp_path, capsys):
    assert _load("ball_wall").main(["--reference", "--seeds", "0", "--out", str(tmp_path)]) == 0
    rows = list(csv.DictReader(open(tmp_path / "ball_wall_reference.csv")))
    seed0 = {r["model"]: r for r in rows if r["statistic"] == "seed0"}
    assert round(float(seed0["SimNorm"]["pred_gap"]), 3) == 3.473
    assert round(float(seed0["True"]["pred_gap"]), 3) == 16.850
    assert (tmp_path / "ball_wall_reference.png").stat().st_size > 0
    out = capsys.readouterr().out
    assert out.count(f"output directory: {tmp_path.resolve()}") == 2


def test_gradient_esnr_writes_curves_and_reuses_models(tmp_path, capsys):
    script = _load("gradient_esnr")
    argv = ["--max-horizon", "3", "--samples", "4", "--steps", "2", "--episodes", "4"]
    argv += ["--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "out")]
    assert script.main(argv) == 0
    assert "trained and saved to" in capsys.readouterr().out
    rows = list(csv.DictReader(open(tmp_path / "out" / "gradient_esnr.csv")))
    assert {r["curve"] for r in rows} == {"True (simulator)", "World model H=3", "World model H=16"}
    assert sorted({int(r["H"]) for r in rows}) == [1, 2, 3]
    true_h1 = next(r for r in rows if r["curve"] == "True (simulator)" and r["H"] == "1")
    assert float(true_h1["variance"]) == 0.0  # the first reward does not depend on the action
    assert (tmp_path / "out" / "gradient_esnr.png").stat().st_size > 0
    first = (tmp_path / "out" / "gradient_esnr.csv").read_text()
    assert script.main(argv) == 0
    out = capsys.readouterr().out
    assert out.count("loaded from") == 2 and "trained and saved to" not in out
    assert (tmp_path / "out" / "gradient_esnr.csv").read_text() == first  # same models, same noise: same curves


@pytest.mark.parametrize("name", ["ball_wall", "gradient_esnr"])
def test_help(name, capsys):
    with pytest.raises(SystemExit):
        _load(name).main(["--help"])
    assert "--out" in capsys.readouterr().out
