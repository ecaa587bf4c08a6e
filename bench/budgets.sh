#!/usr/bin/env bash
# Issue #14's budget benchmarks, one command each, as run for bench/RESULTS.md §10c-§10d.
# Two single-thread jobs side by side (one core each, the most a 2-core machine gives), seeds 1-3.
#
#   bash bench/budgets.sh conll03 10     # goal 2: LDNet vs the BIO tagger, 10 min each, 3 seeds, full test set
#   bash bench/budgets.sh conll03 50 1   # goal 2: 50 min each, seed 1
#   bash bench/budgets.sh minutes20      # goal 3: CoNLL04 joint and ASTE 14res, 20 min of one core each, 3 seeds
#
# Results: runs/bench/results/conll03_budget/*.json (merged: conll03_budget/<N>min.json + plot) and
# runs/budgets/*/result.json (merged tables: runs/budgets/*.md). Set PY to another interpreter if needed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS=1
OUT=runs/budgets
mkdir -p "$OUT"

# the recipe of both CoNLL03 models: batch 8, encoder / head lr 2e-4 / 2e-3 decayed linearly over the minutes
C03="--test_limit 0 --batch_size 8 --lr 2e-4 --head_lr 2e-3 --warmup_steps 30 --scheduler linear --group_by_length --threads 1"
FAST="--steps 100000 --batch_size 8 --lr 2e-4 --head_lr 2e-3 --warmup 0.05 --scheduler linear --max_length 128 --threads 1 --test"

conll03() {  # $1 minutes, $2.. seeds
  local min=$1; shift
  local seeds=("${@:-1 2 3}")
  local files=()
  for s in ${seeds[@]}; do
    $PY bench/accuracy_conll03.py --only ldnet --seed "$s" --max_minutes "$min" $C03 --instruction "" \
      --name "conll03_budget/${min}min-ldnet-s$s" &
    $PY bench/accuracy_conll03.py --only token_cls --seed "$s" --max_minutes "$min" $C03 \
      --name "conll03_budget/${min}min-tagger-s$s" &
    wait
    files+=("runs/bench/results/conll03_budget/${min}min-ldnet-s$s.json" "runs/bench/results/conll03_budget/${min}min-tagger-s$s.json")
  done
  $PY bench/accuracy_conll03.py --merge_seeds "${files[@]}" --name "conll03_budget/${min}min"
}

minutes20() {
  for s in 1 2 3; do
    $PY bench/fast_start.py --dataset conll04 --max_minutes 20 --window_stride 32 $FAST --seed "$s" --out "$OUT/conll04-20min-s$s" &
    $PY bench/fast_start.py --dataset aste-14res --max_minutes 20 $FAST --seed "$s" --out "$OUT/14res-20min-s$s" &
    wait
  done
  $PY bench/fast_start.py --merge "$OUT"/conll04-20min-s* "$OUT"/14res-20min-s* --out "$OUT/minutes20.md"
}

case "${1:-}" in
  conll03) shift; conll03 "$@" ;;
  minutes20) minutes20 ;;
  *) sed -n '2,11p' "$0"; exit 2 ;;
esac
