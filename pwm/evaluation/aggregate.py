"""Aggregate multitask PWM results: normalised scores, mean / median / IQM and stratified bootstrap CIs.

Each run of ``scripts/train_multitask.py`` writes ``results.csv`` (one row per evaluation; schema in
``pwm.data.results``).
A run's score is its final evaluation (the row with the largest iteration), normalised as in TD-MPC2 and PWM:
DMControl ``episode_reward / 1000`` and Meta-World (``mw-*``) ``episode_success``, both in [0, 1]. Runs are grouped
by ``(task_set, alg)`` and arranged as a ``runs x tasks`` matrix, on which the aggregates are computed.

Statistics come from rliable (Agarwal et al. 2021, https://arxiv.org/abs/2108.13264), as in PWM's notebook: the
mean of all runs x tasks scores, the median of the per-task mean scores, and the IQM (25% trimmed mean of all runs x
tasks scores, ``scipy.stats.trim_mean``, which trims ``floor(0.25 n)`` scores at each end), with percentile CIs from
the stratified bootstrap (runs resampled with replacement within each task; 2000 repetitions as in PWM). rliable
1.2.0 installs next to numpy 2.3.5 and torch 2.13.0 without changing them, but its dependency ``arch<8`` (7.2.0) fails
to import under pandas 3 (pandas changed ``deprecate_kwarg``'s signature), so pandas must stay below 3 (2.3.3
tested). rliable is imported lazily: loading and normalising results works without it.

With one run per task the stratified bootstrap has nothing to resample, so its CI collapses onto the point estimate;
``task_bootstrap=True`` also resamples tasks (rliable's option) and gives a CI over the task population instead.
"""

from __future__ import annotations

import csv
import logging
import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pwm.data.results import RESULTS_FILENAME, RESULTS_HEADER
from pwm.data.tasks import TASK_SETS

log = logging.getLogger(__name__)

DMC_MAX_REWARD = 1000.0  # 500 agent steps x action repeat 2, reward in [0, 1] per env step
METRICS: tuple[str, ...] = ("mean", "median", "iqm")
METRIC_LABELS = {"mean": "mean", "median": "median", "iqm": "IQM"}


class ResultsError(ValueError):
    """Invalid or missing results; the message is one line naming the file and the offending value."""


def normalized_score(task: str, episode_reward: float, episode_success: float) -> float:
    """TD-MPC2 / PWM convention: Meta-World (``mw-*``) -> success rate, DMControl -> episode reward / 1000."""
    return float(episode_success) if task.startswith("mw-") else float(episode_reward) / DMC_MAX_REWARD


@dataclass(frozen=True, eq=False)
class Run:
    """One ``results.csv``: every evaluation of one (task_set, alg, task, seed), sorted by iteration."""

    path: Path
    task_set: str
    alg: str
    task: str
    seed: int
    iterations: np.ndarray  # int64 [E]
    episode_reward: np.ndarray  # float64 [E]
    episode_success: np.ndarray  # float64 [E]
    total_time: np.ndarray  # float64 [E]
    reference: float = DMC_MAX_REWARD
    """What a DMControl return is divided by: 1000 (the paper's convention) or a reference agent's return."""

    @property
    def key(self) -> tuple[str, str, str, int]:
        return self.task_set, self.alg, self.task, self.seed

    @property
    def final_iteration(self) -> int:
        return int(self.iterations[-1])

    @property
    def scores(self) -> np.ndarray:
        """Normalised score of every evaluation, in iteration order."""
        if self.task.startswith("mw-"):
            return self.episode_success.copy()
        return self.episode_reward / self.reference

    @property
    def score(self) -> float:
        """Normalised score of the final evaluation (largest iteration)."""
        return float(self.scores[-1])


def _parse(value: str, kind: type, path: Path, line: int, column: str) -> int | float:
    try:
        parsed = kind(value)
    except ValueError:
        raise ResultsError(f"{path}:{line}: {column} must be {kind.__name__}, got {value!r}") from None
    if isinstance(parsed, float) and not math.isfinite(parsed):
        raise ResultsError(f"{path}:{line}: {column} is not finite ({value!r})")
    return parsed


