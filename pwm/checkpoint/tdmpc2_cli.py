"""Inspect, verify and convert TD-MPC2 / PWM world-model checkpoints from the command line.

    python scripts/tdmpc2_checkpoint.py inspect mt30-5M.pt
    python scripts/tdmpc2_checkpoint.py verify mt30-5M.pt --task mt30 [--size 5]
    python scripts/tdmpc2_checkpoint.py convert mt30-5M.pt mt30-5M-pwm.pt --to pwm --task mt30

The model is always rebuilt from ``pwm.config.WorldModelConfig``: with ``--size`` from that preset, otherwise
from the preset that the checkpoint's shapes match, otherwise (custom dims) from the shapes themselves. The
observation and action dims always come from ``--task``, so a checkpoint for another task set fails. Errors
are one line on stderr and exit code 1. See external/README.md for the layouts. The entry script is
``scripts/tdmpc2_checkpoint.py``.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import torch

from pwm.checkpoint.tdmpc2_dims import CheckpointDims, count_parameters, infer_dims
from pwm.checkpoint.tdmpc2_layouts import detect_layout
from pwm.checkpoint.tdmpc2_load import LoadReport, load_into, load_state_dict_file
from pwm.checkpoint.tdmpc2_save import save_official
from pwm.config import WorldModelConfig
from pwm.data.tasks import TASK_SETS
from pwm.models.world_model import WorldModel

_LAYOUT_NOTES = {
    "current": "TD-MPC2 code since late 2024, tensordict Q ensemble",
    "released": "TD-MPC2 2023 code and the released multitask checkpoints, flat Q ParameterList",
    "prerelease": "early single-task checkpoints, flat nn.Sequential indices",
    "pwm": "PWM world model, no policy prior and no Q ensemble",
}


def _describe_tasks(dims: CheckpointDims) -> str:
    if dims.multitask:
        guess = dims.task_set or "unknown task set"
        return f"{guess} ({dims.num_tasks} tasks, task_dim {dims.task_dim})"
    names = dims.single_task_candidates()
    shown = ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")
    return f"single-task; obs/action dims match: {shown or 'no registered task'}"


def cmd_inspect(args: argparse.Namespace) -> None:
    sd = load_state_dict_file(args.path)
    dims = infer_dims(sd)
    n = count_parameters(sd)
    layout = detect_layout(sd)
    print(f"file:       {args.path}")
    print(f"layout:     {layout} ({_LAYOUT_NOTES[layout]})")
    print(f"keys:       {len(sd)}")
    print(f"tasks:      {_describe_tasks(dims)}")
    print(f"size:       {dims.size if dims.size is not None else 'custom (no preset matches)'}")
    print(
        f"dims:       obs_dim={dims.obs_dim} action_dim={dims.action_dim} latent_dim={dims.latent_dim} "
        f"enc_dim={dims.enc_dim} mlp_dim={dims.mlp_dim} num_enc_layers={dims.num_enc_layers} "
        f"num_q={dims.num_q if dims.num_q is not None else '-'} num_bins={dims.num_bins}"
    )
    print(f"parameters: {n:,} ({n / 1e6:.2f}M trainable, target Q excluded)")


def build_model(dims: CheckpointDims, task: str, size: int | None) -> WorldModel:
    """A model for ``task`` with the preset ``size``, else the preset or custom dims the checkpoint's shapes show."""
    size = size if size is not None else dims.size
    if size is not None:
        return WorldModel(WorldModelConfig(size=size, task=task))
    cfg = WorldModelConfig(
        size=None,
        task=task,
        latent_dim=dims.latent_dim,
        enc_dim=dims.enc_dim,
        mlp_dim=dims.mlp_dim,
        num_enc_layers=dims.num_enc_layers,
        num_q=dims.num_q or 5,
        num_bins=dims.num_bins,
        task_dim=dims.task_dim if task in TASK_SETS and dims.multitask else None,
    )
    return WorldModel(cfg)


def _load(path: Path, task: str, size: int | None) -> tuple[WorldModel, LoadReport]:
    sd = load_state_dict_file(path)
    torch.manual_seed(0)  # components the file lacks (PWM layout) get a reproducible fresh init
    model = build_model(infer_dims(sd), task, size)
    return model, dataclasses.replace(load_into(model, sd), source=str(path))


def cmd_verify(args: argparse.Namespace) -> None:
    model, report = _load(args.path, args.task, args.size)
    size = model.cfg.size if model.cfg.size is not None else "custom"
    print(f"OK {report.summary()} (task {args.task}, size {size})")


def cmd_convert(args: argparse.Namespace) -> None:
    model, report = _load(args.src, args.task, args.size)
    if report.fresh and args.to != "pwm":
        print(
            f"warning: {args.src} has no {', '.join(report.fresh)}; {args.dst} holds freshly initialised values",
            file=sys.stderr,
        )
    save_official(model, args.dst, args.to)
    print(f"wrote {args.dst} ({args.to} layout) from {report.summary()}")


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("inspect", help="print layout, task set, dims and parameter count")
    p.add_argument("path", type=Path)
    p.set_defaults(func=cmd_inspect)
    for name, help_text in (
        ("verify", "load strictly into a pwm WorldModel; print OK or the first problem"),
        ("convert", "load strictly, then write another official layout"),
    ):
        p = sub.add_parser(name, help=help_text)
        if name == "verify":
            p.add_argument("path", type=Path)
        else:
            p.add_argument("src", type=Path)
            p.add_argument("dst", type=Path)
            p.add_argument("--to", required=True, choices=["released", "current", "pwm"])
        p.add_argument("--task", required=True, help="mt30, mt80 or a single-task name such as walker-walk")
        p.add_argument("--size", type=int, default=None, help="model-size preset; inferred from shapes if omitted")
        p.set_defaults(func=cmd_verify if name == "verify" else cmd_convert)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    try:
        args.func(args)
    except (ValueError, KeyError, OSError) as err:  # CheckpointError and ConfigError are ValueErrors
        message = " ".join(str(err).split()) or type(err).__name__
        print(f"error: {message}", file=sys.stderr)
        return 1
    return 0
