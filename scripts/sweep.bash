#!/usr/bin/env bash
# Train one PWM policy for every task of a set (mt30|mt80) and seed from a frozen multitask world model, as ONE Hydra multirun
# (one job per task x seed; on SLURM one job array):
#   bash scripts/sweep.bash mt30 general.data_dir=<dir of chunk_*.pt> general.checkpoint=<mt30-48M.pt> [alg=pwm_48M ...]
# Arguments are Hydra overrides passed through to scripts/train_multitask.py (do not pass task=, seed= or
# hydra/launcher=; use the variables below). Environment:
#   SEEDS=1,2,3                 comma-separated seeds
#   TASKS=<a,b,...>             a subset of tasks (default: the whole set, read from pwm.data.tasks)
#   PWM_LAUNCHER=slurm|local    default: slurm when sbatch is on PATH, else local (cfg/hydra/launcher/*.yaml)
#   PYTHON=python               interpreter with pwm installed
#   DRY_RUN=1                   print the command instead of running it
# Results: runs/<set>/multirun/<date_time>/<task>/seed<seed>/results.csv (relative to the current directory).
# Runs resume from their run dir: to continue an interrupted sweep, pass its hydra.sweep.dir=runs/<set>/multirun/<...>.
# Summary: python scripts/aggregate_results.py runs/<set>/multirun/<date_time> --per-task
set -euo pipefail

task_set="${1:?usage: sweep.bash mt30|mt80 [hydra overrides...]}"
shift
if [[ "$task_set" != mt30 && "$task_set" != mt80 ]]; then
    echo "error: the task set must be mt30 or mt80, got '$task_set'" >&2
    exit 1
fi
script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-python}"
seeds="${SEEDS:-1,2,3}"
tasks="${TASKS:-$("$python" -c "from pwm.data.tasks import TASK_SETS; print(','.join(TASK_SETS['$task_set'].names))")}"

launcher="${PWM_LAUNCHER:-}"
if [[ -z "$launcher" ]]; then
    if command -v sbatch >/dev/null 2>&1; then launcher=slurm; else launcher=local; fi
fi
if [[ "$launcher" != slurm && "$launcher" != local ]]; then
    echo "error: PWM_LAUNCHER must be slurm or local, got '$launcher'" >&2
    exit 1
fi
if [[ ! "$seeds" =~ ^[0-9]+(,[0-9]+)*$ ]]; then
    echo "error: SEEDS must be comma-separated integers like 1,2,3, got '$seeds'" >&2
    exit 1
fi

for required in general.data_dir general.checkpoint; do  # the runner needs both; say so before a sweep starts
    if [[ ! " $* " =~ " $required=" ]]; then
        echo "warning: $required= is not given; every job of this sweep will stop asking for it" >&2
    fi
done

cmd=("$python" "$script_dir/train_multitask.py" -cn "config_$task_set" -m "task=$tasks" "seed=$seeds"
    "hydra/launcher=$launcher" "$@")
if [[ "${DRY_RUN:-0}" == 1 ]]; then
    # One line that can be pasted into a shell; only words with shell metacharacters are quoted.
    line=""
    for word in "${cmd[@]}"; do
        if [[ ! "$word" =~ ^[A-Za-z0-9_./:=,@%+-]+$ ]]; then word="$(printf '%q' "$word")"; fi
        line+="${line:+ }$word"
    done
    echo "$line"
    exit 0
fi
exec "${cmd[@]}"
