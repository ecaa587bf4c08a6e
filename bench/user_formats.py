#!/usr/bin/env python
"""Users' own data formats on real data: CoNLL-2003 ``eng.train`` written in every tool format, read back exactly.

1. The staged ``eng.train`` (IOB1 columns) is read by the generic ``bio`` converter; its records must equal the
   dedicated ``conll03`` converter's (text + answers, labels mapped ``PER=person,...``).
2. Those records are written as a GLiNER JSON list, a Label Studio JSON export, a spaCy ``DocBin`` and a brat folder
   (one ``.txt``/``.ann`` per 500 sentences, one sentence a line; read back with ``segment=line``), and each file is
   converted back with ``processing.user_formats``: every format must reproduce all records exactly.
3. Conversion time (files -> validated ``DatasetDict``) of each format, interleaved with the ``conll03`` converter
   in the same process (the baseline): medians and the ratio to the baseline.
4. Span-graph round trip of the converted records (``modeling_ldnet.roundtrip``, MiniLM tokenizer).

    python bench/user_formats.py --out runs/bench-user-formats            # all 14,041 sentences
    python bench/user_formats.py --limit 2000 --repeats 1 --out /tmp/uf   # quick check
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C

LABEL_MAP = {"PER": "person", "LOC": "location", "ORG": "organization", "MISC": "miscellaneous"}
INVERSE = {v: k for k, v in LABEL_MAP.items()}


def write_gliner(recs: list[dict], path: Path) -> None:
    items = []
    for r in recs:
        tokens = r["text"].split(" ")
        starts = [0]
        for t in tokens[:-1]:
            starts.append(starts[-1] + len(t) + 1)
        tok_at = {s: i for i, s in enumerate(starts)}
        tok_end = {s + len(t): i for i, (s, t) in enumerate(zip(starts, tokens))}
        items.append({"tokenized_text": tokens,
                      "ner": [[tok_at[e["span"][0]], tok_end[e["span"][1]], INVERSE[e["type"]]]
                              for e in r["ans"].get("ent", [])]})
    path.write_text(json.dumps(items), encoding="utf-8")


def write_labelstudio(recs: list[dict], path: Path) -> None:
    tasks = []
    for n, r in enumerate(recs):
        result = [{"value": {"start": s, "end": e, "text": ent["text"], "labels": [INVERSE[ent["type"]]]},
                   "id": f"r{n}_{k}", "from_name": "label", "to_name": "text", "type": "labels", "origin": "manual"}
                  for k, ent in enumerate(r["ans"].get("ent", [])) for s, e in [ent["span"]]]
        tasks.append({"id": n + 1, "data": {"text": r["text"]}, "predictions": [],
                      "annotations": [{"id": n + 1, "result": result, "was_cancelled": False, "ground_truth": False,
                                       "task": n + 1, "project": 1}]})
    path.write_text(json.dumps(tasks, ensure_ascii=False), encoding="utf-8")


def write_docbin(recs: list[dict], path: Path) -> None:
    from spacy.tokens import Doc, DocBin
    from spacy.vocab import Vocab

    vocab, db = Vocab(), DocBin()
    for r in recs:
        words = r["text"].split(" ")
        doc = Doc(vocab, words=words, spaces=[True] * (len(words) - 1) + [False])
        doc.ents = [doc.char_span(*e["span"], label=INVERSE[e["type"]]) for e in r["ans"].get("ent", [])]
        db.add(doc)
    db.to_disk(path)


def write_brat(recs: list[dict], folder: Path, per_doc: int = 500) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for d in range(0, len(recs), per_doc):
        lines, ann, pos, t = [], [], 0, 0
        for r in recs[d:d + per_doc]:
            for e in r["ans"].get("ent", []):
                t += 1
                ann.append(f"T{t}\t{INVERSE[e['type']]} {pos + e['span'][0]} {pos + e['span'][1]}\t{e['text']}")
            lines.append(r["text"])
            pos += len(r["text"]) + 1
        (folder / f"doc{d // per_doc:04d}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        (folder / f"doc{d // per_doc:04d}.ann").write_text("\n".join(ann) + "\n", encoding="utf-8")


def text_ans(dd) -> list[tuple[str, Any]]:
    from processing import to_spec_record

    return [(r["text"], r["ans"]) for r in (to_spec_record(x) for x in dd["train"])]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data_dir", default=str(C.REPO.parent / "shared" / "data" / "conll03"))
    ap.add_argument("--limit", type=int, default=0, help="first N sentences of eng.train (0 = all)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default="runs/bench-user-formats", help="results folder (user_formats.json)")
    args = ap.parse_args()

    from modeling_ldnet.roundtrip import roundtrip
    from processing import convert_benchmark
    from processing.user_formats import convert_user_data

    label_map = ",".join(f"{k}={v}" for k, v in LABEL_MAP.items())
    with tempfile.TemporaryDirectory(prefix="ldnet-uf-") as tmp:
        tmp = Path(tmp)
        src = Path(args.data_dir) / "eng.train"
        (tmp / "conll03").mkdir()
        if args.limit:  # the file up to the blank line ending its N-th sentence
            out, n, prev = [], 0, ""
            for line in src.read_text(encoding="utf-8").splitlines(keepends=True):
                out.append(line)
                if not line.strip() and prev.strip() and not prev.startswith("-DOCSTART-"):
                    n += 1
                    if n >= args.limit:
                        break
                prev = line
            (tmp / "conll03" / "eng.train").write_text("".join(out), encoding="utf-8")
        else:
            (tmp / "conll03" / "eng.train").symlink_to(src)
        bio_file = tmp / "train.conll"
        bio_file.symlink_to(tmp / "conll03" / "eng.train")
        ref_dd, _ = convert_benchmark("conll03", tmp / "conll03", progress=False)
        ref = text_ans(ref_dd)
        bio_dd, _ = convert_user_data(bio_file, label_map=label_map)
        recs = [{"text": t, "ans": a} for t, a in text_ans(bio_dd)]
        files = {"bio": bio_file, "gliner": tmp / "train.json", "labelstudio": tmp / "export" / "train.json",
                 "spacy": tmp / "train.spacy", "brat": tmp / "brat"}
        (tmp / "export").mkdir()
        write_gliner(recs, files["gliner"])
        write_labelstudio(recs, files["labelstudio"])
        write_docbin(recs, files["spacy"])
        write_brat(recs, files["brat"])
        opts = {"brat": {"segment": "line"}}
        exact = {}
        for fmt, path in files.items():
            dd, rep = convert_user_data(path, fmt=fmt, label_map=label_map, **opts.get(fmt, {}))
            exact[fmt] = {"records": dd["train"].num_rows, "equal_to_conll03": text_ans(dd) == ref,
                          "dropped": rep.dropped()}
            print(f"{fmt:12s} {exact[fmt]}", flush=True)
        fns = {"conll03 (baseline)": lambda: convert_benchmark("conll03", tmp / "conll03", progress=False)}
        for fmt, path in files.items():
            fns[fmt] = lambda fmt=fmt, path=path: convert_user_data(path, fmt=fmt, label_map=label_map,
                                                                    **opts.get(fmt, {}))
        times = C.interleaved(fns, repeats=args.repeats, warmup=0)
        base = C.med(times["conll03 (baseline)"])
        speed = {name: {**C.summary(ts), "records_per_s": len(ref) / C.med(ts), "time_ratio_vs_conll03": C.med(ts) / base}
                 for name, ts in times.items()}
        for name, s in speed.items():
            print(f"{name:20s} {s['median_s']:.2f} s  {s['records_per_s']:.0f} rec/s  x{s['time_ratio_vs_conll03']:.2f}")
        proc = C.make_processor(max_length=512)
        rt = roundtrip(proc, [{"id": str(i), "instruction": "", "schema": {"ent": list(LABEL_MAP.values())}, **r}
                              for i, r in enumerate(recs)])
        print("round trip:", rt)
    path = C.write_json("user_formats", {"sentences": len(ref), "exact": exact, "speed": speed,
                                         "roundtrip": {"items": rt.items, "exact": rt.exact, "rate": rt.rate,
                                                       "misses": dict(rt.misses)}}, Path(args.out))
    print("wrote", path)


if __name__ == "__main__":
    main()
