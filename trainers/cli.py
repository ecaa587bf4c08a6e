"""Command-line entry points.

* ``ldnet-train`` (= ``examples/run_uie.py``): fine-tune / evaluate / predict with :class:`LDNetTrainer`.
  Works unchanged under ``accelerate launch [--cpu] --num_processes N``.
* ``ldnet-teacher-scores``: run a trained LDNet over a dataset and store the teacher scores for distillation.

Examples::

    ldnet-train --model_name_or_path path/to/all-MiniLM-L6-v2 --benchmark conll04 --data_dir shared/data/conll04 \
        --output_dir runs/conll04 --num_train_epochs 20 --eval_strategy epoch --save_strategy epoch \
        --load_best_model_at_end --metric_for_best_model rel_strict_f1
    ldnet-teacher-scores --model runs/conll04 --data converted/conll04 --split train --out runs/conll04-teacher
    ldnet-train --model_name_or_path path/to/all-MiniLM-L6-v2 --data_dir converted/conll04 \
        --teacher_scores runs/conll04-teacher --output_dir runs/conll04-student ...
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger("ldnet.train")


# ---------------------------------------------------------------------------------------------------------------
# arguments
# ---------------------------------------------------------------------------------------------------------------


@dataclass
class ModelArguments:
    """Which model to start from, and LDNet config overrides."""

    model_name_or_path: str = field(
        metadata={"help": "A pre-trained encoder (local folder or Hub id: a fresh LDNet is built on it) or a saved LDNet."}
    )
    processor_name_or_path: str | None = field(
        default=None, metadata={"help": "Processor/tokenizer folder; default: model_name_or_path."}
    )
    use_label_drop: bool | None = field(default=None, metadata={"help": "Label-drop gate + BCE (False: LDNet_MR)."})
    label_drop_mode: str | None = field(default=None, metadata={"help": "'logit' (reference code) or 'prob' (paper)."})
    label_drop_axis: str | None = field(default=None, metadata={"help": "'column' (reference) or 'row'."})
    label_drop_per_channel: bool | None = field(default=None, metadata={"help": "One gate head per channel."})
    label_drop_rate: float | None = field(default=None, metadata={"help": "Ablation drop rate rho in (0, 1]."})
    head_dim: int | None = field(default=None, metadata={"help": "Query/key size d_i of each channel (64)."})
    span_graph_loss_reduction: str | None = field(default=None, metadata={"help": "'mean' or 'sum' over channels."})
    label_drop_loss_reduction: str | None = field(default=None, metadata={"help": "'valid_mean' or 'padded_mean'."})
    distill_weight: float | None = field(default=None, metadata={"help": "Weight of the distillation MSE (eq 19)."})
    distill_target: str | None = field(default=None, metadata={"help": "'logits' (reference) or 'probs' (paper)."})

    def config_overrides(self) -> dict[str, Any]:
        names = (
            "use_label_drop",
            "label_drop_mode",
            "label_drop_axis",
            "label_drop_per_channel",
            "label_drop_rate",
            "head_dim",
            "span_graph_loss_reduction",
            "label_drop_loss_reduction",
            "distill_weight",
            "distill_target",
        )
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}


@dataclass
class DataArguments:
    """Where the data comes from (converted unified folders/files, or a benchmark converted on the fly)."""

    data_dir: str | None = field(
        default=None,
        metadata={"help": "A converted folder ({train,dev,test}.jsonl|parquet), or with --benchmark the upstream source "
                          "(default there: the staged copy in $LDNET_SHARED_DATA, ../shared/data)."},
    )
    benchmark: str | None = field(
        default=None, metadata={"help": "Registered benchmark (python -m processing list) converted from --data_dir."}
    )
    benchmark_options: str | None = field(
        default=None, metadata={"help": "Converter options 'key=value,key=value' (e.g. with_entities=true)."}
    )
    instruction: str | None = field(
        default=None, metadata={"help": "Override every record's instruction ('' = the w/o-Inst. setting)."}
    )
    train_file: str | None = field(default=None, metadata={"help": "Unified jsonl/parquet training file."})
    validation_file: str | None = field(default=None, metadata={"help": "Unified jsonl/parquet dev file."})
    test_file: str | None = field(default=None, metadata={"help": "Unified jsonl/parquet test file."})
    max_length: int | None = field(
        default=None,
        metadata={"help": "Longest input in tokens ([CLS]/[SEP] included); default: the saved processor's, else 512."},
    )
    overflow: str = field(default="window", metadata={"help": "'window', 'truncate' or 'error' for long texts."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Keep the first N training records."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Keep the first N dev records."})
    max_predict_samples: int | None = field(default=None, metadata={"help": "Keep the first N test records."})
    teacher_scores: str | None = field(
        default=None, metadata={"help": "Teacher-score folder (ldnet-teacher-scores) for model-transfer learning."}
    )
    schema_shuffle: bool = field(
        default=False,
        metadata={"help": "Shuffle the schema label order per record and epoch while training (as pre-training "
                          "does): the model cannot learn label positions (bench/label_order.py measures it)."},
    )
    preprocessing_num_workers: int | None = field(default=None, metadata={"help": "datasets.map processes."})
    predictions_file: str = field(
        default="test_predictions.jsonl", metadata={"help": "Test predictions (in output_dir): {id, ans} per line."}
    )


# ---------------------------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------------------------


def is_ldnet_checkpoint(path: str | os.PathLike) -> bool:
    cfg = Path(path) / "config.json"
    if not cfg.is_file():
        return False
    try:
        return json.loads(cfg.read_text()).get("model_type") == "ldnet"
    except (OSError, json.JSONDecodeError):
        return False


def build_model_and_processor(model_args: ModelArguments, max_length: int | None = 512, overflow: str = "window"):
    """``(model, processor)``: a saved LDNet (with overrides) or a fresh LDNet on a pre-trained encoder.

    ``max_length=None`` keeps a saved processor's ``max_length`` (512 for a fresh one)."""
    from transformers import AutoTokenizer

    from modeling_ldnet import LDNetModel, LDNetProcessor

    path = model_args.model_name_or_path
    proc_path = model_args.processor_name_or_path or path
    overrides = model_args.config_overrides()
    if (Path(proc_path) / "processor_config.json").is_file():
        processor = LDNetProcessor.from_pretrained(proc_path)
        if max_length is not None:
            processor.max_length = int(max_length)
        processor.overflow = overflow
    else:
        tok = AutoTokenizer.from_pretrained(proc_path)
        processor = LDNetProcessor(tokenizer=tok, max_length=max_length or 512, overflow=overflow)
    if is_ldnet_checkpoint(path):
        model = LDNetModel.from_pretrained(path, **overrides)
        if model.get_input_embeddings().num_embeddings < len(processor.tokenizer):
            model.resize_token_embeddings(len(processor.tokenizer))
    else:
        model = LDNetModel.from_encoder(path, tokenizer=processor.tokenizer, **overrides)
    return model, processor


