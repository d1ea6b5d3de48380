"""Official TD-MPC2 / PWM checkpoint layouts load into our WorldModel, and our exports load back.

Each official layout is written here by hand from the key-layout description (docs/tdmpc2_reference.md,
"Checkpoint key layouts"; external/README.md), independently of the exporter in ``pwm.checkpoint.tdmpc2_save``,
so a mapping bug cannot cancel itself out.
Source models get random weights everywhere (TD-MPC2's init zeroes the reward and Q output layers, which would
hide a wrong mapping) and a target Q network that differs from the online one.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from pwm.checkpoint import tdmpc2_cli
from pwm.checkpoint.tdmpc2_dims import count_parameters, infer_dims
from pwm.checkpoint.tdmpc2_layouts import CheckpointError, detect_layout, to_canonical
from pwm.checkpoint.tdmpc2_load import load_into, load_state_dict_file
from pwm.checkpoint.tdmpc2_save import export_state_dict, save_official
from pwm.config import WorldModelConfig
from pwm.data.tasks import MT30
from pwm.models.world_model import WorldModel

REPO = Path(__file__).resolve().parents[1]
CLI = REPO / "scripts" / "tdmpc2_checkpoint.py"
MT = dict(size=None, task="mt30", latent_dim=64, enc_dim=32, mlp_dim=48, num_enc_layers=2, num_q=5)
ST = dict(size=None, task="walker-walk", latent_dim=64, enc_dim=32, mlp_dim=48, num_enc_layers=2, num_q=2)

# Flat order of the 2023 Q ParameterList: four tensors per hidden layer, then the output Linear.
RELEASED_Q = ("0.weight", "0.bias", "0.ln.weight", "0.ln.bias", "1.weight", "1.bias", "1.ln.weight", "1.ln.bias",
              "2.weight", "2.bias")  # fmt: skip
# Pre-release nn.Sequential positions (file prefix -> our prefix) for num_enc_layers=2.
PRERELEASE = {
    "_encoder.state.1.": "_encoder.state.0.", "_encoder.state.2.": "_encoder.state.0.ln.",
    "_encoder.state.4.": "_encoder.state.1.", "_encoder.state.5.": "_encoder.state.1.ln.",
    "_dynamics.0.0.": "_dynamics.0.", "_dynamics.0.1.": "_dynamics.0.ln.", "_dynamics.0.3.": "_dynamics.1.",
    "_dynamics.0.4.": "_dynamics.1.ln.", "_dynamics.0.6.": "_dynamics.2.", "_dynamics.1.": "_dynamics.2.ln.",
    "_reward.0.": "_reward.0.", "_reward.1.": "_reward.0.ln.", "_reward.3.": "_reward.1.",
    "_reward.4.": "_reward.1.ln.", "_reward.6.": "_reward.2.",
    "_pi.0.": "_pi.0.", "_pi.1.": "_pi.0.ln.", "_pi.3.": "_pi.1.", "_pi.4.": "_pi.1.ln.", "_pi.6.": "_pi.2.",
}  # fmt: skip


def make_model(spec: dict, seed: int | None = None, **overrides) -> WorldModel:
    """A small model; with ``seed``, every parameter (target Q included) is N(0, 0.5²) random."""
    model = WorldModel(WorldModelConfig(**{**spec, **overrides}))
    if seed is not None:
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
    return model.eval()


@torch.no_grad()
def outputs(model: WorldModel, heads: tuple[str, ...] = ("pi", "Q")) -> dict[str, torch.Tensor]:
    """encode/next/reward (and Q(all), target Q, pi mean/log_std) on fixed inputs.

    Both models of a comparison make the same calls in the same order, so the task embedding's in-place
    ``max_norm`` renormalisation treats both identically.
    """
    gen = torch.Generator().manual_seed(123)
    cfg = model.cfg
    obs = torch.randn(6, cfg.obs_dim, generator=gen)
    a = torch.rand(6, cfg.action_dim, generator=gen) * 2 - 1
    task = torch.tensor([0, 3, 7, 12, 29, 4]) if cfg.multitask else None
    z = model.encode(obs, task)
    out = {"z": z, "next": model.next(z, a, task), "reward": model.reward(z, a, task)}
    if "Q" in heads:
        out["Q"] = model.Q(z, a, task, "all")
        out["Q_target"] = model.Q(z, a, task, "all", target=True)
    if "pi" in heads:
        _, info = model.pi(z, task)
        out["pi_mean"], out["pi_log_std"] = info["mean"], info["log_std"]
    return out


def assert_same(src: WorldModel, dst: WorldModel, heads: tuple[str, ...] = ("pi", "Q")) -> None:
    expected, got = outputs(src, heads), outputs(dst, heads)
    for name, value in expected.items():
        torch.testing.assert_close(got[name], value, rtol=0, atol=0, msg=f"{name} differs")


def save(sd: dict, path: Path) -> Path:
    torch.save({"model": sd}, path)
    return path


# ----------------------------------------------------------------------------------------------------------
# hand-written official layouts


def released_from(model: WorldModel, with_target: bool = True) -> dict:
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    out = {k: v for k, v in sd.items() if not k.startswith(("_Qs.", "_target_Qs."))}
    for n, name in enumerate(RELEASED_Q):
        out[f"_Qs.params.{n}"] = sd.pop(f"_Qs.params.{name}")
        target = sd.pop(f"_target_Qs.params.{name}")
        if with_target:
            out[f"_target_Qs.params.{n}"] = target
    assert not [k for k in sd if k.startswith(("_Qs.", "_target_Qs."))], "every Q tensor has a flat index"
    return out


def prerelease_from(model: WorldModel) -> dict:
    sd = model.state_dict()
    out = {theirs + p: sd[ours + p].clone() for theirs, ours in PRERELEASE.items() for p in ("weight", "bias")}
    out.update({k: v for k, v in released_from(model).items() if k.startswith(("_Qs.", "_target_Qs."))})
    assert len(out) == 60  # the pre-release single-task files hold 60 keys
    return out


def current_from(model: WorldModel) -> dict:
    """Layout (a) as TD-MPC2's tensordict model saves it, metadata entries included."""
    sd = model.state_dict()
    out: dict = {"log_std_min": torch.tensor(-10), "log_std_dif": torch.tensor(12)}
    if model.cfg.multitask:
        masks = torch.zeros(len(MT30), 6)
        for i, dims in enumerate(MT30.action_dims):
            masks[i, :dims] = 1
        out["_action_masks"] = masks
    for key, value in sd.items():
        if key.startswith("_target_Qs.params."):
            out["_target_Qs_params." + key[len("_target_Qs.params.") :]] = value.clone()
            continue
        out[key] = value.clone()
        if key.startswith("_Qs.params."):
            out["_detach_Qs_params." + key[len("_Qs.params.") :]] = out[key]
    for prefix in ("_Qs.params.", "_detach_Qs_params.", "_target_Qs_params."):
        out[prefix + "__batch_size"] = torch.Size([model.cfg.num_q])
        out[prefix + "__device"] = torch.device("cpu")
    return out


