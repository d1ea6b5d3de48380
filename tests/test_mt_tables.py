"""Results files with planning rows, reference-return normalisation and the side-by-side per-task table."""

from __future__ import annotations

import json

import pytest

from pwm.evaluation.aggregate import RESULTS_HEADER, ResultsError, load_runs, read_run, read_runs
from pwm.evaluation.mt_tables import read_references, score_rows, side_by_side, with_references


def write(path, task: str, seed: int, rows: list[tuple[int, str, float]]):
    """rows: (iteration, alg, episode_reward)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [",".join(RESULTS_HEADER)] + [f"{i},{task},mt30,{seed},{alg},{r},0,500,{i}" for i, alg, r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_planning_rows_are_runs_of_their_own(tmp_path):
    rows = [(0, "pwm", 10.0), (4, "pwm", 300.0), (4, "pwm+mppi", 450.0), (4, "tdmpc2-mppi", 200.0)]
    path = write(tmp_path / "results.csv", "cartpole-swingup", 1, rows)
    runs = {r.alg: r for r in read_runs(path)}
    assert set(runs) == {"pwm", "pwm+mppi", "tdmpc2-mppi"}
    assert runs["pwm"].iterations.tolist() == [0, 4] and runs["pwm"].score == pytest.approx(0.3)
    assert runs["pwm+mppi"].score == pytest.approx(0.45) and runs["tdmpc2-mppi"].score == pytest.approx(0.2)
    with pytest.raises(ResultsError, match="holds several algorithms"):
        read_run(path)


def test_scores_normalised_by_the_collecting_agents_return(tmp_path):
    write(tmp_path / "a" / "results.csv", "cartpole-swingup", 1, [(4, "pwm", 300.0), (4, "tdmpc2-mppi", 150.0)])
    write(tmp_path / "b" / "results.csv", "reacher-easy", 1, [(4, "pwm", 50.0), (4, "tdmpc2-mppi", 400.0)])
    manifest = {"format": "pwm-mt-collect-v1", "tasks": {
        "cartpole-swingup": {"final_return": 600.0, "random_return": 30.0},
        "reacher-easy": {"final_return": 500.0, "random_return": 40.0},
    }}  # fmt: skip
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    refs = read_references(tmp_path / "manifest.json")
    assert refs == {"cartpole-swingup": 600.0, "reacher-easy": 500.0}
    runs = with_references(load_runs([tmp_path / "a", tmp_path / "b"]), refs)
    scores = {(r["alg"], r["task"]): r["score"] for r in score_rows(runs)}
    assert scores == {("pwm", "reacher-easy"): 0.1, ("pwm", "cartpole-swingup"): 0.5,
                      ("tdmpc2-mppi", "reacher-easy"): 0.8, ("tdmpc2-mppi", "cartpole-swingup"): 0.25}  # fmt: skip
    table = side_by_side(runs).splitlines()
    assert table[0].split() == ["task", "pwm", "tdmpc2-mppi"]
    assert table[1].split()[:2] == ["reacher-easy", "0.100"] and "0.800" in table[1]  # registry order: id 4 first
    with pytest.raises(ResultsError, match="no reference return for task 'reacher-easy'"):
        with_references(runs, {"cartpole-swingup": 600.0})
    with pytest.raises(ResultsError, match=r"reference return of 'reacher-easy' is 0\.0; a score needs a positive"):
        with_references(runs, {**refs, "reacher-easy": 0.0})  # an agent that learnt nothing (used by a run)
    assert len(with_references(runs, {**refs, "finger-spin": 0.0})) == 4  # unused tasks may score 0


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ('{"cartpole-swingup": "high"}', "expected a number"),
        ('{"tasks": {"cartpole-swingup": {"random_return": 3}}}', "is None; expected a number"),
        ("[1, 2]", "expected a JSON object"),
        ("{not json", "cannot read reference returns"),
    ],
)
def test_bad_reference_files_raise_one_line(tmp_path, content, match):
    (tmp_path / "refs.json").write_text(content)
    with pytest.raises(ResultsError, match=match) as err:
        read_references(tmp_path / "refs.json")
    assert "\n" not in str(err.value)
