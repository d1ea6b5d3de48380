"""Run-level configs: one :class:`RunConfig` base (run length, clocks, device, resume) that every entry script's
``general:`` section extends, the logger, and the three top-level schemas registered in Hydra's ConfigStore."""

from __future__ import annotations

from dataclasses import dataclass, field

from omegaconf import MISSING

from pwm.config.algorithms import ActorCriticConfig, MPPIConfig, PWMConfig, TDMPC2Config
from pwm.config.checks import check_choice, check_fields
from pwm.config.world_model import WorldModelConfig
from pwm.utils.errors import ConfigError
from pwm.utils.precision import PRECISIONS


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

    def check(self) -> None:
        check_fields(self, "logger.", {"log_every": "at_least_1"})
        check_choice(self, "logger.", "wandb_mode", ("offline", "online", "disabled"))


@dataclass
class RunConfig:
    """What the shared training loop (``pwm.training.loop``) needs: run length, the eval and save clocks, where
    outputs go and the compute. Rerunning with the same ``run_dir`` resumes from its newest run state."""

    run_dir: str | None = None
    """Output directory; default: Hydra's run directory. Rerunning with the same run_dir resumes."""
    steps: int = 1000
    """Run length: training steps (one algorithm update each: a world-model step or a policy iteration)."""
    eval_every: int = 0
    """Steps between evaluations (also after the last step); 0 for none."""
    save_every: int = 500
    """Steps between run states (also after the last step)."""
    save_minutes: float = 10.0
    """Also write a run state when this many minutes have passed since the last one (0: only the step clock), so
    that a long step clock never leaves a killed run with nothing to resume from."""
    keep_checkpoints: int = 3
    device: str = "auto"
    threads: int | None = None
    """torch CPU threads; None leaves torch's default."""
    precision: str = "fp32"
    """``fp32`` or ``bf16``: forward passes under bfloat16 autocast (CPU and CUDA) with fp32 weights, gradients and
    optimiser state (``pwm.utils.precision``; README, "Mixed precision"). Every trainer reads it from here."""

    RESUME_IGNORES = ("general.steps", "general.run_dir", "general.device", "general.threads", "general.precision",
                      "general.eval_every", "general.save_every", "general.save_minutes", "general.keep_checkpoints",
                      "logger", "alg.max_iterations")  # fmt: skip
    """Keys that may change between an interrupted run and its resumption (the rest must match). ``precision`` may:
    run states hold fp32 weights and optimiser state under either setting."""
    FP32_ONLY = ""
    """Set by the run schemas of trainers without a bf16 path: why, in the error that ``precision=bf16`` gets (a
    setting that would be ignored is refused instead)."""

    def check(self) -> None:
        check_fields(self, "general.", {
            "steps": "at_least_1", "save_every": "at_least_1", "keep_checkpoints": "at_least_1",
            "eval_every": "non_negative", "save_minutes": "non_negative", "threads": "at_least_1",
        })  # fmt: skip
        check_choice(self, "general.", "precision", PRECISIONS)
        if self.precision != "fp32" and self.FP32_ONLY:
            raise ConfigError(f"general.precision={self.precision} is not available here: {self.FP32_ONLY}")
        for name in ("eval_runs", "pretrain_steps"):
            if hasattr(self, name):
                check_fields(self, "general.", {name: "at_least_1" if name == "eval_runs" else "non_negative"})


@dataclass
class WorldModelRunConfig(RunConfig):
    """``scripts/train_world_model.py``: offline world-model training on a dataset directory."""

    data_dir: str = MISSING
    """Directory of dataset chunks in the official layout (``chunk_*.pt``), e.g. from scripts/make_dataset.py."""
    cache_dir: str | None = None
    """Where the dataset's converted cache goes; default ``.pwm_cache`` next to the data, or a user cache
    (``~/.cache/pwm/datasets``) when the data directory is read-only."""

    RESUME_IGNORES = (*RunConfig.RESUME_IGNORES, "general.data_dir", "general.cache_dir")


@dataclass
class TrainWorldModelConfig:
    """``scripts/train_world_model.py``: offline TD-MPC2 world-model training on a dataset directory."""

    task: str = "mt30"
    """``mt30``, ``mt80`` or one task name (its episodes are selected out of the data)."""
    seed: int = 1
    general: WorldModelRunConfig = field(default_factory=WorldModelRunConfig)
    world_model: WorldModelConfig = field(default_factory=WorldModelConfig)
    tdmpc2: TDMPC2Config = field(default_factory=TDMPC2Config)
    logger: LoggerConfig = field(default_factory=LoggerConfig)

    def check(self) -> None:
        self.general.check()
        self.tdmpc2.check()
        self.logger.check()