def parse_options(text: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for part in (text or "").split(","):
        if part.strip():
            k, _, v = part.partition("=")
            out[k.strip()] = v.strip()
    return out


def load_splits(data_args: DataArguments) -> dict[str, Any]:
    """``{"train"|"dev"|"test": datasets.Dataset}`` from the data arguments (each optional)."""
    from .data import load_benchmark, load_records, pick_split

    splits: dict[str, Any] = {}
    if data_args.benchmark:
        opts = parse_options(data_args.benchmark_options)
        if data_args.instruction is not None:
            opts["instruction"] = data_args.instruction
        dd = load_benchmark(data_args.benchmark, data_args.data_dir, **opts)
    elif data_args.data_dir:
        from processing import load_unified

        dd = load_unified(data_args.data_dir)
    else:
        dd = {}
    for split in ("train", "dev", "test"):
        name = pick_split(dd, split)
        if name is not None:
            splits[split] = dd[name]
    for split, path in (("train", data_args.train_file), ("dev", data_args.validation_file), ("test", data_args.test_file)):
        if path:
            splits[split] = load_records(path)
    limits = {"train": data_args.max_train_samples, "dev": data_args.max_eval_samples, "test": data_args.max_predict_samples}
    for split, n in limits.items():
        if n is not None and split in splits and len(splits[split]) > n:
            splits[split] = splits[split].select(range(n))
    if data_args.instruction is not None and not data_args.benchmark:
        inst = data_args.instruction
        splits = {k: v.map(lambda r: {"instruction": inst}, keep_in_memory=True) for k, v in splits.items()}
    return splits


def _setup_logging(training_args) -> None:
    import datasets
    import transformers

    logging.basicConfig(
        format="%(asctime)s - %(levelname)s - %(name)s - %(message)s",
        datefmt="%m/%d/%Y %H:%M:%S",
        handlers=[logging.StreamHandler(sys.stdout)],
    )
    level = training_args.get_process_log_level()
    logger.setLevel(level)
    logging.getLogger("trainers").setLevel(level)
    datasets.utils.logging.set_verbosity(level)
    transformers.utils.logging.set_verbosity(level)
    if not training_args.should_log:
        datasets.utils.logging.disable_progress_bar()


# ---------------------------------------------------------------------------------------------------------------
# ldnet-train
# ---------------------------------------------------------------------------------------------------------------


def accelerate_cpu_processes_requested() -> int:
    """Processes asked for by ``accelerate launch --cpu --num_processes N`` when accelerate started only one.

    accelerate (1.x) runs ``--cpu`` jobs through its *simple* launcher: without ``--mpirun_hostfile`` it starts a
    single process (only exporting ``ACCELERATE_USE_CPU`` and ``MASTER_ADDR``/``MASTER_PORT``). We detect that case
    (no ``RANK``/``WORLD_SIZE`` in the environment, parent process = ``accelerate launch ... --num_processes N``) so
    :func:`train_main` starts the N gloo workers itself (torchrun-style ``RANK``/``WORLD_SIZE`` environment).
    Returns 1 when not applicable. Set ``LDNET_NO_RELAUNCH=1`` to disable.
    """
    env = os.environ
    if env.get("LDNET_NO_RELAUNCH") or any(k in env for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE")):
        return 1
    if env.get("ACCELERATE_USE_CPU", "").lower() not in ("1", "true", "yes") or "MASTER_ADDR" not in env:
        return 1
    try:
        with open(f"/proc/{os.getppid()}/cmdline", "rb") as fh:
            parent = [c.decode("utf-8", "ignore") for c in fh.read().split(b"\0") if c]
    except OSError:
        return 1
    if not any(os.path.basename(a).startswith("accelerate") for a in parent[:3]) or "launch" not in parent:
        return 1
    for i, a in enumerate(parent):
        key, _, val = a.partition("=")
        if key in ("--num_processes", "--num-processes"):
            try:
                return max(1, int(val or parent[i + 1]))
            except (ValueError, IndexError):
                return 1
    return 1


def _relaunch_cpu_workers(n: int) -> None:
    """Start ``n`` copies of this command as ranks ``0..n-1`` of one gloo job (torchrun-style environment)."""
    import subprocess
    import time

    cmd = [sys.executable, os.path.abspath(sys.argv[0]), *sys.argv[1:]]
    print(f"ldnet-train: starting {n} CPU (gloo) processes", file=sys.stderr, flush=True)
    procs = []
    for rank in range(n):
        env = dict(
            os.environ,
            RANK=str(rank),
            LOCAL_RANK=str(rank),
            WORLD_SIZE=str(n),
            LOCAL_WORLD_SIZE=str(n),
            GROUP_RANK="0",
            MASTER_ADDR=os.environ.get("MASTER_ADDR", "127.0.0.1"),
            MASTER_PORT=os.environ.get("MASTER_PORT", "29500"),
        )
        procs.append(subprocess.Popen(cmd, env=env))
    rc = 0
    try:
        while procs:
            for p in list(procs):
                code = p.poll()
                if code is None:
                    continue
                procs.remove(p)
                if code != 0 and rc == 0:
                    rc = code
                    for other in procs:  # one rank failed: the others would wait for it forever
                        other.terminate()
            time.sleep(0.2)
    except KeyboardInterrupt:
        for p in procs:
            p.terminate()
        raise
    raise SystemExit(rc)


def _given(argv: list[str], name: str) -> bool:
    """Whether argument ``name`` was given on the command line (or in the single json file)."""
    if len(argv) == 1 and argv[0].endswith(".json"):
        return json.loads(Path(argv[0]).read_text()).get(name) not in (None, False)
    flags = {f"--{name}", f"--{name.replace('_', '-')}"}
    return any(a.split("=")[0] in flags for a in argv)


def train_main(argv: list[str] | None = None) -> dict[str, Any]:
    """Train (if a training split is given), evaluate on dev, predict on test. Returns all metrics."""
    from transformers import EarlyStoppingCallback, HfArgumentParser, set_seed
    from transformers.trainer_utils import get_last_checkpoint

    from .data import tokenize_dataset
    from .teacher import TeacherScoreStore
    from .trainer import LDNetTrainer, LDNetTrainingArguments, default_metric_for

    if argv is None:  # command line: honour `accelerate launch --cpu --num_processes N` (see the helper)
        n = accelerate_cpu_processes_requested()
        if n > 1:
            _relaunch_cpu_workers(n)
    parser = HfArgumentParser((ModelArguments, DataArguments, LDNetTrainingArguments))
    argv = sys.argv[1:] if argv is None else list(argv)
    if len(argv) == 1 and argv[0].endswith(".json"):
        model_args, data_args, training_args = parser.parse_json_file(os.path.abspath(argv[0]))
    else:
        model_args, data_args, training_args = parser.parse_args_into_dataclasses(args=argv)
    _setup_logging(training_args)
    set_seed(training_args.seed)

    splits = load_splits(data_args)
    # without any --do_* flag every available split is used (TrainingArguments turns do_eval on by itself whenever
    # eval_strategy != "no", so the flags are read from the command line / json file, not from the dataclass)
    explicit = any(_given(argv, k) for k in ("do_train", "do_eval", "do_predict"))
    do_train = training_args.do_train if explicit else "train" in splits
    do_eval = (training_args.do_eval and _given(argv, "do_eval") if explicit else True) and "dev" in splits
    do_predict = (training_args.do_predict if explicit else True) and "test" in splits
    if do_train and "train" not in splits:
        raise ValueError("--do_train needs training data (--data_dir, --benchmark or --train_file)")

    model, processor = build_model_and_processor(model_args, data_args.max_length, data_args.overflow)
    dev = splits.get("dev") if do_eval or (do_train and training_args.eval_strategy != "no") else None

    # TrainingArguments sets metric_for_best_model="loss" by itself under --load_best_model_at_end; for extraction
    # the task's F1 (SPEC §6 best_metric_field) is the default unless the metric was given explicitly
    metric_given = _given(argv, "metric_for_best_model")
    if dev is not None and not metric_given and training_args.eval_strategy != "no":
        training_args.metric_for_best_model = default_metric_for(dev)
        training_args.greater_is_better = True
        logger.info("metric_for_best_model = %s", training_args.metric_for_best_model)

    train_ds = None
    callbacks = []
    if do_train and data_args.schema_shuffle:
        if data_args.teacher_scores:
            raise ValueError("--schema_shuffle changes every training input, so teacher scores (keyed by the input "
                             "hash) could never match: use one or the other")
        from .pretrain import AugmentedRecordDataset, EpochCallback
        from .schema_aug import SchemaAugConfig, SchemaAugmenter

        augmenter = SchemaAugmenter(SchemaAugConfig(shuffle=True, shuffle_inner=True), seed=training_args.seed)
        train_ds = AugmentedRecordDataset(splits["train"], processor, None, augmenter, seed=training_args.seed)
        callbacks.append(EpochCallback(train_ds))
        logger.info("training records: %d, schema label order shuffled per record and epoch", len(train_ds))
    elif do_train:
        with training_args.main_process_first(desc="tokenizing the training set"):
            train_ds = tokenize_dataset(processor, splits["train"], num_proc=data_args.preprocessing_num_workers)
        logger.info("training features: %d (from %d records)", len(train_ds), len(splits["train"]))

    teacher_store = TeacherScoreStore(data_args.teacher_scores) if data_args.teacher_scores else None
    if do_train and dev is not None and training_args.eval_strategy != "no" and training_args.early_stopping_patience > 0:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=training_args.early_stopping_patience))

    trainer = LDNetTrainer(
        model=model,
        args=training_args,
        train_dataset=train_ds,
        eval_dataset=dev,
        processing_class=processor,
        teacher_store=teacher_store,
        callbacks=callbacks,
    )

    results: dict[str, Any] = {}
    if do_train:
        checkpoint = training_args.resume_from_checkpoint
        if checkpoint in ("auto", "last", "latest"):
            checkpoint = get_last_checkpoint(training_args.output_dir)
        train_result = trainer.train(resume_from_checkpoint=checkpoint)
        trainer.save_model()
        metrics = dict(train_result.metrics)
        metrics["train_samples"] = len(train_ds)
        metrics["train_world_size"] = training_args.world_size
        if teacher_store is not None:
            metrics["train_distill_features"] = trainer.teacher_counts.get("ok", 0)
            metrics["train_distill_missing"] = trainer.teacher_counts.get("missing", 0)
            metrics["train_distill_hash_mismatch"] = trainer.teacher_counts.get("hash_mismatch", 0)
        trainer.log_metrics("train", metrics)
        trainer.save_metrics("train", metrics)
        trainer.save_state()
        results.update(metrics)

    if do_eval:
        metrics = trainer.evaluate(splits["dev"], metric_key_prefix="eval")
        metrics["eval_samples"] = len(splits["dev"])
        trainer.log_metrics("eval", metrics)
        trainer.save_metrics("eval", metrics)
        results.update(metrics)

    if do_predict:
        test = splits["test"]
        out = trainer.predict(test, metric_key_prefix="test")
        metrics = dict(out.metrics)
        metrics["test_samples"] = len(test)
        trainer.log_metrics("test", metrics)
        trainer.save_metrics("test", metrics)
        if trainer.is_world_process_zero():
            path = Path(training_args.output_dir) / data_args.predictions_file
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "w", encoding="utf-8") as fh:
                fh.writelines(json.dumps({"id": rec["id"], "ans": ans}, ensure_ascii=False) + "\n" for rec, ans in zip(test, out.predictions))
            logger.info("wrote %d predictions to %s", len(out.predictions), path)
        results.update(metrics)
    return results


