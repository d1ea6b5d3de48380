#!/usr/bin/env bash
# Every MT30 task x SEEDS as one Hydra multirun (SLURM when sbatch exists, else local); see sweep.bash.
#   bash scripts/mt30.bash general.data_dir=<dir of chunk_*.pt> general.checkpoint=<mt30-48M.pt> [alg=pwm_48M ...]
exec "$(dirname "${BASH_SOURCE[0]}")/sweep.bash" mt30 "$@"
