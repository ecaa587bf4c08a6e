#!/usr/bin/env python
"""Zero-shot evaluation: a (pre-trained) LDNet on a dataset it was not trained on, no fine-tuning.

    python examples/zeroshot.py --model runs/pretrain --benchmark twitter2017 --split test \\
        --output_dir runs/zeroshot-twitter2017 --results_md bench/RESULTS.md

* When the checkpoint has ``pretrain_info.json`` (written by ``examples/pretrain.py``), the report lists whether the
  dataset was in the pre-training mix (then it is not zero-shot: a warning is printed and recorded) and which of
  its labels the model saw during pre-training (``seen_labels`` / ``unseen_labels``).
* ``--rename_labels '{"person": "human being", ...}'`` (or ``@map.json``) renames labels in schema and answers, to
  test label strings the model never saw (twitter2017 shares its four types with CoNLL03 / Twitter-2015).
* ``--instruction_mode keep|default|none|sample``: the records' own instruction (default), our canonical phrasing,
  "w/o Inst." (empty), or a seeded sample from the pools.

Outputs in ``--output_dir``: ``zeroshot_results.json`` (metrics + provenance) and ``predictions.jsonl``.
"""

import argparse
import json
import logging
import os
import sys
from pathlib import Path

try:  # the repository root, when the package is not installed (e.g. `accelerate launch examples/...`)
    import trainers  # noqa: F401
except ImportError:  # pragma: no cover
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from modeling_ldnet.schema import normalize_record
from trainers.fewshot import append_results_md, evaluate_records, f1_keys
from trainers.instructions import InstructionSampler
from trainers.loading import load_checkpoint, load_data_split, parse_options, portable, portable_path
from trainers.schema_aug import rename_labels, schema_labels

logger = logging.getLogger("ldnet.zeroshot")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ldnet-zeroshot", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", required=True, help="saved LDNet folder (model + processor)")
    p.add_argument("--benchmark", default=None, help="registered benchmark (python -m processing list)")
    p.add_argument("--data_dir", default=None, help="upstream source of --benchmark (default: shared/data/<subdir>)")
    p.add_argument("--benchmark_options", default=None, help="converter options 'k=v,k=v'")
    p.add_argument("--data", default=None, help="converted folder or unified .jsonl instead of --benchmark")
    p.add_argument("--split", default="test")
    p.add_argument("--max_samples", type=int, default=None)
    p.add_argument("--instruction_mode", default="keep", choices=("keep", "default", "none", "sample"))
    p.add_argument("--seed", type=int, default=1227, help="seed of --instruction_mode sample")
    p.add_argument("--rename_labels", default=None, help="JSON mapping old -> new label, or @file.json")
    p.add_argument("--batch_size", type=int, default=16)
    p.add_argument("--max_length", type=int, default=None, help="override the processor's max_length")
    p.add_argument("--output_dir", required=True)
    p.add_argument("--results_md", default=None, help="append a result row here (e.g. bench/RESULTS.md)")
    return p


def _mapping(text):
    if not text:
        return {}
    if text.startswith("@"):
        text = Path(text[1:]).read_text(encoding="utf-8")
    m = json.loads(text)
    if not isinstance(m, dict):
        raise SystemExit("--rename_labels must be a JSON object")
    return {str(k): str(v) for k, v in m.items()}


def main(argv=None) -> dict:
    args = build_parser().parse_args(argv)
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", level=logging.INFO)
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    ds = load_data_split(args.split, args.benchmark, args.data_dir, args.data, parse_options(args.benchmark_options))
    if args.max_samples is not None and len(ds) > args.max_samples:
        ds = ds.select(range(args.max_samples))
    mapping = _mapping(args.rename_labels)
    sampler = InstructionSampler(mode=args.instruction_mode, seed=args.seed)
    records = []
    for row in ds:
        rec = rename_labels(row, mapping) if mapping else normalize_record(dict(row))
        rec["instruction"] = sampler.instruction_for(rec, 0)
        records.append(rec)

    info_path = Path(args.model) / "pretrain_info.json"
    provenance = {"pretrain_info": None}
    labels = schema_labels(records)
    if info_path.is_file():
        info = json.loads(info_path.read_text())
        corpora = [c["name"] for c in info.get("corpora", [])]
        name = args.benchmark or Path(args.data or "").name
        seen = set()
        for by_field in info.get("label_pool", {}).get("lists", {}).values():
            for labs in by_field.values():
                seen.update(labs)
        for by_field in info.get("label_pool", {}).get("dicts", {}).values():
            for d in by_field.values():
                seen.update(d)
                for inner in d.values():
                    seen.update(inner)
        all_labels = sorted({x for labs in labels.values() for x in labs})
        provenance = {
            "pretrain_info": str(info_path),
            "pretrain_corpora": corpora,
            "in_pretraining_mix": name in corpora,
            "seen_labels": [x for x in all_labels if x in seen],
            "unseen_labels": [x for x in all_labels if x not in seen],
        }
        if name in corpora:
            logger.warning("%s WAS in the pre-training mix of %s: this is not a zero-shot evaluation", name, args.model)
    else:
        logger.warning("%s has no pretrain_info.json: cannot check that the data was held out", args.model)

    model, processor = load_checkpoint(args.model, args.max_length)
    metrics, preds = evaluate_records(model, processor, records, batch_size=args.batch_size, prefix="test",
                                      output_dir=str(out / "_eval"))
    result = {
        "command": "zeroshot.py " + " ".join(portable(list(sys.argv[1:] if argv is None else argv))),
        "model": portable_path(args.model),
        "data": args.benchmark or portable_path(args.data),
        "split": args.split,
        "records": len(records),
        "instruction_mode": args.instruction_mode,
        "rename_labels": mapping,
        "labels": labels,
        **provenance,
        "metrics": metrics,
    }
    (out / "zeroshot_results.json").write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    with open(out / "predictions.jsonl", "w", encoding="utf-8") as fh:
        for rec, ans in zip(records, preds):
            fh.write(json.dumps({"id": rec["id"], "ans": ans}, ensure_ascii=False) + "\n")
    keys = f1_keys(metrics)
    logger.info("zero-shot %s/%s: %s", result["data"], args.split, {k: round(metrics[k], 4) for k in keys})
    if args.results_md:
        cells = ", ".join(f"{k.removeprefix('test_')} {100 * metrics[k]:.2f}" for k in keys)
        held = {True: "NO (in PT mix)", False: "yes", None: "unknown"}[provenance.get("in_pretraining_mix")]
        append_results_md(
            args.results_md,
            f"Zero-shot {result['data']} ({args.split}, {len(records)} records)",
            [
                f"command: `{result['command']}`",
                "",
                "| model | held out of PT | unseen labels | instruction | metrics (×100) |",
                "|---|---|---|---|---|",
                (
                    f"| `{args.model}` | {held} | {', '.join(provenance.get('unseen_labels') or []) or '-'} | "
                    f"{args.instruction_mode} | {cells} |"
                ),
            ],
        )
    return result


if __name__ == "__main__":
    main()