def read_run(path: str | Path) -> Run:
    """Read and validate one ``results.csv`` of one algorithm (see :func:`read_runs`)."""
    runs = read_runs(path)
    if len(runs) > 1:
        algs = ", ".join(r.alg for r in runs)
        raise ResultsError(f"{path}: holds several algorithms ({algs}); read it with read_runs")
    return runs[0]


def read_runs(path: str | Path) -> list[Run]:
    """Read and validate one ``results.csv`` (exact header, numeric fields, one known task and seed per file): one
    run per algorithm in it (a planning evaluation adds ``pwm+mppi`` / ``tdmpc2-mppi`` rows next to ``pwm``)."""
    path = Path(path)
    try:
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
    except (UnicodeDecodeError, csv.Error) as err:
        raise ResultsError(f"{path}: not a readable csv file ({err})") from None
    header = tuple(rows[0]) if rows else ()
    if header != RESULTS_HEADER:
        raise ResultsError(f"{path}: malformed header {','.join(header)!r}; expected {','.join(RESULTS_HEADER)!r}")
    if len(rows) < 2:
        raise ResultsError(f"{path}: no evaluation rows")
    col = {name: i for i, name in enumerate(RESULTS_HEADER)}
    ident: tuple[str, ...] | None = None
    by_alg: dict[str, list[tuple[int, float, float, float]]] = {}
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(RESULTS_HEADER):
            raise ResultsError(f"{path}:{line}: expected {len(RESULTS_HEADER)} fields, got {len(row)}")
        this = tuple(row[col[k]] for k in ("task_set", "task", "seed"))
        if ident is not None and this != ident:
            raise ResultsError(f"{path}:{line}: task_set/task/seed {this} differ from the first row's {ident}")
        ident = this
        by_alg.setdefault(row[col["alg"]], []).append((
            _parse(row[col["iteration"]], int, path, line, "iteration"),
            _parse(row[col["episode_reward"]], float, path, line, "episode_reward"),
            _parse(row[col["episode_success"]], float, path, line, "episode_success"),
            _parse(row[col["total_time"]], float, path, line, "total_time"),
        ))  # fmt: skip
    task_set, task, seed = ident
    if task_set not in TASK_SETS:
        raise ResultsError(f"{path}: unknown task_set {task_set!r}; expected one of {', '.join(TASK_SETS)}")
    if task not in TASK_SETS[task_set].names:
        raise ResultsError(f"{path}: unknown task {task!r} for {task_set} (see pwm.data.tasks)")
    seed = int(_parse(seed, int, path, 2, "seed"))
    return [_make_run(path, task_set, alg, task, seed, values) for alg, values in by_alg.items()]


def _make_run(path: Path, task_set: str, alg: str, task: str, seed: int, values: list[tuple]) -> Run:
    iterations, rewards, successes, times = (np.asarray(v) for v in zip(*values, strict=True))
    if len(set(iterations.tolist())) != len(iterations):
        raise ResultsError(f"{path}: repeated iterations")
    order = np.argsort(iterations)
    return Run(
        path=path, task_set=task_set, alg=alg, task=task, seed=seed,
        iterations=iterations.astype(np.int64)[order], episode_reward=rewards.astype(np.float64)[order],
        episode_success=successes.astype(np.float64)[order], total_time=times.astype(np.float64)[order],
    )  # fmt: skip


def find_results(paths: Iterable[str | Path]) -> list[Path]:
    """Every ``results.csv`` under the given directories (recursively); a path may also name a csv file."""
    found: dict[Path, None] = {}
    for p in map(Path, paths):
        if p.is_file():
            found[p.resolve()] = None
        elif p.is_dir():
            found.update(dict.fromkeys(f.resolve() for f in sorted(p.rglob(RESULTS_FILENAME)) if f.is_file()))
        else:
            raise ResultsError(f"{p}: no such file or directory")
    return list(found)


