"""Where does bf16 change the gradients? The actor gradient of a trained CartPole PWM policy, fp32 vs bf16.

    python benchmarks/bf16_gradients.py runs/bf16_cartpole/fp32/2/best_policy.pt

Loads a dflex PWM ``best_policy.pt`` (world model, actor, critic, observation normaliser), draws 256 observations
from the normaliser's statistics and computes the gradient of PWM's imagined H-step actor objective
(``pwm.losses.actor.imagined_actor_loss`` with the run's horizon and settings) in fp32 and under bf16 autocast.
Each bf16 row keeps the named parts in fp32 and prints the relative error ‖g_bf16 − g_fp32‖ / ‖g_fp32‖, the
cosine between the two and the loss. ``all-bf16`` is everything in bf16 (what ``general.precision=bf16`` ran
before the encoder, dynamics and bootstrap value were kept fp32); ``default`` is today's bf16 setting. The
random draws are the same in every row, so fp32 against itself gives 0.
"""

from __future__ import annotations

import argparse
import copy

import torch

from pwm.algorithms.pwm_single_task import SingleTaskPWM
from pwm.checkpoint.run_state import read_best_policy
from pwm.config import PWMConfig, WorldModelConfig
from pwm.losses.actor import imagined_actor_loss
from pwm.utils.precision import fp32

# bf16 variants: the parts held in fp32 ("encode"/"next": the world model's, "bootstrap": the critic's value)
VARIANTS = {
    "all-bf16": (),
    "encoder fp32": ("encode",),
    "dynamics fp32": ("next",),
    "encoder+dynamics fp32": ("encode", "next"),
    "default (encoder+dynamics+bootstrap fp32)": ("encode", "next", "bootstrap"),
}


def load(path: str) -> tuple[SingleTaskPWM, PWMConfig]:
    payload = read_best_policy(path)
    alg = dict(payload["config"]["alg"])
    wm = alg.pop("world_model")
    known = PWMConfig.__dataclass_fields__
    cfg = PWMConfig(
        **{k: v for k, v in alg.items() if k in known},
        world_model=WorldModelConfig(**{k: v for k, v in wm.items() if k in WorldModelConfig.__dataclass_fields__}),
    )
    state = payload["algo"]
    algo = SingleTaskPWM(state["obs_rms"]["mean"].shape[0], state["actor"]["logstd"].shape[0], cfg)
    algo.wm.load_state_dict(state["world_model"])
    algo.actor.load_state_dict(state["actor"])
    algo.critic.load_state_dict(state["critic"])
    algo.obs_rms.load_state_dict(state["obs_rms"])
    return algo, cfg


def actor_gradient(algo: SingleTaskPWM, cfg: PWMConfig, obs: torch.Tensor, bf16: bool, keep_fp32: tuple[str, ...]):
    """The actor objective's value and its gradient (flattened) with the named parts undecorated or fp32."""
    wm, actor, critic = (copy.deepcopy(m) for m in (algo.wm, algo.actor, algo.critic))
    for name in ("encode", "next"):  # the class methods are fp32-decorated; bf16 variants use the bare ones
        method = getattr(type(wm), name)
        setattr(wm, name, (method if name in keep_fp32 else method.__wrapped__).__get__(wm))
    if "bootstrap" not in keep_fp32:
        critic.bootstrap = lambda z: critic.min(z, detach=True)
    else:
        critic.bootstrap = fp32(lambda z: critic.min(z, detach=True))
    wm.requires_grad_(False)
    torch.manual_seed(1)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        with torch.no_grad():
            z = wm.encode(obs)
        loss = imagined_actor_loss(wm, actor, critic, z, None, cfg).loss.mean()
    loss.backward()
    return float(loss.detach()), torch.cat([p.grad.flatten() for p in actor.parameters() if p.grad is not None])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("policy", help="a dflex PWM run's best_policy.pt")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument(
        "--upright", action="store_true", help="CartPole states near the balanced pose instead of the normaliser's"
    )
    args = p.parse_args()
    torch.set_num_threads(1)
    algo, cfg = load(args.policy)
    torch.manual_seed(0)
    obs = algo.obs_rms.mean + algo.obs_rms.std() * torch.randn(args.batch, algo.obs_rms.mean.shape[0])
    if args.upright:  # [x, x_dot, sin θ, cos θ, θ_dot] with the pole within ~0.2 rad of upright
        x, xd, theta, thd = (torch.randn(args.batch) * s for s in (0.5, 0.5, 0.2, 0.5))
        obs = torch.stack((x, xd, torch.sin(theta), torch.cos(theta), thd), -1)
    obs = algo.normalize(obs.float())
    ref_loss, ref = actor_gradient(algo, cfg, obs, False, ("encode", "next", "bootstrap"))
    print(f"{args.policy}: H={cfg.horizon}, detach_actor_input={cfg.detach_actor_input}; fp32 loss {ref_loss:.4f}")
    for name, keep in VARIANTS.items():
        loss, g = actor_gradient(algo, cfg, obs, True, keep)
        err, cos = float((g - ref).norm() / ref.norm()), float(g @ ref / g.norm() / ref.norm())
        print(f"  bf16, {name:42s} rel. error {err:.4f}  cosine {cos:.5f}  loss {loss:.4f}")


if __name__ == "__main__":
    main()
