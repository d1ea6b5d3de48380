import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from pwm.algorithms.tdmpc2 import TDMPC2
from pwm.checkpoint.run_state import CheckpointDir, RunStateError, load_run_state, read_run_state, save_run_state
from pwm.config import TDMPC2Config, WorldModelConfig
from pwm.data.batch import SequenceBatch
from pwm.models.world_model import WorldModel

CONFIG = {"world_model": {"latent_dim": 64, "task": "mt30"}, "tdmpc2": {"horizon": 3}, "steps": 10}


def tiny_algo(seed: int = 0) -> TDMPC2:
    torch.manual_seed(seed)
    cfg = WorldModelConfig(size=None, task="mt30", latent_dim=64, enc_dim=32, mlp_dim=48, num_enc_layers=2, num_q=2)
    return TDMPC2(WorldModel(cfg), TDMPC2Config(batch_size=8, horizon=3))


def batch(seed: int) -> SequenceBatch:
    g = torch.Generator().manual_seed(seed)
    return SequenceBatch(
        obs=torch.randn(4, 8, 24, generator=g),
        action=torch.rand(3, 8, 6, generator=g) * 2 - 1,
        reward=torch.rand(3, 8, generator=g),
        task=torch.randint(0, 30, (8,), generator=g),
    )


def test_round_trip_restores_outputs_optimizer_and_rng(tmp_path):
    algo = tiny_algo()
    for i in range(3):
        algo.update(batch(i))
    save_run_state(tmp_path / "s.pt", {"algo": algo}, step=3, config=CONFIG, extra={"note": 1})
    expected = [algo.update(batch(10)), torch.rand(3)]

    restored = tiny_algo(seed=123)  # different init: everything must come from the file
    step, extra = load_run_state(tmp_path / "s.pt", {"algo": restored}, CONFIG)
    assert (step, extra) == (3, {"note": 1})
    assert restored.optim.state_dict()["state"].keys() == algo.optim.state_dict()["state"].keys()
    got = [restored.update(batch(10)), torch.rand(3)]
    assert got[0] == expected[0]  # identical metrics: same weights, Adam moments, scale and RNG stream
    torch.testing.assert_close(got[1], expected[1])


def test_config_mismatch_is_refused_with_the_key(tmp_path):
    algo = tiny_algo()
    save_run_state(tmp_path / "s.pt", {"algo": algo}, step=0, config=CONFIG)
    other = {**CONFIG, "world_model": {"latent_dim": 128, "task": "mt30"}}
    with pytest.raises(RunStateError, match=r"world_model.latent_dim=64 but this run has world_model.latent_dim=128"):
        load_run_state(tmp_path / "s.pt", {"algo": tiny_algo()}, other)
    # keys the caller declares irrelevant (e.g. the total number of steps) may differ
    load_run_state(tmp_path / "s.pt", {"algo": tiny_algo()}, {**CONFIG, "steps": 99}, ignore=("steps",))


def test_non_finite_state_is_never_written(tmp_path):
    algo = tiny_algo()
    save_run_state(tmp_path / "s.pt", {"algo": algo}, step=1, config=CONFIG)
    with torch.no_grad():
        algo.model._dynamics[0].weight[0, 0] = float("nan")
    with pytest.raises(RunStateError, match=r"model._dynamics.0.weight holds NaN"):
        save_run_state(tmp_path / "s.pt", {"algo": algo}, step=2, config=CONFIG)
    assert read_run_state(tmp_path / "s.pt")["step"] == 1  # the good state survived


def test_corrupt_and_missing_files_give_one_line_errors(tmp_path):
    with pytest.raises(RunStateError, match="no run state at"):
        read_run_state(tmp_path / "absent.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a zip")
    with pytest.raises(RunStateError, match="is not a readable run state") as err:
        read_run_state(tmp_path / "junk.pt")
    assert "\n" not in str(err.value)
    torch.save({"model": {}}, tmp_path / "foreign.pt")
    with pytest.raises(RunStateError, match="is not a pwm run state"):
        read_run_state(tmp_path / "foreign.pt")


def test_checkpoint_dir_keeps_newest(tmp_path):
    algo = tiny_algo()
    ckpt = CheckpointDir(tmp_path, keep=2)
    for step in (5, 10, 15):
        ckpt.save({"algo": algo}, step, CONFIG)
    assert [p.name for p in ckpt.paths()] == ["state_000000010.pt", "state_000000015.pt"]
    (tmp_path / "state_000000020.pt.123.tmp").write_bytes(b"partial")  # an interrupted save
    assert ckpt.latest().name == "state_000000015.pt"


KILL_SCRIPT = textwrap.dedent(
    """
    import sys, torch
    from pwm.checkpoint.run_state import save_run_state
    class Big:
        def __init__(self, v): self.v = v
        def state_dict(self): return {"w": torch.full((8_000_000,), float(self.v))}
    i = 0
    while True:
        i += 1
        save_run_state(sys.argv[1], {"big": Big(i)}, step=i, config={})
        print(i, flush=True)
    """
)


def test_save_killed_mid_write_never_leaves_a_loadable_bad_file(tmp_path):
    path = tmp_path / "state.pt"
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "1"  # one complete save exists
        time.sleep(0.15)  # kill somewhere inside a later save (each takes ~0.1-0.3 s)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    payload = read_run_state(path)
    step, weights = payload["step"], payload["components"]["big"]["w"]
    assert step >= 1 and torch.equal(weights, torch.full_like(weights, float(step)))