def load_runs(paths: Iterable[str | Path]) -> list[Run]:
    """Read every run under ``paths``. The same (task_set, alg, task, seed) found twice (a relaunched sweep) keeps
    the run that got furthest, with a warning, so that no run is counted twice."""
    paths = list(paths)
    files = find_results(paths)
    if not files:
        raise ResultsError(f"no {RESULTS_FILENAME} found under {', '.join(map(str, paths))}")
    runs: dict[tuple, Run] = {}
    for run in (r for f in files for r in read_runs(f)):
        old = runs.get(run.key)
        if old is not None:
            keep, drop = (run, old) if run.final_iteration > old.final_iteration else (old, run)
            log.warning(
                "%s seed %d found twice: keeping %s (iteration %d), ignoring %s (iteration %d)",
                run.task, run.seed, keep.path, keep.final_iteration, drop.path, drop.final_iteration,
            )  # fmt: skip
            run = keep
        runs[run.key] = run
    return sorted(runs.values(), key=lambda r: (r.task_set, r.alg, TASK_SETS[r.task_set].index(r.task), r.seed))


def group_runs(runs: Iterable[Run]) -> dict[tuple[str, str], list[Run]]:
    """Runs by (task_set, alg), in sorted order."""
    groups: dict[tuple[str, str], list[Run]] = {}
    for run in runs:
        groups.setdefault((run.task_set, run.alg), []).append(run)
    return dict(sorted(groups.items()))


def rectangular_runs(runs: Sequence[Run]) -> dict[str, list[Run]]:
    """The runs of one group by task (registry order), the same number per task.

    rliable's stratified bootstrap needs the same number of runs per task; when tasks have different counts (a sweep
    still running), each task keeps its ``k`` lowest seeds, ``k`` the smallest count, with a warning.
    """
    by_task: dict[str, list[Run]] = {}
    for run in sorted(runs, key=lambda r: r.seed):
        by_task.setdefault(run.task, []).append(run)
    tasks = [t for t in TASK_SETS[runs[0].task_set].names if t in by_task]
    k = min(len(by_task[t]) for t in tasks)
    dropped = [f"{r.task}/seed{r.seed}" for t in tasks for r in by_task[t][k:]]
    if dropped:
        log.warning(
            "%s %s: tasks have different numbers of runs; using the %d lowest seed(s) per task and leaving out %s",
            runs[0].task_set, runs[0].alg, k, ", ".join(dropped),
        )  # fmt: skip
    return {t: by_task[t][:k] for t in tasks}


def score_matrix(runs: Sequence[Run]) -> tuple[list[str], np.ndarray]:
    """Final normalised scores of one group as a ``[runs, tasks]`` matrix (tasks in registry order)."""
    kept = rectangular_runs(runs)
    return list(kept), np.array([[r.score for r in rs] for rs in kept.values()], dtype=np.float64).T


def _rliable():
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from rliable import library, metrics
    except ImportError as err:
        raise ResultsError(f"aggregate statistics need rliable ({err}): pip install rliable 'pandas<3'") from None
    return library, metrics


def iqm(scores: np.ndarray | Sequence[float]) -> float:
    """Interquartile mean of all scores (rliable: ``scipy.stats.trim_mean(x, 0.25, axis=None)``)."""
    return float(_rliable()[1].aggregate_iqm(np.asarray(scores, dtype=np.float64)))


def aggregate(scores: np.ndarray) -> np.ndarray:
    """``[mean, median, IQM]`` of a ``[runs, tasks]`` score matrix (the order of ``METRICS``).

    rliable's definitions: mean and IQM over all scores, median over tasks of each task's mean over runs.
    """
    m = _rliable()[1]
    return np.array([m.aggregate_mean(scores), m.aggregate_median(scores), m.aggregate_iqm(scores)])


@dataclass(frozen=True)
class Estimate:
    """A point estimate and its confidence interval."""

    point: float
    low: float
    high: float