def pwm_from(model: WorldModel) -> dict:
    return {
        k.replace("_encoder.state.", "_encoder."): v.clone()
        for k, v in model.state_dict().items()
        if not k.startswith(("_pi.", "_Qs.", "_target_Qs."))
    }


class _NormedLinear(nn.Linear):
    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__(n_in, n_out)
        self.ln = nn.LayerNorm(n_out)


def _members(ensemble) -> list[nn.Module]:
    """One plain Sequential per ensemble member, holding that member's weights."""
    members = []
    for k in range(ensemble.num_members):
        layers = []
        for layer in ensemble.params:
            out_f, in_f = layer.weight.shape[1:]
            mod = _NormedLinear(in_f, out_f) if layer.ln is not None else nn.Linear(in_f, out_f)
            mod.load_state_dict({n: t[k] for n, t in layer.state_dict().items()})
            layers.append(mod)
        members.append(nn.Sequential(*layers))
    return members


def tensordict_state_dict(model: WorldModel) -> dict:
    """The state dict of a replica of TD-MPC2 HEAD's tensordict Q ensemble, built with the installed tensordict.

    With tensordict >= 0.14 this yields the placeholder variant (``_Qs.module.*`` meta tensors, no metadata).
    """
    from tensordict import TensorDictParams, from_modules

    class Ensemble(nn.Module):
        def __init__(self, modules):
            super().__init__()
            self.params = from_modules(*modules, as_module=True)
            with self.params[0].data.to("meta").to_module(modules[0]):
                self.module = copy.deepcopy(modules[0])

    class Head(nn.Module):
        def __init__(self):
            super().__init__()
            self._Qs = Ensemble(_members(model._Qs))
            target = from_modules(*_members(model._target_Qs))
            self._detach_Qs_params = TensorDictParams(self._Qs.params.data, no_convert=True)
            self._target_Qs_params = TensorDictParams(target.data.clone(), no_convert=True)
            with self._detach_Qs_params.data.to("meta").to_module(self._Qs.module):
                self._detach_Qs = copy.deepcopy(self._Qs)
                self._target_Qs = copy.deepcopy(self._Qs)
            for name, params in (("_detach_Qs", self._detach_Qs_params), ("_target_Qs", self._target_Qs_params)):
                delattr(getattr(self, name), "params")
                getattr(self, name).__dict__["params"] = params

    rest = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith(("_Qs.", "_target_Qs."))}
    return {**rest, **Head().state_dict()}


