#!/bin/bash
# 20-minute CoNLL04 joint fine-tunings (one core each, two lanes): raw MiniLM with / without label drop,
# from the generalist: full, LoRA, frozen encoder.
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
MINILM=$(.venv/bin/python -c 'from processing.paths import minilm_path; print(minilm_path())')
GEN=runs/generalist
run() {  # arm seed
  local arm=$1 s=$2 extra=() init=$MINILM lr=(--learning_rate 2e-4)
  case $arm in
    raw) ;;
    nold) extra=(--use_label_drop false);;
    gen) init=$GEN;;
    lora) init=$GEN; extra=(--lora); lr=();;
    freeze) init=$GEN; extra=(--freeze_encoder);;
  esac
  local out=runs/c04/$arm-s$s; mkdir -p runs/c04
  [ -f $out/done ] && return
  .venv/bin/ldnet-train --model_name_or_path "$init" --benchmark conll04 --benchmark_options with_entities=true \
    --instruction "" --output_dir $out --do_train --do_predict --max_minutes 20 --max_steps 100000 \
    --max_length 256 --per_device_train_batch_size 8 --per_device_eval_batch_size 32 "${lr[@]}" --head_learning_rate 2e-3 \
    --warmup_steps 0.05 --lr_scheduler_type linear --train_sampling_strategy group_by_length \
    --logging_steps 100 --save_strategy no --eval_strategy no --report_to none --use_cpu true --disable_tqdm true \
    --seed $s "${extra[@]}" > runs/c04/$arm-s$s.log 2>&1
  echo "$arm-s$s rc=$? $(date)" >> runs/c04/lanes.done
  touch $out/done
}
case "$1" in
  A) for s in 1 2 3; do run raw $s; run gen $s; done;;
  B) for s in 1 2 3; do run nold $s; run lora $s; done; run freeze 1;;
esac
