#!/usr/bin/env python
"""Fine-tune, evaluate and predict with LDNet (universal information extraction) — ``transformers.Trainer`` style.

Arguments: ``ModelArguments`` (encoder or LDNet checkpoint + config overrides), ``DataArguments`` (converted folders,
files, or ``--benchmark NAME --data_dir SRC`` converted on the fly) and ``LDNetTrainingArguments`` (the SPEC §7.1
recipe as defaults). Run ``python examples/run_uie.py --help`` for the full list.

Single process::

    python examples/run_uie.py --model_name_or_path PATH/all-MiniLM-L6-v2 --benchmark conll04 \
        --benchmark_options with_entities=true --data_dir ../shared/data/conll04 --output_dir runs/conll04 \
        --num_train_epochs 20 --per_device_train_batch_size 8 --eval_strategy epoch --save_strategy epoch \
        --load_best_model_at_end --metric_for_best_model rel_strict_f1 --save_total_limit 2

Several CPU processes (gloo) or GPUs: the same command under ``accelerate launch [--cpu] --num_processes N``.
Outputs in ``--output_dir``: the best model + processor, ``{train,eval,test}_results.json``, ``all_results.json``,
``test_predictions.jsonl`` (``{"id", "ans"}`` per record). ``--resume_from_checkpoint DIR|auto`` resumes training.
The same program is installed as the ``ldnet-train`` console script.
"""

import os
import sys

try:  # the repository root, when the package is not installed (e.g. `accelerate launch examples/...`)
    import trainers  # noqa: F401
except ImportError:  # pragma: no cover
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from trainers.cli import DataArguments, ModelArguments, train_cli, train_main  # noqa: F401

main = train_main  # Python use: returns the results; the command line exits 0 / 1 with a one-line error
if __name__ == "__main__":
    sys.exit(train_cli())
