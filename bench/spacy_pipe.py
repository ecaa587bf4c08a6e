#!/usr/bin/env python
"""spaCy component "ldnet": ``nlp.pipe`` (``batch_size`` docs per forward pass) vs one ``nlp(text)`` per doc.

Model: ``--model`` (default ``runs/demo/model``, from ``make demo``); docs: the first ``--docs`` CoNLL04 test sentences
with the CoNLL04 schema. Both are timed interleaved in one process (``--repeats`` rounds after a warm-up); medians.
Also reported: how the answers landed (spans, doc.ents, relations, the component's alignment report).

    python bench/spacy_pipe.py --docs 64 --out runs/bench/spacy_pipe.json
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import _common as C
import spacy

SCHEMA = {"ent": ["location", "organization", "people", "other"],
          "rel": ["kill", "live in", "located in", "organization in", "work for"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=str(C.REPO / "runs" / "demo" / "model"))
    ap.add_argument("--docs", type=int, default=64)
    ap.add_argument("--batch_size", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(C.RESULTS_DIR / "spacy_pipe.json"))
    args = ap.parse_args()
    root = Path(os.environ.get("LDNET_SHARED_DATA", C.REPO.parent / "shared" / "data"))
    data = json.loads((root / "conll04" / "conll04.json").read_text())
    texts = [" ".join(s["tokens"]) for s in data["test"][: args.docs]]
    nlp = spacy.blank("en")
    nlp.add_pipe("ldnet", config={"model": args.model, "schema": SCHEMA, "instruction": "",
                                  "batch_size": args.batch_size})
    times = C.interleaved({"loop": lambda: [nlp(t) for t in texts], "pipe": lambda: list(nlp.pipe(texts))},
                          repeats=args.repeats, warmup=1)
    docs = list(nlp.pipe(texts))
    res = {
        "model": args.model, "docs": len(texts), "batch_size": args.batch_size,
        "loop_docs_per_s": len(texts) / C.med(times["loop"]), "pipe_docs_per_s": len(texts) / C.med(times["pipe"]),
        "speedup_pipe_vs_loop": C.med(times["loop"]) / C.med(times["pipe"]),
        "entities_in_spans": sum(len(d.spans["ldnet"]) for d in docs),
        "entities_in_doc_ents": sum(len(d.ents) for d in docs),
        "relations": sum(len(d._.relations) for d in docs),
        "misaligned": sum(len(d._.ldnet_misaligned) for d in docs),
        "unaligned": sum(len(d._.ldnet_unaligned) for d in docs),
        "report": dict(nlp.get_pipe("ldnet").report),
        "times": times,
    }
    out = Path(args.out)
    path = C.write_json(out.stem, res, out.parent)
    print(json.dumps({k: v for k, v in res.items() if k != "times"}, indent=1))
    print(f"-> {path}")


if __name__ == "__main__":
    main()
