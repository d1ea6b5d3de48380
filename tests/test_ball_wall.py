"""The ball–wall table: the reference's numbers to 3 decimals, and what the corrected experiment changes."""

from __future__ import annotations

import math

import pytest
import torch

from pwm.pedagogy import ball_wall as bw


@pytest.fixture(scope="module")
def reference_rows():
    return {r.name: r for r in bw.run_seed(0, bw.REFERENCE)}


def test_objective_landscape():
    theta = bw.theta_grid()
    j = bw.objective(theta)
    assert int(j.argmin()) == 519
    assert j.min().item() == pytest.approx(-21.8498, abs=1e-3)
    assert j[bw.REFERENCE_TRUE_INDEX].item() == -5.0  # the plateau where the ball sticks to the wall
    assert bw.objective(torch.tensor([math.pi])).item() == pytest.approx(18.0, abs=1e-4)  # thrown backwards


def test_models_have_1281_parameters():
    for model in (bw.MLPModel(), bw.SimNormModel()):
        assert sum(p.numel() for p in model.parameters()) == 1281


def test_reference_reproduces_published_table(reference_rows):
    true, mlp, simnorm = reference_rows["True"], reference_rows["MLP (ref. 'ReLU')"], reference_rows["SimNorm"]
    assert (round(true.rmse, 3), round(true.pred_gap, 3)) == (0.0, 16.850)
    assert (round(mlp.rmse, 3), round(mlp.pred_gap, 3)) == (0.707, 16.046)
    assert (round(simnorm.rmse, 3), round(simnorm.pred_gap, 3)) == (1.131, 3.473)
    assert mlp.argmin_theta < 0  # the restricted search


def test_corrected_run_differs():
    rows = {r.name: r for r in bw.run_seed(0, bw.CORRECTED)}
    simnorm, mlp = rows["SimNorm"], rows["MLP (ref. 'ReLU')"]
    assert simnorm.rmse == pytest.approx(4.0, abs=0.05)  # without the accumulated decoder gradients
    assert mlp.argmin_theta > 0  # the unrestricted argmin leaves the θ < 0 basin
    assert rows["True"].pred_gap == 0.0
    # the true gap is J at the model's argmin, not the model's own prediction there
    j = bw.objective(bw.theta_grid())
    assert simnorm.true_gap == pytest.approx(float(j[simnorm.argmin_index] - j.min()))


def test_summary_mean_and_std():
    results = {
        0: [bw.ModelResult("m", 1.0, 0, 0.0, 2.0, 3.0)],
        1: [bw.ModelResult("m", 3.0, 0, 0.0, 2.0, 5.0)],
    }
    (row,) = bw.summarise(results)
    assert row["rmse_mean"] == 2.0 and row["rmse_std"] == pytest.approx(math.sqrt(2))
    assert row["pred_gap_std"] == 0.0 and row["true_gap_mean"] == 4.0
