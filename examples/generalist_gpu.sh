#!/usr/bin/env bash
# The generalist on one lent GPU (issue #19): the same recipe and schedule as `make generalist`, sized for a 10-minute
# device call (bf16, batch 64, 9 minutes of training, then the zero-shot table on the card). Prepared for the `device`
# tool: run from the repository root with the checkout's .venv carried, e.g.
#
#   run(command="bash examples/generalist_gpu.sh", carry=[".venv"], timeout_s=600)
#
# Outputs land in $OUT/generalist (the device tool brings $OUT back) or runs/generalist-gpu without $OUT.
# Knobs: MINUTES (training minutes, default 9), BATCH (default 64), SEED (default 1), and any extra ldnet-pretrain flags
# as arguments. On a CPU machine the same script runs with DEVICE_FLAGS="--use_cpu true" (a smoke check: MINUTES=1).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
MINUTES=${MINUTES:-9}
BATCH=${BATCH:-64}
SEED=${SEED:-1}
OUTDIR=${OUT:+$OUT/generalist}
OUTDIR=${OUTDIR:-runs/generalist-gpu}
DEVICE_FLAGS=${DEVICE_FLAGS:---bf16 true --dataloader_num_workers 4}
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
MINILM=$("$BIN/python" -c 'from processing.paths import minilm_path; print(minilm_path())')
# the learning rates scale with the batch (8 -> 64: x sqrt(8)); warm-up and the linear decay are fractions of the run
"$BIN/ldnet-pretrain" --model_name_or_path "$MINILM" --recipe examples/recipes/generalist.json \
    --output_dir "$OUTDIR" --cache_dir runs/cache/generalist --max_minutes "$MINUTES" --max_length 256 \
    --per_device_train_batch_size "$BATCH" --learning_rate 5.6e-4 --head_learning_rate 5.6e-3 --warmup_steps 0.05 \
    --lr_scheduler_type linear --train_sampling_strategy group_by_length --logging_steps 20 --corpus_loss_steps 200 \
    --save_strategy no --report_to none --seed "$SEED" $DEVICE_FLAGS "$@"
"$BIN/python" bench/generalist.py zeroshot --model "$OUTDIR" --update_card --out_dir "$OUTDIR" --suffix _gpu
