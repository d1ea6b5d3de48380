"""Config schemas of ``scripts/train_dreamer.py``: the DreamerV2 pixel agent and PreLAR / APV pretraining and
fine-tuning on it (docs/prelar.md). One algorithm schema serves the five ``alg=`` names; a ``preset=`` (cpu,
paper) sets the network sizes and the batch."""

from __future__ import annotations

from dataclasses import dataclass, field

from pwm.config.checks import check_choice, check_fields
from pwm.config.runs import LoggerConfig, RunConfig
from pwm.utils.errors import ConfigError

DREAMER_ALGS = ("dreamerv2", "prelar_pretrain", "apv_pretrain", "prelar_finetune", "apv_finetune")
PRETRAIN_ALGS = ("prelar_pretrain", "apv_pretrain")
FINETUNE_ALGS = ("prelar_finetune", "apv_finetune")


@dataclass
class DreamerModelConfig:
    """Network sizes (``preset=paper``: DreamerV2 / PreLAR's; ``preset=cpu``: small enough for a laptop)."""

    depth: int = 48
    """Conv encoder/decoder base depth (embedding 32 * depth)."""
    deter: int = 1024
    """GRU (deterministic) state size."""
    hidden: int = 1024
    """RSSM hidden layer size."""
    groups: int = 32
    """Categorical latents ..."""
    classes: int = 32
    """... of this many classes each."""
    units: int = 400
    """Reward / actor / critic MLP width."""
    layers: int = 4
    """Reward / actor / critic MLP hidden layers."""
    latent_action: int = 64
    """Width of the action slot in pretraining and fine-tuning (latent action / encoded action)."""
    slot_units: int = 1024
    """Hidden width of the latent-action net's head and of the fine-tuning action encoder."""


@dataclass
class DreamerAlgConfig:
    """Hyperparameters of every ``alg=`` (defaults: DreamerV2 / PreLAR's Meta-World values)."""

    name: str = "dreamerv2"
    batch: int = 50
    seq_len: int = 50
    model_lr: float = 3e-4
    actor_lr: float = 8e-5
    critic_lr: float = 8e-5
    eps: float = 1e-5
    grad_clip: float = 100.0
    kl_balance: float = 0.8
    kl_free: float = 0.0
    horizon: int = 15
    gamma: float = 0.99
    lam: float = 0.95
    entropy: float = 1e-4
    slow_critic_every: int = 100
    """Updates between hard copies of the critic into the slow (target) critic."""
    train_every: int = 5
    """Env steps between updates once the replay is prefilled."""
    prefill: int = 5000
    """Random-action env steps before the first update."""
    initial_updates: int = 100
    """Updates done at once when the prefill completes."""
    warmup_updates: int = 100
    """Fine-tuning: updates during which the pretrained RSSM and encoder train at learning rate 0."""
    reward_scale: float = 1.0
    aux_reward_scale: float = 1.0
    """Fine-tuning: weight of the auxiliary head that learns the plain reward (0: no such head)."""
    bonus_beta: float = 1.0
    """Fine-tuning: weight of APV's kNN video novelty bonus in the reward head's target (0: off)."""
    bonus_k: int = 16
    bonus_queue: int = 4096
    bonus_window: int = 5
    pretrained: str | None = None
    """Fine-tuning: a pretraining run directory or its ``pretrained.pt``."""
    va_kl_scale: float = 1.0
    """PreLAR pretraining: weight of KL(latent action || N(0, I))."""
    consistency: str = "none"
    """PreLAR pretraining: ``none``, ``sign`` (the released code: zero gradient) or ``soft`` (ours)."""
    consistency_scale: float = 1.0
    consistency_temperature: float = 1.0

    def check(self) -> None:
        check_choice(self, "alg.", "name", DREAMER_ALGS)
        check_choice(self, "alg.", "consistency", ("none", "sign", "soft"))
        check_fields(self, "alg.", {
            "batch": "at_least_1", "horizon": "at_least_1", "train_every": "at_least_1",
            "slow_critic_every": "at_least_1", "prefill": "non_negative", "initial_updates": "non_negative",
            "warmup_updates": "non_negative", "bonus_k": "at_least_1", "bonus_queue": "at_least_1",
            "bonus_window": "at_least_1",
        })  # fmt: skip
        if self.seq_len < 2:
            raise ConfigError(f"alg.seq_len={self.seq_len}; it must be at least 2")
        if self.finetune and self.bonus_beta > 0 and self.bonus_window > self.seq_len:
            raise ConfigError(f"alg.bonus_window={self.bonus_window} exceeds alg.seq_len={self.seq_len}")
        if self.name in FINETUNE_ALGS and not self.pretrained:
            raise ConfigError(f"alg={self.name} needs alg.pretrained=<pretraining run dir or pretrained.pt>")

    @property
    def finetune(self) -> bool:
        return self.name in FINETUNE_ALGS


@dataclass
class PixelEnvConfig:
    """A pixel task: ``mw-<task>`` (Meta-World v3) or ``<domain>-<task>`` (DMControl)."""

    task: str = "mw-drawer-open"
    size: int = 64
    action_repeat: int = 1
    frame_stack: int = 1
    camera: str | None = None
    """None: ``corner`` for Meta-World, camera 0 for DMControl."""
    episode_length: int = 500
    """Env steps per episode (agent steps = episode_length / action_repeat)."""

    def check(self) -> None:
        check_fields(self, "env.", {"action_repeat": "at_least_1", "frame_stack": "at_least_1",
                                    "episode_length": "at_least_1"})  # fmt: skip
        if self.size != 64:
            raise ConfigError(f"env.size={self.size}; the conv encoder/decoder take 64x64 images")


@dataclass
class DreamerRunConfig(RunConfig):
    """``general.steps``: episodes for the online algorithms, updates for pretraining."""

    FP32_ONLY = "DreamerV2, APV and PreLAR run in fp32 (bf16 covers TD-MPC2, PWM, SHAC and MPPI)"

    steps: int = 100
    eval_every: int = 10
    save_every: int = 10
    eval_runs: int = 10
    """Evaluation episodes (the actor's mean action)."""
    video_dir: str | None = None
    """Pretraining: the clip folder written by scripts/make_videos.py."""

    RESUME_IGNORES = (*RunConfig.RESUME_IGNORES, "general.eval_runs", "general.video_dir")


@dataclass
class DreamerConfig:
    """``scripts/train_dreamer.py alg=<name> preset=cpu|paper env.task=<task>``."""

    seed: int = 1
    env: PixelEnvConfig = field(default_factory=PixelEnvConfig)
    alg: DreamerAlgConfig = field(default_factory=DreamerAlgConfig)
    model: DreamerModelConfig = field(default_factory=DreamerModelConfig)
    general: DreamerRunConfig = field(default_factory=DreamerRunConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)

    def check(self) -> None:
        self.env.check()
        self.alg.check()
        self.general.check()
        self.logger.check()
        if self.alg.name in PRETRAIN_ALGS and not self.general.video_dir:
            raise ConfigError(f"alg={self.alg.name} needs general.video_dir=<folder from scripts/make_videos.py>")
        if (self.alg.finetune or self.alg.name in PRETRAIN_ALGS) and self.env.frame_stack != 1:
            raise ConfigError("PreLAR/APV pretraining and fine-tuning take single frames: set env.frame_stack=1")
