"""Time of one DreamerV2 update (world model + imagined actor-critic) at ``preset=cpu``, and what the categorical
sampler of the RSSM's stochastic state costs in it.

    OMP_NUM_THREADS=1 python benchmarks/dreamer_update.py --threads 1 --reps 10

The update draws ~90 one-hot samples of [rows, 32 groups, 16 classes] (one per observed and imagined step);
``pwm.models.rssm.straight_through_onehot`` samples by inverting the CDF. This runs the update with it and with
the ``torch.multinomial`` draw it replaced, interleaved, and prints the median seconds per update of each.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from pwm.algorithms.dreamerv2 import DreamerV2
from pwm.config.dreamer import DreamerAlgConfig, DreamerModelConfig
from pwm.data.pixel_replay import PixelBatch
from pwm.models import rssm

PRESET = OmegaConf.load(Path(__file__).resolve().parents[1] / "cfg" / "preset" / "cpu.yaml")  # what preset=cpu runs


def multinomial_onehot(logits: torch.Tensor) -> torch.Tensor:
    """The sampler before the inverse-CDF one, kept here as the comparison."""
    probs = F.softmax(logits, -1)
    index = torch.multinomial(probs.reshape(-1, probs.shape[-1]), 1).reshape(probs.shape[:-1])
    return F.one_hot(index, probs.shape[-1]).to(probs.dtype) + probs - probs.detach()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--reps", type=int, default=10)
    p.add_argument("--batch", type=int, default=PRESET.alg.batch)
    p.add_argument("--seq-len", type=int, default=PRESET.alg.seq_len)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = DreamerModelConfig(**OmegaConf.to_container(PRESET.model))
    algo = DreamerV2(DreamerAlgConfig(batch=args.batch, seq_len=args.seq_len), model, action_dim=4)
    shape = (args.batch, args.seq_len)
    batch = PixelBatch(torch.randint(0, 256, (*shape, 3, 64, 64), dtype=torch.uint8), torch.rand(*shape, 4) * 2 - 1,
                       torch.rand(*shape))  # fmt: skip
    samplers = {"inverse CDF": rssm.straight_through_onehot, "torch.multinomial": multinomial_onehot}
    times: dict[str, list[float]] = {name: [] for name in samplers}
    for rep in range(args.reps + 1):
        for name, sampler in samplers.items():
            rssm.straight_through_onehot = sampler
            start = time.perf_counter()
            algo.update(batch)
            if rep:  # the first round warms up the allocator
                times[name].append(time.perf_counter() - start)
    rssm.straight_through_onehot = samplers["inverse CDF"]
    print(f"DreamerV2 update, preset=cpu, batch {args.batch} x {args.seq_len}, {args.threads} thread(s), "
          f"median of {args.reps}:")  # fmt: skip
    base = statistics.median(times["torch.multinomial"])
    for name, ts in times.items():
        print(f"  {name:18s} {statistics.median(ts):.3f} s/update  ({statistics.median(ts) / base:.2f}x)")


if __name__ == "__main__":
    main()