def interval_estimates(
    scores: np.ndarray,
    reps: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
    task_bootstrap: bool = False,
) -> dict[str, Estimate]:
    """Mean, median and IQM of a ``[runs, tasks]`` matrix with stratified-bootstrap percentile CIs (rliable).

    The same ``seed`` gives the same CIs (NumPy's global random state is left as it was). ``task_bootstrap`` also
    resamples tasks (see the module docstring).
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2 or scores.size == 0:
        raise ResultsError(f"scores must be a non-empty [runs, tasks] matrix, got shape {scores.shape}")
    library, _ = _rliable()
    # rliable 1.2.0's StratifiedBootstrap.update_indices draws from the global np.random and ignores its
    # random_state, so the global stream is seeded for the call and restored afterwards.
    global_state = np.random.get_state()
    np.random.seed(seed)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # arch: random_state -> generator deprecation
            points, intervals = library.get_interval_estimates(
                {"x": scores},
                aggregate,
                reps=reps,
                confidence_interval_size=confidence,
                task_bootstrap=task_bootstrap,
                random_state=np.random.RandomState(seed),
            )
    finally:
        np.random.set_state(global_state)
    point, ci = points["x"], intervals["x"]
    return {name: Estimate(float(point[i]), float(ci[0, i]), float(ci[1, i])) for i, name in enumerate(METRICS)}


@dataclass(frozen=True)
class GroupSummary:
    """Aggregate of one (task_set, alg): which tasks and runs went in, and the estimates."""

    task_set: str
    alg: str
    tasks: list[str]
    missing: list[str]
    runs: int
    runs_per_task: int
    final_iterations: tuple[int, int]
    estimates: dict[str, Estimate]

    @property
    def label(self) -> str:
        return f"{self.task_set} {self.alg}"


def summarize(
    runs: Iterable[Run], reps: int = 2000, seed: int = 0, confidence: float = 0.95, task_bootstrap: bool = False
) -> list[GroupSummary]:
    """One ``GroupSummary`` per (task_set, alg)."""
    out = []
    for (task_set, alg), group in group_runs(runs).items():
        kept = rectangular_runs(group)
        tasks = list(kept)
        matrix = np.array([[r.score for r in rs] for rs in kept.values()], dtype=np.float64).T
        finals = [r.final_iteration for rs in kept.values() for r in rs]
        missing = [t for t in TASK_SETS[task_set].names if t not in tasks]
        if missing:
            log.warning("%s %s: no runs for %d task(s): %s", task_set, alg, len(missing), ", ".join(missing))
        if min(finals) != max(finals):
            log.warning("%s %s: runs stopped at different iterations (%d..%d)", task_set, alg, min(finals), max(finals))
        if matrix.shape[0] == 1 and not task_bootstrap:
            log.warning("%s %s: one run per task, so the stratified bootstrap CI has zero width", task_set, alg)
        estimates = interval_estimates(matrix, reps, seed, confidence, task_bootstrap)
        out.append(
            GroupSummary(
                task_set=task_set,
                alg=alg,
                tasks=tasks,
                missing=missing,
                runs=int(matrix.size),
                runs_per_task=int(matrix.shape[0]),
                final_iterations=(min(finals), max(finals)),
                estimates=estimates,
            )
        )
    return out


@dataclass(frozen=True)
class TaskStats:
    """Final normalised score of one task over its seeds (std with ddof=0)."""

    task_set: str
    alg: str
    task: str
    seeds: list[int]
    mean: float
    std: float


def per_task(runs: Iterable[Run]) -> list[TaskStats]:
    """Mean and std over seeds of every task's final normalised score (all runs, registry order)."""
    out = []
    for (task_set, alg), group in group_runs(runs).items():
        for task in TASK_SETS[task_set].names:
            these = sorted((r for r in group if r.task == task), key=lambda r: r.seed)
            if these:
                s = np.array([r.score for r in these])
                out.append(TaskStats(task_set, alg, task, [r.seed for r in these], float(s.mean()), float(s.std())))
    return out


