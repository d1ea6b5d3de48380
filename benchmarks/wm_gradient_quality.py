"""How good are a learned model's action gradients? Compared against the simulator's exact ones.

PWM trusts d(imagined return)/d(actions) from its world model. On a differentiable simulator that gradient can be
checked: from real states, roll 16 actions through the simulator (exact gradient by autograd) and through the
model, and compare the summed rewards and the gradients w.r.t. the actions (cosine per env over the 15 actions that
affect later rewards, averaged over envs).

Three models are trained on the same random-policy episodes: PWM's single-task latent world model with the
reference's loss (scalar reward head, ``scalar_world_model_loss``), the same architecture trained with TD-MPC2's
loss (``alg.wm_loss=tdmpc2``: two-hot reward, Q ensemble, consistency weight 20) and, as a yardstick, a residual MLP
that predicts the next normalised observation and the reward directly.

    python benchmarks/wm_gradient_quality.py --env dflex_cartpole --steps 1000 --latent 64 --mlp 128

``--episodes <run>/episodes.pt`` trains the models on a run's recorded episodes instead (e.g. SHAC's, the data PWM
pretrains on), and ``--max-start-step`` keeps the measured states near the start of an episode, where a task that
falls over under random actions (Hopper) still looks like that data:

    python benchmarks/wm_gradient_quality.py --env dflex_hopper --episodes runs/shac/episodes.pt --max-start-step 20

``--run-state <run>/checkpoints/state_<n>.pt`` measures a PWM run's own world model instead (on the run's task,
whatever ``--env`` says), and also its actor's
update: the cosine between the actor-parameter gradient of PWM's objective (H imagined steps, without and with the
critic's γ^H V(z_H)) and that of the simulator's H-step return, for the same deterministic policy with its input
detached as PWM's rollout does:

    python benchmarks/wm_gradient_quality.py --run-state runs/pwm/checkpoints/state_000000800.pt
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import torch
from torch import nn

from pwm.config import PWMConfig, WorldModelConfig
from pwm.data.buffer import ReplayBuffer
from pwm.data.episodes import EpisodeRecorder, load_episodes
from pwm.envs.sim.base import BatchedEnv
from pwm.envs.sim.registry import make_dflex_env

HORIZON = 16


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="dflex_cartpole")
    p.add_argument("--episodes-per-env", type=int, default=8, help="random-policy episodes of each of 64 envs")
    p.add_argument("--steps", type=int, default=1000, help="gradient steps of each model")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--latent", type=int, default=64)
    p.add_argument("--mlp", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--episodes", default=None, help="train on this episodes file (alg.save_data) instead")
    p.add_argument("--max-start-step", type=int, default=None, help="random steps before measuring (at most)")
    p.add_argument("--run-state", default=None, help="measure this PWM run state's world model and actor instead")
    return p.parse_args(argv)


def random_episodes(name: str, episodes_per_env: int):
    env = make_dflex_env(name, {"num_envs": 64, "seed": 9})
    recorder = EpisodeRecorder(env.reset(seed=9), keep_data=True)
    for _ in range(env.episode_length * episodes_per_env):
        action = env.random_actions()
        recorder.record(action, env.step(action))
    return recorder.pop_finished()


class ObservationModel(nn.Module):
    """obs' = obs + f(obs, a) and r = g(obs, a), on normalised observations and rewards."""

    def __init__(self, obs_dim: int, action_dim: int, hidden: int) -> None:
        super().__init__()

        def net(out: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Linear(obs_dim + action_dim, hidden), nn.Mish(), nn.LayerNorm(hidden),
                nn.Linear(hidden, hidden), nn.Mish(), nn.LayerNorm(hidden), nn.Linear(hidden, out),
            )  # fmt: skip

        self.dynamics, self.reward = net(obs_dim), net(1)

    def forward(self, x: torch.Tensor, a: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        xa = torch.cat([x, a], -1)
        return x + self.dynamics(xa), self.reward(xa).squeeze(-1)


class Compared:
    """Both models behind one interface: ``train_step(batch)`` and ``imagined_return(obs, actions)``."""

    def __init__(self, obs_dim: int, action_dim: int, args: argparse.Namespace, buffer: ReplayBuffer, episodes):
        from pwm.algorithms.pwm_single_task import SingleTaskPWM

        wm = WorldModelConfig(
            size=None, latent_dim=args.latent, enc_dim=args.latent, mlp_dim=args.mlp, num_enc_layers=2, num_q=2,
            dropout=0.0,
        )  # fmt: skip
        cfg = PWMConfig(world_model=wm, batch_size=64, wm_batch_size=args.batch, wm_lr=args.lr, obs_rms=True)
        self.pwm = SingleTaskPWM(obs_dim, action_dim, cfg)
        self.pwm.add_episodes(buffer, episodes)
        self.tdmpc2 = SingleTaskPWM(obs_dim, action_dim, dataclasses.replace(cfg, wm_loss="tdmpc2"))
        self.tdmpc2.obs_rms.load_state_dict(self.pwm.obs_rms.state_dict())
        self.mlp = ObservationModel(obs_dim, action_dim, args.mlp)
        self.mlp_optim = torch.optim.Adam(self.mlp.parameters(), lr=args.lr)

    def train(self, buffer: ReplayBuffer, steps: int) -> None:
        self.pwm.train_world_model(buffer, steps)
        self.tdmpc2.train_world_model(buffer, steps)
        rew_std = self.pwm.rew_rms.std().float()
        for _ in range(steps):
            batch = buffer.sample()
            x = self.pwm.normalize(batch.obs)
            z, loss = x[0], 0.0
            for t in range(batch.horizon):
                z, r = self.mlp(z, batch.action[t])
                loss = loss + (z - x[t + 1]).pow(2).mean() + (r - batch.reward[t] / rew_std).pow(2).mean()
            self.mlp_optim.zero_grad(set_to_none=True)
            (loss / batch.horizon).backward()
            self.mlp_optim.step()

    def returns(self, obs: torch.Tensor, actions: torch.Tensor) -> dict[str, torch.Tensor]:
        wm, scale = self.pwm.wm, self.pwm.rew_rms.std().float()
        z, x = wm.encode(self.pwm.normalize(obs)), self.pwm.normalize(obs)
        td = self.tdmpc2.wm
        y = td.encode(self.tdmpc2.normalize(obs))
        latent, two_hot, direct = 0.0, 0.0, 0.0
        for t in range(HORIZON):
            latent = latent + wm.decode(wm.reward(z, actions[t]))
            z = wm.next(z, actions[t])
            two_hot = two_hot + td.decode(td.reward(y, actions[t]), "symexp")
            y = td.next(y, actions[t])
            x, r = self.mlp(x, actions[t])
            direct = direct + r
        return {"pwm latent WM": latent * scale, "tdmpc2-loss WM": two_hot, "obs-space MLP": direct * scale}


def measure(env: BatchedEnv, models: Compared | RunModel, seed: int, max_start: int) -> dict[str, tuple[float, float]]:
    """(mean |predicted - true| 16-step return, mean gradient cosine) per model, from the states 64 envs reach in
    fewer than ``max_start`` random steps after a reset."""
    gen = torch.Generator().manual_seed(seed)
    env.reset(seed=seed)
    for _ in range(int(torch.randint(0, max_start, (1,), generator=gen))):
        env.step(env.random_actions())
    env.detach()
    obs = env.obs.clone()
    actions = (0.5 * torch.randn(HORIZON, env.num_envs, env.action_dim, generator=gen)).clamp(-1, 1)
    actions.requires_grad_(True)
    true = sum(env.step(actions[t]).reward for t in range(HORIZON))
    (g_true,) = torch.autograd.grad(true.sum(), actions)
    flat = lambda g: g[:-1].permute(1, 0, 2).reshape(env.num_envs, -1)  # noqa: E731 (the last action earns no reward)
    out = {}
    for name, predicted in models.returns(obs, actions).items():
        (g,) = torch.autograd.grad(predicted.sum(), actions)
        cosine = nn.functional.cosine_similarity(flat(g_true), flat(g), dim=1).mean()
        out[name] = (float((predicted - true).detach().abs().mean()), float(cosine))
    out["|true return|"] = (float(true.detach().abs().mean()), 1.0)
    return out


class RunModel:
    """A single-task PWM run's world model, actor and critic, restored from one of its run states."""

    def __init__(self, path: str) -> None:
        """The run's own config names its task and algorithm; anything but a single-task PWM run state is a
        one-line error."""
        from omegaconf import OmegaConf

        from pwm.algorithms.pwm_single_task import SingleTaskPWM
        from pwm.checkpoint.run_state import RunStateError, read_run_state
        from pwm.training.dflex import typed_config

        try:
            payload = read_run_state(path)
        except RunStateError as err:
            raise SystemExit(f"error: {err}") from None
        cfg = payload["config"]
        if cfg.get("alg", {}).get("name") != "pwm" or "env" not in cfg:
            raise SystemExit(f"error: {path} is not a run state of scripts/train_dflex.py alg=pwm")
        self.env = make_dflex_env(cfg["env"]["name"], {"num_envs": 64}, requires_grad=True)
        alg = typed_config(OmegaConf.create(cfg)).alg
        self.pwm = SingleTaskPWM(self.env.obs_dim, self.env.action_dim, alg)
        self.pwm.load_state_dict(payload["components"]["algo"])
        self.pwm.wm.requires_grad_(False)
        self.pwm.critic.requires_grad_(False)
        scalar = self.pwm.wm_trainer is None and self.pwm.cfg.rew_rms  # rewards and values in units of rew_rms' std
        self.scale = self.pwm.rew_rms.std().float() if scalar else torch.tensor(1.0)

    def reward(self, z: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        wm = self.pwm.wm
        return wm.decode(wm.reward(z, action), self.pwm.reward_space) * self.scale

    def returns(self, obs: torch.Tensor, actions: torch.Tensor) -> dict[str, torch.Tensor]:
        z, total = self.pwm.wm.encode(self.pwm.normalize(obs)), 0.0
        for t in range(HORIZON):
            total = total + self.reward(z, actions[t])
            z = self.pwm.wm.next(z, actions[t])
        return {"run's WM": total}

    def actor_gradient(self, env: BatchedEnv, model: bool, critic: bool) -> torch.Tensor:
        """Gradient of the H-step discounted return over the actor's parameters, from ``env``'s current state,
        through the world model (plus γ^H V(z_H) with ``critic``) or through the simulator."""
        pwm, gamma = self.pwm, self.pwm.cfg.gamma
        z, total = pwm.wm.encode(pwm.normalize(env.obs)), 0.0
        for t in range(HORIZON):
            state = z if model else pwm.wm.encode(pwm.normalize(env.obs))
            action = torch.tanh(pwm.actor(state.detach(), True))
            if model:
                reward = self.reward(z, action)
                z = pwm.wm.next(z, action)
            else:
                reward = env.step(action).reward
            total = total + gamma**t * reward
        if critic:
            total = total + gamma**HORIZON * pwm.critic.bootstrap(z) * self.scale
        params = list(pwm.actor.parameters())
        grads = torch.autograd.grad(total.sum(), params, allow_unused=True)
        flat = [(g if g is not None else torch.zeros_like(p)).flatten() for g, p in zip(grads, params, strict=True)]
        return torch.cat(flat)


def actor_cosines(env: BatchedEnv, run: RunModel, seed: int, max_start: int) -> tuple[float, float, float]:
    """(cosine without the critic, with it) against the simulator's gradient, from random early states, and the
    norm of the critic's part of the gradient over that of the imagined rewards' part."""
    grads = []
    for model, critic in ((False, False), (True, False), (True, True)):
        gen = torch.Generator().manual_seed(seed)
        env.reset(seed=seed)
        for _ in range(int(torch.randint(0, max_start, (1,), generator=gen))):
            env.step(env.random_actions())
        env.detach()
        grads.append(run.actor_gradient(env, model, critic))
    cosine = lambda g: float(nn.functional.cosine_similarity(g, grads[0], dim=0))  # noqa: E731
    return cosine(grads[1]), cosine(grads[2]), float((grads[2] - grads[1]).norm() / grads[1].norm())


def measure_run(args: argparse.Namespace) -> None:
    run = RunModel(args.run_state)
    env = run.env
    max_start = args.max_start_step or 20
    results = [measure(env, run, seed, max_start) for seed in (5, 6, 7)]
    err, cos = (sum(r["run's WM"][i] for r in results) / 3 for i in (0, 1))
    true = sum(r["|true return|"][0] for r in results) / 3
    actor = [actor_cosines(env, run, seed, max_start) for seed in (5, 6, 7)]
    plain, full, ratio = (sum(a[i] for a in actor) / len(actor) for i in range(3))
    print(f"{args.run_state}: {HORIZON}-step return error {err:.2f} (|true return| {true:.2f}), action-gradient "
          f"cosine {cos:.3f}; actor-gradient cosine without the critic {plain:.3f}, with it {full:.3f}; "
          f"|critic part| / |rewards part| {ratio:.1f}")  # fmt: skip


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.run_state:
        return measure_run(args)
    env = make_dflex_env(args.env, {"num_envs": 64}, requires_grad=True)
    if args.episodes:
        episodes, source = load_episodes(args.episodes, env.obs_dim, env.action_dim), args.episodes
    else:
        episodes, source = random_episodes(args.env, args.episodes_per_env), "random-policy episodes"
    max_start = args.max_start_step or env.episode_length - HORIZON - 1
    buffer = ReplayBuffer(10_000_000, args.batch, HORIZON, max_episode_length=env.episode_length)
    models = Compared(env.obs_dim, env.action_dim, args, buffer, episodes)
    print(f"{args.env}: {len(episodes)} episodes ({source}); latent {args.latent}, mlp {args.mlp}")
    print(f"{'steps':>6} {'model':<16} {'|return error|':>15} {'grad cosine':>12}")
    start, done = time.perf_counter(), 0
    for chunk in range(6):
        if chunk:
            models.train(buffer, args.steps // 5)
            done += args.steps // 5
        results = [measure(env, models, seed, max_start) for seed in (5, 6, 7)]
        for name in results[0]:
            err = sum(r[name][0] for r in results) / len(results)
            cos = sum(r[name][1] for r in results) / len(results)
            print(f"{done:>6} {name:<16} {err:>15.2f} {cos:>12.3f}")
        print(f"       ({time.perf_counter() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
