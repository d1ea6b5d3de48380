"""PolyGRAD's hyperparameters and the online-RL run schema (``scripts/train_online.py``).

Defaults are the reference implementation's (arXiv 2312.08533, ``docs/polygrad.md``): h=10, T=128, residual-MLP
denoiser of width 1024 x 6 blocks, imagination batch 1024, A2C with GAE. ``cfg/alg/polygrad.yaml`` is that
(``paper``, for a GPU); ``cfg/alg/polygrad_cpu.yaml`` is the small preset that learns on a laptop.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from omegaconf import MISSING

from pwm.config.checks import check_choice, check_fields
from pwm.config.runs import LoggerConfig, RunConfig
from pwm.utils.errors import ConfigError


@dataclass
class PolyGRADConfig:
    name: str = "polygrad"
    # ---- world model: trajectory diffusion --------------------------------------------------------------------
    horizon: int = 10
    """Imagined trajectory length h (steps of [obs, reward, terminal])."""
    denoiser: str = "mlp"
    """``mlp`` (residual MLP) or ``transformer`` (causal)."""
    denoiser_width: int = 1024
    """MLP hidden width, or the transformer's embedding size (312 in the paper)."""
    denoiser_blocks: int = 6
    denoiser_heads: int = 4
    diffusion_steps: int = 128
    tau: float = 1.0
    """Cosine-schedule exponent (the reference uses 0.1 on Hopper: ``cfg/alg_env/polygrad*_gym_hopper.yaml``)."""
    denoiser_lr: float = 3e-4
    denoiser_batch: int = 256
    ema_decay: float = 0.99
    ema_every: int = 10
    ema_start: int = 2000
    """Denoiser updates before the EMA copy starts averaging (it copies the weights until then)."""
    # ---- policy-guided sampling -------------------------------------------------------------------------------
    guidance: str = "grad"
    """``grad`` (PolyGRAD), ``sample`` or ``none`` (ablations)."""
    guidance_scale: float = 0.005
    tune_guidance: bool = True
    guidance_lr: float = 3e-3
    clip_std: float | None = 3.0
    clip_state_change: float = 0.25
    clip_below_t: int = 10
    action_noise: float = 1.0
    # ---- A2C in imagination -----------------------------------------------------------------------------------
    agent_batch: int = 1024
    """Start states per imagination (one A2C update each)."""
    hidden: list[int] = field(default_factory=lambda: [256, 256])
    init_std: float = 1.0
    min_std: float = 0.1
    gamma: float = 0.99
    gae_lambda: float = 0.9
    actor_lr: float = 3e-5
    """Initial and largest actor learning rate (the step-size control adapts it to hit ``update_size``)."""
    critic_lr: float = 3e-4
    grad_clip: float = 0.1
    entropy_coef: float = 1e-5
    target_critic_decay: float = 0.995
    update_size: float = 0.01
    """Target mean |log pi_old(a|s) - log pi_new(a|s)| of one actor step."""
    linesearch: bool = True
    """Re-step the actor with the rate times or divided by ``linesearch_ratio`` until the update size is within
    ``linesearch_tolerance`` of the target (``pwm.algorithms.step_size_control``)."""
    linesearch_tolerance: float = 0.2
    linesearch_ratio: float = 0.8
    linesearch_max_steps: int = 50
    actor_lr_lr: float = 3e-4
    """AdamW rate of the learned log actor learning rate (0: the rate stays ``actor_lr``)."""
    # ---- online schedule ---------------------------------------------------------------------------------------
    prefill_steps: int = 5000
    """Uniform-random env steps before any training (the normaliser's first fit)."""
    env_steps_per_update: int = 4
    """Env steps between agent updates (one imagination + one A2C step each)."""
    denoiser_updates: int = 4
    """Denoiser updates per agent update (4 with the default: one per env step)."""
    pretrain_denoiser: int = 1000
    """Denoiser updates before the agent starts learning in imagination."""
    buffer_size: int = 1_000_000

    def check(self) -> None:
        check_fields(self, "alg.", {
            "horizon": "at_least_1", "denoiser_width": "at_least_1", "denoiser_blocks": "at_least_1",
            "denoiser_heads": "at_least_1", "diffusion_steps": "at_least_1", "tau": "positive",
            "denoiser_lr": "positive", "denoiser_batch": "at_least_1", "ema_decay": "fraction",
            "ema_every": "at_least_1", "ema_start": "non_negative", "guidance_scale": "positive",
            "guidance_lr": "non_negative",
            "clip_std": "positive", "clip_state_change": "positive", "clip_below_t": "non_negative",
            "action_noise": "non_negative", "agent_batch": "at_least_1", "hidden": "at_least_1", "init_std": "positive",
            "min_std": "non_negative", "gamma": "discount", "gae_lambda": "rate", "actor_lr": "positive",
            "critic_lr": "positive", "grad_clip": "positive", "entropy_coef": "non_negative",
            "target_critic_decay": "fraction", "update_size": "positive", "linesearch_tolerance": "fraction",
            "linesearch_ratio": "rate", "linesearch_max_steps": "at_least_1", "actor_lr_lr": "non_negative",
            "prefill_steps": "non_negative",
            "env_steps_per_update": "at_least_1", "denoiser_updates": "non_negative",
            "pretrain_denoiser": "non_negative", "buffer_size": "at_least_1",
        })  # fmt: skip
        check_choice(self, "alg.", "denoiser", ("mlp", "transformer"))
        check_choice(self, "alg.", "guidance", ("grad", "sample", "none"))
        if self.horizon < 2:
            raise ConfigError(f"alg.horizon={self.horizon} must be >= 2 (A2C needs a next state)")


@dataclass
class GymEnvConfig:
    """A Gymnasium MuJoCo task: ``gym_hopper``, ``gym_walker2d`` or ``gym_halfcheetah`` (``pwm/envs/suites``)."""

    name: str = MISSING
    id: str | None = None
    """Gymnasium id; default the name's (``Hopper-v5`` ...)."""
    episode_length: int | None = None
    """Steps per episode; default the task's (1000)."""


@dataclass
class OnlineRunConfig(RunConfig):
    """``steps``, ``eval_every`` and ``save_every`` count real env steps (one training step = one env step)."""

    FP32_ONLY = "PolyGRAD runs in fp32 (bf16 covers TD-MPC2, PWM, SHAC and MPPI)"

    steps: int = 1_000_000
    eval_every: int = 10_000
    save_every: int = 10_000
    eval_runs: int = 20
    """Evaluation episodes (deterministic policy: the mean action)."""

    RESUME_IGNORES = (*RunConfig.RESUME_IGNORES, "general.eval_runs")


@dataclass
class OnlineConfig:
    """``scripts/train_online.py env=gym_hopper alg=polygrad|polygrad_cpu``."""

    seed: int = 1
    env: GymEnvConfig = field(default_factory=GymEnvConfig)
    alg: PolyGRADConfig = field(default_factory=PolyGRADConfig)
    general: OnlineRunConfig = field(default_factory=OnlineRunConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)

    def check(self) -> None:
        self.alg.check()
        self.general.check()
        self.logger.check()
