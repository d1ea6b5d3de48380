"""One PWM policy for one task of MT30/MT80 from a frozen world model, evaluated on the real environment.

Loads the world model (any official checkpoint layout), samples the task's start states from the offline
data, runs ``general.steps`` PWM iterations, evaluates every ``general.eval_every`` iterations and writes
``results.csv`` (one row per evaluation) next to the metrics; the loop is ``pwm.training.loop``.
"""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path
from typing import Any

import torch

from pwm.algorithms.pwm import PWM
from pwm.checkpoint.tdmpc2_load import load_into
from pwm.config import MultitaskConfig
from pwm.data.buffer import DatasetSampler
from pwm.data.dataset import open_dataset
from pwm.data.results import RESULTS_HEADER
from pwm.data.tasks import get_task_set
from pwm.models.world_model import WorldModel
from pwm.training import loop
from pwm.training.evaluate import evaluate


class ResultsFile:
    """``results.csv``: rows of evaluations; on resume, rows after the restored iteration are dropped."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def truncate_after(self, iteration: int) -> None:
        if not self.path.is_file():
            return
        with open(self.path, newline="") as f:
            rows = [r for r in csv.DictReader(f) if int(r["iteration"]) <= iteration]
        self._write(rows, "w")

    def append(self, row: dict) -> None:
        self._write([row], "a" if self.path.is_file() else "w")

    def _write(self, rows: list[dict], mode: str) -> None:
        with open(self.path, mode, newline="") as f:
            writer = csv.DictWriter(f, fieldnames=RESULTS_HEADER)
            if mode == "w":
                writer.writeheader()
            writer.writerows(rows)


class MultitaskRun(loop.Runner):
    evaluate_at_start = True

    def __init__(self, cfg: MultitaskConfig, run_dir: Path) -> None:
        cfg.check()
        self.cfg, self.general, self.logger_cfg, self.run_dir = cfg, cfg.general, cfg.logger, Path(run_dir)
        self.name = f"{cfg.task}-{cfg.seed}"
        self.device = loop.start_up(cfg.general, cfg.seed)
        self.task_id = get_task_set(cfg.task_set).index(cfg.task)
        self.world_model = WorldModel(dataclasses.replace(cfg.alg.world_model, task=cfg.task_set))
        load_into(self.world_model, cfg.general.checkpoint)
        self.world_model.to(self.device)
        self.algo = PWM(self.world_model, cfg.alg, task=self.task_id, precision=cfg.general.precision)
        dataset = open_dataset(cfg.general.data_dir, cfg.task_set, cache_dir=cfg.general.cache_dir)
        self.sampler = DatasetSampler(
            dataset, cfg.alg.batch_size, cfg.alg.horizon, seed=cfg.seed, task=self.task_id, device=self.device
        )
        self.results = ResultsFile(self.run_dir / "results.csv")
        self.components = {"algo": self.algo, "sampler": self.sampler}
        self.config = dataclasses.asdict(cfg)

    def train_step(self) -> dict[str, float]:
        return self.algo.update(self.sampler.sample().obs[0])

    def restore(self, extra: dict[str, Any]) -> None:
        self.results.truncate_after(self.state.step)

    def start(self, fresh: bool) -> dict[str, float]:
        if fresh:  # rows of a session killed before its first run state are evaluated again
            self.results.truncate_after(-1)
        return {}

    def postfix(self, row: dict[str, Any]) -> dict[str, str]:
        return {"return": f"{row.get('eval/return', float('nan')):.1f}",
                "success": f"{row.get('eval/success', float('nan')):.2f}"}  # fmt: skip

    def policy(self, obs):
        x = torch.as_tensor(obs, dtype=torch.float32, device=self.device).unsqueeze(0)
        return self.algo.act(x, deterministic=True)[0].cpu().numpy()

    def planner(self, prior: str):
        """MPPI with PWM's actor/critic (``prior="pwm"``) or the world model's own prior and Q (``"tdmpc2"``)."""
        from pwm.planning.mppi import MPPIPlanner

        e, wm, task = self.cfg.eval, self.world_model, self.task_id
        if prior == "pwm":
            prior = lambda z: torch.tanh(self.algo.actor(z))  # noqa: E731
            value = self.algo.critic.min
        else:
            prior = lambda z: wm.pi(z, task)[0]  # noqa: E731
            value = lambda z: wm.Q(z, wm.pi(z, task)[0], task, "avg")  # noqa: E731
        mask = wm._action_masks[task] if wm.cfg.multitask else None
        return MPPIPlanner(wm, e.mppi, self.cfg.alg.gamma, prior, value, mask, self.general.precision)

    def evaluate(self, step: int) -> dict[str, float]:
        from pwm.envs.suites.registry import make_env

        env = make_env(self.cfg.task, seed=self.cfg.seed * 100_000 + step, task_set=self.cfg.task_set)
        final = step == self.general.steps
        recorder = None
        if final and self.cfg.eval.model_errors:
            from pwm.evaluation.wm_quality import RecordingEnv

            env = recorder = RecordingEnv(env)
        metrics = evaluate(self.policy, env, self.general.eval_runs)
        self._append(step, "pwm", metrics)
        if recorder is not None:
            self._write_model_errors(recorder.episodes)
        if final and self.cfg.eval.planning:
            for prior in ("pwm", "tdmpc2") if self.cfg.eval.prior == "both" else (self.cfg.eval.prior,):
                planner = self.planner(prior)
                planned = evaluate(self._plan_fn(planner), env, self.general.eval_runs, on_reset=planner.reset)
                self._append(step, "pwm+mppi" if prior == "pwm" else "tdmpc2-mppi", planned)
        if final and self.general.video:
            from pwm.envs.suites.video import record_episode

            record_episode(env, self.policy, self.run_dir / "videos" / f"{self.cfg.task}_{step}.mp4")
        return metrics

    def _write_model_errors(self, episodes: list[dict]) -> None:
        """``model_errors.json``: the frozen model's and the critic's errors along the final policy's episodes."""
        import json

        from pwm.evaluation.wm_quality import policy_errors

        a = self.cfg.alg
        errors = policy_errors(self.world_model, self.algo.critic, episodes, self.task_id, a.horizon, a.gamma,
                               a.reward_space)  # fmt: skip
        (self.run_dir / "model_errors.json").write_text(json.dumps(errors, indent=1) + "\n")

    def _plan_fn(self, planner):
        return lambda obs: planner.plan(torch.as_tensor(obs, device=self.device), self.task_id).cpu().numpy()

    def _append(self, step: int, alg: str, metrics: dict[str, float]) -> None:
        self.results.append({
            "iteration": step, "task": self.cfg.task, "task_set": self.cfg.task_set, "seed": self.cfg.seed,
            "alg": alg, "episode_reward": metrics["return"], "episode_success": metrics["success"],
            "episode_length": metrics["length"], "total_time": round(self.state.total_time, 3),
        })  # fmt: skip
