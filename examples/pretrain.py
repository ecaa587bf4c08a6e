#!/usr/bin/env python
"""Multi-task pre-training of LDNet (the paper's "w/ PT" stage) from a recipe of converted corpora.

Arguments: ``ModelArguments`` (encoder or LDNet checkpoint, as ``ldnet-train``), ``PretrainArguments`` (``--recipe``,
caps, ``--instruction_mode sample|default|keep|none``, schema shuffling / negatives, ``--max_minutes``) and
``LDNetTrainingArguments`` (SPEC §7.1 defaults). ``python examples/pretrain.py --help`` lists everything.

Bounded CPU run (about 2 h, saves when the time is up)::

    python examples/pretrain.py --model_name_or_path PATH/all-MiniLM-L6-v2 \
        --recipe examples/recipes/pretrain_excluded.json --cache_dir runs/cache \
        --output_dir runs/pretrain --num_train_epochs 3 --per_device_train_batch_size 8 \
        --max_length 256 --max_minutes 110 --logging_steps 50 --save_steps 1000 --report_to none

The output folder is a normal ``save_pretrained`` checkpoint (model + processor) that ``ldnet-train``,
``examples/fewshot.py`` and ``examples/zeroshot.py`` take as ``--model_name_or_path`` / ``--model``, plus
``pretrain_info.json`` (resolved recipe, per-corpus counts, augmentation settings) and ``pretrain_mix.md``.
The same program is the ``ldnet-pretrain`` console script (``trainers.pretrain:pretrain_main``).
"""

import os
import sys

try:  # the repository root, when the package is not installed (e.g. `accelerate launch examples/...`)
    import trainers  # noqa: F401
except ImportError:  # pragma: no cover
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from trainers.pretrain import pretrain_cli, pretrain_main  # noqa: F401

main = pretrain_main  # Python use: returns the results; the command line exits 0 / 1 with a one-line error
if __name__ == "__main__":
    sys.exit(pretrain_cli())
