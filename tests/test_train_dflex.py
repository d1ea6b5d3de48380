"""train_dflex.py with PWM and SHAC on CartPole: outputs, resume, gradient paths, pretraining data, bad input."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from pwm.algorithms.base import EnvData
from pwm.algorithms.pwm_single_task import SingleTaskPWM
from pwm.algorithms.shac import SHAC
from pwm.config import ConfigError, PWMConfig, SHACConfig, WorldModelConfig, register_configs
from pwm.data.buffer import ReplayBuffer
from pwm.data.episodes import EpisodeFileError, EpisodeRecorder, load_episodes, save_episodes
from pwm.envs.sim.registry import make_dflex_env
from pwm.training.dflex import DflexRun

ROOT = Path(__file__).resolve().parents[1]
TINY_WM = {"latent_dim": 32, "enc_dim": 32, "mlp_dim": 32, "num_enc_layers": 2, "num_q": 2, "dropout": 0.0}
SMALL = [
    "env.config.episode_length=20", "general.eval_runs=2", "general.eval_every=2", "general.save_every=2",
    "general.threads=1", "logger.wandb=false", "logger.progress=false", "logger.log_every=1",
]  # fmt: skip
SHAC_SMALL = ["alg=shac", "env.config.num_envs=4", "alg.horizon=8", "alg.actor_hidden=[16]", "alg.critic_hidden=[16]"]
PWM_SMALL = [
    "alg=pwm", "env.config.num_envs=4", "alg.horizon=4", "alg.actor_hidden=[16]", "alg.critic_hidden=[16]",
    "alg.wm_bootstrap_iterations=3", "alg.wm_iterations=2", "alg.wm_batch_size=8", "alg.wm_horizon=4",
    *(f"alg.world_model.{k}={v}" for k, v in TINY_WM.items()),
]  # fmt: skip


def _compose(overrides: list[str]):
    register_configs()
    with initialize_config_dir(config_dir=str(ROOT / "cfg"), version_base="1.3"):
        return compose(config_name="config_dflex", overrides=overrides)


def _run(overrides: list[str], run_dir: Path) -> DflexRun:
    """A run built as ``train_dflex.py`` builds it (Hydra applies the overrides after the per-task values)."""
    return DflexRun(_compose(overrides), run_dir)


def _rows(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("alg", ["pwm", "shac"])
def test_script_smoke_run_writes_outputs_and_resumes(tmp_path, alg):
    run_dir = tmp_path / alg
    args = [*SMALL, *(PWM_SMALL if alg == "pwm" else SHAC_SMALL), f"general.run_dir={run_dir}"]
    cmd = [sys.executable, str(ROOT / "scripts" / "train_dflex.py"), "env=dflex_cartpole"]
    first = subprocess.run([*cmd, *args, "general.steps=4"], capture_output=True, text=True, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    assert f"done: dflex_cartpole {alg}" in first.stdout
    for name in ("metrics.csv", "metrics.jsonl", "best_policy.pt", "learning_curve.png", "run_info.json"):
        assert (run_dir / name).is_file(), name
    rows = _rows(run_dir)
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]
    assert all(float(r["env_steps"]) > 0 for r in rows) and rows[1]["eval/return"] != ""
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["state_000000002.pt", "state_000000004.pt"]
    more = subprocess.run([*cmd, *args, "general.steps=6"], capture_output=True, text=True, cwd=tmp_path)
    assert more.returncode == 0, more.stderr[-2000:]
    assert f"{run_dir}: resuming from step 4" in more.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == [alg]  # Hydra's files too went into the run dir
    rows = _rows(run_dir)
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4, 5, 6]
    assert float(rows[-1]["env_steps"]) > float(rows[3]["env_steps"])
    evaluation = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "eval_dflex.py"), str(run_dir), "--episodes", "3", "--device", "cpu"],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert evaluation.returncode == 0, evaluation.stderr[-2000:]
    result = json.loads(evaluation.stdout.strip().splitlines()[-1])
    assert result["alg"] == alg and result["length"] == 20 and np.isfinite(result["return"])


@pytest.mark.parametrize("alg", ["pwm", "shac"])
def test_interrupted_run_resumes_to_the_same_result(tmp_path, alg):
    """A run killed after its iteration-2 checkpoint and resumed writes the same rows as an uninterrupted run."""
    overrides = [*SMALL, *(PWM_SMALL if alg == "pwm" else SHAC_SMALL), "general.steps=4", "seed=3"]
    full = tmp_path / "full"
    _run(overrides, full).run()
    cut = tmp_path / "cut"
    shutil.copytree(full, cut)
    (cut / "checkpoints" / "state_000000004.pt").unlink()
    _run(overrides, cut).run()
    keys = ["step", "env_steps", "actor/loss", "critic/loss", "eval/return"]
    assert [[r[k] for k in keys] for r in _rows(cut)] == [[r[k] for k in keys] for r in _rows(full)]


class _ZeroGradThroughSim(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return torch.zeros_like(grad)


def test_shac_actor_gradient_flows_only_through_the_simulator():
    torch.manual_seed(0)
    env = make_dflex_env("dflex_cartpole", {"num_envs": 4}, requires_grad=True)
    env.reset(seed=0)
    cfg = SHACConfig(horizon=6, actor_hidden=[16], critic_hidden=[16], max_iterations=10)
    algo = SHAC(env.obs_dim, env.action_dim, cfg)
    loss = algo._rollout(env, None)["loss"].mean()
    loss.backward()
    grads = [p.grad for p in algo.actor.parameters()]
    assert sum(float(g.abs().sum()) for g in grads if g is not None) > 0
    assert all(p.grad is None for p in algo.critic.parameters())
    # Block gradients through the physics step only: the actor then gets exactly none (CartPole's reward does not
    # read the action, so every path from the actor to the loss crosses the simulator).
    blocked = make_dflex_env("dflex_cartpole", {"num_envs": 4}, requires_grad=True)
    simulate = blocked._simulate
    blocked._simulate = lambda s, a: {k: _ZeroGradThroughSim.apply(v) for k, v in simulate(s, a).items()}
    blocked.reset(seed=0)
    algo.actor.zero_grad(set_to_none=True)
    algo._rollout(blocked, None)["loss"].mean().backward()
    assert all(p.grad is None or not p.grad.any() for p in algo.actor.parameters())
    with pytest.raises(ValueError, match="requires_grad=False"):
        algo.update(EnvData(make_dflex_env("dflex_cartpole", {"num_envs": 4})))


def test_normalised_observations_are_clipped_like_the_references():
    """SHAC's and PWM's running normaliser clips to +-5; the clip also stops the gradient of outlying dims."""
    cfg = SHACConfig(actor_hidden=[8], critic_hidden=[8])
    algo = SHAC(2, 1, cfg)
    algo.obs_rms.update(torch.tensor([[0.0, 0.0], [2.0, 2.0]]))  # mean 1, std ~1
    obs = torch.tensor([[1.5, 100.0]], requires_grad=True)
    x = algo.normalize(obs)
    expected = (1.5 - float(algo.obs_rms.mean[0])) / float(algo.obs_rms.std()[0])
    assert x[0, 0].item() == pytest.approx(expected, rel=1e-5)
    assert x[0, 1].item() == 5.0
    x.sum().backward()
    assert obs.grad[0, 1].item() == 0.0 and obs.grad[0, 0].item() > 0
    algo.cfg.obs_clip = 2.0
    assert algo.normalize(torch.tensor([[-50.0, 1.0]]))[0, 0].item() == -2.0
    algo.cfg.obs_clip = None  # SHAC's original: no clip
    expected = (-50.0 - float(algo.obs_rms.mean[0])) / float(algo.obs_rms.std()[0])
    assert algo.normalize(torch.tensor([[-50.0, 1.0]]))[0, 0].item() == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ConfigError, match="obs_clip"):
        SHACConfig(obs_clip=0.0).check()


def test_shac_original_preset_builds_the_original_shac_networks():
    """alg=shac_original: one ELU critic bootstrapped through a Polyak target, no obs clip, no return scaling."""
    cfg = _compose(["env=dflex_ant", "alg=shac_original"])
    hopper = _compose(["env=dflex_hopper", "alg=shac_original"])
    assert cfg.general.steps == 2000 and hopper.general.steps == 500 and hopper.alg.critic_lr == 4e-3
    alg_cfg = OmegaConf.to_object(cfg.alg)
    algo = SHAC(37, 8, alg_cfg)
    assert algo.target_critic is not None and algo.critic.net.num_members == 1
    assert alg_cfg.obs_clip is None and not alg_cfg.ret_rms and alg_cfg.target_critic_alpha == 0.2
    assert [tuple(layer.weight.shape[1:]) for layer in algo.critic.net.params] == [(64, 37), (64, 64), (1, 64)]
    x = torch.randn(5, 37)
    assert torch.equal(algo.critic.min(x), algo.target_critic.min(x))  # the target starts as a copy
    # The hidden activation really is ELU: ELU's negative side saturates at -1, Mish's at 0.
    assert [type(m).__name__ for m in algo.actor.mu][:3] == ["Linear", "Activation", "LayerNorm"]
    assert algo.actor.mu[1](torch.tensor([-20.0])).item() == pytest.approx(-1.0, abs=1e-6)
    with pytest.raises(ConfigError, match="activation"):
        SHACConfig(activation="relu").check()


def test_target_critic_bootstraps_and_follows_the_critic_by_polyak_averaging():
    torch.manual_seed(0)
    env = make_dflex_env("dflex_cartpole", {"num_envs": 4, "episode_length": 20}, requires_grad=True)
    env.reset(seed=0)
    cfg = SHACConfig(horizon=4, actor_hidden=[8], critic_hidden=[8], num_critics=1, target_critic=True,
                     target_critic_alpha=0.2, critic_iterations=2, max_iterations=10)  # fmt: skip
    algo = SHAC(env.obs_dim, env.action_dim, cfg)
    before = [p.detach().clone() for p in algo.critic.parameters()]
    algo.update(EnvData(env))
    for init, online, target in zip(before, algo.critic.parameters(), algo.target_critic.parameters(), strict=True):
        assert not torch.equal(online, init)  # the critic moved, so the check below is not trivial
        torch.testing.assert_close(target, 0.2 * init + 0.8 * online)
    x = torch.randn(3, env.obs_dim)
    assert torch.equal(algo._bootstrap(x), algo.target_critic.min(x))
    assert not torch.equal(algo._bootstrap(x), algo.critic.min(x))


@pytest.mark.parametrize("wm_loss", ["pwm", "tdmpc2"])
def test_pwm_actor_gradient_flows_only_through_the_world_model(wm_loss):
    torch.manual_seed(0)
    env = make_dflex_env("dflex_cartpole", {"num_envs": 4})
    env.reset(seed=0)
    cfg = PWMConfig(horizon=5, batch_size=4, actor_hidden=[16], critic_hidden=[16], wm_loss=wm_loss,
                    world_model=WorldModelConfig(size=None, **TINY_WM))  # fmt: skip
    algo = SingleTaskPWM(env.obs_dim, env.action_dim, cfg)
    algo.wm.requires_grad_(False)
    rollout = algo._imagine(env, None)
    rollout["loss"].mean().backward()
    assert sum(float(p.grad.abs().sum()) for p in algo.actor.parameters()) > 0
    assert all(p.grad is None for p in algo.critic.parameters())
    assert all(p.grad is None for p in algo.wm.parameters())
    assert all(v.grad_fn is None for v in env.state.values())  # the real env was stepped without a graph
    # With the world model's action inputs cut off, the actor has no other path to the loss.
    algo.actor.zero_grad(set_to_none=True)
    for net in (algo.wm._dynamics, algo.wm._reward):
        first = net[0].weight
        first.data[:, -env.action_dim :] = 0.0
    algo._imagine(env, None)["loss"].mean().backward()
    assert all(p.grad is None or not p.grad.any() for p in algo.actor.parameters())


def test_shac_episodes_become_pwm_pretraining_data(tmp_path):
    shac_dir = tmp_path / "shac"
    _run([*SMALL, *SHAC_SMALL, "general.steps=6", "alg.save_data=true"], shac_dir).run()
    episodes = load_episodes(shac_dir / "episodes.pt", obs_dim=5, action_dim=1)
    assert len(episodes) >= 4 and all(e.length == 20 and e.obs.shape == (21, 5) for e in episodes)
    pwm_dir = tmp_path / "pwm"
    overrides = [*SMALL, *PWM_SMALL, "general.steps=2", f"general.pretrain={shac_dir / 'episodes.pt'}",
                 "general.pretrain_steps=5"]  # fmt: skip
    run = _run(overrides, pwm_dir)
    run.run()
    assert run.buffer.num_episodes >= len(episodes)
    assert "pretrain/wm/loss" in _rows(pwm_dir)[0]


def test_episode_recorder_and_file_round_trip(tmp_path):
    env = make_dflex_env("dflex_cartpole", {"num_envs": 2, "episode_length": 3})
    recorder = EpisodeRecorder(env.reset(seed=0), keep_data=True)
    start = env.obs.clone()
    for _ in range(3):
        action = env.random_actions()
        recorder.record(action, env.step(action))
    episodes = recorder.pop_finished()
    assert len(episodes) == 2 and torch.equal(torch.from_numpy(episodes[0].obs[0]), start[0])
    assert recorder.mean_length() == 3.0
    save_episodes(tmp_path / "e.pt", episodes, "dflex_cartpole")
    back = load_episodes(tmp_path / "e.pt", 5, 1)
    assert all((a.obs == b.obs).all() and (a.reward == b.reward).all() for a, b in zip(episodes, back, strict=True))
    with pytest.raises(EpisodeFileError, match="obs 5 / action 1"):
        load_episodes(tmp_path / "e.pt", 37, 8)
    buffer = ReplayBuffer(1000, 2, 2, max_episode_length=3)
    for e in back:
        buffer.add_episode(e.obs, e.action, e.reward, terminated=e.terminated)
    assert buffer.sample().obs.shape == (3, 2, 5)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["alg=shac", "+alg.bogus=1"], "alg.bogus is not a setting of SHACConfig"),
        (["alg=pwm", "alg.critic_batches=3"], "alg.critic_batches=3 must divide"),
        (["env.config.start_pose=sideways"], "start_pose"),
        (["alg=shac", "alg.critic_targets=mc"], "alg.critic_targets='mc'"),
    ],
)
def test_bad_config_values_fail_with_one_line(tmp_path, overrides, message):
    with pytest.raises((ConfigError, ValueError), match=message):
        _run([*SMALL, *overrides], tmp_path)


def test_evaluation_of_a_known_policy():
    """A pole hanging still under zero force earns -pi^2 per step (pre-step reward), for all 240 steps."""
    import math

    from pwm.training.evaluate import evaluate

    env = make_dflex_env("dflex_cartpole", {"num_envs": 3, "stochastic_init": False})
    result = evaluate(lambda obs: torch.zeros(obs.shape[0], 1), env, 3, seed=0)
    assert result["length"] == 240
    assert result["return"] == pytest.approx(-240 * math.pi**2, rel=1e-5)
    assert result["final_reward"] == pytest.approx(-(math.pi**2), rel=1e-5)


@pytest.mark.parametrize("path", sorted((ROOT / "cfg" / "env").glob("dflex_*.yaml")), ids=lambda p: p.stem)
@pytest.mark.parametrize("alg", ["pwm", "shac"])
def test_every_env_config_composes_for_both_algorithms(path, alg):
    """Each env yaml's task settings fit its config class and its per-algorithm values fit the alg schema."""
    from pwm.envs.sim.registry import make_env_config
    from pwm.training.dflex import typed_config

    cfg = typed_config(_compose([f"env={path.stem}", f"alg={alg}"]))
    task_cfg = make_env_config(cfg.env.name, cfg.env.config)
    cfg.alg.check()
    assert task_cfg.num_envs > 0 and cfg.alg.name == alg and cfg.alg.max_iterations == cfg.general.steps > 0


