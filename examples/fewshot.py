#!/usr/bin/env python
"""Few-shot protocol (paper §4.3 / Table 5, Table 8 preset: 200 epochs, patience 10): seeded K-shot sampling,
fine-tuning with ``ldnet-train``, testing, mean ± std over seeds.

One command per setting, e.g. 5-shot CoNLL04 from a pre-trained checkpoint, 3 seeds::

    python examples/fewshot.py --model_name_or_path runs/pretrain --benchmark conll04 --shots 5 --seeds 1 2 3 \
        --output_dir runs/fewshot-conll04-5shot --results_md bench/RESULTS.md --max_length 256

``--preset paper`` (default) = 200 epochs, early-stopping patience 10 on the dev metric, batch size 4;
``--preset quick`` = 20 epochs / patience 3 for CPU smoke runs (say so when reporting). Options this program does
not know are passed to ``ldnet-train`` (e.g. ``--learning_rate``, ``--max_length``, ``--per_device_eval_batch_size``).
``--sample_only`` writes the K-shot splits (``<out>/<K>shot/seed<S>/{train.jsonl,kshot.json}``) and stops.
Outputs: ``<out>/summary.json`` (every run, mean ± sample std per metric) and ``<out>/summary.md``.
"""

import os
import sys

try:  # the repository root, when the package is not installed (e.g. `accelerate launch examples/...`)
    import trainers  # noqa: F401
except ImportError:  # pragma: no cover
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from trainers.fewshot import fewshot_cli, fewshot_main  # noqa: F401

main = fewshot_main  # Python use: returns the results; the command line exits 0 / 1 with a one-line error
if __name__ == "__main__":
    sys.exit(fewshot_cli())
