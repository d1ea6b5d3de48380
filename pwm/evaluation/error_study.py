"""The world-model error study (PolyGRAD, arXiv 2312.08533, world-model-only experiments) on a locally recorded
dataset: the replay buffer and final policy of one of our online PolyGRAD runs.

Every model trains for the same number of steps on the same buffer; then, from the same start states, each model
imagines ``h`` steps with the run's fixed policy acting on the model's own predicted states, and the simulator,
restored to each start's MuJoCo state, replays the model's actions open loop
(:func:`pwm.evaluation.trajectory_error.open_loop_mse`). Models:

- ``polygrad_mlp`` / ``polygrad_transformer``: a whole trajectory at once by policy-guided diffusion (guidance
  scale tuned on imagined batches with the fixed policy before measuring, as the reference does during training);
- ``ar_diffusion``: the same MLP denoiser trained on windows of 2 steps, conditioned on the policy's sampled
  action (no guidance), unrolled one step at a time;
- ``tdmpc2``: our TD-MPC2 world model (latent dynamics, TD-MPC2's losses) with an MLP decoder from latents to
  observations, trained alongside on detached latents: TD-MPC2 has no decoder, and the error is measured in
  observation space.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from pwm.algorithms.polygrad import PolyGRAD, standardized_action_std, tune_guidance
from pwm.algorithms.tdmpc2 import TDMPC2
from pwm.checkpoint.run_state import CheckpointDir, read_run_state
from pwm.config import OnlineConfig, TDMPC2Config, WorldModelConfig
from pwm.data.batch import SequenceBatch
from pwm.data.trajectories import TrajectoryBuffer
from pwm.envs.suites.gym_mujoco import GymMujocoEnv
from pwm.evaluation.trajectory_error import open_loop_mse
from pwm.models.gaussian_policy import GaussianPolicy, elu_mlp
from pwm.models.world_model import WorldModel
from pwm.planning.guided_sampling import GuidanceSettings, policy_guided_sample
from pwm.utils.errors import ConfigError

MODELS = ("polygrad_mlp", "polygrad_transformer", "ar_diffusion", "tdmpc2")


@dataclass
class Recorded:
    """What the study needs from a run: its config, replay buffer, final policy and PolyGRAD state."""

    cfg: OnlineConfig
    buffer: TrajectoryBuffer
    algo_state: dict
    env: GymMujocoEnv


def load_run(run_dir: str) -> Recorded:
    """The newest run state of an online PolyGRAD run directory (one-line ConfigError if there is none)."""
    latest = CheckpointDir(f"{run_dir}/checkpoints").latest()
    if latest is None:
        raise ConfigError(f"{run_dir} holds no run state (checkpoints/state_*.pt): train one with train_online.py")
    payload = read_run_state(latest)
    raw = payload["config"]
    cfg = OnlineConfig(seed=raw["seed"])
    cfg.env = dataclasses.replace(cfg.env, **raw["env"])
    cfg.alg = dataclasses.replace(cfg.alg, **raw["alg"])
    env = GymMujocoEnv(cfg.env.name, 0, cfg.env.episode_length, cfg.env.id)
    buffer = TrajectoryBuffer(cfg.alg.buffer_size, env.obs_dim, env.action_dim, env.state_dim, seed=0)
    buffer.load_state_dict(payload["components"]["replay"])
    return Recorded(cfg, buffer, payload["components"]["algo"], env)


def sample_starts(buffer: TrajectoryBuffer, count: int, horizon: int, seed: int) -> tuple[torch.Tensor, np.ndarray]:
    """Start observations ``[N, O]`` and their MuJoCo states ``[N, S]`` at windows that fit inside an episode."""
    rng = np.random.default_rng(seed)
    options = [(e, s) for e, ep in enumerate(buffer.episodes) for s in range(len(ep["rewards"]) - horizon + 1)]
    if not options:
        raise ConfigError(f"the run's episodes are all shorter than h={horizon} steps")
    picks = [options[i] for i in rng.choice(len(options), size=count, replace=len(options) < count)]
    obs = np.stack([buffer.episodes[e]["obs"][s] for e, s in picks])
    return torch.from_numpy(obs), np.stack([buffer.episodes[e]["sim_states"][s] for e, s in picks])


def polygrad_model(rec: Recorded, kind: str, width: int, blocks: int, horizon: int) -> PolyGRAD:
    """A fresh denoiser of ``kind`` with the run's normaliser fitted and its final actor and guidance scale."""
    alg = dataclasses.replace(rec.cfg.alg, denoiser=kind, denoiser_width=width, denoiser_blocks=blocks,
                              horizon=horizon)  # fmt: skip
    model = PolyGRAD(rec.env.obs_dim, rec.env.action_dim, alg)
    model.actor.load_state_dict(rec.algo_state["actor"])
    model.log_guidance = rec.algo_state["log_guidance"]
    model.fit_normalizer(rec.buffer)
    return model


def train_denoiser(model: PolyGRAD, buffer: TrajectoryBuffer, steps: int) -> float:
    loss = float("nan")
    for _ in range(steps):
        loss = model.denoiser_step(*buffer.sample(model.cfg.denoiser_batch, model.cfg.horizon))
    return loss


