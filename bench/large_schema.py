"""Large schemas: time and peak memory of a split schema vs (label groups x one pass), on a 2000-token text.

A schema whose labels leave too little room for the text is split into label groups, each one extra pass over the
text (``LDNetProcessor``, docs/errors.md). This measures, for 10 / 70 / 300 entity types:

* ``passes`` (label groups) and ``features`` (forward rows) of the split encoding, and the windows the old
  ``max(1, budget - stride)`` step would have produced for the whole schema;
* time of ``ie(text, schema=whole)`` vs the sum over groups of ``ie(text, schema=group)`` (interleaved, same process);
* peak memory (RSS high-water mark ``VmHWM``, one fresh process per measurement) of the whole schema vs ``groups x`` the
  largest group alone, both above the same idle process (model loaded, no call).

    python bench/large_schema.py                       # tiny random encoder (fast), MiniLM tokenizer
    python bench/large_schema.py --model minilm        # the packaged all-MiniLM-L6-v2 encoder
    python bench/large_schema.py --out runs/bench/results/large_schema.json
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from pathlib import Path

import _common as C  # noqa: E402 - sets the offline switches and the repo path

MAX_LENGTH = 512
STRIDE = 128


def build(model_kind: str):
    import torch
    from transformers import BertConfig, pipeline

    from modeling_ldnet import LDNetConfig, LDNetModel

    C.quiet_transformers()
    torch.manual_seed(0)
    proc = C.make_processor(MAX_LENGTH, window_stride=STRIDE)
    if model_kind == "minilm":
        model = C.make_ldnet(proc, max_seq_length=MAX_LENGTH, window_stride=STRIDE)
    else:
        enc = BertConfig(vocab_size=len(proc.tokenizer), hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                         intermediate_size=128, max_position_embeddings=MAX_LENGTH)
        model = LDNetModel(LDNetConfig(encoder_config=enc.to_dict(), head_dim=32, max_seq_length=MAX_LENGTH,
                                       window_stride=STRIDE))
    ie = pipeline("universal-ie", model=model.eval(), processor=proc, device="cpu")
    return ie, proc


def make_text(tokenizer, n_tokens: int) -> str:
    words = []
    while C.text_token_count(tokenizer, " ".join(words)) < n_tokens:
        words += [f"word{len(words) % 50}"] * 10
    while C.text_token_count(tokenizer, " ".join(words)) > n_tokens:
        words.pop()
    return " ".join(words)


def make_schema(n_labels: int) -> dict:
    return {"ent": [f"entity type number {i}" for i in range(n_labels)]}


def groups_of(proc, text: str, schema: dict) -> list[dict]:
    from modeling_ldnet.pipeline_ldnet import default_instruction

    enc = proc(text=text, schema=schema, instruction=default_instruction(schema))
    out: dict[int, dict] = {}
    for m in enc["meta"]:
        out.setdefault(m.schema_group, m.schema)
    return [out[g] for g in sorted(out)]


def old_windows(proc, text: str, schema: dict) -> int:
    """Windows the pre-split code made for the whole schema: step max(1, budget - stride), one pass."""
    from modeling_ldnet.pipeline_ldnet import default_instruction

    n_text = C.text_token_count(proc.tokenizer, text)
    # [CLS] [I] instruction, one tag + pieces per label, [TL]: the whole schema's prefix (no split)
    instruction = default_instruction(schema)
    prefix = 3 + len(proc._pieces([instruction])[0]) + sum(1 + len(p) for p in proc._pieces(schema["ent"]))
    budget = MAX_LENGTH - prefix - 1
    if budget <= 0:
        return 0  # was an error: no room for text
    if n_text <= budget:
        return 1
    step = max(1, budget - STRIDE)
    return 1 + -(-(n_text - budget) // step)


def vm_hwm_kib() -> int:
    """This process's RSS high-water mark. Not ``ru_maxrss``: Linux keeps that across ``execve``, so a child forked
    from a large parent would report the parent's peak."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # pragma: no cover - non-Linux


