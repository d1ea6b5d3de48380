"""Do the structural savings of the PWM iteration and the world-model update pay on this machine? fp32 and bf16.

    python benchmarks/structural_savings.py --threads 2

Measured interleaved (min over reps, milliseconds), at the 5M model's sizes:

- ``first layer``: the reward head's and the Q ensemble's first layers take the same input; two GEMMs (today)
  vs one GEMM over the concatenated weights plus the split (the merge the issue proposed);
- ``critic targets``: the rollout's H-1 intermediate critic values, per step vs one call after the rollout;
- ``mish``: forward+backward of ATen's Mish vs ``pwm.models.activations.mish`` (per dtype), and with the LayerNorm
  and affine in front of it as the Q ensemble runs them; with ``--compile`` also LayerNorm+Mish fused by
  ``torch.compile`` (inductor's C++ backend; its compile time, ~45 s here, is not counted).
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from pwm.models.activations import mish
from pwm.models.actor_critic import CriticEnsemble
from pwm.models.layers import layer_norm
from pwm.utils.perf import tune_cpu_allocator

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def best_ms(fn, reps: int) -> float:
    fn()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times) * 1e3


def first_layer_cases(rows: int, d_in: int, hidden: int, members: int, dtype) -> dict:
    x = torch.randn(rows, d_in, dtype=dtype)
    wr, br = torch.randn(hidden, d_in, dtype=dtype), torch.randn(hidden, dtype=dtype)
    wq, bq = torch.randn(members * hidden, d_in, dtype=dtype), torch.randn(members * hidden, dtype=dtype)

    def separate():
        torch.addmm(br, x, wr.T)
        torch.addmm(bq, x, wq.T).view(-1, members, hidden).transpose(0, 1).contiguous()

    def merged():
        y = torch.addmm(torch.cat([br, bq]), x, torch.cat([wr, wq]).T)
        y[:, hidden:].reshape(-1, members, hidden).transpose(0, 1).contiguous()

    return {"first layer: two GEMMs": separate, "first layer: one merged GEMM": merged}


def target_cases(horizon: int, batch: int, latent: int, dtype) -> dict:
    critic = CriticEnsemble(latent, [400, 200], 3)  # PWMConfig defaults
    latents = torch.rand(horizon, batch, latent)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16)

    @torch.no_grad()
    def per_step():
        with autocast:
            [critic.min(latents[t]) for t in range(1, horizon)]

    @torch.no_grad()
    def one_call():
        with autocast:
            critic.min(latents[1:])

    return {"critic targets: per step": per_step, "critic targets: one call": one_call}


def mish_cases(rows: int, hidden: int, dtype, compile_: bool) -> dict:
    x0 = torch.randn(rows, hidden, dtype=dtype)
    gain, bias = torch.ones(hidden, dtype=dtype), torch.zeros(hidden, dtype=dtype)

    def fwd_bwd(fn):
        def run():
            x = x0.detach().requires_grad_()
            fn(x).backward(torch.ones_like(x0))

        return run

    cases = {
        "mish: ATen": fwd_bwd(torch.nn.functional.mish),
        "mish: ours (one-exp fp32 / fp32-internal bf16 kernel)": fwd_bwd(mish),
        "LayerNorm+affine+mish (ours)": fwd_bwd(lambda x: mish(torch.addcmul(bias, layer_norm(x), gain))),
    }
    if compile_:
        fused = torch.compile(lambda x: F.mish(F.layer_norm(x, x.shape[-1:], gain, bias)), dynamic=False)
        cases["LayerNorm+affine+mish, torch.compile"] = fwd_bwd(fused)
    return cases


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--compile", action="store_true", help="add a torch.compile-fused LayerNorm+Mish")
    args = p.parse_args()
    tune_cpu_allocator()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    results: dict[tuple[str, str], float] = {}
    cases = {
        name: {
            **first_layer_cases(16 * 256, 512 + 6 + 96, 512, 5, dtype),
            **target_cases(16, 512, 512, dtype),
            **mish_cases(5 * 16 * 256, 512, dtype, args.compile),
        }
        for name, dtype in DTYPES.items()
    }
    for _ in range(2):  # two interleaved rounds; the best of each case is kept
        for precision, fns in cases.items():
            for case, fn in fns.items():
                ms = best_ms(fn, args.reps)
                results[case, precision] = min(results.get((case, precision), ms), ms)
    print(f"threads={args.threads}, best of {2 * args.reps} reps, ms (5M-model sizes: B*H=4096 rows, 5 Qs)")
    for case in cases["fp32"]:
        print(f"  {case:<34} fp32 {results[case, 'fp32']:8.1f}   bf16 {results[case, 'bf16']:8.1f}")


if __name__ == "__main__":
    main()