# ----------------------------------------------------------------------------------------------------------
# loading each layout


@pytest.mark.parametrize(
    ("layout", "spec", "builder"),
    [
        ("released", MT, released_from),
        ("released", ST, released_from),
        ("current", MT, current_from),
        ("current", ST, current_from),
        ("prerelease", ST, prerelease_from),
    ],
)
def test_official_layout_loads_with_identical_outputs(tmp_path, layout, spec, builder):
    src = make_model(spec, seed=1)
    path = save(builder(src), tmp_path / "ckpt.pt")
    assert detect_layout(load_state_dict_file(path)) == layout
    dst = make_model(spec)
    report = load_into(dst, path)
    assert report.layout == layout and report.fresh == () and not report.target_from_online
    expected = {"_encoder", "_dynamics", "_reward", "_pi", "_Qs", "_target_Qs"}
    assert set(report.loaded) == expected | ({"_task_emb"} if spec is MT else set())
    for key, value in src.state_dict().items():
        assert torch.equal(dst.state_dict()[key], value), key
    assert_same(src, dst)


def test_tensordict_placeholder_variant_loads(tmp_path):
    src = make_model(MT, seed=2)
    sd = tensordict_state_dict(src)
    assert "_detach_Qs_params.0.weight" in sd and "_target_Qs_params.2.bias" in sd
    dst = make_model(MT)
    report = load_into(dst, save(sd, tmp_path / "td.pt"))
    assert report.layout == "current"
    assert any(k.startswith("_Qs.module.") for k in report.ignored) or any("__batch_size" in k for k in report.ignored)
    assert_same(src, dst)


def test_current_layout_without_metadata_or_buffers_loads(tmp_path):
    src = make_model(MT, seed=3)
    sd = {k: v for k, v in current_from(src).items() if not k.endswith(("__batch_size", "__device"))}
    sd = {k: v for k, v in sd.items() if k not in ("_action_masks", "log_std_min", "log_std_dif")}
    dst = make_model(MT)
    load_into(dst, save(sd, tmp_path / "bare.pt"))
    assert_same(src, dst)


def test_pwm_layout_loads_and_keeps_policy_and_q_fresh(tmp_path):
    src = make_model(MT, seed=4)
    dst = make_model(MT, seed=5)
    before = {k: v.clone() for k, v in dst.state_dict().items() if k.startswith(("_pi.", "_Qs.", "_target_Qs."))}
    report = load_into(dst, save(pwm_from(src), tmp_path / "pwm.pt"))
    assert report.layout == "pwm"
    assert report.loaded == ("_task_emb", "_encoder", "_dynamics", "_reward")
    assert report.fresh == ("_pi", "_Qs", "_target_Qs")
    for key, value in before.items():
        assert torch.equal(dst.state_dict()[key], value), key
    assert_same(src, dst, heads=())


