"""Command-line entry points.

* ``ldnet-train`` (= ``examples/run_uie.py``): fine-tune / evaluate / predict with :class:`LDNetTrainer`.
  Works unchanged under ``accelerate launch [--cpu] --num_processes N``.
* ``ldnet-teacher-scores``: run a trained LDNet over a dataset and store the teacher scores for distillation.

Each console script exits 0 on success and 1 with a one-line ``ldnet-...: error: ...`` on stderr on failure (2 for a
bad argument); ``LDNET_TRACEBACK=1`` shows the full traceback. ``--max_minutes N`` bounds the training wall time.

Examples::

    ldnet-train --model_name_or_path path/to/all-MiniLM-L6-v2 --benchmark conll04 --data_dir shared/data/conll04 \
        --output_dir runs/conll04 --num_train_epochs 20 --eval_strategy epoch --save_strategy epoch \
        --load_best_model_at_end --metric_for_best_model rel_strict_f1
    ldnet-teacher-scores --model runs/conll04 --data converted/conll04 --split train --out runs/conll04-teacher
    ldnet-train --model_name_or_path path/to/all-MiniLM-L6-v2 --data_dir converted/conll04 \
        --teacher_scores runs/conll04-teacher --output_dir runs/conll04-student ...
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .console import ArgumentParser, console_entry, deferred_getattr, import_deferred

# The training stack (torch, transformers, datasets, the model): the imports in the TYPE_CHECKING block below are run
# by _import_training_stack() when a command runs, not when the module is imported, so that the console script's
# `--help` (a cached page) and importers of the light helpers do not pay seconds for them. A new heavy import of
# this module goes into that block.
if TYPE_CHECKING:  # also run by _import_training_stack() (console.import_deferred)
    import torch
    from transformers import EarlyStoppingCallback, set_seed

    from modeling_ldnet.modelcard_ldnet import CARD_INFO_ATTR, card_metrics, collect_schema, update_model_card

    from .adapters import AdapterArguments, apply_adapter_arguments, save_adapter_folder
    from .arg_types import derive_arg_types
    from .augmented import AugmentedRecordDataset, EpochCallback
    from .calibration import calibrate_label_thresholds, calibrate_thresholds
    from .console import ArgumentsParser
    from .data import (
        data_report,
        format_data_report,
        label_differences_message,
        load_benchmark,
        load_records,
        load_training_data,
        pick_split,
        tokenize_dataset,
    )
    from .loading import (  # noqa: F401 - DataArguments, ModelArguments, ... are re-exported (public names of this module)
        DataArguments,
        ModelArguments,
        build_model_and_processor,
        is_ldnet_checkpoint,
        load_model_and_processor,
        load_splits,
        parse_options,
        portable_path,
        setup_logging,
    )
    from .schema_aug import SchemaAugConfig, SchemaAugmenter
    from .teacher import TeacherScoreStore, compute_teacher_scores
    from .trainer import (
        LDNetTrainer,
        LDNetTrainingArguments,
        default_metric_for,
        time_limit_callback,
        train_and_save,
        training_labels,
    )


def _import_training_stack() -> None:
    """The imports of the ``TYPE_CHECKING`` block above, into this module's namespace (idempotent)."""
    import_deferred(globals())


#: re-exported names of the training stack (``from trainers.cli import ...``), imported on first use
__getattr__ = deferred_getattr(globals(), aliases={"_setup_logging": "setup_logging"})  # the former private name


logger = logging.getLogger("ldnet.train")


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


def resolve_schema_shuffle(data_args: DataArguments) -> bool:
    """``--schema_shuffle``: on by default (the label order spread it removes, bench/label_order.py), off by default
    with ``--teacher_scores`` (teacher scores are keyed by the hash of the unshuffled input, so a shuffled schema
    could never match); asking for both explicitly is an error."""
    if data_args.schema_shuffle is None:
        return not data_args.teacher_scores
    if data_args.schema_shuffle and data_args.teacher_scores:
        raise ValueError("--schema_shuffle changes every training input, so teacher scores (keyed by the input "
                         "hash) could never match: use one or the other")
    return bool(data_args.schema_shuffle)


def report_data(data: Any, processor: Any, output_dir: Path) -> dict[str, Any]:
    """Log what was read (one INFO block: records per split and source, conversion drops / notes, the encoding
    check), warn about train / dev label differences, and save it all as ``OUTPUT_DIR/conversion_report.json``."""
    path = output_dir / "conversion_report.json"
    report = data_report(data, processor)
    logger.info("%s", format_data_report(report, path))
    if report["label_differences"]:
        logger.warning("%s", label_differences_message(report["label_differences"]))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return report


