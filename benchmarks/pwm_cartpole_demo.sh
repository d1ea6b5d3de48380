#!/usr/bin/env bash
# PWM end to end on CPU: random-policy DMControl data -> TD-MPC2 world model -> PWM policy -> real-env returns.
#   bash benchmarks/pwm_cartpole_demo.sh [out_dir]     (about 25 minutes on 2 cores)
# Compare the first row of results.csv (the untrained policy) and the random-policy return printed by
# make_dataset.py with the later rows.
set -euo pipefail
out=${1:-runs/pwm_cartpole_demo}
task=${TASK:-cartpole-swingup}
python scripts/make_dataset.py --tasks "$task" --episodes-per-task "${EPISODES:-60}" --out "$out/data" --overwrite --seed 1
python scripts/train_world_model.py task=mt30 general.data_dir="$out/data" world_model=1M general.steps="${WM_STEPS:-3000}" \
    general.run_dir="$out/world_model" general.save_every=1000 logger.progress=false general.threads=2
wm=$(ls "$out"/world_model/models/*.pt | sort -V | tail -n 1)
python scripts/train_multitask.py -cn config_mt30 alg=pwm_1M task="$task" \
    general.data_dir="$out/data" general.checkpoint="$wm" general.run_dir="$out/pwm" \
    general.steps="${PWM_EPOCHS:-600}" general.eval_every=100 general.threads=2 logger.progress=false
cat "$out/pwm/results.csv"
