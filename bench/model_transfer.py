#!/usr/bin/env python
"""Issue #14 goal 5: model transfer (paper §3.3) that earns its place, on a small budget.

Recipe measured here (one seed per call): the teacher is a trained LDNet folder; its scores on the training records
are written with ``ldnet-teacher-scores``; the **student starts from the teacher's weights** (as the reference
script does) and trains ``--steps`` more steps on ``L_MR + L_LD + distill_weight * L_MT``. The control continues the
teacher for the same steps without ``L_MT``, so a gain of the student over the control is the distillation's, not
the extra steps'. All three are scored on the test split with the same decoder.

    python bench/model_transfer.py --teacher runs/fast/C-s1/model --data runs/data/conll04-joint \
        --out runs/kd/s1 --seed 1 --steps 300
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from trainers.cli import teacher_scores_main, train_main  # noqa: E402

KEEP = ("test_ent_f1", "test_rel_strict_f1", "test_rel_strict_precision", "test_rel_strict_recall")


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--teacher", required=True, help="trained LDNet folder (model + processor)")
    p.add_argument("--data", required=True, help="converted folder (train/dev/test .jsonl) the teacher was trained on")
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--distill_weight", type=float, default=1.0)
    p.add_argument("--distill_target", default="logits", choices=("logits", "probs"))
    p.add_argument("--window_stride", type=int, default=32, help="processor window stride of the copied teacher")
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    out = Path(a.out)
    teacher = out / "teacher"
    if not teacher.exists():
        shutil.copytree(a.teacher, teacher)
        cfg = teacher / "processor_config.json"
        proc = json.loads(cfg.read_text())
        # folders saved before windows were validated may hold a stride as long as their window
        proc["window_stride"] = a.window_stride
        proc["threshold"] = 0.5  # compare at the plain threshold: drop any calibration of the teacher
        cfg.write_text(json.dumps(proc, indent=2))
        mcfg = teacher / "config.json"
        model_cfg = json.loads(mcfg.read_text())
        model_cfg.pop("decode_channel_thresholds", None)
        mcfg.write_text(json.dumps(model_cfg, indent=2))
    common = ["--data_dir", a.data, "--use_cpu", "--max_steps", str(a.steps), "--per_device_train_batch_size", "8",
              "--learning_rate", "2e-4", "--head_learning_rate", "2e-3", "--lr_scheduler_type", "linear",
              "--warmup_steps", "0.05", "--save_strategy", "no", "--eval_strategy", "no", "--report_to", "none",
              "--disable_tqdm", "true", "--seed", str(a.seed), "--schema_shuffle", "false", "--do_predict",
              "--dataloader_pin_memory", "false"]
    res: dict = {"teacher_folder": a.teacher, "seed": a.seed, "steps": a.steps}
    res["teacher"] = {k: v for k, v in train_main(["--model_name_or_path", str(teacher), "--data_dir", a.data,
                                                   "--use_cpu", "--do_predict", "--report_to", "none",
                                                   "--output_dir", str(out / "teacher-eval")]).items() if k in KEEP}
    teacher_scores_main(["--model", str(teacher), "--data", a.data, "--split", "train", "--out", str(out / "scores"),
                         "--device", "cpu"])
    res["student"] = {k: v for k, v in train_main(
        ["--model_name_or_path", str(teacher), "--teacher_scores", str(out / "scores"), "--distill_weight",
         str(a.distill_weight), "--distill_target", a.distill_target, "--output_dir", str(out / "student"), "--do_train",
         *common]).items() if k in KEEP}
    res["control"] = {k: v for k, v in train_main(
        ["--model_name_or_path", str(teacher), "--output_dir", str(out / "control"), "--do_train", *common]).items()
        if k in KEEP}
    (out / "result.json").write_text(json.dumps(res, indent=1))
    print(json.dumps(res))
    return res


if __name__ == "__main__":
    main()