def record_training_card(config: Any, data: Any, instructions: set[str]) -> None:
    """Set ``config.model_card_info`` for a model about to be trained on ``data``: the schema (labels per task of
    the training split), the data (path, flag, format, records per split) and empty metrics (filled in at the end).
    A base model's own card information (schema / data / metrics of what it was trained on before) is replaced."""
    info = dict(getattr(config, CARD_INFO_ATTR, None) or {})
    info.update(schema=collect_schema(data.splits["train"]["schema"]), training_data=data.card_data(), metrics={})
    if len(instructions) == 1:
        info["instruction"] = next(iter(instructions))  # the app ticks "no instruction" for ""
    else:
        info.pop("instruction", None)
    setattr(config, CARD_INFO_ATTR, json.loads(json.dumps(info)))


def train_main(argv: list[str] | None = None) -> dict[str, Any]:
    """Train (if a training split is given), evaluate on dev, predict on test. Returns all metrics."""
    if argv is None:  # command line: honour `accelerate launch --cpu --num_processes N` (see the helper)
        n = accelerate_cpu_processes_requested()
        if n > 1:
            _relaunch_cpu_workers(n)
    _import_training_stack()
    parser = ArgumentsParser((ModelArguments, DataArguments, LDNetTrainingArguments, AdapterArguments),
                             prog="ldnet-train")
    argv = sys.argv[1:] if argv is None else list(argv)
    if len(argv) == 1 and argv[0].endswith(".json"):
        model_args, data_args, training_args, adapter_args = parser.parse_json_file(os.path.abspath(argv[0]))
    else:
        model_args, data_args, training_args, adapter_args = parser.parse_args_into_dataclasses(args=argv)
    setup_logging(training_args)
    set_seed(training_args.seed)
    schema_shuffle = resolve_schema_shuffle(data_args)
    time_cb = time_limit_callback(training_args)

    data = load_training_data(data_args, parse_options(data_args.benchmark_options))
    splits = data.splits
    # without any --do_* flag every available split is used (TrainingArguments turns do_eval on by itself whenever
    # eval_strategy != "no", so the flags are read from the command line / json file, not from the dataclass)
    explicit = any(_given(argv, k) for k in ("do_train", "do_eval", "do_predict"))
    do_train = training_args.do_train if explicit else "train" in splits
    do_eval = (training_args.do_eval and _given(argv, "do_eval") if explicit else True) and "dev" in splits
    do_predict = (training_args.do_predict if explicit else True) and "test" in splits
    if do_train and "train" not in splits:
        raise ValueError("--do_train needs training data (--data_dir, --benchmark or --train_file)")

    model, processor = build_model_and_processor(model_args, data_args.max_length, data_args.overflow)
    # --lora (a peft adapter on the loaded LDNet) / --freeze_encoder / --freeze_layers: trainers/adapters.py
    model = apply_adapter_arguments(model, adapter_args, model_args.model_name_or_path, training_args,
                                    learning_rate_given=_given(argv, "learning_rate"))
    if training_args.process_index == 0:
        report_data(data, processor, Path(training_args.output_dir))
    instructions = set()
    if do_train and "instruction" in splits["train"].column_names:
        instructions = set(splits["train"]["instruction"])
    if do_train and getattr(model.config, "default_instruction", None) is None and len(instructions) == 1:
        # one instruction for every training record (e.g. "" for instruction-free fine-tuning): the pipeline should
        # give it to records that come without one, instead of a paper-style default the model never saw
        model.config.default_instruction = next(iter(instructions))
    if do_train:
        # the card (README.md) and config.json of the saved model record what it was trained on from its first
        # save; the final metrics are added at the end (record_final_metrics)
        record_training_card(model.config, data, instructions)
    dev = splits.get("dev") if do_eval or (do_train and training_args.eval_strategy != "no") else None

    # TrainingArguments sets metric_for_best_model="loss" by itself under --load_best_model_at_end; for extraction
    # the task's F1 (SPEC §6 best_metric_field) is the default unless the metric was given explicitly
    metric_given = _given(argv, "metric_for_best_model")
    if dev is not None and not metric_given and training_args.eval_strategy != "no":
        training_args.metric_for_best_model = default_metric_for(dev)
        training_args.greater_is_better = True
        logger.info("metric_for_best_model = %s", training_args.metric_for_best_model)

    train_ds = None
    callbacks: list = [time_cb] if time_cb is not None else []
    if do_train and schema_shuffle:
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
        # the labels the model learns (config.trained_labels): read off the records, also when the set is tokenized
        trained_labels=training_labels(splits["train"]) if do_train else None,
    )

    results: dict[str, Any] = {}
    if do_train:
        metrics = train_and_save(trainer, time_cb)
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

    if do_train and training_args.derive_arg_types:
        table, rep = derive_arg_types(splits["train"])
        if not table:
            raise ValueError("--derive_arg_types: the training data has no relation whose head or tail span is a gold "
                             "entity (it needs joint records: ans.ent beside ans.rel)")
        trainer.model.config.relation_arg_types = table
        logger.info("--derive_arg_types: %s (arguments without an entity of their span: %s)", table,
                    rep["untyped_arguments"] or "none")
        results["relation_arg_types"] = table
        if not (training_args.calibrate_thresholds or training_args.calibrate_label_thresholds):
            trainer.save_model()  # config.relation_arg_types (the calibration below saves it with its thresholds)

    if training_args.calibrate_thresholds or training_args.calibrate_label_thresholds:
        if "dev" not in splits:
            raise ValueError("--calibrate_thresholds needs a dev split (--validation_file, --data_dir or --benchmark)")
        cal = calibrate_thresholds(trainer.model, processor, splits["dev"])
        logger.info("calibrated thresholds %s: dev %s %.4f -> %.4f", cal.thresholds, cal.metric, cal.before, cal.after)
        results.update({"calibration_thresholds": cal.thresholds, "calibration_metric": cal.metric,
                        "calibration_dev_before": cal.before, "calibration_dev_after": cal.after})
        if training_args.calibrate_label_thresholds:
            lab = calibrate_label_thresholds(trainer.model, processor, splits["dev"])
            logger.info("per-label thresholds %s: dev %s -> %s", lab.thresholds, lab.before, lab.after)
            results.update({"calibration_label_thresholds": lab.thresholds, "calibration_label_dev_before": lab.before,
                            "calibration_label_dev_after": lab.after})
        trainer.save_model()  # config.decode_channel_thresholds (+ decode_label_thresholds) + the processor's threshold

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
    if do_train and trainer.is_world_process_zero() and adapter_args.lora:
        # an adapter folder: no config.json (transformers would take it for a full model), its own card
        save_adapter_folder(trainer.model, training_args.output_dir, processor, metrics=card_metrics(results),
                            write_weights=False)
        logger.info("adapter folder %s: LoRA + heads, ldnet_adapter.json, model card naming the base",
                    training_args.output_dir)
    elif do_train and trainer.is_world_process_zero():
        card = update_model_card(training_args.output_dir, trainer.model.config, processor,
                                 metrics=card_metrics(results))
        logger.info("model card %s: schema, data and final metrics recorded (also in config.json %s)",
                    card or "(README.md kept: not written by LDNet)", CARD_INFO_ATTR)
    return results


