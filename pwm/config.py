"""Structured config schemas (registered in Hydra's ConfigStore) and the rules that derive model dims.

YAML files in ``cfg/`` extend these schemas, so a misspelt key or a wrong type fails when Hydra composes the
config. Values that depend on other values (model-size presets, the task set's padded dims, task-embedding
size) are left ``None`` in YAML and filled by :func:`resolve_world_model`, which never mutates its input.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from pwm.data.tasks import TASK_SETS, get_task
from pwm.utils.errors import ConfigError

__all__ = ["ConfigError"]


# TD-MPC2 model-size presets (tdmpc2.md §2.3): size -> dims.
MODEL_SIZES: dict[int, dict[str, int]] = {
    1: dict(enc_dim=256, mlp_dim=384, latent_dim=128, num_enc_layers=2, num_q=2),
    5: dict(enc_dim=256, mlp_dim=512, latent_dim=512, num_enc_layers=2, num_q=5),
    19: dict(enc_dim=1024, mlp_dim=1024, latent_dim=768, num_enc_layers=3, num_q=5),
    48: dict(enc_dim=1792, mlp_dim=1792, latent_dim=768, num_enc_layers=4, num_q=5),
    317: dict(enc_dim=4096, mlp_dim=4096, latent_dim=1376, num_enc_layers=5, num_q=8),
}


@dataclass
class WorldModelConfig:
    """TD-MPC2 world model. ``None`` means "derived": from ``size`` and ``task`` by :func:`resolve_world_model`."""

    size: int | None = 5
    """Model-size preset in millions of parameters: 1, 5, 19, 48 or 317. ``None`` needs every dim set."""
    task: str | None = None
    """``mt30``/``mt80`` (multitask), a single task name (e.g. ``walker-walk``), or ``None`` with obs/action dims."""
    obs_dim: int | None = None
    """Observation dim (padded, for multitask)."""
    action_dim: int | None = None
    """Action dim (padded, for multitask)."""
    latent_dim: int | None = None
    enc_dim: int | None = None
    mlp_dim: int | None = None
    num_enc_layers: int | None = None
    num_q: int | None = None
    task_dim: int | None = None
    """Task-embedding size: 96 for mt80 and sizes 1/317, else 64; 0 for single-task."""
    num_tasks: int = 1
    """Rows of the task embedding; derived from ``task``."""
    action_dims: list[int] = field(default_factory=list)
    """Per-task active action dims (action masks); derived from ``task``."""
    num_bins: int = 101
    """Two-hot bins of the reward and Q heads; 1 makes them scalar (PWM's single-task world model)."""
    vmin: float = -10.0
    vmax: float = 10.0
    simnorm_dim: int = 8
    dropout: float = 0.01
    """Dropout of the Q ensemble's first layer."""
    log_std_min: float = -10.0
    log_std_max: float = 2.0

    @property
    def multitask(self) -> bool:
        return self.task_dim is not None and self.task_dim > 0


_DERIVED_DIMS = ("latent_dim", "enc_dim", "mlp_dim", "num_enc_layers", "num_q")


def resolve_world_model(cfg: WorldModelConfig) -> WorldModelConfig:
    """Return a copy of ``cfg`` with every derived field filled in and checked; raise ConfigError if it can't."""
    updates: dict = {}
    task_set = TASK_SETS.get(cfg.task) if cfg.task else None
    if cfg.size is not None:
        if cfg.size not in MODEL_SIZES:
            raise ConfigError(f"world_model.size={cfg.size} is not a preset; choose one of {sorted(MODEL_SIZES)}")
        preset = dict(MODEL_SIZES[cfg.size])
        if cfg.task == "mt30" and cfg.size == 19:
            preset["latent_dim"] = 512  # the released mt30-19M checkpoint uses L=512
        updates.update({k: v for k, v in preset.items() if getattr(cfg, k) is None})
    if task_set is not None:
        updates.setdefault("obs_dim", cfg.obs_dim or task_set.obs_dim)
        updates.setdefault("action_dim", cfg.action_dim or task_set.action_dim)
        updates["num_tasks"] = len(task_set)
        updates["action_dims"] = list(cfg.action_dims) or task_set.action_dims
        if cfg.task_dim is None:
            updates["task_dim"] = 96 if cfg.task == "mt80" or cfg.size in (1, 317) else 64
    else:
        if cfg.task is not None:
            try:
                spec = get_task(cfg.task)
            except KeyError as err:
                raise ConfigError(f"world_model.task: {err.args[0]}") from None
            updates.setdefault("obs_dim", cfg.obs_dim or spec.obs_dim)
            updates.setdefault("action_dim", cfg.action_dim or spec.action_dim)
        if cfg.task_dim is None:
            updates["task_dim"] = 0
    out = dataclasses.replace(cfg, **updates)
    _check_world_model(out)
    return out


def _check_world_model(cfg: WorldModelConfig) -> None:
    for name in ("obs_dim", "action_dim", *_DERIVED_DIMS, "task_dim"):
        value = getattr(cfg, name)
        if value is None:
            raise ConfigError(f"world_model.{name} is unset: give it, or a size preset / task that derives it")
        if value < (0 if name == "task_dim" else 1):
            raise ConfigError(f"world_model.{name}={value} must be positive")
    if cfg.latent_dim % cfg.simnorm_dim:
        raise ConfigError(
            f"world_model.latent_dim={cfg.latent_dim} must be a multiple of simnorm_dim={cfg.simnorm_dim}"
        )
    if cfg.num_bins < 1:
        raise ConfigError(
            f"world_model.num_bins={cfg.num_bins} must be >= 2 (two-hot regression) or 1 (a scalar, MSE-trained head)"
        )
    if cfg.multitask and len(cfg.action_dims) != cfg.num_tasks:
        raise ConfigError(f"world_model.action_dims has {len(cfg.action_dims)} entries but num_tasks={cfg.num_tasks}")
    if any(not 0 < a <= cfg.action_dim for a in cfg.action_dims):
        raise ConfigError(f"world_model.action_dims={cfg.action_dims} must lie in 1..action_dim={cfg.action_dim}")


@dataclass
class TDMPC2Config:
    """World-model training hyperparameters (TD-MPC2 defaults; PWM trains its world models with H=16, rho=0.99)."""

    batch_size: int = 256
    horizon: int = 3
    """Length H of the latent rollout in the losses (windows hold H+1 observations)."""
    rho: float = 0.5
    """Temporal weight: loss at step t is scaled by rho**t."""
    lr: float = 3e-4
    enc_lr_scale: float = 0.3
    grad_clip_norm: float = 20.0
    consistency_coef: float = 20.0
    reward_coef: float = 0.1
    value_coef: float = 0.1
    tau: float = 0.01
    """Polyak rate of the target Q ensemble."""
    entropy_coef: float = 1e-4
    discount: float | None = None
    """Fixed discount; ``None`` uses TD-MPC2's per-task heuristic from episode lengths."""

    def check(self) -> None:
        if self.horizon < 1:
            raise ConfigError(f"horizon={self.horizon} must be at least 1")
        if not 0 < self.rho <= 1:
            raise ConfigError(f"rho={self.rho} must lie in (0, 1]")
        if self.batch_size < 1:
            raise ConfigError(f"batch_size={self.batch_size} must be positive")
        if self.discount is not None and not 0 < self.discount <= 1:
            raise ConfigError(f"discount={self.discount} must lie in (0, 1]")


@dataclass
class LoggerConfig:
    """Where metrics go: always CSV/JSONL in the run directory; wandb offline unless ``wandb_mode=online``."""

    wandb: bool = True
    wandb_mode: str = "offline"
    project: str = "pwm"
    entity: str | None = None
    group: str | None = None
    log_every: int = 50
    """Steps between metric rows (values are averaged over the interval)."""
    progress: bool = True
    """Show a progress bar on a terminal."""


@dataclass
class TrainWorldModelConfig:
    """``scripts/train_world_model.py``: offline TD-MPC2 world-model training on a dataset directory."""

    task: str = "mt30"
    """``mt30``, ``mt80`` or one task name (its episodes are selected out of the data)."""
    data_dir: str = "???"
    """Directory of dataset chunks in the official layout (``chunk_*.pt``), e.g. from scripts/make_dataset.py."""
    run_dir: str | None = None
    """Output directory; default: Hydra's run directory. Rerunning with the same run_dir resumes."""
    steps: int = 1000
    seed: int = 1
    device: str = "auto"
    threads: int | None = None
    """torch CPU threads; None leaves torch's default."""
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    world_model: WorldModelConfig = field(default_factory=WorldModelConfig)
    tdmpc2: TDMPC2Config = field(default_factory=TDMPC2Config)
    logger: LoggerConfig = field(default_factory=LoggerConfig)

    def check(self) -> None:
        if self.steps < 1:
            raise ConfigError(f"steps={self.steps} must be positive")
        if self.checkpoint_every < 1:
            raise ConfigError(f"checkpoint_every={self.checkpoint_every} must be positive")
        self.tdmpc2.check()


def _check_choices(cfg: object, choices: dict[str, tuple[str, ...]]) -> None:
    for key, allowed in choices.items():
        if getattr(cfg, key) not in allowed:
            raise ConfigError(f"alg.{key}={getattr(cfg, key)!r}; choose one of {', '.join(allowed)}")


@dataclass
class ActorCriticConfig:
    """What PWM and SHAC share: a tanh-Gaussian actor trained on H-step returns and a min-of-K critic ensemble
    fitted to TD(λ) targets in sequential minibatches, both with Adam and a linear LR decay. Defaults are PWM's;
    :class:`SHACConfig` overrides its own."""

    horizon: int = 16
    """Rollout steps H per actor update (imagined for PWM, simulated for SHAC)."""
    gamma: float = 0.99
    lam: float = 0.95
    actor_hidden: list[int] = field(default_factory=lambda: [400, 200, 100])
    critic_hidden: list[int] = field(default_factory=lambda: [400, 200])
    num_critics: int = 3
    init_logstd: float = -1.0
    min_logstd: float = -1.427
    actor_lr: float = 5e-4
    critic_lr: float = 5e-4
    lr_min: float = 1e-5
    """The learning rates decay linearly to this over ``max_iterations`` (``lr_schedule=linear``)."""
    lr_schedule: str = "linear"
    betas: list[float] = field(default_factory=lambda: [0.7, 0.95])
    actor_grad_norm: float = 1.0
    critic_grad_norm: float = 100.0
    critic_iterations: int = 8
    critic_batches: int = 4
    max_iterations: int = 10000
    """Iterations (epochs); each is one H-step rollout, one actor step and the critic fit."""
    ret_rms: bool = True
    """Scale the actor loss by a running std of the rollout returns (reference: on); else divide by H."""
    critic_targets: str = "td_lambda"
    """``td_lambda`` (the documented intent, and PWM's dev repo) or ``one_step``: the released multitask code
    marks every imagined step done, which collapses its TD(λ) to r + γV (quirk Q1)."""
    obs_rms: bool = False
    """Normalise observations by running statistics before the networks see them (PWM dflex: off)."""

    def check(self) -> None:
        _check_choices(self, {"critic_targets": ("td_lambda", "one_step"), "lr_schedule": ("linear", "constant")})
        if self.horizon < 1 or self.max_iterations < 1:
            raise ConfigError(f"alg.horizon={self.horizon} and alg.max_iterations={self.max_iterations} must be >= 1")
        if not 0 <= self.lam < 1:
            raise ConfigError(f"alg.lam={self.lam} must lie in [0, 1)")


@dataclass
class PWMConfig(ActorCriticConfig):
    """PWM policy learning from a world model (Georgiev et al. 2024; defaults from the reference)."""

    batch_size: int = 512
    """Start states per iteration."""
    reward_space: str = "symlog"
    """Decode the two-hot reward head in ``symlog`` space (reference, quirk Q3: the published multitask results)
    or with ``symexp`` (the true reward scale, as TD-MPC2 decodes it)."""
    world_model: WorldModelConfig = field(default_factory=lambda: WorldModelConfig(size=None))
    """The frozen world model; ``alg=pwm_<size>`` presets set its size, the runner sets its task set."""
    terminal_bootstrap: str = "gamma_h"
    """Weight of V(z_H) in the actor objective: ``gamma_h`` (γ^H, as SHAC) or ``gamma_h_plus_1`` (the reference's
    off-by-one γ^(H+1), quirk Q2)."""
    detach_actor_input: bool = True
    """Stop the gradient at the policy's latent input (the reference's ``detach=True``): ∂/∂θ then flows only
    through each action's effect on later states, not through how later actions react to them. ``false`` gives
    the full closed-loop gradient, as SHAC takes through the simulator."""
    name: str = "pwm"
    """Algorithm name (how ``train_dflex.py`` tells ``alg=pwm`` from ``alg=shac``)."""
    # ---- single-task (dflex) only: the world model is trained online next to the policy (pwm.md §2.5, §2.7) ----
    wm_lr: float = 3e-4
    wm_grad_norm: float = 20.0
    wm_iterations: int = 8
    """World-model gradient steps after every PWM iteration."""
    wm_bootstrap_iterations: int = 1000
    """Extra world-model steps the first time, when it was neither pretrained nor loaded."""
    wm_batch_size: int = 256
    wm_horizon: int = 16
    """Window length of world-model training batches."""
    wm_consistency_coef: float = 1.0
    """Weight of the latent consistency loss against the reward loss (PWM: 1; TD-MPC2: 20)."""
    wm_loss: str = "pwm"
    """``pwm``: the reference's scalar reward head, MSE reward + latent consistency (pwm.md §2.5). ``tdmpc2``: the
    full TD-MPC2 loss (two-hot reward, Q ensemble, policy prior, consistency 20, rho 0.99). PWM learns CartPole
    with ``tdmpc2`` and not with ``pwm`` (cfg/env/dflex_cartpole.yaml, benchmarks/dflex_cartpole_learning.sh)."""
    buffer_size: int = 1_000_000
    """Replay capacity in transitions (finished real-env episodes)."""
    rew_rms: bool = True
    """Train the reward head on rewards divided by their running std (reference dflex: on)."""
    rew_clamp: float = 5.0
    """Clamp of the normalised rewards (reference: ±5, made for O(1) rewards; CartPole's reach -10 std)."""

    def check(self) -> None:
        super().check()
        _check_choices(
            self,
            {
                "reward_space": ("symlog", "symexp"),
                "terminal_bootstrap": ("gamma_h", "gamma_h_plus_1"),
                "wm_loss": ("pwm", "tdmpc2"),
            },
        )
        if self.batch_size < 1:
            raise ConfigError(f"alg.batch_size={self.batch_size} must be positive")
        if (self.horizon * self.batch_size) % self.critic_batches:
            pairs = self.horizon * self.batch_size
            raise ConfigError(f"alg.critic_batches={self.critic_batches} must divide horizon*batch_size={pairs}")


@dataclass
class SHACConfig(ActorCriticConfig):
    """SHAC (Xu et al. 2022) as PWM benchmarks it (envs_and_peers.md A.5): H-step BPTT through the simulator,
    a min-of-3 critic ensemble without target network, obs and return normalisation. Per-task values come from the
    env config's ``shac:`` block."""

    name: str = "shac"
    horizon: int = 32
    min_logstd: float = -10.0
    actor_lr: float = 2e-3
    critic_iterations: int = 16
    max_iterations: int = 2000
    obs_rms: bool = True
    target_critic: bool = False
    """The original SHAC's Polyak-averaged target critic for bootstrapping (PWM's variant: off, min over online)."""
    target_critic_alpha: float = 0.2
    """θ' <- α θ' + (1-α) θ after each epoch (original SHAC: 0.2 fast, 0.995 slow)."""
    save_data: bool = False
    """Write every finished episode to ``<run_dir>/episodes.pt`` in the pretraining data format."""

    def check(self) -> None:
        super().check()
        if not 0 <= self.target_critic_alpha < 1:
            raise ConfigError(f"alg.target_critic_alpha={self.target_critic_alpha} must lie in [0, 1)")


@dataclass
class DflexGeneralConfig:
    """Run-level settings of ``scripts/train_dflex.py``."""

    run_dir: str | None = None
    """Output directory; default: Hydra's run directory. Rerunning with the same run_dir resumes."""
    device: str = "auto"
    threads: int | None = None
    eval_freq: int = 100
    """Iterations between deterministic evaluations on the real env (also at the end)."""
    eval_runs: int = 12
    save_interval: int = 100
    """Iterations between periodic checkpoints (run states); the best policy is kept as well."""
    keep_checkpoints: int = 3
    checkpoint: str | None = None
    """PWM: start from this run state or policy checkpoint (world model, actor, critic, normalisers)."""
    pretrain: str | None = None
    """PWM: episodes file (``alg.save_data`` format) to fill the replay buffer and pretrain the world model on."""
    pretrain_steps: int = 0
    """World-model gradient steps on the pretraining data before policy learning."""
    video: bool = False
    """Write ``videos/<env>_<iterations>.png``: 8 moments of one deterministic evaluation episode at the end
    (planar tasks drawn with matplotlib, robots rendered by MuJoCo from the recorded joint coordinates)."""


@dataclass
class DflexRunConfig:
    """``scripts/train_dflex.py env=dflex_<task> alg=pwm|shac``. ``env`` and ``alg`` are checked when the run
    builds them (their schema depends on the task and the algorithm)."""

    seed: int = 42
    env: Any = None
    alg: Any = None
    general: DflexGeneralConfig = field(default_factory=DflexGeneralConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)


@dataclass
class GeneralConfig:
    """Run-level settings of ``scripts/train_multitask.py`` (names follow PWM's reference configs)."""

    data_dir: str = "???"
    """Directory of dataset chunks (official layout) holding the task's episodes."""
    checkpoint: str = "???"
    """World model checkpoint (.pt) in any official TD-MPC2 layout or PWM's layout."""
    run_dir: str | None = None
    """Output directory; default: Hydra's run directory. Rerunning with the same run_dir resumes."""
    epochs: int = 10000
    """PWM iterations."""
    eval_freq: int = 200
    """Iterations between evaluations (also at iteration 0 and at the end); each also saves a run state."""
    eval_runs: int = 10
    """Episodes per evaluation (deterministic policy)."""
    device: str = "auto"
    threads: int | None = None
    video: bool = False
    """After the final evaluation, record one more deterministic episode to ``videos/<task>_<iteration>.mp4``."""


@dataclass
class MPPIConfig:
    """TD-MPC2's MPPI planner (tdmpc2.md §4)."""

    iterations: int = 6
    num_samples: int = 512
    num_elites: int = 64
    num_pi_trajs: int = 24
    horizon: int = 3
    min_std: float = 0.05
    max_std: float = 2.0
    temperature: float = 0.5
    reward_space: str = "symexp"


@dataclass
class EvalConfig:
    """Optional MPPI planning evaluation, run at the final iteration next to the plain policy evaluation."""

    planning: bool = False
    prior: str = "pwm"
    """``pwm``: PWM's actor as the plan prior and its critic as terminal value (PWM's planning evaluation);
    ``tdmpc2``: the world model's own policy prior and Q (the TD-MPC2 baseline)."""
    mppi: MPPIConfig = field(default_factory=MPPIConfig)


@dataclass
class MultitaskConfig:
    """``scripts/train_multitask.py -cn config_mt30|config_mt80``: one PWM policy for one task of the set."""

    task_set: str = "mt30"
    task: str = "reacher-easy"
    seed: int = 1
    general: GeneralConfig = field(default_factory=GeneralConfig)
    alg: PWMConfig = field(default_factory=PWMConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)

    def check(self) -> None:
        from pwm.data.tasks import get_task_set

        if self.eval.prior not in ("pwm", "tdmpc2"):
            raise ConfigError(f"eval.prior={self.eval.prior!r}; choose pwm or tdmpc2")
        try:
            get_task_set(self.task_set).index(self.task)
        except KeyError as err:
            raise ConfigError(err.args[0]) from None
        if self.general.epochs < 1 or self.general.eval_freq < 1 or self.general.eval_runs < 1:
            raise ConfigError("general.epochs, general.eval_freq and general.eval_runs must be positive")
        self.alg.check()


def register_configs() -> None:
    """Register the schemas with Hydra's ConfigStore (YAML files in cfg/ extend them by name)."""
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    cs.store(name="base_train_world_model", node=TrainWorldModelConfig)
    cs.store(group="world_model", name="base_world_model", node=WorldModelConfig)
    cs.store(group="tdmpc2", name="base_tdmpc2", node=TDMPC2Config)
    cs.store(name="base_multitask", node=MultitaskConfig)
    cs.store(group="alg", name="base_pwm", node=PWMConfig)
    cs.store(group="alg", name="base_shac", node=SHACConfig)
    cs.store(name="base_dflex", node=DflexRunConfig)