def test_pwm_with_tdmpc2_world_model_loss_trains_and_round_trips(tmp_path):
    """alg.wm_loss=tdmpc2: a two-hot world model trained by TD-MPC2's update inside the single-task loop."""
    overrides = [*SMALL, *PWM_SMALL, "alg.wm_loss=tdmpc2", "general.steps=2", "general.eval_every=1"]
    run = _run(overrides, tmp_path)
    run.run()
    assert run.algo.wm.cfg.num_bins == 101 and "wm/consistency_loss" in _rows(tmp_path)[-1]
    state = run.algo.state_dict()
    twin = _run(overrides, tmp_path / "twin").algo
    twin.load_state_dict(state)
    obs = torch.randn(3, 5)
    assert torch.equal(twin.act(obs), run.algo.act(obs))


def test_unreadable_start_checkpoint_is_a_one_line_error(tmp_path):
    bad = tmp_path / "best_policy.pt"
    bad.write_bytes(b"not a checkpoint")
    run = _run([*SMALL, *SHAC_SMALL, f"general.checkpoint={bad}"], tmp_path / "run")
    with pytest.raises(ConfigError, match="is not a readable best-policy file"):
        run.run()


def test_command_line_alg_values_beat_the_per_task_values_and_other_alg_values_do_not():
    """cfg/alg_env/shac_dflex_cartpole.yaml sets actor_lr 1e-2 and critic_lr 1e-3 over the alg defaults;
    alg.actor_lr= on the command line wins again, while keys the user did not name keep the per-task value."""
    from pwm.training.dflex import typed_config

    per_task = typed_config(_compose(["env=dflex_cartpole", "alg=shac"])).alg
    explicit = typed_config(_compose(["env=dflex_cartpole", "alg=shac", "alg.actor_lr=0.5"])).alg
    assert per_task.actor_lr == 1e-2 and explicit.actor_lr == 0.5
    assert per_task.critic_lr == explicit.critic_lr == 1e-3 and explicit.actor_hidden == [64, 64]
    assert typed_config(_compose(["env=dflex_hopper", "alg=shac"])).alg.actor_lr == SHACConfig().actor_lr