@pytest.mark.parametrize("builder", [released_from, current_from])
def test_missing_target_q_starts_at_online_q(tmp_path, builder):
    src = make_model(MT, seed=6)
    sd = {k: v for k, v in builder(src).items() if "target_Qs" not in k}
    dst = make_model(MT)
    report = load_into(dst, save(sd, tmp_path / "no_target.pt"))
    assert report.target_from_online
    z, a = torch.rand(4, 64), torch.rand(4, 6)
    with torch.no_grad():
        torch.testing.assert_close(dst.Q(z, a, 3, "all", target=True), dst.Q(z, a, 3, "all"))
        torch.testing.assert_close(dst.Q(z, a, 3, "all"), src.Q(z, a, 3, "all"))


def test_to_canonical_drops_non_parameters():
    src = make_model(MT, seed=7)
    assert set(to_canonical(current_from(src))) == set(src.state_dict())
    assert set(to_canonical(tensordict_state_dict(src))) == set(src.state_dict())


# ----------------------------------------------------------------------------------------------------------
# malformed checkpoints


def _released_file(tmp_path: Path, edit) -> Path:
    sd = released_from(make_model(MT, seed=8))
    edit(sd)
    return save(sd, tmp_path / "bad.pt")


def _nan(sd):
    sd["_pi.1.weight"][0, 0] = float("nan")


def _wrong_shape(sd):
    sd["_reward.0.weight"] = torch.zeros(48, 135)


def _bad_masks(sd):
    sd["_action_masks"] = torch.ones(30, 6)


def _termination(sd):
    sd["_termination.0.weight"] = torch.zeros(48, 128)