def tune_fixed_policy(model: PolyGRAD, starts: torch.Tensor, rounds: int, lr: float = 3e-2) -> float:
    """Tune the guidance scale for the fixed policy (the reference's world-model-only lr); the last act std."""
    act_std = float("nan")
    for _ in range(rounds):
        traj = model.imagine(starts)
        act_std = standardized_action_std(model.actor, traj.obs, traj.actions)
        model.log_guidance = tune_guidance(model.log_guidance, act_std, lr)
    return act_std


def autoregressive_rollout(model: PolyGRAD, policy: GaussianPolicy, s0: torch.Tensor,
                           horizon: int) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """The h=2 diffusion model unrolled: a_k ~ pi(s_k), s_{k+1} from a 2-step window conditioned on (s_k, a_k)."""
    obs, actions = [s0], []
    settings = GuidanceSettings("none")
    for _ in range(horizon - 1):
        with torch.no_grad():
            a = policy(obs[-1]).sample()
        fixed = torch.stack([a, a], dim=1)
        traj = policy_guided_sample(model.diffusion, model.ema_denoiser, model.normalizer, policy, obs[-1], 2,
                                    settings, fixed_actions=fixed)  # fmt: skip
        obs.append(traj.obs[:, 1])
        actions.append(a)
    actions.append(actions[-1])
    return torch.stack(obs, 1), torch.stack(actions, 1)


class LatentDecoder(nn.Module):
    def __init__(self, latent: int, obs_dim: int) -> None:
        super().__init__()
        self.net = elu_mlp(latent, [256, 256], obs_dim)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


def train_tdmpc2(rec: Recorded, steps: int, batch: int = 256) -> tuple[WorldModel, LatentDecoder]:
    """A small single-task TD-MPC2 world model (latent 128) on the buffer with TD-MPC2's update (H=3), and an
    observation decoder on its (detached) latents."""
    o, a = rec.env.obs_dim, rec.env.action_dim
    wm_cfg = WorldModelConfig(size=None, obs_dim=o, action_dim=a, latent_dim=128, enc_dim=256, mlp_dim=256,
                              num_enc_layers=2, num_q=2, dropout=0.0)  # fmt: skip
    model, decoder = WorldModel(wm_cfg), LatentDecoder(128, o)
    update = TDMPC2(model, TDMPC2Config(batch_size=batch, horizon=3, discount=0.99))
    opt = torch.optim.Adam(decoder.parameters(), lr=3e-4)
    for _ in range(steps):
        x, act = rec.buffer.sample(batch, 4)
        seq = SequenceBatch(x[..., :o].transpose(0, 1).contiguous(), act[:, :3].transpose(0, 1).contiguous(),
                            x[:, :3, o].T.contiguous(), terminated=x[:, :3, o + 1].T.contiguous())  # fmt: skip
        update.update(seq)
        with torch.no_grad():
            z = model.encode(seq.obs)
        loss = ((decoder(z) - seq.obs) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model, decoder


@torch.no_grad()
def tdmpc2_rollout(model: WorldModel, decoder: LatentDecoder, policy: GaussianPolicy, s0: torch.Tensor,
                   horizon: int) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    z, obs, actions = model.encode(s0), [s0], []
    for _ in range(horizon - 1):
        a = policy(obs[-1]).sample().clamp(-1, 1)
        z = model.next(z, a)
        obs.append(decoder(z))
        actions.append(a)
    actions.append(actions[-1])
    return torch.stack(obs, 1), torch.stack(actions, 1)


def run_study(rec: Recorded, models: list[str], steps: int, starts: int, tune_rounds: int, seed: int,
              sizes: dict[str, tuple[int, int]]) -> dict[str, np.ndarray]:  # fmt: skip
    """MSE per step k = 0..h-1 for every model (entry 0 is the shared start, 0 by construction)."""
    torch.manual_seed(seed)
    h = rec.cfg.alg.horizon
    s0, sim = sample_starts(rec.buffer, starts, h, seed)
    out: dict[str, np.ndarray] = {}
    for name in models:
        if name == "tdmpc2":
            model, decoder = train_tdmpc2(rec, steps)
            policy = polygrad_model(rec, "mlp", 8, 1, 2).actor
            obs, actions = tdmpc2_rollout(model, decoder, policy, s0, h)
        elif name == "ar_diffusion":
            m = polygrad_model(rec, "mlp", *sizes["mlp"], 2)
            train_denoiser(m, rec.buffer, steps)
            obs, actions = autoregressive_rollout(m, m.actor, s0, h)
        else:
            m = polygrad_model(rec, name.split("_")[1], *sizes[name.split("_")[1]], h)
            train_denoiser(m, rec.buffer, steps)
            tune_fixed_policy(m, s0, tune_rounds)
            traj = m.imagine(s0)
            obs, actions = traj.obs, traj.actions
        out[name] = open_loop_mse(rec.env, sim, actions.clamp(-1, 1).numpy(), obs.numpy())
        print(f"{name}: " + " ".join(f"{v:.4g}" for v in out[name][1:]), flush=True)
    return out