def test_cpu_scale_merges_the_cpu_values_only_where_a_task_has_them():
    """scale=cpu adds cfg/alg_env/pwm_dflex_hopper_cpu.yaml after the paper file; CartPole has no CPU file, so
    scale=cpu leaves it as it is; the command line still wins over both."""
    from pwm.training.dflex import typed_config

    paper = typed_config(_compose(["env=dflex_hopper", "alg=pwm"]))
    cpu = typed_config(_compose(["env=dflex_hopper", "alg=pwm", "scale=cpu"]))
    explicit = typed_config(_compose(["env=dflex_hopper", "alg=pwm", "scale=cpu", "general.pretrain_steps=7"]))
    assert (paper.alg.world_model.latent_dim, paper.alg.world_model.mlp_dim, paper.general.pretrain_steps) == (
        512, 512, 50000
    )  # fmt: skip
    assert (cpu.alg.world_model.latent_dim, cpu.alg.world_model.mlp_dim, cpu.general.pretrain_steps) == (64, 128, 10000)
    assert cpu.general.steps == paper.general.steps == 15000 and explicit.general.pretrain_steps == 7
    assert typed_config(_compose(["env=dflex_ant", "alg=pwm"])).general.pretrain_steps == 100000
    cartpole = [typed_config(_compose(["env=dflex_cartpole", "alg=pwm", *s])) for s in ([], ["scale=cpu"])]
    assert cartpole[0] == cartpole[1]
