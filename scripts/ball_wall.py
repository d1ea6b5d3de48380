"""PWM's ball–wall smoothness table: true objective vs a Mish MLP vs a SimNorm model (docs/pedagogy.md).

python scripts/ball_wall.py                # corrected experiment, with the reference table next to it
python scripts/ball_wall.py --reference    # the published table only (both reference quirks on)

Writes ball_wall.csv (seed-0 values and mean ± std over the seeds) and one figure per experiment to --out.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import sys
from pathlib import Path

import torch

from pwm.pedagogy import ball_wall as bw


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", action="store_true", help="run only the reference experiment (both quirks)")
    parser.add_argument("--restrict-mlp-argmin", action="store_true", help="quirk 1 in the corrected run")
    parser.add_argument("--accumulate-decoder-grads", action="store_true", help="quirk 2 in the corrected run")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--out", default="docs/results", help="output directory")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    out = Path(args.out)
    print(f"output directory: {out.resolve()}")
    seeds = tuple(args.seeds)
    corrected = dataclasses.replace(
        bw.CORRECTED,
        restrict_mlp_argmin=args.restrict_mlp_argmin,
        accumulate_decoder_grads=args.accumulate_decoder_grads,
        seeds=seeds,
    )
    modes = {"reference": dataclasses.replace(bw.REFERENCE, seeds=seeds)}
    if not args.reference:
        modes["corrected"] = corrected
    rows = []
    for mode, opts in modes.items():
        results = bw.run(opts)
        first = results[seeds[0]]
        print(f"\n== {mode}: seed {seeds[0]} ==\n{bw.format_table(first, corrected=mode != 'reference')}")
        print(f"\n== {mode}: mean ± std over seeds {list(seeds)} ==\n{bw.format_summary(bw.summarise(results))}")
        path = bw.plot(first, out / f"ball_wall_{mode}.png", f"{mode} (seed {seeds[0]})")
        print(f"wrote {path}")
        rows += bw.csv_rows(mode, results)
    name = "ball_wall_reference.csv" if args.reference else "ball_wall.csv"
    with open(out / name, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {out / name}\noutput directory: {out.resolve()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