# ---------------------------------------------------------------------------------------------------------------
# ldnet-teacher-scores
# ---------------------------------------------------------------------------------------------------------------


def teacher_scores_main(argv: list[str] | None = None) -> dict:
    """``ldnet-teacher-scores --model DIR --data DIR_OR_FILE [--split train] --out DIR``."""
    _import_training_stack()
    p = ArgumentParser(prog="ldnet-teacher-scores", description=teacher_scores_main.__doc__)
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

    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", level=logging.INFO,
                        handlers=[logging.StreamHandler(sys.stdout)])  # stderr is for errors only
    device = a.device or ("cuda" if torch.cuda.is_available() else "cpu")
    model, processor = load_model_and_processor(a.model, max_length=a.max_length, device=device, require_ldnet=True)
    if a.benchmark:
        dd = load_benchmark(a.benchmark, a.data, **parse_options(a.benchmark_options))
        name = pick_split(dd, a.split)
        if name is None:
            raise KeyError(f"benchmark {a.benchmark}: no split {a.split!r} (have {list(dd)})")
        records = dd[name]
    else:
        records = load_records(a.data, None if Path(a.data).is_file() else a.split, flag="--data")
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
        metadata={"model": portable_path(a.model), "data": portable_path(a.data), "split": a.split},
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


train_cli = console_entry("ldnet-train", train_main)
teacher_scores_cli = console_entry("ldnet-teacher-scores", teacher_scores_main)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(train_cli())