@dataclass
class DflexRunConfig(RunConfig):
    """Run-level settings of ``scripts/train_dflex.py``; ``steps`` are algorithm iterations (one H-step rollout
    of every env each)."""

    steps: int = 2000
    eval_every: int = 100
    save_every: int = 100
    eval_runs: int = 12
    """Evaluation episodes (one per evaluation env, deterministic policy)."""
    checkpoint: str | None = None
    """PWM: start from this run state or policy checkpoint (world model, actor, critic, normalisers)."""
    pretrain: str | None = None
    """PWM: episodes file (``alg.save_data`` format) to fill the replay buffer and pretrain the world model on."""
    pretrain_steps: int = 0
    """World-model gradient steps on the pretraining data before policy learning."""
    video: bool = False
    """Write ``videos/<env>_<steps>.png``: 8 moments of one deterministic evaluation episode at the end
    (planar tasks drawn with matplotlib, robots rendered by MuJoCo from the recorded joint coordinates)."""

    RESUME_IGNORES = (*RunConfig.RESUME_IGNORES, "general.eval_runs", "general.video")


@dataclass
class DflexEnvConfig:
    """A differentiable-simulator task: its registry name and its settings (checked against the task's own config
    dataclass when the env is built, since each task has different ones)."""

    name: str = MISSING
    """Registry name, e.g. ``dflex_cartpole``."""
    config: dict = field(default_factory=dict)
    """Task settings (num_envs, episode_length, ...): the single place the number of training envs is set."""


@dataclass
class DflexConfig:
    """``scripts/train_dflex.py env=dflex_<task> alg=pwm|shac``. Per-task algorithm values come from
    ``cfg/alg_env/<alg>_<env>.yaml``, which Hydra merges before the command line, so ``alg.<key>=`` wins."""

    seed: int = 42
    env: DflexEnvConfig = field(default_factory=DflexEnvConfig)
    alg: ActorCriticConfig = MISSING
    general: DflexRunConfig = field(default_factory=DflexRunConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)


@dataclass
class MultitaskRunConfig(RunConfig):
    """Run-level settings of ``scripts/train_multitask.py``; a run state is written at every evaluation."""

    data_dir: str = MISSING
    """Directory of dataset chunks (official layout) holding the task's episodes."""
    cache_dir: str | None = None
    """Where the dataset's converted cache goes (see ``WorldModelRunConfig.cache_dir``)."""
    checkpoint: str = MISSING
    """World model checkpoint (.pt) in any official TD-MPC2 layout or PWM's layout."""
    steps: int = 10000
    eval_every: int = 200
    """Steps between evaluations (also at step 0 and at the end)."""
    save_every: int = 200
    eval_runs: int = 10
    """Episodes per evaluation (deterministic policy)."""
    video: bool = False
    """After the final evaluation, record one more deterministic episode to ``videos/<task>_<step>.mp4``."""

    RESUME_IGNORES = (
        *RunConfig.RESUME_IGNORES, "general.data_dir", "general.cache_dir", "general.checkpoint", "general.video",
    )  # fmt: skip


@dataclass
class EvalConfig:
    """Optional MPPI planning evaluation, run at the final step next to the plain policy evaluation."""

    planning: bool = False
    prior: str = "pwm"
    """``pwm``: PWM's actor as the plan prior and its critic as terminal value (PWM's planning evaluation);
    ``tdmpc2``: the world model's own policy prior and Q (the TD-MPC2 baseline); ``both``: one after the other."""
    mppi: MPPIConfig = field(default_factory=MPPIConfig)
    model_errors: bool = False
    """At the final evaluation, write ``model_errors.json``: the world model's reward / latent errors and the
    critic's value error along the policy's own real episodes (``pwm.evaluation.wm_quality.policy_errors``)."""


@dataclass
class MultitaskConfig:
    """``scripts/train_multitask.py -cn config_mt30|config_mt80``: one PWM policy for one task of the set."""

    task_set: str = "mt30"
    task: str = "reacher-easy"
    seed: int = 1
    general: MultitaskRunConfig = field(default_factory=MultitaskRunConfig)
    alg: PWMConfig = field(default_factory=PWMConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)

    def check(self) -> None:
        from pwm.data.tasks import get_task_set

        if self.eval.prior not in ("pwm", "tdmpc2", "both"):
            raise ConfigError(f"eval.prior={self.eval.prior!r}; choose pwm, tdmpc2 or both")
        try:
            get_task_set(self.task_set).index(self.task)
        except KeyError as err:
            raise ConfigError(err.args[0]) from None
        self.general.check()
        if self.general.eval_every < 1:
            raise ConfigError(f"general.eval_every={self.general.eval_every} must be >= 1 (multitask runs evaluate)")
        self.alg.check()
        self.eval.mppi.check()
        self.logger.check()