def measure_memory(model_kind: str, n_labels: int, n_tokens: int, which: str) -> None:
    """Child process: print the RSS high-water mark (KiB) after one call (``idle``: none)."""
    import torch

    torch.set_num_threads(1)
    ie, proc = build(model_kind)
    text = make_text(proc.tokenizer, n_tokens)
    schema = make_schema(n_labels)
    if which == "whole":
        ie(text, schema=schema)
    elif which == "group":
        ie(text, schema=max(groups_of(proc, text, schema), key=lambda g: len(g["ent"])))
    print(json.dumps({"maxrss_kib": vm_hwm_kib()}))


def child_rss(args, n_labels: int, which: str) -> float:
    cmd = [sys.executable, __file__, "--model", args.model, "--text_tokens", str(args.text_tokens),
           "--_memory", f"{n_labels}:{which}"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["maxrss_kib"] / 1024.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", choices=("tiny", "minilm"), default="tiny")
    ap.add_argument("--labels", type=int, nargs="+", default=[10, 70, 300])
    ap.add_argument("--text_tokens", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no_memory", action="store_true", help="skip the per-process peak memory measurements")
    ap.add_argument("--out", type=Path, default=None, help="results JSON (default runs/bench/results/large_schema.json)")
    ap.add_argument("--_memory", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._memory:
        n, which = args._memory.split(":")
        measure_memory(args.model, int(n), args.text_tokens, which)
        return

    import torch

    torch.set_num_threads(1)
    ie, proc = build(args.model)
    text = make_text(proc.tokenizer, args.text_tokens)
    idle = None if args.no_memory else child_rss(args, args.labels[0], "idle")
    rows = []
    for n in args.labels:
        schema = make_schema(n)
        groups = groups_of(proc, text, schema)
        ie(text, schema=schema)
        rep = ie.last_report
        fns = {"whole": lambda s=schema: ie(text, schema=s)}
        fns["groups_alone"] = lambda gs=groups: [ie(text, schema=g) for g in gs]
        times = C.interleaved(fns, repeats=args.repeats, warmup=1)
        t_whole, t_groups = C.med(times["whole"]), C.med(times["groups_alone"])
        row = {
            "labels": n,
            "passes": rep.schema_passes,
            "features": rep.features,
            "old_windows": old_windows(proc, text, schema),
            "whole_s": t_whole,
            "groups_alone_s": t_groups,
            "time_ratio": t_whole / t_groups,
        }
        if idle is not None:
            whole_mib = child_rss(args, n, "whole") - idle
            group_mib = child_rss(args, n, "group") - idle
            row.update(idle_mib=idle, whole_mib=whole_mib, one_group_mib=group_mib,
                       memory_ratio=whole_mib / (len(groups) * group_mib) if group_mib > 0 else float("nan"))
        rows.append(row)
        print(json.dumps(row), flush=True)
    print("\n| labels | passes | features (old windows) | whole s | groups alone s | time ratio | peak MiB whole | "
          "groups x one group MiB | memory ratio |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        mem = (f"{r['whole_mib']:.0f} | {r['passes']} x {r['one_group_mib']:.0f} | {r['memory_ratio']:.2f}"
               if "whole_mib" in r else "- | - | -")
        old = r["old_windows"] or "error: no room"
        print(f"| {r['labels']} | {r['passes']} | {r['features']} ({old}) | {r['whole_s']:.2f} | "
              f"{r['groups_alone_s']:.2f} | {r['time_ratio']:.2f} | {mem} |")
    out = C.write_json("large_schema", {"model": args.model, "text_tokens": args.text_tokens, "max_length": MAX_LENGTH,
                                        "window_stride": STRIDE, "rows": rows},
                       out_dir=args.out.parent if args.out else None)
    if args.out and out != args.out:
        out.rename(args.out)
    print(f"wrote {args.out or out}")


if __name__ == "__main__":
    main()