MALFORMED = {
    "missing key": (lambda p: _released_file(p, lambda sd: sd.pop("_dynamics.1.ln.bias")), "_dynamics.1.ln.bias"),
    "missing flat Q": (lambda p: _released_file(p, lambda sd: sd.pop("_Qs.params.6")), "_Qs.params.1.ln.weight"),
    "wrong shape": (lambda p: _released_file(p, _wrong_shape), r"_reward.0.weight: expected shape \[48, 134\]"),
    "NaN weight": (lambda p: _released_file(p, _nan), "_pi.1.weight: 1 non-finite"),
    "action masks": (lambda p: _released_file(p, _bad_masks), "_action_masks: rows"),
    "unexpected key": (lambda p: _released_file(p, _termination), "_termination.0.weight"),
    "list file": (lambda p: (torch.save([1, 2], p / "list.pt"), p / "list.pt")[1], r"list.pt: holds a list"),
    "model not a dict": (lambda p: (torch.save({"model": 3}, p / "i.pt"), p / "i.pt")[1], r"i.pt \['model'\]"),
    "nonexistent": (lambda p: p / "nope.pt", "nope.pt: no such file"),
    "not torch": (lambda p: (p.joinpath("t.pt").write_text("hello\nworld"), p / "t.pt")[1], "t.pt: torch.load"),
    "unrecognised": (lambda p: save({"foo.weight": torch.zeros(2)}, p / "u.pt"), "unrecognised .*foo.weight"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_checkpoint_raises_one_line(tmp_path, case):
    make, pattern = MALFORMED[case]
    with pytest.raises(CheckpointError, match=pattern) as err:
        load_into(make_model(MT), make(tmp_path))
    assert "\n" not in str(err.value)


def test_task_set_mismatch_hints_at_the_cause(tmp_path):
    path = save(released_from(make_model(MT, seed=9, task="mt80")), tmp_path / "mt80.pt")
    with pytest.raises(CheckpointError, match=r"_task_emb.weight: expected shape \[30, 64\], found \[80, 96\]") as e:
        load_into(make_model(MT), path)
    assert "is this an mt80 checkpoint loaded into an mt30 model?" in str(e.value)


# ----------------------------------------------------------------------------------------------------------
# export


@pytest.mark.parametrize(
    ("layout", "present", "absent"),
    [
        ("released", ["_Qs.params.9", "_target_Qs.params.0", "_encoder.state.1.ln.bias"], ["_Qs.params.0.weight"]),
        ("current", ["_detach_Qs_params.2.bias", "_target_Qs_params.0.weight", "_action_masks", "log_std_dif"],
         ["_target_Qs.params.0.weight"]),
        ("pwm", ["_encoder.0.weight", "_encoder.1.ln.bias", "_task_emb.weight"], ["_pi.0.weight", "_Qs.params.0"]),
    ],
)  # fmt: skip
def test_export_round_trip(tmp_path, layout, present, absent):
    src = make_model(MT, seed=10)
    path = save_official(src, tmp_path / "out.pt", layout)
    assert not list(tmp_path.glob("*.tmp"))
    raw = torch.load(path, weights_only=True)["model"]
    assert all(k in raw for k in present) and not any(k in raw for k in absent)
    assert detect_layout(raw) == layout
    dst = make_model(MT, seed=11)
    load_into(dst, path)
    assert_same(src, dst, heads=() if layout == "pwm" else ("pi", "Q"))


def test_export_released_matches_hand_written_layout():
    src = make_model(MT, seed=12)
    exported, expected = export_state_dict(src, "released"), released_from(src)
    assert set(exported) == set(expected)
    assert all(torch.equal(exported[k], expected[k]) for k in expected)


@pytest.mark.parametrize(("task", "size"), [(t, s) for t in ("mt30", "mt80") for s in (1, 5, 19, 48, 317)])
def test_infer_dims_finds_every_preset(task, size):
    with torch.device("meta"):  # shapes only
        model = WorldModel(WorldModelConfig(size=size, task=task))
    sd = export_state_dict(model, "released")
    dims = infer_dims(sd)
    assert (dims.size, dims.task_set, dims.num_q) == (size, task, model.cfg.num_q)
    assert (dims.latent_dim, dims.task_dim, dims.obs_dim) == (
        model.cfg.latent_dim,
        model.cfg.task_dim,
        model.cfg.obs_dim,
    )
    assert count_parameters(sd) == model.num_trainable_params()


# ----------------------------------------------------------------------------------------------------------
# command-line tool


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, str(CLI), *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=120, env=env)


def test_cli_inspect_and_verify(tmp_path):
    good = save(released_from(make_model(MT, seed=13)), tmp_path / "good.pt")
    res = run_cli("inspect", str(good))
    assert res.returncode == 0, res.stderr
    assert "released" in res.stdout and "mt30 (30 tasks, task_dim 64)" in res.stdout and "latent_dim=64" in res.stdout
    res = run_cli("verify", str(good), "--task", "mt30")
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("OK ")
    res = run_cli("verify", str(good), "--task", "mt80")
    assert res.returncode == 1
    assert res.stderr.startswith("error: ") and res.stderr.count("\n") == 1 and "Traceback" not in res.stderr
    assert "_task_emb.weight" in res.stderr


def test_cli_convert_and_errors(tmp_path, capsys):
    cli = tdmpc2_cli
    src = make_model(ST, seed=14)
    path = save(prerelease_from(src), tmp_path / "pre.pt")
    assert cli.main(["convert", str(path), str(tmp_path / "rel.pt"), "--to", "released", "--task", "walker-walk"]) == 0
    dst = make_model(ST)
    assert load_into(dst, tmp_path / "rel.pt").layout == "released"
    assert_same(src, dst)
    sd = released_from(make_model(MT, seed=15))
    _nan(sd)
    bad = save(sd, tmp_path / "nan.pt")
    capsys.readouterr()
    assert cli.main(["verify", str(bad), "--task", "mt30"]) == 1
    assert cli.main(["verify", str(tmp_path / "missing.pt"), "--task", "mt30"]) == 1
    assert cli.main(["verify", str(path), "--task", "walker-fly"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 3 and all(line.startswith("error: ") for line in err)
    assert "_pi.1.weight" in err[0] and "missing.pt: no such file" in err[1] and "walker-fly" in err[2]


def test_cli_names_a_run_state_as_such(tmp_path, capsys):
    """A run state given to the checkpoint tool is named for what it is, in one line, for every command."""
    from pwm.checkpoint.run_state import save_run_state

    state = tmp_path / "checkpoints" / "state_000000002.pt"
    save_run_state(state, {"algo": torch.nn.Linear(2, 2)}, step=2, config={"seed": 1})
    capsys.readouterr()
    assert tdmpc2_cli.main(["inspect", str(state)]) == 1
    assert tdmpc2_cli.main(["verify", str(state), "--task", "mt30"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2
    for line in err:
        assert line.startswith(
            f"error: {state} is a pwm run state (checkpoints/state_*.pt), not a world-model checkpoint"
        )
        assert "its world model is under components.algo" in line
