"""Algorithm hyperparameters: TD-MPC2's world-model update, the actor-critic family (PWM, SHAC) and MPPI."""

from __future__ import annotations

from dataclasses import dataclass, field

from pwm.config.checks import check_choice, check_fields
from pwm.config.world_model import WorldModelConfig
from pwm.utils.errors import ConfigError


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
        check_fields(self, "tdmpc2.", {
            "batch_size": "at_least_1", "horizon": "at_least_1", "rho": "rate", "lr": "positive",
            "enc_lr_scale": "non_negative", "grad_clip_norm": "positive", "consistency_coef": "non_negative",
            "reward_coef": "non_negative", "value_coef": "non_negative", "tau": "rate", "entropy_coef": "non_negative",
            "discount": "discount",
        })  # fmt: skip


def _check_choices(cfg: object, choices: dict[str, tuple[str, ...]]) -> None:
    for key, allowed in choices.items():
        check_choice(cfg, "alg.", key, allowed)


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
    """Length of the linear LR decay in iterations; the configs set it to the run length, ``general.steps``."""
    ret_rms: bool = True
    """Scale the actor loss by a running std of the rollout returns (reference: on); else divide by H."""
    critic_targets: str = "td_lambda"
    """``td_lambda`` (the documented intent, and PWM's dev repo) or ``one_step``: the released multitask code
    marks every imagined step done, which collapses its TD(λ) to r + γV (docs/pwm_reference.md, "Q1")."""
    obs_rms: bool = False
    """Normalise observations by running statistics before the networks see them (PWM dflex: off)."""
    obs_clip: float | None = 5.0
    """Normalised observations are clipped to [-obs_clip, obs_clip], as PWM's repository does for both PWM and
    SHAC (null: no clip, as SHAC's original code). The clip also stops the gradient of outlying dimensions."""
    activation: str = "mish"
    """Hidden activation of the actor and the critics: ``mish`` (PWM) or ``elu`` (SHAC's original networks)."""

    def check(self) -> None:
        _check_choices(self, {
            "critic_targets": ("td_lambda", "one_step"), "lr_schedule": ("linear", "constant"),
            "activation": ("mish", "elu"),
        })  # fmt: skip
        check_fields(self, "alg.", {
            "horizon": "at_least_1", "max_iterations": "at_least_1", "gamma": "discount", "lam": "fraction",
            "actor_hidden": "at_least_1", "critic_hidden": "at_least_1", "num_critics": "at_least_1",
            "actor_lr": "positive", "critic_lr": "positive", "lr_min": "non_negative", "betas": "fraction",
            "actor_grad_norm": "positive", "critic_grad_norm": "positive", "critic_iterations": "at_least_1",
            "critic_batches": "at_least_1", "obs_clip": "positive",
        })  # fmt: skip


@dataclass
class PWMConfig(ActorCriticConfig):
    """PWM policy learning from a world model (Georgiev et al. 2024; defaults from the reference)."""

    batch_size: int = 512
    """Start states per iteration."""
    reward_space: str = "symlog"
    """Decode the two-hot reward head in ``symlog`` space (the reference, used for the published multitask results;
    docs/pwm_reference.md, "Q3") or with ``symexp`` (the true reward scale, as TD-MPC2 decodes it)."""
    world_model: WorldModelConfig = field(default_factory=lambda: WorldModelConfig(size=None))
    """The frozen world model; ``alg=pwm_<size>`` presets set its size, the runner sets its task set."""
    terminal_bootstrap: str = "gamma_h"
    """Weight of V(z_H) in the actor objective: ``gamma_h`` (γ^H, as SHAC) or ``gamma_h_plus_1`` (the reference's
    off-by-one γ^(H+1); docs/pwm_reference.md, "Q2")."""
    detach_actor_input: bool = True
    """Stop the gradient at the policy's latent input (the reference's ``detach=True``): ∂/∂θ then flows only
    through each action's effect on later states, not through how later actions react to them. ``false`` gives
    the full closed-loop gradient, as SHAC takes through the simulator."""
    name: str = "pwm"
    """Algorithm name (how ``train_dflex.py`` tells ``alg=pwm`` from ``alg=shac``)."""
    # ---- single-task (dflex) only: the world model is trained online next to the policy (docs/pwm_reference.md) ----
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
    """``pwm``: the reference's scalar reward head, MSE reward + latent consistency (docs/pwm_reference.md).
    ``tdmpc2``: the full TD-MPC2 loss (two-hot reward, Q ensemble, policy prior, consistency 20, rho 0.99). PWM
    learns CartPole with ``tdmpc2`` and not with ``pwm`` (cfg/alg_env/pwm_dflex_cartpole.yaml,
    benchmarks/dflex_cartpole_learning.sh)."""
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
        check_fields(self, "alg.", {
            "batch_size": "at_least_1", "wm_lr": "positive", "wm_grad_norm": "positive",
            "wm_iterations": "non_negative", "wm_bootstrap_iterations": "non_negative", "wm_batch_size": "at_least_1",
            "wm_horizon": "at_least_1",
            "wm_consistency_coef": "non_negative", "buffer_size": "at_least_1", "rew_clamp": "positive",
        })  # fmt: skip
        if (self.horizon * self.batch_size) % self.critic_batches:
            pairs = self.horizon * self.batch_size
            raise ConfigError(f"alg.critic_batches={self.critic_batches} must divide horizon*batch_size={pairs}")


@dataclass
class SHACConfig(ActorCriticConfig):
    """SHAC (Xu et al. 2022) as PWM benchmarks it (docs/pwm_reference.md): H-step BPTT through the simulator,
    a min-of-3 critic ensemble without target network, obs and return normalisation. Per-task values come from
    ``cfg/alg_env/shac_<env>.yaml``."""

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
        check_fields(self, "alg.", {"target_critic_alpha": "fraction"})


@dataclass
class MPPIConfig:
    """TD-MPC2's MPPI planner (docs/tdmpc2_reference.md, "MPPI")."""

    iterations: int = 6
    num_samples: int = 512
    num_elites: int = 64
    num_pi_trajs: int = 24
    horizon: int = 3
    min_std: float = 0.05
    max_std: float = 2.0
    temperature: float = 0.5
    reward_space: str = "symexp"

    def check(self) -> None:
        check_fields(self, "eval.mppi.", {
            "iterations": "at_least_1", "num_samples": "at_least_1", "num_elites": "at_least_1",
            "num_pi_trajs": "non_negative", "horizon": "at_least_1", "min_std": "positive", "temperature": "positive",
        })  # fmt: skip
        if self.num_elites > self.num_samples or self.max_std < self.min_std:
            raise ConfigError(
                f"eval.mppi: num_elites={self.num_elites} must be <= num_samples={self.num_samples} and "
                f"max_std={self.max_std} >= min_std={self.min_std}"
            )
        check_choice(self, "eval.mppi.", "reward_space", ("symlog", "symexp"))