# ---------------------------------------------------------------------------------------------------------------
# ldnet-teacher-scores
# ---------------------------------------------------------------------------------------------------------------


def teacher_scores_main(argv: list[str] | None = None) -> dict:
    """``ldnet-teacher-scores --model DIR --data DIR_OR_FILE [--split train] --out DIR``."""
    import torch

    from .data import load_benchmark, load_records, pick_split
    from .teacher import compute_teacher_scores, load_model_and_processor

    p = argparse.ArgumentParser(prog="ldnet-teacher-scores", description=teacher_scores_main.__doc__)
    p.add_argument("--model", required=True, help="trained LDNet folder (model + processor)")
    p.add_argument("--data", required=True, help="converted folder or a unified .jsonl/.parquet file")
    p.add_argument("--split", default="train", help="split of a folder (default: train)")
    p.add_argument("--benchmark", default=None, help="convert --data (upstream source) with this benchmark first")
    p.add_argument("--benchmark_options", default=None, help="converter options 'k=v,k=v'")
    p.add_argument("--out", required=True, help="output folder (manifest.json + scores-*.safetensors)")
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--max_length", type=int, default=None, help="override the processor's max_length")
    p.add_argument("--max_samples", type=int, default=None)
    p.add_argument("--max_shard_mb", type=float, default=256.0)
    p.add_argument("--device", default=None, help="cpu / cuda (default: cuda when available)")
    a = p.parse_args(argv)

    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", level=logging.INFO)
    device = a.device or ("cuda" if torch.cuda.is_available() else "cpu")
    model, processor = load_model_and_processor(a.model, max_length=a.max_length, device=device)
    if a.benchmark:
        dd = load_benchmark(a.benchmark, a.data, **parse_options(a.benchmark_options))
        name = pick_split(dd, a.split)
        if name is None:
            raise SystemExit(f"benchmark {a.benchmark}: no split {a.split!r} (have {list(dd)})")
        records = dd[name]
    else:
        records = load_records(a.data, None if Path(a.data).is_file() else a.split)
    if a.max_samples is not None and len(records) > a.max_samples:
        records = records.select(range(a.max_samples))
    manifest = compute_teacher_scores(
        model,
        processor,
        records,
        a.out,
        batch_size=a.batch_size,
        device=device,
        max_shard_bytes=int(a.max_shard_mb * 2**20),
        metadata={"model": str(a.model), "data": str(a.data), "split": a.split},
        progress=True,
    )
    logger.info(
        "stored teacher scores of %d features (%d records) in %d shard(s) under %s",
        manifest["num_entries"],
        len(records),
        len(manifest["shards"]),
        a.out,
    )
    return manifest


if __name__ == "__main__":  # pragma: no cover
    train_main()