def format_summary(summaries: Sequence[GroupSummary], reps: int, confidence: float = 0.95) -> str:
    """The text table printed by ``scripts/aggregate_results.py``."""
    lines = []
    for s in summaries:
        n_set = len(TASK_SETS[s.task_set])
        finals = str(s.final_iterations[0]) if s.final_iterations[0] == s.final_iterations[1] else "{}..{}"
        lines.append(
            f"{s.label}: {len(s.tasks)}/{n_set} tasks, {s.runs} runs ({s.runs_per_task} per task), "
            f"final iteration {finals.format(*s.final_iterations)}"
        )
        lines.append(f"  {'metric':<8}{'score':>8}  {round(100 * confidence)}% CI (stratified bootstrap, {reps} reps)")
        for name in METRICS:
            e = s.estimates[name]
            lines.append(f"  {METRIC_LABELS[name]:<8}{e.point:>8.4f}  [{e.low:.4f}, {e.high:.4f}]")
    return "\n".join(lines)


def format_per_task(stats: Sequence[TaskStats]) -> str:
    """Per-task table: normalised score mean ± std over seeds."""
    width = max([len(t.task) for t in stats] + [4])
    alg_width = max([len(t.alg) + 1 for t in stats] + [8])
    lines = [f"{'task_set':<9}{'alg':<{alg_width}}{'task':<{width}}  {'runs':>4}  score mean ± std"]
    for t in stats:
        lines.append(
            f"{t.task_set:<9}{t.alg:<{alg_width}}{t.task:<{width}}  {len(t.seeds):>4}  {t.mean:.4f} ± {t.std:.4f}"
        )
    return "\n".join(lines)


def learning_curves(runs: Sequence[Run]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(iterations, mean, IQM) of the normalised score over the runs evaluated at each iteration."""
    by_iter: dict[int, list[float]] = {}
    for run in runs:
        for it, score in zip(run.iterations.tolist(), run.scores.tolist(), strict=True):
            by_iter.setdefault(it, []).append(score)
    its = np.array(sorted(by_iter))
    return (
        its,
        np.array([np.mean(by_iter[i]) for i in its]),
        np.array([iqm(by_iter[i]) for i in its]),
    )


def plot_summary(
    summaries: Sequence[GroupSummary], runs: Sequence[Run], path: str | Path, confidence: float = 0.95
) -> Path:
    """Write a figure: mean and IQM with CIs per (task_set, alg), and score-vs-iteration curves when runs have
    more than one evaluation. Uses matplotlib's object API (no pyplot), so no display or backend is needed."""
    try:
        from matplotlib.figure import Figure
    except ImportError as err:
        raise ResultsError(f"--plot needs matplotlib ({err}): pip install matplotlib") from None
    curves = any(len(r.iterations) > 1 for r in runs)
    fig = Figure(figsize=(11 if curves else 5.5, 0.6 + 0.9 * max(len(summaries), 2)), layout="constrained")
    axes = fig.subplots(1, 2 if curves else 1, squeeze=False)[0]
    ax = axes[0]
    labels = [s.label for s in summaries]
    y = np.arange(len(summaries))
    for offset, name, color in ((0.15, "mean", "tab:blue"), (-0.15, "iqm", "tab:orange")):
        est = [s.estimates[name] for s in summaries]
        point = np.array([e.point for e in est])
        err = np.array([[e.point - e.low for e in est], [e.high - e.point for e in est]])
        ax.errorbar(point, y + offset, xerr=err, fmt="o", capsize=4, color=color, label=METRIC_LABELS[name])
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    ax.set_xlabel("normalised score (final evaluation)")
    ax.set_title(f"aggregate with {round(100 * confidence)}% CIs")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="best")
    if curves:
        ax = axes[1]
        for (task_set, alg), group in group_runs(runs).items():
            its, mean, iq = learning_curves(group)
            (line,) = ax.plot(its, mean, label=f"{task_set} {alg} mean")
            ax.plot(its, iq, linestyle="--", color=line.get_color(), label=f"{task_set} {alg} IQM")
        ax.set_xlabel("iteration")
        ax.set_ylabel("normalised score")
        ax.set_title("evaluations during training (all runs)")
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize="small")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path
