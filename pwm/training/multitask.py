"""One PWM policy for one task of MT30/MT80 from a frozen world model, evaluated on the real environment.

Loads the world model (any official checkpoint layout), samples the task's start states from the offline
data, runs ``general.epochs`` PWM iterations, evaluates every ``general.eval_freq`` iterations and writes
``results.csv`` (one row per evaluation), metrics, and a run state after each evaluation, from which a rerun
resumes.
"""

from __future__ import annotations

import csv
import dataclasses
import time
from pathlib import Path

import torch
from tqdm import tqdm

from pwm.algorithms.pwm import PWM
from pwm.checkpoint.run_state import CheckpointDir, load_run_state
from pwm.checkpoint.tdmpc2_format import load_into
from pwm.config import MultitaskConfig, resolve_world_model
from pwm.data.buffer import DatasetSampler
from pwm.data.dataset import open_dataset
from pwm.data.tasks import get_task_set
from pwm.evaluation.aggregate import RESULTS_HEADER
from pwm.models.world_model import WorldModel
from pwm.training.evaluate import evaluate
from pwm.utils.device import resolve_device
from pwm.utils.logging import MetricLogger
from pwm.utils.seeding import seed_everything

RESUME_IGNORES = (  # settings that may change between an interrupted run and its resumption
    "general.epochs", "general.eval_freq", "general.run_dir", "general.device", "general.threads", "general.video",
    "general.data_dir", "general.checkpoint", "logger", "alg.max_iterations",
)  # fmt: skip


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


class MultitaskRun:
    def __init__(self, cfg: MultitaskConfig, run_dir: Path) -> None:
        cfg.check()
        self.cfg, self.run_dir = cfg, run_dir
        self.device = resolve_device(cfg.general.device)
        if cfg.general.threads:
            torch.set_num_threads(cfg.general.threads)
        seed_everything(cfg.seed)
        self.task_id = get_task_set(cfg.task_set).index(cfg.task)
        wm_cfg = resolve_world_model(dataclasses.replace(cfg.alg.world_model, task=cfg.task_set))
        self.world_model = WorldModel(wm_cfg)
        load_into(self.world_model, cfg.general.checkpoint)
        self.world_model.to(self.device)
        self.algo = PWM(self.world_model, cfg.alg, task=self.task_id)
        dataset = open_dataset(cfg.general.data_dir, cfg.task_set)
        self.sampler = DatasetSampler(
            dataset, cfg.alg.batch_size, cfg.alg.horizon, seed=cfg.seed, task=self.task_id, device=self.device
        )
        self.results = ResultsFile(run_dir / "results.csv")
        self.checkpoints = CheckpointDir(run_dir / "checkpoints")
        self.components = {"algo": self.algo, "sampler": self.sampler}
        self.config = dataclasses.asdict(cfg)
        self.total_time = 0.0

    def policy(self, obs):
        x = torch.as_tensor(obs, dtype=torch.float32, device=self.device).unsqueeze(0)
        return self.algo.act(x, deterministic=True)[0].cpu().numpy()

    def planner(self):
        """MPPI with PWM's actor/critic (``eval.prior=pwm``) or the world model's own prior and Q (``tdmpc2``)."""
        from pwm.planning.mppi import MPPIPlanner

        e, wm, task = self.cfg.eval, self.world_model, self.task_id
        if e.prior == "pwm":
            prior = lambda z: torch.tanh(self.algo.actor(z))  # noqa: E731
            value = self.algo.critic.min
        else:
            prior = lambda z: wm.pi(z, task)[0]  # noqa: E731
            value = lambda z: wm.Q(z, wm.pi(z, task)[0], task, "avg")  # noqa: E731
        mask = wm._action_masks[task] if wm.cfg.multitask else None
        return MPPIPlanner(wm, e.mppi, self.cfg.alg.gamma, prior, value, mask)

    def evaluate(self, iteration: int) -> dict[str, float]:
        from pwm.envs.suites.registry import make_env

        env = make_env(self.cfg.task, seed=self.cfg.seed * 100_000 + iteration, task_set=self.cfg.task_set)
        metrics = evaluate(self.policy, env, self.cfg.general.eval_runs)
        self._append(iteration, "pwm", metrics)
        if iteration == self.cfg.general.epochs and self.cfg.eval.planning:
            planner = self.planner()
            plan = lambda obs: planner.plan(torch.as_tensor(obs, device=self.device), self.task_id).cpu().numpy()  # noqa: E731
            planned = evaluate(plan, env, self.cfg.general.eval_runs, on_reset=planner.reset)
            self._append(iteration, "pwm+mppi" if self.cfg.eval.prior == "pwm" else "tdmpc2-mppi", planned)
        if self.cfg.general.video and iteration == self.cfg.general.epochs:
            from pwm.envs.suites.video import record_episode

            record_episode(env, self.policy, self.run_dir / "videos" / f"{self.cfg.task}_{iteration}.mp4")
        return metrics

    def _append(self, iteration: int, alg: str, metrics: dict[str, float]) -> None:
        self.results.append({
            "iteration": iteration, "task": self.cfg.task, "task_set": self.cfg.task_set, "seed": self.cfg.seed,
            "alg": alg, **metrics, "total_time": round(self.total_time, 3),
        })  # fmt: skip

    def save(self, iteration: int) -> None:
        self.checkpoints.save(self.components, iteration, self.config, extra={"total_time": self.total_time})

    def run(self) -> dict[str, float]:
        cfg = self.cfg.general
        step, latest = 0, self.checkpoints.latest()
        if latest is not None:
            step, extra = load_run_state(latest, self.components, self.config, ignore=RESUME_IGNORES)
            self.total_time = extra.get("total_time", 0.0)
            self.results.truncate_after(step)
        logger = MetricLogger(self.run_dir, self.cfg.logger, self.config, name=f"{self.cfg.task}-{self.cfg.seed}")
        last: dict[str, float] = {}
        try:
            if step == 0:
                last = self.evaluate(0)
                self.save(0)
            bar = tqdm(total=cfg.epochs, initial=step, disable=not self.cfg.logger.progress, unit="it")
            while step < cfg.epochs:
                start = time.perf_counter()
                obs = self.sampler.sample().obs[0]
                logger.record(self.algo.update(obs))
                self.total_time += time.perf_counter() - start
                step += 1
                bar.update(1)
                evaluate_now = step % cfg.eval_freq == 0 or step == cfg.epochs
                if evaluate_now:
                    last = self.evaluate(step)
                    bar.set_postfix(reward=f"{last['episode_reward']:.1f}", success=f"{last['episode_success']:.2f}")
                if evaluate_now or step % self.cfg.logger.log_every == 0:
                    logger.dump(step, {f"eval/{k}": v for k, v in last.items()} if evaluate_now else None)
                if evaluate_now:
                    self.save(step)
            bar.close()
        finally:
            logger.close()
        return last
