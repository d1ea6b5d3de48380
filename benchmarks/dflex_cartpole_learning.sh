#!/usr/bin/env bash
# CartPoleSwingUp learning on CPU: SHAC (gradients through the simulator), PWM (gradients through a world model
# learned online from scratch; the recipe is cfg/alg_env/pwm_dflex_cartpole.yaml) and Stable-Baselines3 SAC,
# then one figure with IQM + 95% CI bands over seeds. SAC steps one env (the Gymnasium adapter, --num-envs 0).
#   bash benchmarks/dflex_cartpole_learning.sh [out_dir]       SEEDS="1 2 3" SAC_STEPS=100000 THREADS=1
# Deterministic evaluation every 25 iterations (12 episodes); eval/final_reward is the mean reward over each
# episode's last second (about 0 when the pole ends balanced upright at the centre, -9.87 when it hangs still).
set -euo pipefail
out=${1:-runs/cartpole_learning}
threads=${THREADS:-1}
common=(logger.wandb=false logger.progress=false logger.log_every=25 general.eval_every=25 general.threads="$threads")
for seed in ${SEEDS:-1}; do
    python scripts/train_dflex.py env=dflex_cartpole alg=shac seed="$seed" general.run_dir="$out/shac/$seed" \
        "${common[@]}"
    python scripts/train_dflex.py env=dflex_cartpole alg=pwm seed="$seed" general.run_dir="$out/pwm/$seed" \
        "${common[@]}"
    python benchmarks/sb3_baseline.py --env dflex_cartpole --algo sac --num-envs 0 --steps "${SAC_STEPS:-100000}" \
        --eval-every 10000 --seed "$seed" --threads "$threads" --out "$out/sac/$seed"
done
for run in "$out"/shac/* "$out"/pwm/*; do python scripts/eval_dflex.py "$run" --policy final --device cpu; done
python scripts/plot_dflex.py "$out" --out "$out/curves.png"
